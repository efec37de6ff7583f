"""Turn one input file into a :class:`ParsedDocument` (text per page plus a title).

The type is detected from the content (magic bytes, markup sniffing), and the file's extension must agree
with it: a text file named ``.pdf`` or a PDF named ``.docx`` is refused, naming both (a file with another or
no extension is read only if its content is plain text). The extension then decides between Markdown and
plain text. Every per-file problem is raised as :class:`IngestError` with a one-line message meant for the
person who uploaded the file.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import IngestError
from ingest.document import Page, ParsedDocument

if TYPE_CHECKING:
    import pypdf

log = logging.getLogger(__name__)

_MB = 1024 * 1024
_TITLE_MAX = 120
_MARKDOWN_EXT = {".md", ".markdown", ".mdown", ".mkd"}
_HTML_EXT = {".html", ".htm", ".xhtml"}

# -- text clean-up shared by all readers ------------------------------------------------------------------

_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
# Kangxi radicals (U+2F00..) and CJK radical supplements show up instead of ordinary kanji when a PDF's
# font maps glyphs badly ("⼀" for "一"); map just those to the ordinary character. No general NFKC:
# full-width numbering such as （１） must survive.
_TRANSLATE: dict[int, str] = {ord(k): v for k, v in _LIGATURES.items()}
for _cp in list(range(0x2F00, 0x2FD6)) + list(range(0x2E80, 0x2EF4)):
    _norm = unicodedata.normalize("NFKC", chr(_cp))
    if _norm != chr(_cp):
        _TRANSLATE[_cp] = _norm
for _cp in (0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF):  # soft hyphen, zero-width characters
    _TRANSLATE[_cp] = ""
for _cp in list(range(0x00, 0x20)) + [0x7F]:  # control characters except tab / newline
    if _cp not in (0x09, 0x0A):
        _TRANSLATE[_cp] = " " if _cp in (0x0B, 0x0C, 0x0D) else ""
for _cp in (
    0x00A0,
    0x2000,
    0x2001,
    0x2002,
    0x2003,
    0x2004,
    0x2005,
    0x2006,
    0x2007,
    0x2008,
    0x2009,
    0x200A,
    0x202F,
    0x205F,
):
    _TRANSLATE[_cp] = " "  # odd spaces -> plain space (U+3000, the ideographic space, is kept)

_SPACE_RUN = re.compile(r"[ \t]{2,}|\t")
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_INLINE_NL_CJK = re.compile(rf"(?<=[{_CJK}])[ \t\r\n\f\v]*\n[ \t\r\n\f\v]*(?=[{_CJK}])")
_ASCII_WS = re.compile(r"[ \t\r\n\f\v]+")


def _clean_lines(text: str) -> str:
    """Fix extraction junk but keep line breaks: odd spaces/controls, ligatures, runs of spaces,
    trailing spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_TRANSLATE)
    lines = (_SPACE_RUN.sub(" ", line).rstrip() for line in text.split("\n"))
    return "\n".join(lines).strip("\n")


def _clean_inline(text: str) -> str:
    """Whitespace of inline markup (HTML/XML): a source line break between two CJK characters is not a
    space; any other run of ASCII whitespace is one space. Ideographic spaces are kept inside."""
    text = text.translate(_TRANSLATE)
    text = _INLINE_NL_CJK.sub("", text)
    text = _ASCII_WS.sub(" ", text)
    return text.strip(" \u3000")


def _short_title(text: str) -> str:
    text = _ASCII_WS.sub(" ", text.replace("\u3000", " ")).strip(" #")
    if len(text) > _TITLE_MAX:
        text = text[: _TITLE_MAX - 1].rstrip() + "…"
    return text


_NUMBERED_HEADING = re.compile(
    r"^(?:\d+(?:[.．]\d+)*[.．)）]?(?:\s|$)|[IVXLC]+[.．)）]|[A-Z][.．)）]\s|[（(][0-9０-９一二三四五六七八九十ⅰ-ⅹa-z]{1,3}[)）]"
    r"|[0-9０-９]+[.．、]|第[0-9０-９一二三四五六七八九十百千]+[編章節款条項]|[Ⅰ-Ⅻ]+(?:[－\-.．]|\s|$)"
    r"|(?i:chapter|part|section|article|schedule|appendix|annex)\s+[0-9IVX]+\b)",
)


