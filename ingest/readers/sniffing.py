"""What kind of file this is, from its content (magic bytes, ZIP members, markup), and whether its extension
agrees: a text file named .pdf or a PDF named .docx is refused, naming both."""

from __future__ import annotations

import io
import re
import zipfile

from core.errors import IngestError
from ingest.readers.decoding import bom_encoding

_MARKDOWN_EXT = {".md", ".markdown", ".mdown", ".mkd"}
_HTML_EXT = {".html", ".htm", ".xhtml"}

_MAGIC: list[tuple[bytes, int, str, str]] = [  # (magic, offset, message key's type code, name)
    (b"\x89PNG\r\n\x1a\n", 0, "png", "PNG image"),
    (b"\xff\xd8\xff", 0, "jpeg", "JPEG image"),
    (b"GIF87a", 0, "gif", "GIF image"),
    (b"GIF89a", 0, "gif", "GIF image"),
    (b"II*\x00", 0, "tiff", "TIFF image"),
    (b"MM\x00*", 0, "tiff", "TIFF image"),
    (b"WEBP", 8, "webp", "WebP image"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        0,
        "office_legacy",
        "legacy Microsoft Office file (.doc/.xls/.ppt) or password-protected Office document",
    ),
    (b"{\\rtf", 0, "rtf", "RTF document"),
    (b"%!PS", 0, "postscript", "PostScript document"),
    (b"\x1f\x8b", 0, "gzip", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7z", "7-Zip archive"),
    (b"Rar!\x1a\x07", 0, "rar", "RAR archive"),
    (b"BZh", 0, "bzip2", "bzip2 archive"),
    (b"\xfd7zXZ\x00", 0, "xz", "xz archive"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd", "zstd archive"),
    (b"\x7fELF", 0, "executable", "executable program"),
    (b"SQLite format 3\x00", 0, "sqlite", "SQLite database"),
    (b"ftyp", 4, "media", "video/audio file"),
    (b"ID3", 0, "mp3", "MP3 audio"),
    (b"OggS", 0, "ogg", "Ogg audio/video"),
]


def detect_kind(data: bytes, ext: str) -> str:
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _detect_zip(data)
    for magic, offset, code, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            raise IngestError(f"unsupported file type: {name}", key=f"ingest_type_{code}")
    if data[:2] == b"MZ" and b"\x00" in data[:512]:
        raise IngestError("unsupported file type: executable program", key="ingest_type_executable")

    enc = bom_encoding(data)
    if enc and enc != "utf-8-sig":
        head = data[:16384].decode(enc, errors="ignore")
    else:
        head = data[:65536].decode("latin-1")
    stripped = head.lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    lower = stripped[:4096].lower()
    if stripped.startswith("<"):
        is_html = "<!doctype html" in lower or re.search(r"<html[\s>]", lower) is not None
        if not is_html and re.search(r"<(?:Law|LawBody)[\s>]", head):
            return "egov-xml"
        if is_html or ext in _HTML_EXT:
            return "html"
        if stripped.startswith("<?xml"):
            raise IngestError("unsupported file type: XML document (only e-Gov law XML is supported)",
                              key="ingest_xml_not_egov")
    if ext in _HTML_EXT and re.search(r"<(?:body|head|p|div|table|h[1-6])[\s>]", lower):
        return "html"
    return "markdown" if ext in _MARKDOWN_EXT else "text"


_KIND_NAMES = {
    "pdf": "a PDF",
    "docx": "a Word document",
    "html": "an HTML page",
    "egov-xml": "e-Gov law XML",
    "markdown": "plain text",
    "text": "plain text",
}
_KIND_CODES = {"pdf": "pdf", "docx": "docx", "html": "html", "egov-xml": "egov_xml", "markdown": "text", "text": "text"}
"""The content's name in a message key (``ingest_mismatch_<code>``, ``ingest_no_extension_<code>``)."""
_EXT_KINDS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".xml": "egov-xml",
    ".txt": "text",
    ".text": "text",
    **{ext: "html" for ext in _HTML_EXT},
    **{ext: "markdown" for ext in _MARKDOWN_EXT},
}
_TEXT_KINDS = {"text", "markdown"}


def check_extension(kind: str, ext: str) -> None:
    """Refuse a file whose extension names another type than its content (a text file named .pdf was once
    ingested as a document titled "hello"). Other or no extensions are accepted for plain text only."""
    claimed = _EXT_KINDS.get(ext)
    if kind == claimed or (kind in _TEXT_KINDS and (claimed is None or claimed in _TEXT_KINDS)):
        return
    content = _KIND_NAMES[kind]
    if claimed is None:
        suffix = f"ends in {ext}" if ext else "has no extension"
        key = f"ingest_{'mismatch' if ext else 'no_extension'}_{_KIND_CODES[kind]}"
        raise IngestError(f"file name {suffix} but the content is {content}: give it the right extension", key=key,
                          params={"ext": ext})
    raise IngestError(
        f"file name says {_KIND_NAMES[claimed]} ({ext}) but the content is {content}: "
        "rename it or upload the intended file",
        key=f"ingest_mismatch_{_KIND_CODES[kind]}", params={"ext": ext},
    )


def _detect_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IngestError("unsupported file type: damaged ZIP archive", key="ingest_type_zip_damaged") from exc
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        raise IngestError("unsupported file type: Excel workbook (.xlsx)", key="ingest_type_xlsx")
    if "ppt/presentation.xml" in names:
        raise IngestError("unsupported file type: PowerPoint presentation (.pptx)", key="ingest_type_pptx")
    if "mimetype" in names:
        raise IngestError("unsupported file type: OpenDocument file", key="ingest_type_opendocument")
    raise IngestError("unsupported file type: ZIP archive (not a Word .docx document)", key="ingest_type_zip")
