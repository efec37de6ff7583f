"""Citation verification after generation.

Each answer sentence's ``[n]`` markers must name a provided source, and the sentence must be supported by
one of the sources it cites: lexical overlap of character bigrams (Japanese) or words (English) with the
source's sentence that carries it (the quote shown to the user), every specific it states (numbers, periods,
amounts, articles, named laws and bodies: ``qa.claims``) found in that sentence or the source's title and
section, and the same polarity (no added or dropped negation). Sentences the model left uncited get a
citation only when one source clearly supports them. Every sentence is a claim, however short, except one that
only introduces a list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.schema import AnswerSentence, Citation, Hit
from core.text import detect_language, split_sentences
from qa.claims import is_connective, is_list_label, missing_specifics, negated, specifics, strip_specifics

MARKER = re.compile(r"\s*[\[［【]\s*(\d{1,2})(?:\s*[,，、]\s*(\d{1,2}))*\s*[\]］】]")
_MARKER_NUMBERS = re.compile(r"\d{1,2}")
_WORD = re.compile(r"[a-z0-9]+")
_WORDLIKE = re.compile(r"\w")
_JA_CHARS = re.compile(r"[^\s、。，．・「」『』（）()\[\]［］【】:：;；!！?？\-－\"'`*#]")

_EN_FUNCTION_WORDS = frozenset(
    "a an the to of in on at by for from with about as and or that this these those it its they them their he she "
    "his her we our you your is are was were be been being has have had do does did yes so".split()
)
SUPPORT_THRESHOLD = 0.35
ATTRIBUTION_THRESHOLD = 0.5
MIN_CONTENT_FEATURES = 3
"""Features a claim needs besides its numbers to be verifiable: "10" or "7年です" alone cannot be checked."""


@dataclass(frozen=True)
class Verification:
    sentences: list[AnswerSentence]
    citations: list[Citation]
    invalid_markers: list[int]
    raw: list[str]
    """Each sentence as the model wrote it (markers and Markdown included), aligned with ``sentences``."""

    def supported_text(self, answer: str) -> str:
        """The answer with every unsupported sentence taken out, its Markdown otherwise kept."""
        for raw, sentence in zip(self.raw, self.sentences, strict=True):
            if not sentence.verified:
                answer = answer.replace(raw, "", 1)
        lines = [ln.rstrip() for ln in answer.split("\n")]
        kept = [ln for ln in lines if ln.strip(" \t-*・•0123456789.)") or not ln.strip()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()

    @property
    def claims(self) -> list[AnswerSentence]:
        """Verified sentences that state something (not mere list introductions)."""
        return [s for s in self.sentences if s.verified and not is_connective(s.text)]

    @property
    def unsupported(self) -> int:
        return sum(1 for s in self.sentences if not s.verified)


def _features(text: str) -> set[str]:
    lowered = text.lower()
    if detect_language(text) == "ja":
        chars = "".join(_JA_CHARS.findall(MARKER.sub("", lowered)))
        return {chars[i : i + 2] for i in range(len(chars) - 1)}
    return set(_WORD.findall(MARKER.sub("", lowered))) - _EN_FUNCTION_WORDS


def _candidates(passage: str) -> dict[str, tuple[str, ...]]:
    """The passage's sentences, each pair of neighbouring sentences, and the clauses that a terminator inside
    brackets ends (an answer quoting 「…をいう。」 from a statute sentence is checked against that clause, not
    against the whole sentence whose 「…を除く。」 has the other polarity); each with the sentences it is made of."""
    sentences = split_sentences(passage) or [passage]
    out = {s: (s,) for s in sentences + split_sentences(passage, in_brackets=True)}
    for pair in zip(sentences, sentences[1:], strict=False):
        out.setdefault(" ".join(pair), pair)
    return out


def short_answer_support(fragment: str, hit: Hit, question: str) -> tuple[bool, float, str]:
    """A short answer ("100,000", "5 years") read as the answer to ``question``: its specifics and enough of
    the question's words must stand in one sentence of the source. A number found elsewhere in the passage,
    even in the next sentence, does not count."""
    if not specifics(fragment):
        return False, 0.0, ""  # "yes", "that one": nothing the sources could confirm
    asked = _features(question) - _features(f"{hit.title} {hit.section}")
    best, quote = 0.0, ""
    for cand in (split_sentences(hit.text) or [hit.text]) if asked else []:
        if missing_specifics(fragment, cand):
            continue
        score = len(asked & _features(cand)) / len(asked)
        if score > best:
            best, quote = score, cand
    return best >= SUPPORT_THRESHOLD and negated(fragment) == negated(quote), best, quote


def supports(sentence: str, hit: Hit, question: str = "") -> tuple[bool, float, str]:
    """(whether ``hit`` supports the claim, lexical support, the quote): enough content besides its numbers to
    be checked by itself (a bare "10" is checked as the answer to ``question``: :func:`short_answer_support`;
    without a question it cannot be), and one sentence of the source (or a clause, or two neighbouring
    sentences) that shares enough of the claim's words, states every specific of the claim and has its polarity.
    A number, period or body that the passage states elsewhere, about something else, does not count. The
    source's title and section count for both words and specifics (a law's chunk does not repeat the law's name
    or article number), its file name for named bodies ("Basel" in Basel-ML-TF-Risk-Management.pdf)."""
    if len(_features(strip_specifics(sentence))) < MIN_CONTENT_FEATURES:
        return short_answer_support(sentence, hit, question) if question else (False, 0.0, "")
    heading = f"{hit.title}\n{hit.section}\n"
    claim = _features(sentence) - _features(heading)
    found, best, quote = False, 0.0, ""
    if not claim:
        return found, best, quote
    for cand, parts in _candidates(hit.text).items():
        score = len(claim & _features(cand)) / len(claim)
        # polarity is the claim's sentence's: "should notify. … need not …" does not support "should not notify"
        lead = max(parts, key=lambda part: len(claim & _features(part)))
        ok = (score >= SUPPORT_THRESHOLD and negated(sentence) == negated(lead)
              and not _unstated(sentence, hit, heading + cand))
        # a supporting quote first, then the closest, then the shortest
        if (ok, score, -len(cand)) > (found, best, -len(quote)):
            found, best, quote = ok, score, cand
    return found, best, quote


def _unstated(sentence: str, hit: Hit, text: str) -> list:
    """The claim's specifics that ``text`` does not state, less the names the source's file name states (its
    numbers, "FATF-40-Recommendations.pdf", state nothing)."""
    missing = missing_specifics(sentence, text)
    by_file = missing_specifics(sentence, hit.source) if missing else []
    return [s for s in missing if s.kind != "name" or s in by_file]


def verify_answer(answer: str, sources: list[Hit], question: str = "") -> Verification:
    """Check every sentence of ``answer`` against the numbered ``sources`` (1-based); ``question`` is what a
    short answer answers."""
    sentences: list[AnswerSentence] = []
    raw: list[str] = []
    citations: dict[int, Citation] = {}
    invalid: list[int] = []
    for text in split_sentences(answer):
        markers = [int(n) for m in MARKER.finditer(text) for n in _MARKER_NUMBERS.findall(m.group(0))]
        body = MARKER.sub("", text).strip()
        if not _WORDLIKE.search(body) or is_list_label(body):
            continue  # punctuation left where the refusal sentence was taken out, or a list item's label
        valid = [n for n in dict.fromkeys(markers) if 1 <= n <= len(sources)]
        invalid.extend(n for n in markers if n not in valid)
        verified = False
        if is_connective(body):
            verified = True  # "以下のとおりです：" introduces a list and makes no claim
        elif valid:
            for n in valid:
                ok, score, quote = supports(body, sources[n - 1], question)
                verified = verified or ok
                _merge(citations, n, sources[n - 1], quote, score, ok)
        else:
            best: tuple[int, float, str] | None = None
            for n, hit in enumerate(sources, start=1):
                ok, score, quote = supports(body, hit, question)
                if ok and score >= ATTRIBUTION_THRESHOLD and (best is None or score > best[1]):
                    best = (n, score, quote)
            if best is not None:
                valid = [best[0]]
                verified = True
                _merge(citations, best[0], sources[best[0] - 1], best[2], best[1], True)
        sentences.append(AnswerSentence(text=body, markers=valid, verified=verified))
        raw.append(text)
    return Verification(sentences, sorted(citations.values(), key=lambda c: c.n), sorted(set(invalid)), raw)


def _merge(citations: dict[int, Citation], n: int, hit: Hit, quote: str, score: float, ok: bool) -> None:
    current = citations.get(n)
    if current is not None and current.support >= score:
        if ok and not current.verified:
            citations[n] = current.model_copy(update={"verified": True})
        return
    citations[n] = Citation(
        n=n,
        doc_id=hit.doc_id,
        source=hit.source,
        page=hit.page_of(quote),
        section=hit.section,
        quote=quote or hit.text[:200],
        version=hit.version,
        title=hit.title,
        verified=ok or bool(current and current.verified),
        support=round(score, 3),
        ocr=hit.ocr,
    )