def _title_line(text: str) -> str:
    """The first line as a title, unless it is a numbered heading ("1. INTRODUCTION", "第一章 総則"),
    which names a section, not the document."""
    for line in text.split("\n"):
        line = line.strip(" \u3000\t")
        if line:
            return "" if _NUMBERED_HEADING.match(line) else line
    return ""


def _file_title(path: Path) -> str:
    """A title made from the file name: the last fallback ("AML_VER09.211223" -> "AML VER09.211223")."""
    return _short_title(path.stem.replace("_", " ")) or path.name


# -- entry point -----------------------------------------------------------------------------------------


def read_document(path: Path, max_bytes: int | None = None, pdf_pages: PdfPageTexts | None = None) -> ParsedDocument:
    """Read a PDF, Word (.docx), HTML, e-Gov law XML, Markdown or plain-text file.

    Raises IngestError for unsupported, empty, too large, damaged, password-protected or text-less files.
    ``pdf_pages`` extracts a PDF's page texts (default: here, page by page).
    """
    path = Path(path)
    try:
        check_size(path.stat().st_size, max_bytes)
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    check_size(len(data), max_bytes)
    if not data.strip():
        raise IngestError("empty file")

    kind = _detect(data, path.suffix.lower())
    _check_extension(kind, path.suffix.lower())
    if kind == "pdf":
        return _read_pdf(data, path, pdf_pages)
    if kind == "docx":
        return _read_docx(data, path)
    if kind == "egov-xml":
        return _read_egov_xml(data, path)
    if kind == "html":
        return _read_html(data, path)
    return _read_plain(data, path, markdown=kind == "markdown")


def check_size(size: int, max_bytes: int | None) -> None:
    """IngestError for a file over the size limit (checked before it is read or hashed)."""
    if max_bytes is not None and size > max_bytes:
        raise IngestError(f"file is larger than the limit of {max_bytes / _MB:g} MB")


# -- type detection --------------------------------------------------------------------------------------

_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "PNG image"),
    (b"\xff\xd8\xff", 0, "JPEG image"),
    (b"GIF87a", 0, "GIF image"),
    (b"GIF89a", 0, "GIF image"),
    (b"II*\x00", 0, "TIFF image"),
    (b"MM\x00*", 0, "TIFF image"),
    (b"WEBP", 8, "WebP image"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        0,
        "legacy Microsoft Office file (.doc/.xls/.ppt) or password-protected Office document",
    ),
    (b"{\\rtf", 0, "RTF document"),
    (b"%!PS", 0, "PostScript document"),
    (b"\x1f\x8b", 0, "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7-Zip archive"),
    (b"Rar!\x1a\x07", 0, "RAR archive"),
    (b"BZh", 0, "bzip2 archive"),
    (b"\xfd7zXZ\x00", 0, "xz archive"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd archive"),
    (b"\x7fELF", 0, "executable program"),
    (b"SQLite format 3\x00", 0, "SQLite database"),
    (b"ftyp", 4, "video/audio file"),
    (b"ID3", 0, "MP3 audio"),
    (b"OggS", 0, "Ogg audio/video"),
]

_BOMS: list[tuple[bytes, str]] = [
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
]


def _bom_encoding(data: bytes) -> str | None:
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc
    return None


def _detect(data: bytes, ext: str) -> str:
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _detect_zip(data)
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            raise IngestError(f"unsupported file type: {name}")
    if data[:2] == b"MZ" and b"\x00" in data[:512]:
        raise IngestError("unsupported file type: executable program")

    enc = _bom_encoding(data)
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
            raise IngestError("unsupported file type: XML document (only e-Gov law XML is supported)")
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


def _check_extension(kind: str, ext: str) -> None:
    """Refuse a file whose extension names another type than its content (a text file named .pdf was once
    ingested as a document titled "hello"). Other or no extensions are accepted for plain text only."""
    claimed = _EXT_KINDS.get(ext)
    if kind == claimed or (kind in _TEXT_KINDS and (claimed is None or claimed in _TEXT_KINDS)):
        return
    content = _KIND_NAMES[kind]
    if claimed is None:
        suffix = f"ends in {ext}" if ext else "has no extension"
        raise IngestError(f"file name {suffix} but the content is {content}: give it the right extension")
    raise IngestError(
        f"file name says {_KIND_NAMES[claimed]} ({ext}) but the content is {content}: "
        "rename it or upload the intended file"
    )


