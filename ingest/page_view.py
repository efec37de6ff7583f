"""One page of a kept PDF as an image, with a cited passage marked where its characters stand on the page.

PDFium (pypdfium2) renders the page and gives every character's box; the passage is found in the page's own
text (compared without spaces and in NFKC form, since the stored chunk text came from another extractor), so a
quote that only partly matches is marked where it matches. A passage that cannot be placed leaves the page
without marks rather than no page. The printed page number ("- 15 -" on PDF page 17) comes from the PDF's page
labels, or else from a header or footer line that is only a number."""

from __future__ import annotations

import difflib
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ingest.pdfium_lock import PDFIUM

MIN_SCALE, MAX_SCALE = 0.5, 4.0
"""Rendering scale (1.0 = 72 dpi): bounds keep a bitmap small enough for a browser and for memory."""
_MIN_BLOCK = 6
"""Characters a partial match must share with the quote in one run to be marked (shorter runs are noise)."""
_MARK_FILL = (255, 214, 0, 96)
_MARK_EDGE = (230, 120, 0, 255)
_PRINTED_NUMBER = re.compile(
    r"^(?:[-－‐―—–]\s*)?(?:p\.?\s*|page\s+|[（(])?([0-9０-９]{1,4}|[ivxlcdm]{1,7})(?:\s*[)）])?"
    r"(?:\s*/\s*[0-9０-９]{1,4})?(?:\s*[-－‐―—–])?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PageImage:
    png: bytes
    page: int
    """The PDF page (1-based), the number citations give."""
    page_count: int
    label: str
    """The number printed on the page (or the PDF's page label); "" when the page shows none."""
    marked: bool
    """Whether the passage was found and marked on this page."""
    width: int
    height: int
    mark_top: float | None = None
    """Where the first mark starts, as a share of the page's height (to scroll it into view)."""


def render_page(path: Path, page: int, quote: str = "", scale: float = 1.5) -> PageImage | None:
    """Page ``page`` of the PDF at ``path`` as a PNG with ``quote`` marked; None when there is no such page."""
    import pypdfium2 as pdfium

    scale = min(MAX_SCALE, max(MIN_SCALE, scale))
    with PDFIUM:
        return _render(pdfium.PdfDocument(path, password=""), page, quote, scale)  # "": AES PDFs, empty password


def _render(pdf, page: int, quote: str, scale: float) -> PageImage | None:
    try:
        if not 1 <= page <= len(pdf):
            return None
        pdf_page = pdf[page - 1]
        textpage = pdf_page.get_textpage()
        chars = page_chars(textpage)
        image = pdf_page.render(scale=scale, may_draw_forms=False).to_pil().convert("RGBA")
        boxes = _line_boxes(textpage, quote_span(chars, quote)) if quote and pdf_page.get_rotation() == 0 else []
        mark_top = None
        if boxes:
            left, _, _, top = pdf_page.get_cropbox()
            pixels = [_to_pixels(b, left, top, scale) for b in boxes]
            image = _mark(image, pixels)
            mark_top = max(0.0, min(p[1] for p in pixels) / image.height)
        label = pdf.get_page_label(page - 1) or printed_number(chars)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG", optimize=False)
        return PageImage(buffer.getvalue(), page, len(pdf), label, bool(boxes), image.width, image.height, mark_top)
    finally:
        pdf.close()


def page_chars(textpage) -> str:
    """The page's characters, one per PDFium character index (so a position in it is a character's index)."""
    import pypdfium2.raw as pdfium_c

    return "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 0xFFFD) for i in range(textpage.count_chars()))


def _folded(text: str) -> tuple[str, list[int]]:
    """``text`` without white space, each character in NFKC form and lower case, with the index in ``text``
    that each folded character came from."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for f in unicodedata.normalize("NFKC", ch).lower():
            if not f.isspace() and f not in "\x00\ufffe\uffff":
                out.append(f)
                origin.append(i)
    return "".join(out), origin


def quote_span(chars: str, quote: str) -> list[int]:
    """Indexes of the page characters that carry ``quote``: the whole quote when it stands on the page as
    written, else the runs of at least a few characters it shares with the page (a quote that crosses a
    page break, or text the two extractors read differently); [] when nothing substantial matches."""
    page, origin = _folded(chars)
    wanted, _ = _folded(quote)
    if not wanted or not page:
        return []
    at = page.find(wanted)
    if at >= 0:
        return sorted({origin[i] for i in range(at, at + len(wanted))})
    matcher = difflib.SequenceMatcher(None, page, wanted, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size >= min(_MIN_BLOCK, len(wanted))]
    if sum(b.size for b in blocks) < len(wanted) / 3:
        return []  # a few shared words are not the passage
    return sorted({origin[i] for b in blocks for i in range(b.a, b.a + b.size)})


def _line_boxes(textpage, indexes: list[int]) -> list[tuple[float, float, float, float]]:
    """The characters' boxes (PDF points: left, bottom, right, top) joined into one box per line run."""
    boxes: list[list[float]] = []
    last = -2
    for i in indexes:
        left, bottom, right, top = textpage.get_charbox(i, loose=True)
        if right <= left or top <= bottom:
            last = i
            continue  # a generated line break or space has no box
        current = boxes[-1] if boxes else None
        same_line = current is not None and i - last <= 2 and min(top, current[3]) - max(bottom, current[1]) > 0
        if same_line:
            current[0], current[1] = min(current[0], left), min(current[1], bottom)
            current[2], current[3] = max(current[2], right), max(current[3], top)
        else:
            boxes.append([left, bottom, right, top])
        last = i
    return [tuple(b) for b in boxes]  # type: ignore[misc]


def _to_pixels(box, crop_left: float, crop_top: float, scale: float) -> tuple[int, int, int, int]:
    left, bottom, right, top = box
    return (round((left - crop_left) * scale) - 2, round((crop_top - top) * scale) - 2,
            round((right - crop_left) * scale) + 2, round((crop_top - bottom) * scale) + 2)


def _mark(image, boxes):
    from PIL import Image, ImageDraw

    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for box in boxes:
        draw.rectangle(box, fill=_MARK_FILL, outline=_MARK_EDGE, width=2)
    return Image.alpha_composite(image, overlay)


def printed_number(chars: str) -> str:
    """The page number printed in the page's header or footer: its first or last two lines, when one of them
    is only a number ("- 15 -", "15", "(iii)", "p. 15", "15 / 35"); "" when none is."""
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", chars) if ln.strip()]
    for line in [*lines[:2], *reversed(lines[-2:])]:
        match = _PRINTED_NUMBER.match(line)
        if match:
            return unicodedata.normalize("NFKC", match.group(1))
    return ""
