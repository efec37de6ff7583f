"""Word (.docx) documents via python-docx: paragraphs, heading styles as Markdown "#" lines, tables as
"a | b" lines; zip bombs and DTDs refused before python-docx unpacks the package."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path

from core.errors import IngestError
from ingest.document import Page, ParsedDocument
from ingest.readers.cleanup import clean_inline, clean_lines, file_title, meaningful_title, short_title, title_line

_MB = 1024 * 1024

_HEADING_STYLE = re.compile(r"^(?:heading|見出し)\s*(\d)$", re.I)


def _docx_blocks(document) -> Iterable[object]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            yield Paragraph(child, document)
        elif tag == "tbl":
            yield Table(child, document)


def _heading_level(paragraph) -> int | None:
    try:
        style = paragraph.style
        name = style.name if style is not None else ""
    except Exception:  # noqa: BLE001 - a style reference to nowhere
        return None
    m = _HEADING_STYLE.match((name or "").strip())
    if m:
        return max(1, min(6, int(m.group(1))))
    return None


def _docx_table_lines(table) -> list[str]:
    lines = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        try:
            row_cells = row.cells
        except Exception:  # noqa: BLE001 - malformed merged cells
            continue
        for cell in row_cells:
            if id(cell._tc) in seen:  # merged cells repeat
                continue
            seen.add(id(cell._tc))
            text = clean_inline(cell.text.replace("\n", " "))
            if text:
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines


MAX_UNPACKED_BYTES = 256 * _MB
"""What a Word document may unpack to in all: python-docx holds every part in memory and parses the XML ones."""
MAX_PACKING_RATIO = 200
"""Largest compression ratio of a part above 1 MB (deflate tops out near 1000:1; Word's XML packs 5-30:1)."""


def _check_package(data: bytes) -> None:
    """Refuse a zip bomb before python-docx unpacks it, and DTDs (entity bombs, external entities) in any XML
    part: OPC packages may not contain DTD declarations. The unpacked sizes checked are the declared ones;
    Python's zipfile never inflates a member past its declared size (it reports a damaged file instead)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = zf.infolist()
        total = sum(m.file_size for m in members)
        if total > MAX_UNPACKED_BYTES:
            raise IngestError(
                f"Word document unpacks to {total / _MB:,.0f} MB, more than the limit of "
                f"{MAX_UNPACKED_BYTES / _MB:g} MB (a zip bomb?): refused",
                key="ingest_word_unpacks_too_large",
                params={"mb": f"{total / _MB:,.0f}", "max": f"{MAX_UNPACKED_BYTES / _MB:g}"},
            )
        for m in members:
            if m.file_size > _MB and m.file_size > MAX_PACKING_RATIO * max(m.compress_size, 1):
                raise IngestError(
                    f"Word document part {m.filename[:80]} is packed {m.file_size // max(m.compress_size, 1):,}:1, "
                    f"more than {MAX_PACKING_RATIO}:1 (a zip bomb?): refused",
                    key="ingest_word_packed_too_tight",
                    params={"part": m.filename[:80], "ratio": f"{m.file_size // max(m.compress_size, 1):,}",
                            "max": MAX_PACKING_RATIO},
                )
        for m in members:
            try:
                with zf.open(m) as fh:
                    if fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"<":
                        continue
                with zf.open(m) as fh:
                    for _ in iterparse(fh, events=("start",), forbid_dtd=True):
                        break  # a DTD comes before the root element: the prolog is all there is to check
            except DefusedXmlException as exc:
                raise IngestError(
                    "Word document contains DTD or entity declarations, which are refused for safety",
                    key="ingest_word_entities",
                ) from exc
            except Exception:  # noqa: BLE001, S112 - a broken part: python-docx says what is wrong with it
                continue


def _damaged(exc: Exception) -> IngestError:
    name = type(exc).__name__
    return IngestError(f"Word document is damaged and cannot be read ({name})", key="ingest_word_damaged",
                       params={"detail": name})


def read_docx(data: bytes, path: Path) -> ParsedDocument:
    import docx
    from docx.table import Table

    try:
        _check_package(data)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _damaged(exc) from exc
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds on broken packages
        raise _damaged(exc) from exc
    lines: list[str] = []
    first_heading = ""
    first_title_style = ""
    try:
        for block in _docx_blocks(document):
            if isinstance(block, Table):
                lines.extend(_docx_table_lines(block))
                continue
            text = clean_lines(block.text)
            if not text.strip(" \u3000"):
                continue
            level = _heading_level(block)
            style_name = ""
            try:
                style_name = (block.style.name or "") if block.style is not None else ""
            except Exception:  # noqa: BLE001
                style_name = ""
            if level is not None:
                heading = clean_inline(text.replace("\n", " "))
                lines.append("#" * level + " " + heading)
                first_heading = first_heading or heading
            else:
                if style_name == "Title" and not first_title_style:
                    first_title_style = clean_inline(text.replace("\n", " "))
                lines.extend(ln.strip(" ") for ln in text.split("\n") if ln.strip(" \u3000"))
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _damaged(exc) from exc
    body = "\n".join(lines)
    if not body.strip():
        raise IngestError("no text found in the Word document", key="ingest_no_text_docx")
    try:
        core_title = meaningful_title(document.core_properties.title)
    except Exception:  # noqa: BLE001
        core_title = ""
    title = core_title or short_title(first_title_style or first_heading) or short_title(title_line(body))
    return ParsedDocument(format="docx", title=title or file_title(path), pages=[Page(None, body)], page_count=0)