def _detect_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IngestError("unsupported file type: damaged ZIP archive") from exc
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        raise IngestError("unsupported file type: Excel workbook (.xlsx)")
    if "ppt/presentation.xml" in names:
        raise IngestError("unsupported file type: PowerPoint presentation (.pptx)")
    if "mimetype" in names:
        raise IngestError("unsupported file type: OpenDocument file")
    raise IngestError("unsupported file type: ZIP archive (not a Word .docx document)")


# -- decoding --------------------------------------------------------------------------------------------

_JA_CODECS = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "ms932": "cp932",
    "x-ms-cp932": "cp932",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "iso-2022-jp": "iso2022_jp_2",
}
_KANA = re.compile(r"[\u3040-\u30ff]")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_\-.]+)""", re.I)


def _codec(name: str) -> str | None:
    name = name.strip().lower()
    name = _JA_CODECS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _decode(data: bytes, declared: str | None = None) -> tuple[str, list[str]]:
    """Decode text bytes: BOM, declared charset, UTF-8, Japanese legacy encodings (CP932/EUC-JP), then
    charset-normalizer. Raises IngestError for binary data."""
    warnings: list[str] = []
    bom = _bom_encoding(data)
    if bom:
        text = data.decode(bom, errors="replace")
        return _check_text(text), warnings
    if b"\x00" in data[:8192]:
        text = _decode_with_normalizer(data)
        if text is None:
            raise IngestError("unsupported file type: binary data")
        return _check_text(text), warnings
    candidates = []
    declared_codec = _codec(declared) if declared else None
    if declared_codec and not (declared_codec != "utf-8" and not data.isascii() and _try_decode(data, "utf-8")):
        candidates.append(declared_codec)  # (non-ASCII bytes that are valid UTF-8 are UTF-8, whatever is declared)
    candidates.append("utf-8")
    for codec in candidates:
        text = _try_decode(data, codec)
        if text is not None:
            if declared_codec and codec != declared_codec:
                warnings.append(_mislabelled(declared or "", codec))
            return _check_text(text), warnings
    best_ja: tuple[int, str, str] | None = None
    for codec in ("cp932", "euc_jp"):
        text = _try_decode(data, codec)
        if text is not None:
            kana = len(_KANA.findall(text[:20000]))
            if kana >= 3 and (best_ja is None or kana > best_ja[0]):
                best_ja = (kana, text, codec)
    if best_ja is not None:
        if declared_codec:
            warnings.append(_mislabelled(declared or "", best_ja[2]))
        return _check_text(best_ja[1]), warnings
    text = _decode_with_normalizer(data)
    if text is None:
        text = data.decode(candidates[0], errors="replace")
        warnings.append("some characters could not be decoded and were replaced")
    return _check_text(text), warnings


_CODEC_NAMES = {"cp932": "Shift_JIS (CP932)", "euc_jp": "EUC-JP", "utf-8": "UTF-8"}


def _mislabelled(declared: str, codec: str) -> str:
    return (f"the file declares its encoding as {declared} but is {_CODEC_NAMES.get(codec, codec)}; "
            "it was read as what it is")


def _decode_with_normalizer(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - it is a pinned requirement
        return None
    best = from_bytes(data).best()
    if best is None:
        return None
    return str(best)


def _check_text(text: str) -> str:
    """Reject decoded 'text' that is really binary (many control characters or replacement marks)."""
    sample = text[:20000]
    if not sample:
        return text
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ch == "\ufffd")
    if bad > max(8, len(sample) // 100):
        raise IngestError("unsupported file type: binary data")
    return text


# -- PDF -------------------------------------------------------------------------------------------------

_PASSWORD_MSG = "PDF is encrypted with a password; remove the password and upload it again"
_JUNK_TITLES = {
    "untitled",
    "title",
    "document",
    "無題",
    "powerpoint プレゼンテーション",
    "slide 1",
    "スライド 1",
}


def _meaningful_title(title: object) -> str:
    if not isinstance(title, str):
        return ""
    title = _short_title(_clean_inline(title))
    low = title.lower()
    if len(title) < 3 or low in _JUNK_TITLES:
        return ""
    if low.startswith(("microsoft word -", "microsoft powerpoint -", "microsoft excel -")):
        return ""
    if re.search(r"\.(docx?|pdf|xlsx?|pptx?|rtf|txt|indd|tmp|jtd)$", low):
        return ""
    if re.fullmatch(r"[\W\d_]+", title) or re.match(r"<?[0-9A-Fa-f]{16,}", title):
        return ""  # punctuation only, or undecoded hex bytes
    return title


def _pdf_title_from_text(text: str) -> str:
    lines = [ln.strip(" \u3000") for ln in text.split("\n")]
    for i, line in enumerate(lines):
        if not line or re.fullmatch(r"[-－–—\s]*[0-9０-９ivxIVX]{1,4}[-－–—\s]*", line):
            continue
        title = line
        # A Japanese title wrapped onto a second line that starts with a particle (…対策\nに関する…).
        if (
            i + 1 < len(lines)
            and re.match(r"[\u3040-\u309f]", lines[i + 1] or "")
            and re.search(rf"[{_CJK}]$", line)
        ):
            title += lines[i + 1]
        return _short_title(title)
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


PdfPageTexts = Callable[[Path, "pypdf.PdfReader"], list[str | None]]
"""Extracts the raw text of every page of an opened PDF (None for a page whose extraction failed);
``ReadAhead`` passes one that shares the pages with its worker processes."""


@contextlib.contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """pypdf warns loudly about harmless oddities of real-world PDFs."""
    pypdf_logger = logging.getLogger("pypdf")
    previous_level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pypdf_logger.setLevel(previous_level)


def _open_pdf(data: bytes) -> pypdf.PdfReader:
    """An opened (decrypted) PDF with at least one page, or IngestError saying what is wrong."""
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError

    tail = data[-16384:]  # some producers append a little junk after the end marker
    if b"%%EOF" not in tail and b"startxref" not in tail:
        raise IngestError("PDF is damaged or truncated (its end-of-file marker is missing)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except (DependencyError, NotImplementedError) as exc:
                msg = f"PDF uses an encryption this installation cannot open ({exc})"
                raise IngestError(msg) from exc
            if not ok:
                raise IngestError(_PASSWORD_MSG)
        page_count = len(reader.pages)
    except IngestError:
        raise
    except FileNotDecryptedError as exc:
        raise IngestError(_PASSWORD_MSG) from exc
    except (
        PyPdfError,
        PdfReadError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        RecursionError,
        AssertionError,
        OSError,
        ZeroDivisionError,
    ) as exc:
        msg = f"PDF is damaged and cannot be read ({type(exc).__name__}: {exc})"
        raise IngestError(msg[:300]) from exc
    if page_count == 0:
        raise IngestError("PDF is damaged and cannot be read (it has no pages)")
    return reader


def pdf_page_texts(reader: pypdf.PdfReader, first: int, last: int) -> list[str | None]:
    """Raw text of pages ``first..last`` (1-based, inclusive); None where a page's content is damaged."""
    from pypdf.errors import FileNotDecryptedError

    texts: list[str | None] = []
    with _quiet_pypdf():
        for number in range(first, last + 1):
            try:
                texts.append(reader.pages[number - 1].extract_text() or "")
            except FileNotDecryptedError as exc:
                raise IngestError(_PASSWORD_MSG) from exc
            except Exception as exc:  # noqa: BLE001 - one bad page must not lose the document
                log.info("pdf page %d: text extraction failed: %s", number, exc)
                texts.append(None)
    return texts


