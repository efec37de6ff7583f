"""Page-level retrieval quality on question sets with gold pages, and the floor to beat.

A question's gold is a list of ``GoldSource`` (a file given as a path relative to the corpus, with pages, or
for a page-less law text the articles, e.g. ``第六条``). The retriever's ranked chunks are turned into a
ranked list of distinct *units* (a PDF page, or a page-less document's section) in order of first
appearance; **page-hit@k** is whether a gold unit is among the first k units, **MRR@10** uses the first
gold unit's rank. The floor is plain BM25 (bm25s, the same Sudachi terms as the product's sparse leg)
over whole pages and whole sections of the same documents, run in the same process on the same queries.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eval.measures import score_ranking
from eval.testset import GoldSource, TestCase, load_testset
from ingest.readers import read_document

PAGE_KS = (1, 5, 10)
_ARTICLE = re.compile(r"第[一二三四五六七八九十百千〇0-9０-９]+条(?:の[一二三四五六七八九十0-9０-９]+)*")


@dataclass(frozen=True)
class Unit:
    """What a page-level hit is counted on: a page of a document, or a section of a page-less one."""

    source_path: str
    page: int | None
    section: str = ""


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("\\", "/")


def article_of(section: str) -> str:
    """The innermost article label of a section path ("第二章 > 第六条（確認記録）" -> "第六条")."""
    found = _ARTICLE.findall(_norm(section))
    return found[-1] if found else ""


def unit_matches(unit: Unit, gold: GoldSource) -> bool:
    if not _norm(unit.source_path).endswith("/" + _norm(gold.source).lstrip("/")):
        return False
    if gold.sections:
        return article_of(unit.section) in {_norm(s) for s in gold.sections}
    return not gold.pages or unit.page in gold.pages


def ranked_units(hits: Iterable, source_paths: dict[str, str]) -> list[Unit]:
    """Distinct units in order of first appearance; a chunk spanning pages contributes each page."""
    out: list[Unit] = []
    seen: set[Unit] = set()
    for h in hits:
        path = source_paths.get(h.doc_id, h.source)
        units = [Unit(path, p) for p in h.pages] if h.pages else [Unit(path, None, article_of(h.section))]
        for u in units:
            if u not in seen:
                seen.add(u)
                out.append(u)
    return out


def score_units(units: list[Unit], gold: list[GoldSource], ks: tuple[int, ...] = PAGE_KS) -> dict[str, float]:
    """page_hit@k is Success@k and mrr@10 is RR@10 (``eval.measures``) over the ranked units, a unit being
    relevant when it matches a gold source (:func:`unit_matches`)."""
    top = units[: max(ks)]
    relevant = [str(i) for i, u in enumerate(top) if any(unit_matches(u, g) for g in gold)]
    scores = score_ranking([str(i) for i in range(len(top))], relevant, [*(f"hit@{k}" for k in ks), "mrr@10"])
    return {f"page_hit@{k}": scores[f"hit@{k}"] for k in ks} | {"mrr@10": scores["mrr@10"]}


def load_cases(paths: Iterable[Path]) -> list[TestCase]:
    """Answerable single-turn cases with gold sources, from JSONL test sets."""
    cases = []
    for path in paths:
        cases.extend(c for c in load_testset(path) if c.answerable and c.gold_sources and not c.history)
    return cases


# -- the floor: BM25 over whole pages and sections -------------------------------------------------------


@dataclass(frozen=True)
class FloorUnit:
    unit: Unit
    text: str


def floor_units(source_paths: Iterable[str], max_bytes: int, chunk_sections) -> list[FloorUnit]:
    """Whole pages of paged documents; for page-less ones, each section's text (as the product's chunker
    finds the sections), read again from the files with the product's own readers."""
    units: list[FloorUnit] = []
    for path in sorted(set(source_paths)):
        doc = read_document(Path(path), max_bytes=max_bytes)
        if any(p.number is not None for p in doc.pages):
            units.extend(FloorUnit(Unit(path, p.number), p.text) for p in doc.pages if p.text.strip())
            continue
        sections: dict[str, list[str]] = {}
        for draft in chunk_sections(doc):
            sections.setdefault(article_of(draft.section) or draft.section, []).append(draft.text)
        units.extend(FloorUnit(Unit(path, None, key), "\n".join(texts)) for key, texts in sections.items())
    return units


class Bm25Floor:
    """bm25s (Lucene's BM25 variant, k1 1.5, b 0.75) over the units, tokenised as the product's sparse leg."""

    def __init__(self, units: list[FloorUnit], terms) -> None:
        import bm25s  # 1 s to import (scipy): only when the floor is computed

        self.units = units
        self._terms = terms
        self._bm25 = bm25s.BM25()
        self._bm25.index([self._tokens(u.text) for u in units], show_progress=False)

    def _tokens(self, text: str) -> list[str]:
        return self._terms(text).split() or ["\u0000"]

    def search(self, query: str, k: int = 10) -> list[Unit]:
        ids, _ = self._bm25.retrieve([self._tokens(query)], k=min(k, len(self.units)), show_progress=False)
        return [self.units[int(i)].unit for i in ids[0]]


def save_units(units: list[FloorUnit], path: Path) -> None:
    rows = [{"source_path": u.unit.source_path, "page": u.unit.page, "section": u.unit.section, "text": u.text}
            for u in units]
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def load_units(path: Path) -> list[FloorUnit]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [FloorUnit(Unit(r["source_path"], r["page"], r["section"]), r["text"]) for r in rows]
