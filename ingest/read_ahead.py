"""Read the next files in worker processes while the current one is chunked and embedded.

Text extraction (pypdf) is pure Python and takes about two thirds of a PDF's ingestion; a
thread would hold the GIL against the chunker, processes use the other cores
(docs/benchmarks.md). Workers are started with ``spawn`` (forking a threaded process such as
Streamlit or llama.cpp is unsafe), and a spawned worker first imports the main script: workers
are used only when that script guards its body with ``if __name__ == "__main__":`` (app.py,
the CLIs, pytest and streamlit launchers do; a Streamlit page run on its own does not), else
files are read in the calling process, as with ``ingest.read_workers = 0``.

A PDF that was not read ahead (the first file of a run, a single upload) is split into page ranges
(RAGFlow's page-range tasks): idle workers take ranges from the front while this process extracts
from the back whatever no worker has started, so a long PDF is read on every core and nothing waits
behind a busy worker.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import re
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.document import ParsedDocument
from ingest.readers import pdf_page_texts, read_document, read_pdf_pages

if TYPE_CHECKING:
    import pypdf

log = logging.getLogger(__name__)
_RANGE_PAGES = (4, 16)
"""Smallest and largest page range of one task: a task costs one more open of the PDF."""
_GUARD = re.compile(r"""if\s+__name__\s*==\s*['"]__main__['"]""")


def main_script_is_guarded() -> bool:
    """Whether a spawned process may import ``__main__`` without running its body again."""
    main = sys.modules.get("__main__")
    name = getattr(getattr(main, "__spec__", None), "name", "") or ""
    if name.endswith(".__main__"):  # python -m package: multiprocessing does not import it
        return True
    path = getattr(main, "__file__", None)
    if path is None:  # interactive
        return True
    try:
        return _GUARD.search(Path(path).read_text(encoding="utf-8", errors="ignore")) is not None
    except OSError:
        return False


class ReadAhead:
    """``prefetch(path)`` starts reading in a worker; ``read(path)`` returns that result, or reads
    in this process when nothing was prefetched or the workers died. A context manager."""

    def __init__(self, workers: int, max_bytes: int) -> None:
        self._workers = workers if workers < 1 or main_script_is_guarded() else 0
        self._max_bytes = max_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[Path, Future[ParsedDocument]] = {}

    def _started_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def prefetch(self, path: Path) -> None:
        if self._workers < 1:
            return
        self._pending[path] = self._started_pool().submit(read_document, path, max_bytes=self._max_bytes)

    @property
    def workers(self) -> int:
        """Workers in use: 0 when off, under an unguarded main script, or after a worker died."""
        return self._workers

    def busy(self) -> bool:
        """Whether a worker is reading now (and so using a core)."""
        return any(not f.done() for f in self._pending.values())

    def read(self, path: Path) -> ParsedDocument:
        future = self._pending.pop(path, None)
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:
                self._worker_died(path)
        return read_document(path, max_bytes=self._max_bytes, pdf_pages=self._shared_page_texts)

    def _worker_died(self, path: Path) -> None:
        log.warning("read-ahead worker died while reading %s; reading here from now on", path.name)
        self._workers = 0
        self._close()

    def _shared_page_texts(self, path: Path, reader: pypdf.PdfReader) -> list[str | None]:
        """Page texts of an opened PDF, ranges shared between idle workers and this process."""
        count = len(reader.pages)
        size = max(_RANGE_PAGES[0], min(_RANGE_PAGES[1], math.ceil(count / (self._workers + 1))))
        ranges = [(first, min(first + size - 1, count)) for first in range(1, count + 1, size)]
        if self._workers < 1 or len(ranges) < 2:
            return pdf_page_texts(reader, 1, count)
        try:
            tasks = [self._started_pool().submit(read_pdf_pages, path, *r) for r in ranges]
        except BrokenProcessPool:
            self._worker_died(path)
            return pdf_page_texts(reader, 1, count)
        texts: dict[tuple[int, int], list[str | None]] = {}
        for r, task in reversed(list(zip(ranges, tasks, strict=True))):
            if task.cancel():  # no worker has started it: extract it here
                texts[r] = pdf_page_texts(reader, *r)
        for r, task in zip(ranges, tasks, strict=True):
            if r in texts:
                continue
            try:
                texts[r] = task.result() if self._workers else pdf_page_texts(reader, *r)
            except BrokenProcessPool:
                self._worker_died(path)
                texts[r] = pdf_page_texts(reader, *r)
        return [text for r in ranges for text in texts[r]]

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending.clear()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