def pdf_page_count(path: Path, max_bytes: int | None = None) -> int | None:
    """Pages of a PDF that opens, within the size limit; None for anything else (``read_document``
    then reads it, or says what is wrong with it)."""
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            return None
        data = path.read_bytes()
        if _detect(data, path.suffix.lower()) != "pdf":
            return None
        with _quiet_pypdf():
            return len(_open_pdf(data).pages)
    except Exception:  # noqa: BLE001 - only a look ahead: reading the file reports the error
        return None


def read_pdf_pages(path: Path, first: int, last: int) -> list[str | None]:
    """:func:`pdf_page_texts` of a PDF file: one page-range task of a worker process, which keeps
    the file open for its next range (identified by path, size and modification time)."""
    stat = Path(path).stat()
    return pdf_page_texts(_opened_pdf(str(path), stat.st_size, stat.st_mtime_ns), first, last)


@functools.lru_cache(maxsize=2)
def _opened_pdf(path: str, size: int, mtime_ns: int) -> pypdf.PdfReader:
    with _quiet_pypdf():
        return _open_pdf(Path(path).read_bytes())


def _all_page_texts(path: Path, reader: pypdf.PdfReader) -> list[str | None]:
    return pdf_page_texts(reader, 1, len(reader.pages))


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


def _read_pdf(data: bytes, path: Path, page_texts: PdfPageTexts | None) -> ParsedDocument:
    with _quiet_pypdf():
        reader = _open_pdf(data)
        page_count = len(reader.pages)
        raw_pages = (page_texts or _all_page_texts)(path, reader)
        active = _active_content(reader)
        title_meta = ""
        try:
            meta = reader.metadata
            title_meta = _meaningful_title(meta.title if meta is not None else None)
        except Exception:  # noqa: BLE001 - broken metadata is not worth failing for
            title_meta = ""

    pages: list[Page] = []
    empty: list[int] = []
    failed: list[int] = []
    for number, raw in enumerate(raw_pages, start=1):
        if raw is None:
            failed.append(number)
        text = _clean_lines(raw or "")
        if not text.strip() and raw is not None:
            empty.append(number)
        pages.append(Page(number=number, text=text if text.strip() else ""))
    if failed:  # the per-page errors are logged where the pages were read (possibly a worker process)
        log.info("pdf %s: text of page(s) %s could not be extracted", path.name, _ranges(failed))

    if len(empty) + len(failed) == page_count:
        if failed and not empty:
            raise IngestError("PDF is damaged: no page's text could be extracted")
        raise IngestError("no extractable text (scanned PDF? needs OCR)")
    warnings: list[str] = []
    if len(empty) <= 10:
        warnings += [f"page {n} has no text layer (needs OCR)" for n in empty]
    else:
        warnings.append(f"{len(empty)} pages have no text layer (needs OCR): pages {_ranges(empty)}")
    if failed:
        warnings.append(f"text of page(s) {_ranges(failed)} could not be extracted (damaged page content)")
    if active:
        warnings.append(f"PDF contains {' and '.join(active)}: only its text was read (nothing was run or unpacked)")
    first_text = next((p.text for p in pages if p.text), "")
    title = title_meta or _pdf_title_from_text(pages[0].text or first_text) or _file_title(path)
    return ParsedDocument(format="pdf", title=title, pages=pages, warnings=warnings, page_count=page_count)


