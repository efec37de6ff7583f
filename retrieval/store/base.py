"""The vector-store interface, payload layout and filter semantics shared by both backends.

Filter semantics (applied inside Qdrant on every search):
- ``access``: a chunk is visible when one of its groups is one of the user's groups or
  the public marker ``*``; only the named ``UNRESTRICTED`` scope (admin-only tools) skips this.
- status: without ``as_of`` only ``active`` versions; with ``as_of`` every version whose
  effective period contains that date and that was not withdrawn.
- ``doc_types`` / ``doc_ids``: restrict to any of the listed values when given.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

import numpy as np

from core.schema import PUBLIC_GROUP, Chunk, Hit, SearchFilter, Unrestricted

DENSE = "dense"
SPARSE = "sparse"
NO_END = 99991231

# Payload keys: defined once, used by both backends, the filters and the payload indexes.
K_CHUNK_ID = "chunk_id"
K_DOC_ID = "doc_id"
K_VERSION = "version"
K_INDEX = "chunk_index"
K_TEXT = "text"
K_SECTION = "section"
K_PAGE_START = "page_start"
K_PAGE_END = "page_end"
K_SOURCE = "source"
K_TITLE = "title"
K_DOC_TYPE = "doc_type"
K_STATUS = "status"
K_FROM = "effective_from"
K_TO = "effective_to"
K_ACCESS = "access"
K_LANG = "lang"
K_OCR = "ocr"
K_PAGE_MARKS = "page_marks"

KEYWORD_FIELDS = (K_DOC_ID, K_DOC_TYPE, K_STATUS, K_ACCESS, K_CHUNK_ID)
INTEGER_FIELDS = (K_VERSION, K_INDEX, K_FROM, K_TO)


@dataclass(frozen=True)
class SparseVec:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class StoredPoint:
    chunk: Chunk
    dense: np.ndarray
    sparse: SparseVec


@dataclass(frozen=True)
class Condition:
    """A backend-neutral payload condition."""

    kind: Literal["any", "eq", "range"]
    key: str
    values: tuple = ()
    gte: int | None = None
    lt: int | None = None


def date_key(value: date | None, default: int) -> int:
    return default if value is None else value.year * 10000 + value.month * 100 + value.day


def filter_conditions(flt: SearchFilter) -> list[Condition]:
    conds: list[Condition] = []
    if not isinstance(flt.access_groups, Unrestricted):
        conds.append(Condition("any", K_ACCESS, tuple(sorted({*flt.access_groups, PUBLIC_GROUP}))))
    if flt.doc_types:
        conds.append(Condition("any", K_DOC_TYPE, tuple(flt.doc_types)))
    if flt.doc_ids:
        conds.append(Condition("any", K_DOC_ID, tuple(flt.doc_ids)))
    if flt.as_of is None:
        conds.append(Condition("eq", K_STATUS, ("active",)))
    else:
        day = date_key(flt.as_of, 0)
        conds.append(Condition("any", K_STATUS, ("active", "superseded")))
        conds.append(Condition("range", K_FROM, lt=day + 1))
        conds.append(Condition("range", K_TO, gte=day + 1))
    return conds


def point_id(chunk_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cqa:{chunk_id}"))


def chunk_payload(chunk: Chunk) -> dict:
    return {
        K_CHUNK_ID: chunk.chunk_id,
        K_DOC_ID: chunk.doc_id,
        K_VERSION: chunk.version,
        K_INDEX: chunk.chunk_index,
        K_TEXT: chunk.text,
        K_SECTION: chunk.section,
        K_PAGE_START: chunk.page_start,
        K_PAGE_END: chunk.page_end,
        K_SOURCE: chunk.source,
        K_TITLE: chunk.title,
        K_DOC_TYPE: chunk.doc_type,
        K_STATUS: chunk.status,
        K_FROM: date_key(chunk.effective_from, 0),
        K_TO: date_key(chunk.effective_to, NO_END),
        K_ACCESS: list(chunk.access),
        K_LANG: chunk.lang,
        K_OCR: chunk.ocr,
        **({K_PAGE_MARKS: [list(m) for m in chunk.page_marks]} if chunk.page_marks else {}),
    }


def hit_from_payload(payload: dict, score: float, dense_score: float | None = None) -> Hit:
    start, end = payload.get(K_PAGE_START), payload.get(K_PAGE_END)
    pages = list(range(start, (end or start) + 1)) if start is not None else []
    return Hit(
        doc_id=payload[K_DOC_ID],
        source=payload[K_SOURCE],
        title=payload[K_TITLE],
        page=start,
        pages=pages,
        section=payload.get(K_SECTION, ""),
        text=payload[K_TEXT],
        score=float(score),
        version=payload.get(K_VERSION, 1),
        chunk_id=payload.get(K_CHUNK_ID, ""),
        chunk_index=payload.get(K_INDEX, 0),
        doc_type=payload.get(K_DOC_TYPE, ""),
        dense_score=dense_score,
        access=list(payload.get(K_ACCESS, ())),
        ocr=bool(payload.get(K_OCR, False)),
        page_marks=[(int(o), int(p)) for o, p in payload.get(K_PAGE_MARKS, ())],
    )


@dataclass(frozen=True)
class ScoredPayload:
    payload: dict
    score: float
    dense_vector: list[float] | None = None


class VectorStore(Protocol):
    def upsert(self, points: list[StoredPoint]) -> None: ...

    def hybrid_search(
        self,
        dense: np.ndarray,
        sparse: SparseVec | None,
        flt: SearchFilter,
        limit: int,
        candidates: int,
        fusion: str = "rrf",
        rrf_k: int = 60,
    ) -> list[ScoredPayload]:
        """Fused dense + sparse search; each result carries its dense vector for scoring."""
        ...

    def leg_search(
        self, leg: str, vector: np.ndarray | SparseVec, flt: SearchFilter, limit: int
    ) -> list[ScoredPayload]:
        """One leg alone (``leg`` is ``DENSE`` or ``SPARSE``), for fusion with weights outside Qdrant."""
        ...

    def set_status(self, doc_id: str, version: int, status: str, effective_to: date | None = None) -> None: ...

    def delete_document(self, doc_id: str, version: int | None = None) -> None: ...

    def chunks_by_index(self, doc_id: str, version: int, indexes: list[int], flt: SearchFilter) -> list[dict]: ...

    def count(self, flt: SearchFilter | None = None) -> int: ...

    def close(self) -> None: ...
