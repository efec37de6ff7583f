"""Which logical document a file is: the rules that decide "new edition" against "new document".

A file is a new edition of a stored document only on strong evidence: the same path ingested again
(an upload under the same name lands on the same path), or an explicit ``--doc-key``. Equal titles
never merge documents: extracted titles are neither reliable ("1. INTRODUCTION") nor unique (six
``content.pdf`` files, three JMLSG parts). A new document whose title or file name equals a stored
one's and whose text largely overlaps it is *suggested* as an edition; an admin confirms it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SHINGLE_CHARS = 12
_SPACE = re.compile(r"\s+")


def normalise_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[\s_\-]+", " ", text).strip()


def path_key(source_path: str) -> str:
    """The document key of a file that was given no ``--doc-key``: where it was read from."""
    return "path:" + source_path


def new_doc_id(key: str) -> str:
    return "d" + hashlib.sha256(key.encode()).hexdigest()[:15]


def shingles(texts: list[str]) -> set[str]:
    """Character 12-grams of the texts (NFKC, whitespace removed): language-neutral, so
    Japanese and English editions compare alike, and re-wrapped lines do not count as changes."""
    out: set[str] = set()
    for text in texts:
        flat = _SPACE.sub("", unicodedata.normalize("NFKC", text).lower())
        out.update(flat[i : i + _SHINGLE_CHARS] for i in range(0, max(1, len(flat) - _SHINGLE_CHARS + 1)))
    return out


def text_overlap(a: set[str], b: set[str]) -> float:
    """Shared text over the larger document's text (0-1): a short file contained in a long one is no edition."""
    if not a or not b:
        return 0.0
    return len(a & b) / max(len(a), len(b))
