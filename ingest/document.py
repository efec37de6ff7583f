"""What a reader produces and what the chunker makes of it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Page:
    """Text of one page (``number`` is 1-based) or of a whole page-less document (None)."""

    number: int | None
    text: str


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
