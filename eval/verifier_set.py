"""The citation verifier measured on labelled sentences built from the shared corpus.

``python -m eval verifier build`` picks sentences that state a specific (a number, a period, an article,
a named body) from real pages, and writes each with its passage twice or more: as *supported* variants
(the sentence as written, with its numbers re-spelled: kanji numerals as digits, "five" as "5",
200万円 as 2,000,000円, a citation marker added) and as *unsupported* perturbations (number changed,
period changed, negation added, named body or sector swapped). ``python -m eval verifier measure`` runs
``qa.citations.supports`` on every item and reports precision and recall for "unsupported" (a removed
claim is the positive decision) overall and per perturbation, and the same for a sentence the model left
uncited, which the verifier attributes to one of five sources (its own passage and four others) or removes.
The set lives in ``eval/testsets/verifier_labelled.jsonl``; the thresholds in ``qa/citations.py`` are tuned on it.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from core.schema import Hit
from core.text import split_sentences
from ingest.readers import read_document
from qa.citations import MARKER, supports, verify_answer
from qa.claims import canonical, negated, specifics

SOURCES = (
    ("ja", "ja/fsa_amlcft/211122_amlcft_guidelines.pdf"),
    ("ja", "ja/egov_laws_2013/text/犯罪による収益の移転防止に関する法律.txt"),
    ("ja", "ja/egov_laws_2013/text/犯罪による収益の移転防止に関する法律施行令.txt"),
    ("ja", "ja/egov_laws_2013/text/預金保険法.txt"),
    ("en", "en/aml_regulatory/fatf/FATF-40-Recommendations.pdf"),
    ("en", "en/aml_regulatory/basel/Basel-ML-TF-Risk-Management.pdf"),
    ("en", "en/aml_regulatory/eu/EU-Transfer-Funds-2023-1113.pdf"),
)
PER_SOURCE = 14
PER_TARGET = 4
"""Besides the random sentences, up to this many per source chosen because a period can be changed in them, and
as many because a named body can be swapped and as many because a sector can: the perturbations a random pick
rarely reaches."""
_SWAPS = {
    "ja": [("金融庁", "財務省"), ("財務省", "金融庁"), ("国家公安委員会", "金融庁"), ("行政庁", "国税庁"),
           ("預金保険機構", "日本銀行"), ("内閣総理大臣", "財務大臣")],
    "en": [("FATF", "IMF"), ("Basel Committee", "Financial Stability Board"), ("FIU", "central bank"),
           ("European Commission", "European Central Bank"), ("EBA", "ESMA"),
           ("Member States", "payment service providers")],
}
_SECTOR_SWAPS = {
    "ja": [("宅地建物取引業者", "貴金属等売買業者"), ("貴金属等売買業者", "宅地建物取引業者"), ("司法書士", "行政書士"),
           ("行政書士", "司法書士"), ("公認会計士", "税理士"), ("税理士", "公認会計士"), ("弁護士", "税理士"),
           ("暗号資産交換業者", "宅地建物取引業者"), ("カジノ", "宅地建物取引業者")],
    "en": [("casinos", "real estate agents"), ("casino", "real estate agent"), ("Casinos", "Real estate agents"),
           ("real estate agents", "casinos"), ("Real estate agents", "Casinos"), ("lawyers", "casinos"),
           ("Lawyers", "Casinos"), ("notaries", "casinos"), ("notary", "casino"), ("accountants", "casinos"),
           ("dealers in precious metals", "casinos"), ("Dealers in precious metals", "Casinos"),
           ("virtual asset service providers", "casinos"), ("Virtual asset service providers", "Casinos"),
           ("trust and company service providers", "casinos")],
}
"""A sector whose rules differ named instead of the one the sentence is about (``qa.claims`` checks sectors)."""
_KANJI_DIGITS = "〇一二三四五六七八九"
_EN_NUMBERS = {"1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
               "8": "eight", "9": "nine", "10": "ten"}


def _sentences(text: str) -> list[str]:
    """Whole statements: not a fragment that starts mid-sentence, a footnote, or a table-of-contents line."""
    return [s for s in split_sentences(text)
            if 25 <= len(s) <= 220 and not re.match(r"[\W\d_]", s) and "...." not in s and "…" not in s]


def _passage(text: str, sentence: str, width: int = 700) -> str:
    at = text.find(sentence)
    start = max(0, at - width // 3)
    return text[start : start + width]


def _change_number(sentence: str) -> str | None:
    m = re.search(r"\d+", sentence)
    if m:
        n = int(m.group(0))
        return sentence[: m.start()] + str(n + 1 if n < 3 else n * 2) + sentence[m.end():]
    m = re.search(f"[{_KANJI_DIGITS[1:]}](?=[年月日条項号万円人件週時])", sentence)
    if m:
        swapped = _KANJI_DIGITS[(_KANJI_DIGITS.index(m.group(0)) % 9) + 1]
        return sentence[: m.start()] + swapped + sentence[m.end():]
    return None


def _change_period(sentence: str) -> str | None:
    m = re.search(r"(\d+|[一二三四五六七八九十]+)\s*(年|か月|ヶ月|日|営業日|years?|months?|days?|hours?)", sentence)
    if not m:
        return None
    value = m.group(1)
    other = str(int(value) + 2) if value.isdigit() else ("三" if value != "三" else "五")
    return sentence[: m.start(1)] + other + sentence[m.end(1):]


def _negate(sentence: str, lang: str) -> str | None:
    if negated(sentence):
        return None  # a double negative says nothing clear
    rules = (
        [("しなければならない", "する必要はない"), ("なければならない", "なくてもよい"),
         ("することができる", "することができない"), ("とする。", "としない。"), ("する。", "しない。"),
         ("である。", "ではない。"), ("求められる", "求められない")]
        if lang == "ja" else
        [(" must ", " need not "), (" should ", " should not "), (" shall ", " shall not "), (" is ", " is not "),
         (" are ", " are not "), (" may ", " may not ")]
    )
    for old, new in rules:
        if old in sentence:
            return sentence.replace(old, new, 1)
    return None


def _swap(sentence: str, pairs: list[tuple[str, str]]) -> str | None:
    """The sentence with its first listed name replaced by another that it does not already name."""
    for old, new in pairs:
        if old in sentence and new.lower() not in sentence.lower():
            return sentence.replace(old, new, 1)
    return None


def _swap_entity(sentence: str, lang: str) -> str | None:
    return _swap(sentence, _SWAPS[lang])


def _swap_sector(sentence: str, lang: str) -> str | None:
    return _swap(sentence, _SECTOR_SWAPS[lang])


def _respell(sentence: str, lang: str) -> str:
    """The same fact in another spelling: what the verifier's normalisation must see through."""
    if lang == "ja":
        return canonical(sentence) if re.search(f"[{_KANJI_DIGITS}十百千]", sentence) else sentence + "[1]"
    m = re.search(r"\b(10|[1-9])\b", sentence)
    if m:
        return sentence[: m.start()] + _EN_NUMBERS[m.group(0)] + sentence[m.end():]
    return sentence.rstrip(".") + " [1]."


