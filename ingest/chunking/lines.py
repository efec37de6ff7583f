"""A document's lines made ready for the walk: page-number lines and running headers/footers dropped,
table-of-contents pages and lines marked, Markdown code fences kept apart, a line holding only a number
joined to the text it numbers, and PDF page breaks marked (a page break ends a line, not a paragraph)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.text import display_width
from ingest.chunking.heading_text import Head
from ingest.chunking.headings import match_heading
from ingest.chunking.headings_ja import RE_EGOV_TOC
from ingest.chunking.markers import RE_MARKER, RE_MARKER_ONLY
from ingest.document import Page, ParsedDocument

RE_PAGE_NUMBER = re.compile(
    r"^(?:[-－–—‐]?\s*[0-9０-９]{1,4}\s*[-－–—‐]?|(?:page|p\.?)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"
    r"|\d{1,4}\s*/\s*\d{1,4}|[ivxlc]{1,6}|[0-9０-９]{1,4}\s*ページ)$",
    re.I,
)
RE_DOT_LEADER = re.compile(r"(?:[.．…‥·・_]\s?){4,}\s*[-－–—]?\s*[0-9０-９ivxlcIVXLC]{0,5}\s*[-－–—]?\s*$")
"""A table-of-contents entry's dots and page number: Scope ........ 12"""
RE_TOC_TRAIL = re.compile(
    r"\S.*?\s[0-9]{1,4}(?:\.[0-9]{1,3})*(?:\s*[-–]\s*[0-9]{1,4}(?:\.[0-9]{1,3})*)?\s*$"
)
RE_TOC_TITLE = re.compile(r"^(?:目[ \u3000]*次|contents|table of contents)$", re.I)


@dataclass
class Line:
    text: str
    page: int | None
    kind: str = "body"  # body | blank | toc | code | skip | pagebreak
    head: Head | None = None


@dataclass
class _PageReader:
    """Turns each page's text into lines; carries what spans pages (an open code fence, headers seen)."""

    fmt: str
    noise: set[str]
    seen_noise: set[str] = field(default_factory=set)
    in_fence: bool = False

    def lines(self, page: Page) -> list[Line]:
        raw = page.text.split("\n")
        nonblank = [i for i, t in enumerate(raw) if t.strip()]
        edge = set(nonblank[:2] + nonblank[-2:])
        page_lines: list[Line] = []
        for i, text in enumerate(raw):
            text = text.strip(" \t\u3000\r").replace("\t", " ")
            kind = self._kind(text, i in edge)
            if kind is not None:
                page_lines.append(Line(text, page.number, kind))
        return page_lines

    def _kind(self, text: str, at_edge: bool) -> str | None:
        """The line's kind, or None when it is page furniture (a page number, a running header)."""
        if not text:
            return "blank"
        if self.fmt == "markdown" and text.startswith(("```", "~~~")):
            self.in_fence = not self.in_fence
            return "code"
        if self.in_fence:
            return "code"
        if self.fmt == "pdf" and RE_PAGE_NUMBER.match(text):
            return None
        if at_edge and self.noise:
            key = _noise_key(text)
            if key in self.noise:
                if key not in self.seen_noise and match_heading(text, "pdf") is not None:
                    self.seen_noise.add(key)  # a running header repeating a heading: keep the heading itself
                else:
                    return None
        return "body"


def prepare_lines(doc: ParsedDocument) -> list[Line]:
    """Every line of the document, each with its page and kind."""
    is_pdf = doc.format == "pdf"
    pages = [p for p in doc.pages if p.text and p.text.strip()]
    reader = _PageReader(doc.format, _running_lines(pages) if is_pdf else set())
    lines: list[Line] = []
    for page in pages:
        page_lines = reader.lines(page)
        if is_pdf:  # blank lines at a page's edges are layout, not paragraph breaks
            while page_lines and page_lines[0].kind == "blank":
                page_lines.pop(0)
            while page_lines and page_lines[-1].kind == "blank":
                page_lines.pop()
        if is_pdf and _is_toc_page(page_lines, lines):
            for ln in page_lines:
                if ln.kind == "body":
                    ln.kind = "toc"
        lines.extend(page_lines)
        if is_pdf:
            lines.append(Line("", page.number, "pagebreak"))  # a page break ends a line, not a paragraph
    _merge_marker_only(lines)
    for ln in lines:
        if ln.kind == "body" and (
            RE_DOT_LEADER.search(ln.text) or RE_TOC_TITLE.match(ln.text) or RE_EGOV_TOC.match(ln.text)
        ):
            ln.kind = "toc"
    return lines


def _noise_key(text: str) -> str:
    """Digits are ignored (page counters), except in heading-like lines: "第1章" and "第2章" differ."""
    compact = re.sub(r"\s+", "", text)
    if match_heading(text.strip(), "pdf") is not None:
        return compact
    return re.sub(r"[0-9０-９]+", "#", compact)


def _running_lines(pages: list[Page]) -> set[str]:
    """Header/footer lines repeated on many pages (digits ignored)."""
    if len(pages) < 4:
        return set()
    counts: dict[str, int] = {}
    for page in pages:
        nonblank = [t.strip() for t in page.text.split("\n") if t.strip()]
        for key in {_noise_key(t) for t in nonblank[:2] + nonblank[-2:]}:
            counts[key] = counts.get(key, 0) + 1
    threshold = max(3, len(pages) // 2)
    return {k for k, n in counts.items() if n >= threshold and display_width(k) <= 60}


def _is_toc_page(page_lines: list[Line], previous: list[Line]) -> bool:
    body = [ln.text for ln in page_lines if ln.kind == "body"]
    if len(body) < 5:
        return False
    leaders = sum(1 for t in body if RE_DOT_LEADER.search(t))
    trailing = sum(1 for t in body if RE_TOC_TRAIL.match(t) or RE_DOT_LEADER.search(t))
    titled = any(RE_TOC_TITLE.match(t) for t in body[:3])
    prev_toc = any(ln.kind == "toc" for ln in previous[-5:])
    if leaders >= 3 and leaders >= 0.3 * len(body):
        return True
    return (titled or prev_toc) and trailing >= 0.4 * len(body)


def _merge_marker_only(lines: list[Line]) -> None:
    """A line holding only a number ("２", "一", "第一条", "（１）") belongs to the next text line."""
    for i, ln in enumerate(lines):
        if ln.kind != "body" or not RE_MARKER_ONLY.match(ln.text):
            continue
        j = i + 1
        while j < len(lines) and lines[j].kind == "blank" and j - i <= 3:
            j += 1
        if j < len(lines) and lines[j].kind == "body" and not RE_MARKER.match(lines[j].text):
            lines[j].text = ln.text + "\u3000" + lines[j].text
            lines[j].page = ln.page if ln.page is not None else lines[j].page
            ln.kind = "skip"