# -- HTML ------------------------------------------------------------------------------------------------

_HTML_DROP = {
    "script",
    "style",
    "nav",
    "noscript",
    "template",
    "head",
    "iframe",
    "svg",
    "object",
    "embed",
    "button",
    "select",
    "option",
    "textarea",
    "input",
    "map",
    "canvas",
    "audio",
    "video",
    "title",
    "meta",
    "link",
}
_HTML_BLOCK = {
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "menu",
    "ol",
    "p",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "ul",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_CELL_BLOCKS = ["div", "p", "table", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol"]


class _HtmlLines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buf: list[str] = []

    def flush(self) -> None:
        if self.buf:
            text = _clean_inline("".join(self.buf))
            self.buf = []
            if text:
                self.lines.append(text)

    def walk(self, node) -> None:  # noqa: C901 - a flat dispatch over tag kinds
        from bs4 import NavigableString, Tag
        from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

        for child in node.children:
            if isinstance(child, NavigableString):
                if isinstance(child, CData) or not isinstance(
                    child, (Comment, Declaration, Doctype, ProcessingInstruction)
                ):
                    self.buf.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = (child.name or "").lower()
            if name in _HTML_DROP:
                continue
            if name == "br":
                self.flush()
            elif name in _HEADINGS:
                self.flush()
                text = _clean_inline(child.get_text())
                if text:
                    self.lines.append("#" * _HEADINGS[name] + " " + text)
            elif name == "tr":
                self.flush()
                cells = child.find_all(["td", "th"], recursive=False)
                if any(c.find(_CELL_BLOCKS) is not None for c in cells):
                    for cell in cells:  # a layout table: its cells are ordinary blocks
                        self.walk(cell)
                        self.flush()
                else:
                    line = " | ".join(t for t in (_clean_inline(c.get_text(" ")) for c in cells) if t)
                    if line:
                        self.lines.append(line)
            elif name == "pre":
                self.flush()
                for line in child.get_text().split("\n"):
                    line = line.translate(_TRANSLATE).rstrip()
                    if line.strip():
                        self.lines.append(line)
            elif name in _HTML_BLOCK:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)


MAX_HTML_TAGS = 200_000
"""Tags an HTML page may have: BeautifulSoup holds about 1 KB per tag (1M tags: 1 GB, 33 s)."""
MAX_HTML_DEPTH = 500
"""Nesting an HTML page may have (the reader walks it recursively; real pages nest a few dozen levels)."""
_START_TAG = re.compile(r"<[A-Za-z]")


def _deeper_than(root, limit: int) -> bool:
    from bs4 import Tag

    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tag))
    return False