def build(corpus: Path, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    items: list[dict] = []
    for lang, rel in SOURCES:
        doc = read_document(corpus / rel)
        candidates = []
        for page in doc.pages:
            for s in _sentences(page.text):
                if any(x.kind in ("number", "article") for x in specifics(s)):
                    candidates.append((page, s))
        rng.shuffle(candidates)
        chosen = candidates[:PER_SOURCE]
        rest = [c for page in doc.pages for c in ((page, s) for s in _sentences(page.text)) if c not in chosen]
        random.Random(f"{seed}:{rel}").shuffle(rest)  # its own draw: the random picks stay as they were
        chosen += [c for c in rest if c not in chosen and _change_period(c[1])][:PER_TARGET]
        chosen += [c for c in rest if c not in chosen and _swap_entity(c[1], lang)][:PER_TARGET]
        chosen += [c for c in rest if c not in chosen and _swap_sector(c[1], lang)][:PER_TARGET]
        for page, s in chosen:
            passage = _passage(page.text, s)
            base = {"lang": lang, "source": rel, "page": page.number, "passage": passage}
            variants = [("none", s, "supported"), ("respelled", _respell(s, lang), "supported"),
                        ("number", _change_number(s), "unsupported"), ("period", _change_period(s), "unsupported"),
                        ("negation", _negate(s, lang), "unsupported"), ("entity", _swap_entity(s, lang), "unsupported"),
                        ("sector", _swap_sector(s, lang), "unsupported")]
            for kind, sentence, label in variants:
                if sentence and (label == "supported" or sentence != s):
                    items.append(base | {"id": f"v{len(items):04d}", "sentence": sentence, "label": label,
                                         "perturbation": kind})
    return items


def _hit(source: str, page: int, passage: str) -> Hit:
    return Hit(doc_id=source, source=source, title="", page=page, pages=[], section="", text=passage, score=1.0)


def _five_sources(passage: tuple[str, int, str], passages: list[tuple[str, int, str]]) -> tuple[list[Hit], int]:
    """The sources an uncited sentence is attributed among, as retrieval gives an answer's, and the number of its
    own passage: two other passages of its document, its own, two of other documents (the same ones every
    time; a set with fewer documents or passages gives fewer)."""
    k = passages.index(passage)
    others = [p for p in passages if p != passage]
    same = [p for p in others if p[0] == passage[0]] or others
    other = [p for p in others if p[0] != passage[0]] or others
    before = list(dict.fromkeys([same[k % len(same)], same[(k + 3) % len(same)]])) if same else []
    after = [p for p in dict.fromkeys([other[7 * k % len(other)], other[(7 * k + 11) % len(other)]])
             if p not in before] if other else []
    return [_hit(*p) for p in [*before, passage, *after]], len(before) + 1


def _rates(counts: Counter) -> dict:
    tp, fp, fn = counts[(True, True)], counts[(False, True)], counts[(True, False)]
    return {
        "unsupported_precision": round(tp / max(tp + fp, 1), 3),
        "unsupported_recall": round(tp / max(tp + fn, 1), 3),
        "supported_kept": round(counts[(False, False)] / max(counts[(False, False)] + fp, 1), 3),
    }


def measure(items: list[dict]) -> dict:
    """Precision and recall of the verifier's "unsupported" decision, overall and per perturbation; and under
    ``uncited`` the same for the sentence without its marker, attributed among five sources or removed (a
    supported sentence attributed to another passage than its own is counted apart)."""
    counts: Counter = Counter()
    uncited: Counter = Counter()
    per_kind: Counter = Counter()
    elsewhere = 0
    errors = []
    passages = list(dict.fromkeys((item["source"], item["page"], item["passage"]) for item in items))
    for item in items:
        passage = (item["source"], item["page"], item["passage"])
        flagged = not supports(item["sentence"], _hit(*passage))[0]
        truth = item["label"] == "unsupported"
        counts[(truth, flagged)] += 1
        per_kind[(item["perturbation"], flagged == truth)] += 1
        if flagged != truth:
            errors.append({"id": item["id"], "perturbation": item["perturbation"], "sentence": item["sentence"]})
        sources, own = _five_sources(passage, passages)
        checked = verify_answer(MARKER.sub("", item["sentence"]).strip(), sources)
        kept = [s for s in checked.sentences if s.verified]
        uncited[(truth, not kept)] += 1
        elsewhere += bool(not truth and kept and kept[0].markers != [own])
    kinds = sorted({k for k, _ in per_kind})
    return {
        "items": len(items),
        **_rates(counts),
        "accuracy_by_perturbation": {
            k: round(per_kind[(k, True)] / max(per_kind[(k, True)] + per_kind[(k, False)], 1), 3) for k in kinds},
        "count_by_perturbation": {k: per_kind[(k, True)] + per_kind[(k, False)] for k in kinds},
        "uncited": {**_rates(uncited), "supported_attributed_elsewhere": elsewhere},
        "errors": errors,
    }


def write_jsonl(items: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
