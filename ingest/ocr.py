"""Scanned PDF pages read with OCR: a page without a text layer is rendered with PDFium (pypdfium2) and read by
Tesseract (Debian's ``tesseract`` program) in Japanese and English.

Tesseract runs as a child process per page, the page image on its standard input: a crash or a hang on a
hostile page ends that process (after ``timeout_seconds``), not the ingest; the program is exactly the one the
Debian packages install (``make ocr``); and it runs with one OpenMP thread (``OMP_THREAD_LIMIT=1``), 6-8 times
faster than its default on two busy cores (docs/benchmarks.md, OCR). Without the program or its language data
OCR is skipped with a message that says why; the pages then stay without text and the ingest warns about them.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.text import CJK
from ingest.pdfium_lock import PDFIUM

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

SKIPPED = "OCR skipped: "
"""How the warning that OCR could not run at all begins (the documents page shows it in the reader's language)."""

MAX_PIXELS = 40_000_000
"""Largest rendered page (an A4 page at 300 dpi is 8.7 million pixels): a page of absurd size is rendered at a
lower resolution rather than filling the memory."""

_DARK = 160
"""Grey level below which a pixel counts as ink when ruled lines are looked for."""
_CJK_SPACE = re.compile(rf"(?<=[{CJK}]) +(?=[{CJK}])")
"""Tesseract puts a space between some Japanese characters; Japanese text has none."""
_HAS_CJK = re.compile(rf"[{CJK}]")
_OPEN, _CLOSE = re.compile(r"\( *"), re.compile(r" *\)")
_CJK_COLON = re.compile(rf"(?<=[{CJK}]) *: *")
_BRACKET_SPACE = re.compile(r"(?<=（) +| +(?=）)")
_FRAME = re.compile(r"^[|｜]\s*|\s*[|｜]$")
"""The sides of a framed box (【先進的な取組み事例】 in FSA guidelines) read as a bar at the start or end of a line."""


@dataclass(frozen=True)
class OcrConfig:
    """How scanned pages are read (the ``ingest.ocr_*`` settings)."""

    command: str = "tesseract"
    """The Tesseract program: a name on PATH or a path."""
    languages: str = "jpn+eng"
    dpi: int = 300
    page_segmentation: int = 6
    """Tesseract's --psm: 6 reads the page as one block of text (docs/benchmarks.md, OCR)."""
    threads: int = 1
    """OpenMP threads of one Tesseract run (its default is every core: 6-8 times slower on two busy cores)."""
    timeout_seconds: float = 300.0
    """Longest Tesseract run on one page; a page that takes longer is left without text, with a warning."""


@dataclass(frozen=True)
class OcrProgress:
    """One scanned page of a file read (or failed)."""

    page: int
    """The page's number (1-based): the one read, or the first to read when ``done`` is 0."""
    done: int
    total: int
    """Scanned pages of this file, and how many of them have been read."""
    elapsed_seconds: float

    @property
    def seconds_left(self) -> float:
        """The file's remaining OCR time at the pace so far."""
        return self.elapsed_seconds / self.done * (self.total - self.done) if self.done else math.inf


OcrProgressFn = Callable[[OcrProgress], None]


@dataclass(frozen=True)
class OcrPage:
    number: int
    text: str
    seconds: float


@dataclass
class OcrResult:
    """What OCR made of a file's scanned pages: text of the pages it read, warnings for the rest."""

    pages: list[OcrPage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def unavailable_reason(config: OcrConfig) -> str | None:
    """Why OCR cannot run here (no Tesseract program, or no data for one of its languages); None when it can.
    Asked again for every file with scanned pages (about 20 ms): Tesseract installed while the app runs is used."""
    command, languages = config.command, config.languages
    program = shutil.which(command)
    if program is None:
        return (f"the Tesseract OCR program ({command}) is not installed or not found: install it with make ocr "
                "(Debian's tesseract-ocr, tesseract-ocr-jpn, tesseract-ocr-eng) or set ingest.ocr_command")
    try:
        listed = _tesseract([program, "--list-langs"], b"", timeout=60)
    except (OSError, subprocess.SubprocessError, TesseractFailed) as exc:
        return f"the Tesseract OCR program ({program}) does not run: {exc}"[:300]
    installed = {line.strip() for line in listed.splitlines()[1:]}  # after "List of available languages …"
    missing = [lang for lang in languages.split("+") if lang not in installed]
    if missing:
        packages = ", ".join(f"tesseract-ocr-{lang}" for lang in missing)
        return f"Tesseract has no language data for {'+'.join(missing)}: install {packages} (make ocr)"
    return None


class TesseractFailed(Exception):
    """The Tesseract program ended with an error."""


def _tesseract(args: list[str], stdin: bytes, timeout: float, threads: int = 1) -> str:
    """Run Tesseract with ``threads`` OpenMP threads; its standard output, or TesseractFailed (subprocess.TimeoutExpired
    when it runs longer than ``timeout`` seconds: it is then killed)."""
    done = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, check=False,
                          env={**os.environ, "OMP_THREAD_LIMIT": str(threads)})
    if done.returncode != 0:
        error = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TesseractFailed(f"exit status {done.returncode}: {error[-1] if error else 'no message'}"[:200])
    return done.stdout.decode("utf-8", "replace")


class PageOcr:
    """Reads the scanned pages of one PDF; ``progress`` hears of every page read."""

    def __init__(self, config: OcrConfig, progress: OcrProgressFn | None = None) -> None:
        self.config = config
        self.progress = progress

    def read(self, pdf: bytes, numbers: list[int]) -> OcrResult:
        """Text of pages ``numbers`` (1-based) of the PDF ``pdf``; a page that fails is named in a warning and the
        others are read. When OCR cannot run at all, one warning says why and no page is read."""
        result = OcrResult()
        if not numbers:
            return result
        reason = unavailable_reason(self.config)
        if reason is not None:
            log.warning("OCR skipped for %d page(s): %s", len(numbers), reason)
            result.warnings.append(SKIPPED + reason)
            return result
        import pypdfium2

        try:
            with PDFIUM:
                document = pypdfium2.PdfDocument(pdf)
        except pypdfium2.PdfiumError as exc:
            result.warnings.append(f"{SKIPPED}PDFium cannot open the PDF to render its scanned pages ({exc})")
            return result
        started = time.perf_counter()
        failed: list[str] = []
        if self.progress is not None:
            self.progress(OcrProgress(numbers[0], 0, len(numbers), 0.0))
        try:
            for done, number in enumerate(numbers, start=1):
                try:
                    page = self.read_page(document, number)
                except OcrPageError as exc:
                    log.info("OCR of page %d failed: %s", number, exc)
                    failed.append(f"page {number}: {exc}")
                else:
                    result.pages.append(page)
                if self.progress is not None:
                    self.progress(OcrProgress(number, done, len(numbers), time.perf_counter() - started))
        finally:
            with PDFIUM:
                document.close()
        read = [p.number for p in result.pages if p.text.strip()]
        blank = [p.number for p in result.pages if not p.text.strip()]
        if read:
            result.warnings.append(f"{_page_list(read)} had no text layer and {'was' if len(read) == 1 else 'were'} "
                                   "read by OCR")
        if blank:
            result.warnings.append(f"OCR found no text on {_page_list(blank)}")
        if failed:
            result.warnings.append("OCR failed on " + "; ".join(failed[:10]) + (" …" if len(failed) > 10 else ""))
        return result

    def read_page(self, document, number: int) -> OcrPage:
        """One page of an open ``pypdfium2.PdfDocument`` rendered and read; OcrPageError when that fails."""
        import pypdfium2

        started = time.perf_counter()
        try:
            with PDFIUM:  # the rendering; Tesseract below runs without it
                page = document[number - 1]
                try:
                    width, height = page.get_size()
                    scale = min(self.config.dpi / 72, math.sqrt(MAX_PIXELS / max(width * height, 1.0)))
                    bitmap = page.render(scale=scale, grayscale=True)
                    try:
                        image = bitmap.to_pil().copy()  # PIL's own pixels, not a view of PDFium's buffer
                    finally:
                        bitmap.close()  # here, under the lock, not by the garbage collector on whatever thread
                finally:
                    page.close()
        except (pypdfium2.PdfiumError, ValueError, MemoryError) as exc:
            raise OcrPageError(f"the page could not be rendered ({exc})") from exc
        if not has_ink(image):  # a blank page (the back of a scanned sheet): nothing for Tesseract to read
            return OcrPage(number, "", time.perf_counter() - started)
        image = without_rules(image, self.config.dpi)
        image_file = io.BytesIO()
        image.save(image_file, format="PPM")  # an uncompressed grey map: nothing to encode or decode
        args = [shutil.which(self.config.command) or self.config.command, "stdin", "stdout",
                "-l", self.config.languages, "--psm", str(self.config.page_segmentation)]
        try:
            text = _tesseract(args, image_file.getvalue(), self.config.timeout_seconds, self.config.threads)
        except subprocess.TimeoutExpired as exc:
            raise OcrPageError(f"Tesseract took longer than {self.config.timeout_seconds:g} s") from exc
        except (OSError, subprocess.SubprocessError, TesseractFailed) as exc:
            raise OcrPageError(f"Tesseract failed ({exc})"[:200]) from exc
        return OcrPage(number, ocr_text(text), time.perf_counter() - started)


def has_ink(image: Image.Image) -> bool:
    """Whether a grey page has a pixel dark enough to be ink."""
    low, _ = image.getextrema()
    return low < _DARK


def without_rules(image: Image.Image, dpi: int) -> Image.Image:
    """The grey page without its ruled lines: every straight run of dark pixels half an inch or longer,
    across or down (a morphological opening, scipy's running minimum then maximum). Tesseract reads a box's or a
    table's frame as text and loses the text inside (the sample manual's framed notice: page accuracy 0.918 without
    this, 0.986 with it); a glyph's stroke is shorter unless the type is larger than about 36 pt."""
    import numpy as np
    from PIL import Image
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    pixels = np.asarray(image)
    dark = (pixels < _DARK).astype(np.uint8)
    length = max(dpi // 2, 2)
    rules = np.zeros_like(dark)
    for axis in (0, 1):
        rules |= maximum_filter1d(minimum_filter1d(dark, length, axis=axis), length, axis=axis)
    if not rules.any():
        return image
    cleared = pixels.copy()
    cleared[rules.astype(bool)] = 255
    return Image.fromarray(cleared)


def _page_list(numbers: list[int]) -> str:
    """"page 3", "pages 3, 4, 9", "pages 1, 2, … (40 pages)"."""
    if len(numbers) == 1:
        return f"page {numbers[0]}"
    shown = ", ".join(map(str, numbers[:10]))
    return f"pages {shown}" + (f", … ({len(numbers)} pages)" if len(numbers) > 10 else "")


class OcrPageError(Exception):
    """One page could not be rendered or read."""


def ocr_text(raw: str) -> str:
    """Tesseract's text without box sides, and its Japanese lines as Japanese is typeset: the half-width
    brackets and colons it reads turned full-width (（１） numbering is then recognised as in a text layer) and
    no spaces between Japanese characters."""
    return "\n".join(_japanese_line(_FRAME.sub("", line)) for line in raw.split("\n"))


def _japanese_line(line: str) -> str:
    if not _HAS_CJK.search(line):
        return line
    line = _OPEN.sub("（", _CLOSE.sub("）", line))
    line = _CJK_COLON.sub("：", line)
    return _CJK_SPACE.sub("", _BRACKET_SPACE.sub("", line))