def _read_html(data: bytes, path: Path) -> ParsedDocument:
    from bs4 import BeautifulSoup

    head = data[:8192]
    declared = None
    m = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    if m:
        declared = m.group(1).decode("ascii", "ignore")
    text, warnings = _decode(data, declared)
    if not text.strip():
        raise IngestError("empty file")
    tags = sum(1 for _ in _START_TAG.finditer(text))
    if tags > MAX_HTML_TAGS:
        raise IngestError(
            f"HTML page has {tags:,} tags, more than the limit of {MAX_HTML_TAGS:,} (the largest statute page has "
            "about 22,000): refused to keep memory bounded"
        )
    try:
        soup = BeautifulSoup(text, "lxml")
    except Exception as exc:  # noqa: BLE001 - parser failure on a broken file
        raise IngestError(f"HTML could not be parsed ({type(exc).__name__})") from exc
    title = ""
    if soup.title is not None:
        title = _short_title(_clean_inline(soup.title.get_text()))
    if not title:
        h1 = soup.find("h1")
        if h1 is not None:
            title = _short_title(_clean_inline(h1.get_text()))
    collector = _HtmlLines()
    root = soup.body or soup
    if _deeper_than(root, MAX_HTML_DEPTH):
        raise IngestError(f"HTML page is nested more than {MAX_HTML_DEPTH} levels deep: refused (no real page is)")
    collector.walk(root)
    collector.flush()
    lines = [ln for ln in collector.lines if ln]
    body = "\n".join(lines)
    if not body.strip():
        raise IngestError("no text found in the HTML document")
    title = title or _short_title(_title_line(body)) or _file_title(path)
    return ParsedDocument(
        format="html", title=title, pages=[Page(None, body)], warnings=warnings, page_count=0
    )


# -- Markdown / plain text -------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")


def _read_plain(data: bytes, path: Path, markdown: bool) -> ParsedDocument:
    text, warnings = _decode(data)
    text = _clean_lines(text)
    if not text.strip(" \t\n\u3000"):
        raise IngestError("empty file")
    title = ""
    if markdown:
        in_fence = False
        for line in text.split("\n"):
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
                continue
            m = None if in_fence else _MD_HEADING.match(line)
            if m:
                title = _short_title(m.group(2))
                break
    title = title or _short_title(_title_line(text)) or _file_title(path)
    return ParsedDocument(
        format="markdown" if markdown else "text", title=title, pages=[Page(None, text)], warnings=warnings
    )


# -- DOCX ------------------------------------------------------------------------------------------------

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
            text = _clean_inline(cell.text.replace("\n", " "))
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
                f"{MAX_UNPACKED_BYTES / _MB:g} MB (a zip bomb?): refused"
            )
        for m in members:
            if m.file_size > _MB and m.file_size > MAX_PACKING_RATIO * max(m.compress_size, 1):
                raise IngestError(
                    f"Word document part {m.filename[:80]} is packed {m.file_size // max(m.compress_size, 1):,}:1, "
                    f"more than {MAX_PACKING_RATIO}:1 (a zip bomb?): refused"
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
                    "Word document contains DTD or entity declarations, which are refused for safety"
                ) from exc
            except Exception:  # noqa: BLE001, S112 - a broken part: python-docx says what is wrong with it
                continue


