"""The entry point: a file's size checked, its kind detected from the content, and the reader for that kind
chosen (one per format, in this package)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import IngestError
from ingest.document import ParsedDocument
from ingest.readers.egov_xml import read_egov_xml
from ingest.readers.html import read_html
from ingest.readers.pdf import read_pdf
from ingest.readers.plain_text import read_plain_text
from ingest.readers.sniffing import check_extension, detect_kind
from ingest.readers.word import read_docx

if TYPE_CHECKING:
    from ingest.ocr import PageOcr

_MB = 1024 * 1024

READERS: dict[str, Callable[[bytes, Path], ParsedDocument]] = {
    "docx": read_docx,
    "egov-xml": read_egov_xml,
    "html": read_html,
    "markdown": functools.partial(read_plain_text, markdown=True),
    "text": functools.partial(read_plain_text, markdown=False),
}
"""The reader of every kind :func:`detect_kind` names except PDF (read with ``ocr``)."""


def read_document(path: Path, max_bytes: int | None = None, ocr: PageOcr | None = None) -> ParsedDocument:
    """Read a PDF, Word (.docx), HTML, e-Gov law XML, Markdown or plain-text file.

    Raises IngestError for unsupported, empty, too large, damaged, password-protected or text-less files.
    ``ocr`` reads a PDF's pages without a text layer (default: none is, and they are named in warnings).
    """
    path = Path(path)
    try:
        check_size(path.stat().st_size, max_bytes)
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", key="ingest_unreadable",
                          params={"detail": str(exc.strerror or exc)}) from exc
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}", key="ingest_unreadable",
                          params={"detail": str(exc.strerror or exc)}) from exc
    check_size(len(data), max_bytes)
    if not data.strip():
        raise IngestError("empty file", key="ingest_empty")

    kind = detect_kind(data, path.suffix.lower())
    check_extension(kind, path.suffix.lower())
    if kind == "pdf":
        return read_pdf(data, path, ocr)
    return READERS[kind](data, path)


def check_size(size: int, max_bytes: int | None) -> None:
    """IngestError for a file over the size limit (checked before it is read or hashed)."""
    if max_bytes is not None and size > max_bytes:
        raise IngestError(f"file is larger than the limit of {max_bytes / _MB:g} MB", key="ingest_too_large",
                          params={"mb": f"{max_bytes / _MB:g}"})
