"""Sparse BM25 vectors (IDF applied by Qdrant) with Japanese-aware segmentation.

``sudachi``: SudachiPy morphological analysis (dictionary shipped on PyPI), content words
in normalised form, then Qdrant's BM25 term weighting over those tokens.
``edge-multilingual``: Qdrant's own BM25 with its multilingual tokenizer.
"""

from __future__ import annotations

import threading
from functools import cached_property

import qdrant_edge as q
from sudachipy import Dictionary, SplitMode

from retrieval.store.base import SparseVec

_SKIP_POS = {"助詞", "助動詞", "補助記号", "空白", "記号"}


class SparseEncoder:
    def __init__(self, tokenizer: str = "sudachi") -> None:
        self.tokenizer = tokenizer
        self._lock = threading.Lock()

    @cached_property
    def _bm25(self):
        if self.tokenizer == "sudachi":
            config = q.Bm25Config(tokenizer=q.TokenizerType.Whitespace, language="english")
        else:
            config = q.Bm25Config(tokenizer=q.TokenizerType.Multilingual, language="english")
        return q.Bm25(config)

    @cached_property
    def _sudachi(self):
        return Dictionary().tokenizer(mode=SplitMode.B)

    def terms(self, text: str) -> str:
        """The text as the whitespace-separated terms BM25 sees."""
        if self.tokenizer != "sudachi":
            return text
        out = []
        with self._lock:
            morphemes = self._sudachi.tokenize(text[:15000])
            for m in morphemes:
                if m.part_of_speech()[0] in _SKIP_POS:
                    continue
                term = m.normalized_form().strip().lower()
                if term:
                    out.append(term)
        return " ".join(out)

    def embed_document(self, text: str) -> SparseVec:
        vec = self._bm25.embed_document(self.terms(text))
        return SparseVec(list(vec.indices), list(vec.values))

    def embed_query(self, text: str) -> SparseVec:
        vec = self._bm25.embed_query(self.terms(text))
        return SparseVec(list(vec.indices), list(vec.values))
