"""Citation verification after generation.

Each answer sentence's ``[n]`` markers must name a provided source, and the sentence must
be supported by one of the sources it cites: lexical overlap of character bigrams (Japanese)
or words (English) between the sentence and the source's best-matching sentence. That
sentence is the quote shown to the user. Sentences the model left uncited get a citation
only when one source clearly supports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.schema import AnswerSentence, Citation, Hit
from core.text import detect_language

MARKER = re.compile(r"\s*[\[［【]\s*(\d{1,2})(?:\s*[,，、]\s*(\d{1,2}))*\s*[\]］】]")
_MARKER_NUMBERS = re.compile(r"\d{1,2}")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])\s*|(?<=[.])\s+(?=[A-Z「])|\n+")
_WORD = re.compile(r"[a-z0-9]+")
_JA_CHARS = re.compile(r"[^\s、。，．・「」『』（）()\[\]［］【】:：;；!！?？\-－\"'`*#]")

SUPPORT_THRESHOLD = 0.35
ATTRIBUTION_THRESHOLD = 0.5


@dataclass(frozen=True)
class Verification:
    sentences: list[AnswerSentence]
    citations: list[Citation]
    invalid_markers: list[int]

    @property
    def unsupported(self) -> int:
        return sum(1 for s in self.sentences if not s.verified)

    @property
    def has_valid_citation(self) -> bool:
        return any(c.verified for c in self.citations)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _features(text: str) -> set[str]:
    lowered = text.lower()
    if detect_language(text) == "ja":
        chars = "".join(_JA_CHARS.findall(MARKER.sub("", lowered)))
        return {chars[i : i + 2] for i in range(len(chars) - 1)}
    return set(_WORD.findall(MARKER.sub("", lowered)))


def support(sentence: str, passage: str) -> tuple[float, str]:
    """(share of the sentence's features found in the passage's best sentence, that sentence)."""
    claim = _features(sentence)
    if not claim:
        return 0.0, ""
    best, quote = 0.0, ""
    candidates = split_sentences(passage) or [passage]
    window = [" ".join(candidates[i : i + 2]) for i in range(len(candidates))]
    for cand in candidates + window:
        score = len(claim & _features(cand)) / len(claim)
        if score > best or (score == best and quote and len(cand) < len(quote)):
            best, quote = score, cand
    return best, quote


def verify_answer(answer: str, sources: list[Hit]) -> Verification:
    """Check every sentence of ``answer`` against the numbered ``sources`` (1-based)."""
    sentences: list[AnswerSentence] = []
    citations: dict[int, Citation] = {}
    invalid: list[int] = []
    for text in split_sentences(answer):
        markers = [int(n) for m in MARKER.finditer(text) for n in _MARKER_NUMBERS.findall(m.group(0))]
        body = MARKER.sub("", text).strip()
        if not body:
            continue
        valid = [n for n in dict.fromkeys(markers) if 1 <= n <= len(sources)]
        invalid.extend(n for n in markers if n not in valid)
        verified = False
        if valid:
            for n in valid:
                score, quote = support(body, sources[n - 1].text)
                ok = score >= SUPPORT_THRESHOLD
                verified = verified or ok
                _merge(citations, n, sources[n - 1], quote, score, ok)
        elif len(_features(body)) >= 4:
            best_n, best_score, best_quote = 0, 0.0, ""
            for n, hit in enumerate(sources, start=1):
                score, quote = support(body, hit.text)
                if score > best_score:
                    best_n, best_score, best_quote = n, score, quote
            if best_score >= ATTRIBUTION_THRESHOLD:
                valid = [best_n]
                verified = True
                _merge(citations, best_n, sources[best_n - 1], best_quote, best_score, True)
        else:
            verified = True  # a connective fragment ("以下のとおりです。") makes no claim
        sentences.append(AnswerSentence(text=body, markers=valid, verified=verified))
    return Verification(sentences, sorted(citations.values(), key=lambda c: c.n), sorted(set(invalid)))


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
        page=hit.page,
        section=hit.section,
        quote=quote or hit.text[:200],
        version=hit.version,
        title=hit.title,
        verified=ok or bool(current and current.verified),
        support=round(score, 3),
    )
