"""Experiments of the retrieval harness: candidate changes to product code (a sparse encoder, a chunker, typed
titles), measured on the labelled sets before anyone makes them. Each is part of the index key."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

from core.cli import UsageError
from ingest.chunking.sentence_splitter import sentence_splitter_chunks
from ingest.service import IngestOptions, collect_files
from retrieval.sparse import _SKIP_POS, SparseEncoder


class LatinSurfaceSparse(SparseEncoder):
    """Sudachi BM25 terms, but Latin-script words keep their own (lower-cased) spelling.

    The product's Sudachi path uses ``normalized_form()``, which turns English dictionary words into
    katakana ("client" -> クライアント, "the" -> ザ, "rule" -> ルール): English stop words then count
    as terms and the English stemmer no longer joins "rule"/"rules"."""

    def terms(self, text: str) -> str:
        if self.tokenizer != "sudachi":
            return text
        out = []
        with self._lock:
            for m in self._sudachi.tokenize(text[:15000]):
                if m.part_of_speech()[0] in _SKIP_POS:
                    continue
                surface = m.surface()
                term = (surface if surface.isascii() else m.normalized_form()).strip().lower()
                if term:
                    out.append(term)
        return " ".join(out)


LLAMAINDEX_CHUNKS = {"chunker": "sentence-splitter", "embed_title_prefix": False}
"""The ingest benchmark baseline's chunking (bench/ingest.py), chosen through the ingest settings."""


EXPERIMENTS = {
    "latin-surface": "Sudachi BM25 terms keep Latin-script words as written (see LatinSurfaceSparse)",
    "llamaindex-chunks": "the ingest benchmark baseline's chunking: SentenceSplitter(512, 50), no title prefix",
    "typed-titles": "ObliQA: each file ingested with the title and doc key an admin would have to type",
}


def typed_titles(service, files: list[Path], typed_options) -> list:
    """Each file ingested alone with the options an admin would type (``--title``, ``--doc-key``)."""
    return [item for f in collect_files(files)
            for item in service.ingest([f], IngestOptions(**typed_options(f))).documents]


EXPERIMENT_CODE = {"latin-surface": LatinSurfaceSparse, "llamaindex-chunks": sentence_splitter_chunks,
                   "typed-titles": typed_titles}


def code_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:12]


def experiment_settings(overrides: dict, experiments: tuple[str, ...]) -> dict:
    """``overrides`` with the settings the experiments choose (part of the index key like any setting)."""
    if "llamaindex-chunks" not in experiments:
        return overrides
    return {**overrides, "ingest": {**overrides.get("ingest", {}), **LLAMAINDEX_CHUNKS}}


def experiment_components(settings, experiments: tuple[str, ...]) -> dict:
    """The components the experiments replace, as the container's keyword arguments."""
    components = {}
    for name in experiments:
        if name == "latin-surface":
            components["sparse"] = LatinSurfaceSparse(settings.retrieval.sparse_tokenizer)
        elif name not in EXPERIMENTS:
            raise UsageError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    return components