def _read_docx(data: bytes, path: Path) -> ParsedDocument:
    import docx
    from docx.table import Table

    try:
        _check_package(data)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IngestError(f"Word document is damaged and cannot be read ({type(exc).__name__})") from exc
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds on broken packages
        raise IngestError(f"Word document is damaged and cannot be read ({type(exc).__name__})") from exc
    lines: list[str] = []
    first_heading = ""
    first_title_style = ""
    try:
        for block in _docx_blocks(document):
            if isinstance(block, Table):
                lines.extend(_docx_table_lines(block))
                continue
            text = _clean_lines(block.text)
            if not text.strip(" \u3000"):
                continue
            level = _heading_level(block)
            style_name = ""
            try:
                style_name = (block.style.name or "") if block.style is not None else ""
            except Exception:  # noqa: BLE001
                style_name = ""
            if level is not None:
                heading = _clean_inline(text.replace("\n", " "))
                lines.append("#" * level + " " + heading)
                first_heading = first_heading or heading
            else:
                if style_name == "Title" and not first_title_style:
                    first_title_style = _clean_inline(text.replace("\n", " "))
                lines.extend(ln.strip(" ") for ln in text.split("\n") if ln.strip(" \u3000"))
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise IngestError(f"Word document is damaged and cannot be read ({type(exc).__name__})") from exc
    body = "\n".join(lines)
    if not body.strip():
        raise IngestError("no text found in the Word document")
    try:
        core_title = _meaningful_title(document.core_properties.title)
    except Exception:  # noqa: BLE001
        core_title = ""
    title = core_title or _short_title(first_title_style or first_heading) or _short_title(_title_line(body))
    return ParsedDocument(format="docx", title=title or _file_title(path), pages=[Page(None, body)], page_count=0)


