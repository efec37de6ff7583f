"""When does a retrieved chunk find a gold passage? The rule used for ObliQA in the retrieval
harness and for test cases that give reference passages instead of gold pages (docs/retrieval.md)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_WORD = re.compile(r"\w+")
SHINGLE = 5
"""Word n-gram length used to decide which words of one text also occur, in order, in the other."""
PASSAGE_COVERED = 0.5
CHUNK_INSIDE = 0.8


def normalise_text(text: str) -> str:
    """NFKC, lower case, format characters (e.g. U+200E) dropped, every whitespace run one space."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    return _WORD.findall(normalise_text(text))


def _shingles(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def coverage(inner: list[str], outer: list[str], n: int = SHINGLE) -> float:
    """Fraction of ``inner``'s words that lie in a word n-gram also found in ``outer``
    (n shrinks to ``len(inner)`` for very short texts)."""
    if not inner or not outer:
        return 0.0
    n = max(1, min(n, len(inner)))
    grams = _shingles(outer, n)
    covered = [False] * len(inner)
    for i in range(len(inner) - n + 1):
        if tuple(inner[i : i + n]) in grams:
            for j in range(i, i + n):
                covered[j] = True
    return sum(covered) / len(inner)


@dataclass
class GoldPassage:
    key: str
    text: str
    norm: str = field(init=False)
    tokens: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.norm = normalise_text(self.text)
        self.tokens = _WORD.findall(self.norm)


def chunk_hits_passage(chunk_text: str, passage: str | GoldPassage, chunk_tokens: list[str] | None = None) -> bool:
    """Whether a retrieved chunk counts as finding a gold passage. It does when

    1. the passage's text, whitespace-normalised (:func:`normalise_text`), is contained in the chunk's; or
    2. at least 50% of the passage's words are covered by word 5-grams that also occur in the chunk
       (the passage was split across chunks, or reformatted, and this chunk holds most of it); or
    3. the passage is longer than the chunk and at least 80% of the chunk's words are covered by
       word 5-grams of the passage (the chunk is a piece of a long gold passage).
    """
    gold = passage if isinstance(passage, GoldPassage) else GoldPassage("", passage)
    if not gold.tokens:
        return False
    norm = normalise_text(chunk_text)
    if gold.norm and gold.norm in norm:
        return True
    tokens = chunk_tokens if chunk_tokens is not None else _WORD.findall(norm)
    if coverage(gold.tokens, tokens) >= PASSAGE_COVERED:
        return True
    return len(gold.tokens) > len(tokens) and coverage(tokens, gold.tokens) >= CHUNK_INSIDE
