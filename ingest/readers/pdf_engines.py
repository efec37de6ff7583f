"""PDF text engines behind one interface: PDFium (pypdfium2, the default: compiled, about 1.3 ms a page on the
corpus) and pypdf (pure Python, about 25x slower; the fallback for a file PDFium cannot open). The comparison
that chose them, page by page over every corpus PDF, is in docs/benchmarks.md (``python -m bench.pdf_engines``).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from core.errors import IngestError

if TYPE_CHECKING:
    import pypdf

log = logging.getLogger(__name__)

ENGINES = ("pdfium", "pypdf")
"""The engines in the order they are tried: the first that opens a file reads all of it."""
PASSWORD_MSG = "PDF is encrypted with a password; remove the password and upload it again"


def _password() -> IngestError:
    return IngestError(PASSWORD_MSG, key="ingest_pdf_password")


def _damaged(detail: str) -> IngestError:
    return IngestError(f"PDF is damaged and cannot be read ({detail})"[:300], key="ingest_pdf_damaged",
                       params={"detail": detail[:200]})


def _no_pages() -> IngestError:
    return IngestError("PDF is damaged and cannot be read (it has no pages)", key="ingest_pdf_no_pages")


def _encryption(message: str, detail: str) -> IngestError:
    return IngestError(message, key="ingest_pdf_encryption", params={"detail": detail[:200]})


class PdfText(Protocol):
    """An opened (decrypted) PDF with at least one page, as one engine reads it."""

    engine: str
    page_count: int

    def page_texts(self, first: int, last: int) -> list[str | None]:
        """Raw text of pages ``first..last`` (1-based, inclusive); None where a page's content is damaged."""
        ...

    def close(self) -> None:
        """Release the engine's document (PDFium's: under ``PDFIUM``, see ``ingest.pdfium_lock``)."""
        ...


@contextlib.contextmanager
def quiet_pypdf() -> Iterator[None]:
    """pypdf warns loudly about harmless oddities of real-world PDFs."""
    pypdf_logger = logging.getLogger("pypdf")
    previous_level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pypdf_logger.setLevel(previous_level)


def check_end_marker(data: bytes) -> None:
    """IngestError for a file cut short: both engines would rebuild what they can of it and read on silently."""
    tail = data[-16384:]  # some producers append a little junk after the end marker
    if b"%%EOF" not in tail and b"startxref" not in tail:
        raise IngestError("PDF is damaged or truncated (its end-of-file marker is missing)", key="ingest_pdf_truncated")


class PdfiumText:
    """PDFium's text of each page, in content order, lines ended by the producer's line breaks."""

    engine = "pdfium"

    def __init__(self, data: bytes) -> None:
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_c

        try:
            self._doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
                raise _password() from exc
            if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
                raise _encryption(f"PDF uses an encryption PDFium cannot open ({exc})", str(exc)) from exc
            raise _damaged(str(exc)) from exc
        self.page_count = len(self._doc)
        if self.page_count == 0:
            raise _no_pages()

    def page_texts(self, first: int, last: int) -> list[str | None]:
        texts: list[str | None] = []
        for number in range(first, last + 1):
            try:
                page = self._doc[number - 1]
                textpage = page.get_textpage()
                texts.append(textpage.get_text_range())
                textpage.close()
                page.close()
            except Exception as exc:  # noqa: BLE001 - one bad page must not lose the document
                log.info("pdf page %d: text extraction failed: %s", number, exc)
                texts.append(None)
        return texts

    def title(self) -> str:
        """The metadata title as written (empty when there is none)."""
        try:
            return self._doc.get_metadata_value("Title") or ""
        except Exception:  # noqa: BLE001 - broken metadata is not worth failing for
            return ""

    def close(self) -> None:
        self._doc.close()


class PypdfText:
    """pypdf's text of each page (``extract_text``); ``reader`` is the opened pypdf document."""

    engine = "pypdf"

    def __init__(self, data: bytes) -> None:
        self.reader = open_pypdf(data)
        self.page_count = len(self.reader.pages)

    def close(self) -> None:
        """Nothing to release: pypdf's reader is plain Python."""

    def page_texts(self, first: int, last: int) -> list[str | None]:
        from pypdf.errors import FileNotDecryptedError

        texts: list[str | None] = []
        with quiet_pypdf():
            for number in range(first, last + 1):
                try:
                    texts.append(self.reader.pages[number - 1].extract_text() or "")
                except FileNotDecryptedError as exc:
                    raise _password() from exc
                except Exception as exc:  # noqa: BLE001 - one bad page must not lose the document
                    log.info("pdf page %d: text extraction failed: %s", number, exc)
                    texts.append(None)
        return texts


_PYPDF_DAMAGE = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    RecursionError,
    AssertionError,
    OSError,
    ZeroDivisionError,
)


def open_pypdf(data: bytes) -> pypdf.PdfReader:
    """A pypdf reader of the file, decrypted, with at least one page, or IngestError saying what is wrong."""
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

    try:
        with quiet_pypdf():
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    ok = reader.decrypt("")
                except (DependencyError, NotImplementedError) as exc:
                    msg = f"PDF uses an encryption this installation cannot open ({exc})"
                    raise _encryption(msg, str(exc)) from exc
                if not ok:
                    raise _password()
            page_count = len(reader.pages)
    except IngestError:
        raise
    except FileNotDecryptedError as exc:
        raise _password() from exc
    except (PyPdfError, *_PYPDF_DAMAGE) as exc:
        raise _damaged(f"{type(exc).__name__}: {exc}") from exc
    if page_count == 0:
        raise _no_pages()
    return reader


_OPENERS = {"pdfium": PdfiumText, "pypdf": PypdfText}


def open_pdf_text(data: bytes, name: str, engines: tuple[str, ...] = ENGINES) -> PdfText:
    """The PDF opened by the first engine that can; when one fails and the next opens it, the log says so.
    When none can, the last engine's IngestError (what is wrong with the file, for the person who uploaded it)."""
    check_end_marker(data)
    failures: list[str] = []
    for engine in engines[:-1]:
        try:
            return _OPENERS[engine](data)
        except IngestError as exc:
            failures.append(f"{engine} cannot open it ({exc})")
    opened = _OPENERS[engines[-1]](data)
    if failures:
        log.warning("pdf %s: read with %s because %s", name, opened.engine, "; ".join(failures))
    return opened