# -- e-Gov law XML ---------------------------------------------------------------------------------------


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _xtext(el) -> str:
    """Text of an element without ruby readings (Rt)."""
    parts = [el.text or ""]
    for child in el:
        if _local(child.tag) != "Rt":
            parts.append(_xtext(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _child(el, name: str):
    for child in el:
        if _local(child.tag) == name:
            return child
    return None


_FW = "\u3000"
_STRUCT_TITLES = {
    "Part": "PartTitle",
    "Chapter": "ChapterTitle",
    "Section": "SectionTitle",
    "Subsection": "SubsectionTitle",
    "Division": "DivisionTitle",
}
_SKIP_XML = {"TOC", "LawNum", "LawTitle", "Rt", "Fig"}


class _EgovLines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        text = _clean_inline(text)
        if text:
            self.lines.append(text)

    def sentence(self, el) -> str:
        """ParagraphSentence / ItemSentence / SubitemNSentence: sentences joined, columns spaced."""
        if el is None:
            return ""
        columns = [c for c in el if _local(c.tag) == "Column"]
        if columns:
            return _FW.join(_clean_inline(_xtext(c)) for c in columns)
        return _clean_inline(_xtext(el))

    def emit(self, el) -> None:  # noqa: C901 - one branch per e-Gov element kind
        tag = _local(el.tag)
        if tag in _SKIP_XML:
            return
        if tag in _STRUCT_TITLES:
            title = _child(el, _STRUCT_TITLES[tag])
            if title is not None:
                self.add(_xtext(title))
            for child in el:
                if _local(child.tag) != _STRUCT_TITLES[tag]:
                    self.emit(child)
        elif tag == "Article":
            self.article(el)
        elif tag == "Paragraph":
            self.paragraph(el, prefix="")
        elif tag == "Item" or re.fullmatch(r"Subitem\d+", tag):
            self.item(el, tag)
        elif tag == "SupplProvision":
            label = _child(el, "SupplProvisionLabel")
            text = _clean_inline(_xtext(label)) if label is not None else "附則"
            if el.get("AmendLawNum"):
                text += f"{_FW}（{el.get('AmendLawNum')}）"
            if el.get("Extract") == "true":
                text += f"{_FW}抄"
            self.add(text)
            for child in el:
                if _local(child.tag) != "SupplProvisionLabel":
                    self.emit(child)
        elif tag.startswith(("Appdx", "SupplProvisionAppdx")) and len(el):
            title = next((c for c in el if _local(c.tag).endswith("Title")), None)
            related = _child(el, "RelatedArticleNum")
            head = "".join(_clean_inline(_xtext(x)) for x in (title, related) if x is not None)
            if head:
                self.add(head)
            for child in el:
                if child is not title and child is not related:
                    self.emit(child)
        elif tag in ("TableStruct", "Table"):
            for child in el:
                self.emit(child)
        elif tag == "TableRow":
            cells = [_clean_inline(_xtext(c)) for c in el if _local(c.tag) == "TableColumn"]
            line = " | ".join(c for c in cells if c)
            if line:
                self.lines.append(line)
        elif tag in ("Sentence", "ParagraphSentence", "ItemSentence") or tag.endswith("Sentence"):
            self.add(self.sentence(el))
        elif len(el):
            for child in el:
                self.emit(child)
        else:
            self.add(_xtext(el))

    def article(self, el) -> None:
        title_el = _child(el, "ArticleTitle")
        caption_el = _child(el, "ArticleCaption")
        head = _clean_inline(_xtext(title_el)) if title_el is not None else ""
        caption = _clean_inline(_xtext(caption_el)) if caption_el is not None else ""
        if caption:
            head = f"{head}{_FW}{caption}" if head else caption
        first = True
        for child in el:
            name = _local(child.tag)
            if name in ("ArticleTitle", "ArticleCaption"):
                continue
            if name == "Paragraph" and first:
                self.paragraph(child, prefix=head)
                first = False
            else:
                if first and head:
                    self.add(head)
                    first = False
                self.emit(child)
        if first and head:
            self.add(head)

    def paragraph(self, el, prefix: str) -> None:
        num_el = _child(el, "ParagraphNum")
        num = _clean_inline(_xtext(num_el)) if num_el is not None else ""
        caption_el = _child(el, "ParagraphCaption")
        caption = _clean_inline(_xtext(caption_el)) if caption_el is not None else ""
        sentence = self.sentence(_child(el, "ParagraphSentence"))
        parts = [p for p in (prefix, num if not prefix else "", caption, sentence) if p]
        self.add(_FW.join(parts))
        for child in el:
            if _local(child.tag) not in ("ParagraphNum", "ParagraphCaption", "ParagraphSentence"):
                self.emit(child)

    def item(self, el, tag: str) -> None:
        title_el = _child(el, f"{tag}Title")
        sentence_el = _child(el, f"{tag}Sentence")
        title = _clean_inline(_xtext(title_el)) if title_el is not None else ""
        sentence = self.sentence(sentence_el)
        self.add(_FW.join(p for p in (title, sentence) if p))
        for child in el:
            if _local(child.tag) not in (f"{tag}Title", f"{tag}Sentence"):
                self.emit(child)


def _xml_source(data: bytes) -> tuple[bytes | str, list[str]]:
    """The bytes for the XML parser, or, when they are not in the encoding they declare (UTF-8 when none),
    the text decoded from what they are, with a warning (the parser then ignores the declaration)."""
    if _bom_encoding(data):
        return data, []
    m = _XML_ENCODING.search(data[:1024])
    declared = m.group(1).decode("ascii", "ignore") if m else "UTF-8"
    codec = _codec(declared)
    if codec is None or _try_decode(data, codec) is not None:
        return data, []
    text, warnings = _decode(data, declared)
    return text, warnings


def _read_egov_xml(data: bytes, path: Path) -> ParsedDocument:
    from xml.etree.ElementTree import ParseError

    try:
        import defusedxml.ElementTree as safe_et
        from defusedxml import DefusedXmlException
    except ImportError:  # pragma: no cover - defusedxml is installed; lxml without entity resolution
        safe_et = None
        DefusedXmlException = ValueError  # noqa: N806
    source, warnings = _xml_source(data)
    try:
        if safe_et is not None:
            root = safe_et.fromstring(source)
        else:  # pragma: no cover
            from lxml import etree

            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
            root = etree.fromstring(data, parser=parser)
            warnings = []
    except DefusedXmlException as exc:
        raise IngestError("XML file uses entity or DTD declarations, which are refused for safety") from exc
    except (ParseError, ValueError, SyntaxError) as exc:
        raise IngestError(f"XML is malformed ({exc})"[:300]) from exc
    law = (
        root if _local(root.tag) == "Law" else next((e for e in root.iter() if _local(e.tag) == "Law"), None)
    )
    body = law if law is not None else next((e for e in root.iter() if _local(e.tag) == "LawBody"), None)
    if body is None:
        raise IngestError("unsupported file type: XML document (only e-Gov law XML is supported)")
    title_el = next((e for e in body.iter() if _local(e.tag) == "LawTitle"), None)
    title = _short_title(_clean_inline(_xtext(title_el))) if title_el is not None else ""
    lines = _EgovLines()
    law_body = body if _local(body.tag) == "LawBody" else _child(body, "LawBody")
    for child in law_body if law_body is not None else body:
        lines.emit(child)
    text = "\n".join(lines.lines)
    if not text.strip():
        raise IngestError("no text found in the e-Gov law XML")
    return ParsedDocument(format="egov-xml", title=title or _file_title(path), pages=[Page(None, text)],
                          warnings=warnings, page_count=0)
