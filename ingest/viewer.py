"""What the source panel shows of a cited document: the page of a PDF, rendered with the passage marked, or the
section around a passage of any other format. Every call takes the reader's scope and returns None for a
document outside it, as the store's filter would (fail closed: no scope, no call)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.schema import Hit, SearchFilter
from ingest.originals import Originals
from ingest.page_view import PageImage, render_page
from ingest.registry import DocumentVersion, Registry
from retrieval.store.base import VectorStore, hit_from_payload

SECTION_RADIUS = 4
"""Chunks read on each side of a passage to show its section (only those of the same section are kept)."""


@dataclass(frozen=True)
class SectionText:
    """The text of a passage's section as stored, in document order, and the passage's place in it."""

    text: str
    chunks: int
    """How many chunks of the section it shows (1: the passage alone)."""


class SourceViewer:
    def __init__(self, registry: Registry, originals: Originals, store: VectorStore) -> None:
        self.registry = registry
        self.originals = originals
        self.store = store

    def readable(self, doc_id: str, version: int, flt: SearchFilter) -> DocumentVersion | None:
        """The document version when ``flt``'s reader may read it (None: unknown or outside the scope)."""
        record = self.registry.get(doc_id, version)
        return record if record is not None and flt.can_read(record.access) else None

    def documents(self, flt: SearchFilter) -> list[DocumentVersion]:
        """The documents answers for ``flt``'s reader draw on: the active versions the reader may read."""
        return sorted((d for d in self.registry.active() if flt.can_read(d.access)), key=lambda d: d.title)

    def pdf_path(self, doc_id: str, version: int, flt: SearchFilter) -> Path | None:
        record = self.readable(doc_id, version, flt)
        return None if record is None else self.originals.pdf_path(record.sha256, record.source)

    def page_image(self, doc_id: str, version: int, page: int, flt: SearchFilter, quote: str = "",
                   scale: float = 1.5) -> PageImage | None:
        """Page ``page`` of a readable PDF version with ``quote`` marked (None: not readable, not a kept PDF,
        or no such page)."""
        path = self.pdf_path(doc_id, version, flt)
        return None if path is None else render_page(path, page, quote, scale)

    def section(self, hit: Hit, flt: SearchFilter) -> SectionText | None:
        """The stored text around ``hit`` that belongs to its section, when its document is readable and the
        version is still in the index (None otherwise: the caller shows the passage as it was cited)."""
        if self.readable(hit.doc_id, hit.version, flt) is None:
            return None
        first = max(0, hit.chunk_index - SECTION_RADIUS)
        indexes = list(range(first, hit.chunk_index + SECTION_RADIUS + 1))
        found = {h.chunk_index: h for h in (hit_from_payload(p, 0.0) for p in
                                            self.store.chunks_by_index(hit.doc_id, hit.version, indexes, flt))}
        if hit.chunk_index not in found:
            return None
        start = end = hit.chunk_index
        while start - 1 in found and found[start - 1].section == hit.section:
            start -= 1
        while end + 1 in found and found[end + 1].section == hit.section:
            end += 1
        return SectionText("\n".join(found[i].text for i in range(start, end + 1)), end - start + 1)
