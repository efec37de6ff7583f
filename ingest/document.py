"""What a reader produces and what the chunker makes of it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Page:
    """Text of one page (``number`` is 1-based) or of a whole page-less document (None)."""

    number: int | None
    text: str
    ocr: bool = False
    """The text was read from the page's image by OCR (the page had no text layer)."""


@dataclass
class ParsedDocument:
    format: str
    """pdf | html | markdown | text | docx | egov-xml"""
    title: str
    pages: list[Page]
    warnings: list[str] = field(default_factory=list)
    page_count: int = 0
    """Pages in the source (PDF); pages without a text layer are counted but carry no text."""


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    section: str
    """Section path, outermost first, joined with " > "."""
    page_start: int | None
    page_end: int | None
    ocr: bool = False
    """Some of the text was read by OCR from a scanned page."""
    page_marks: tuple[tuple[int, int], ...] = ()
    """Where each page starts in ``text`` (offset, page), for a chunk that spans pages: a quote is cited on its
    own page, not the chunk's first."""


def mark_ocr(doc: ParsedDocument, drafts: list[ChunkDraft]) -> list[ChunkDraft]:
    """``drafts`` of ``doc``, those with text from a page read by OCR marked ``ocr``."""
    ocr_pages = {p.number for p in doc.pages if p.ocr}
    return [
        replace(d, ocr=True)
        if d.page_start is not None and ocr_pages.intersection(range(d.page_start, (d.page_end or d.page_start) + 1))
        else d
        for d in drafts
    ]
