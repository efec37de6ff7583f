"""PDF: the text of every page (PDFium, or pypdf for a file PDFium cannot open: ``pdf_engines``), a title from
the metadata or the first page, and warnings for pages without a text layer, damaged pages and active content.
Pages without usable text go to ``read_pages_without_text``, the place for OCR."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import IngestError
from core.text import CJK, HIRAGANA_RE
from ingest.document import Page, ParsedDocument
from ingest.ocr import SKIPPED as OCR_SKIPPED
from ingest.pdfium_lock import PDFIUM
from ingest.readers.cleanup import clean_lines, file_title, meaningful_title, short_title
from ingest.readers.pdf_engines import (
    PdfiumText,
    PdfText,
    PypdfText,
    open_pdf_text,
    open_pypdf,
    quiet_pypdf,
)

if TYPE_CHECKING:
    import pypdf

    from ingest.ocr import PageOcr

log = logging.getLogger(__name__)


def _pdf_title_from_text(text: str) -> str:
    lines = [ln.strip(" \u3000") for ln in text.split("\n")]
    for i, line in enumerate(lines):
        if not line or re.fullmatch(r"[-－–—\s]*[0-9０-９ivxIVX]{1,4}[-－–—\s]*", line):
            continue
        title = line
        # A Japanese title wrapped onto a second line that starts with a particle (…対策\nに関する…).
        if (
            i + 1 < len(lines)
            and HIRAGANA_RE.match(lines[i + 1] or "")
            and re.search(rf"[{CJK}]$", line)
        ):
            title += lines[i + 1]
        return short_title(title)
    return ""


def _ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:  # type: ignore[list-item]
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


def _active_content(reader: pypdf.PdfReader) -> list[str]:
    """What a PDF carries besides text that a viewer might run or unpack: JavaScript, actions run on opening,
    embedded files. The reader never runs or extracts them; they are named in a warning."""
    found: list[str] = []
    try:
        root = reader.trailer["/Root"]
        names = root.get("/Names")
        names = names.get_object() if names is not None else {}
        if "/JavaScript" in names or "/AA" in root:
            found.append("JavaScript")
        if "/OpenAction" in root:
            action = root["/OpenAction"].get_object()
            if hasattr(action, "get") and action.get("/S") in ("/JavaScript", "/Launch", "/URI", "/SubmitForm"):
                found.append(f"an action run on opening ({str(action.get('/S')).lstrip('/')})")
        attachments = len(reader.attachments)
        if attachments:
            found.append(f"{attachments} embedded file(s)")
    except Exception:  # noqa: BLE001 - a damaged catalogue: the text may still read
        log.info("pdf: its catalogue could not be inspected for active content")
    return found


def _catalogue(data: bytes, pdf: PdfText, path: Path) -> tuple[list[str], str]:
    """The active content and the meaningful metadata title. Read with pypdf whatever the text engine: PDFium's
    API does not show a document's opening action (pypdf's look at the catalogue costs about 0.3 ms a page)."""
    try:
        reader = pdf.reader if isinstance(pdf, PypdfText) else open_pypdf(data)
    except IngestError as exc:
        log.info("pdf %s: its catalogue could not be inspected for active content (%s)", path.name, exc)
        return [], meaningful_title(pdf.title()) if isinstance(pdf, PdfiumText) else ""
    with quiet_pypdf():
        active = _active_content(reader)
        try:
            meta = reader.metadata
            title = meaningful_title(meta.title if meta is not None else None)
        except Exception:  # noqa: BLE001 - broken metadata is not worth failing for
            title = ""
    return active, title


def has_usable_text(text: str) -> bool:
    """Whether a page's cleaned text is a usable text layer (today: any text at all)."""
    return bool(text.strip())


def read_pages_without_text(
    data: bytes, numbers: list[int], path: Path, ocr: PageOcr | None
) -> tuple[dict[int, Page], list[str]]:
    """Pages read by OCR where the text layer is missing or unusable (``numbers``, 1-based), and OCR's warnings
    (why it was skipped, pages it found no text on). Without ``ocr`` none is: ``read_pdf`` warns they need OCR."""
    if ocr is None:
        return {}, []
    result = ocr.read(data, numbers)
    pages: dict[int, Page] = {}
    for page in result.pages:
        text = clean_lines(page.text)
        if has_usable_text(text):
            pages[page.number] = Page(number=page.number, text=text, ocr=True)
    return pages, result.warnings


def _pages(raw_pages: list[str | None]) -> tuple[list[Page], list[int], list[int]]:
    """The cleaned pages, the numbers of those without usable text, and those whose extraction failed."""
    pages: list[Page] = []
    empty: list[int] = []
    failed: list[int] = []
    for number, raw in enumerate(raw_pages, start=1):
        if raw is None:
            failed.append(number)
        text = clean_lines(raw or "")
        if not has_usable_text(text) and raw is not None:
            empty.append(number)
        pages.append(Page(number=number, text=text if has_usable_text(text) else ""))
    return pages, empty, failed


def _warnings(empty: list[int], failed: list[int], active: list[str]) -> list[str]:
    warnings: list[str] = []
    if len(empty) <= 10:
        warnings += [f"page {n} has no text layer (needs OCR)" for n in empty]
    else:
        warnings.append(f"{len(empty)} pages have no text layer (needs OCR): pages {_ranges(empty)}")
    if failed:
        warnings.append(f"text of page(s) {_ranges(failed)} could not be extracted (damaged page content)")
    if active:
        warnings.append(f"PDF contains {' and '.join(active)}: only its text was read (nothing was run or unpacked)")
    return warnings


def _no_text_key(ocr_warnings: list[str]) -> str:
    """The message key of a PDF without text: not read by OCR (none given), OCR unavailable, or OCR read nothing."""
    if not ocr_warnings:
        return "ingest_pdf_no_text"
    if any(w.startswith(OCR_SKIPPED) for w in ocr_warnings):
        return "ingest_pdf_no_text_no_ocr"
    return "ingest_pdf_no_text_after_ocr"


def read_pdf(data: bytes, path: Path, ocr: PageOcr | None = None) -> ParsedDocument:
    with PDFIUM:
        pdf = open_pdf_text(data, path.name)
        try:
            raw_pages = pdf.page_texts(1, pdf.page_count)
            active, title_meta = _catalogue(data, pdf, path)
        finally:
            pdf.close()
    page_count = pdf.page_count
    pages, empty, failed = _pages(raw_pages)
    if failed:  # the per-page errors are logged where the pages were read, without the file's name
        log.info("pdf %s: text of page(s) %s could not be extracted", path.name, _ranges(failed))
    ocr_warnings: list[str] = []
    if empty:
        recovered, ocr_warnings = read_pages_without_text(data, empty, path, ocr)
        pages = [recovered.get(page.number or 0, page) for page in pages]
        empty = [n for n in empty if n not in recovered]

    if len(empty) + len(failed) == page_count:
        if failed and not empty:
            raise IngestError("PDF is damaged: no page's text could be extracted", key="ingest_pdf_no_page_text")
        raise IngestError("; ".join(["no extractable text (scanned PDF? needs OCR)", *ocr_warnings]),
                          key=_no_text_key(ocr_warnings))
    first_text = next((p.text for p in pages if p.text), "")
    title = title_meta or _pdf_title_from_text(pages[0].text or first_text) or file_title(path)
    return ParsedDocument(format="pdf", title=title, pages=pages,
                          warnings=_warnings(empty, failed, active) + ocr_warnings, page_count=page_count)
