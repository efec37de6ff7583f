"""Read the next files in worker processes while the current one is chunked and embedded.

Text extraction (pypdf) is pure Python and takes about two thirds of a PDF's ingestion; a
thread would hold the GIL against the chunker, processes use the other cores
(docs/benchmarks.md). Workers are started with ``spawn`` (forking a threaded process such as
Streamlit or llama.cpp is unsafe), and a spawned worker first imports the main script: workers
are used only when that script guards its body with ``if __name__ == "__main__":`` (app.py,
the CLIs, pytest and streamlit launchers do; a Streamlit page run on its own does not), else
files are read in the calling process, as with ``ingest.read_workers = 0``.

Every PDF is read in page ranges (RAGFlow's page-range tasks), whether it was read ahead or not:
workers take ranges in file order, and when this process needs a PDF it extracts from the back
whatever no worker has started, so nothing waits behind a busy worker and a long PDF is read on
every core. Other files are read ahead whole by one worker.
"""

from __future__ import annotations

import functools
import logging
import math
import multiprocessing
import re
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.document import ParsedDocument
from ingest.readers import pdf_page_count, pdf_page_texts, read_document, read_pdf_pages

if TYPE_CHECKING:
    import pypdf

log = logging.getLogger(__name__)
_RANGE_PAGES = (4, 16)
"""Smallest and largest page range of one task: a task costs a round trip to a worker (each worker opens
a PDF once for all its ranges)."""
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


@dataclass(frozen=True)
class _PageRanges:
    """The page-range tasks of one PDF, in page order."""

    pages: int
    tasks: list[tuple[tuple[int, int], Future[list[str | None]]]]

    def done(self) -> bool:
        return all(task.done() for _, task in self.tasks)


class ReadAhead:
    """``prefetch(path)`` starts reading in the workers; ``read(path)`` returns that result, or reads
    in this process what was not prefetched, no worker has started, or a dead worker left. A context
    manager."""

    def __init__(self, workers: int, max_bytes: int) -> None:
        self._workers = workers if workers < 1 or main_script_is_guarded() else 0
        self._max_bytes = max_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[Path, Future[ParsedDocument] | _PageRanges] = {}

    def _started_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def prefetch(self, path: Path) -> None:
        """A PDF as page ranges, any other file whole (a file that cannot be read is left to ``read``,
        which reports why)."""
        if self._workers < 1:
            return
        pages = pdf_page_count(path, self._max_bytes)
        try:
            self._pending[path] = (
                self._submit_ranges(path, pages)
                if pages
                else self._started_pool().submit(read_document, path, max_bytes=self._max_bytes)
            )
        except BrokenProcessPool:
            self._worker_died(path)

    @property
    def workers(self) -> int:
        """Workers in use: 0 when off, under an unguarded main script, or after a worker died."""
        return self._workers

    def busy(self) -> bool:
        """Whether a worker is reading now (and so using a core)."""
        return any(not pending.done() for pending in self._pending.values())

    def read(self, path: Path) -> ParsedDocument:
        pending = self._pending.pop(path, None)
        if isinstance(pending, Future):
            try:
                return pending.result()
            except BrokenProcessPool:
                self._worker_died(path)
            pending = None
        return read_document(path, max_bytes=self._max_bytes, pdf_pages=functools.partial(self._page_texts, pending))

    def _worker_died(self, path: Path) -> None:
        log.warning("read-ahead worker died while reading %s; reading here from now on", path.name)
        self._workers = 0
        if self._pool is not None:
            # A worker killed while waiting for a task holds the task queue's lock for ever: its siblings, and
            # one the pool may have started just before it noticed the death (which it does not stop), would
            # wait on that lock for ever and hang this interpreter's exit. Only this thread starts workers, so
            # all of them are listed now (ProcessPoolExecutor.kill_workers() exists from Python 3.14 only).
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
        self._close()

    def _submit_ranges(self, path: Path, pages: int) -> _PageRanges:
        size = max(_RANGE_PAGES[0], min(_RANGE_PAGES[1], math.ceil(pages / (self._workers + 1))))
        ranges = [(first, min(first + size - 1, pages)) for first in range(1, pages + 1, size)]
        pool = self._started_pool()
        return _PageRanges(pages, [(r, pool.submit(read_pdf_pages, path, *r)) for r in ranges])

    def _page_texts(self, ranges: _PageRanges | None, path: Path, reader: pypdf.PdfReader) -> list[str | None]:
        """Page texts of an opened PDF: what the workers read of its ranges (submitted now if it was not
        read ahead), the rest read here from the back."""
        count = len(reader.pages)
        if ranges is not None and ranges.pages != count:  # the file changed since it was read ahead
            for _, task in ranges.tasks:
                task.cancel()
            ranges = None
        if ranges is None and self._workers and count > _RANGE_PAGES[0]:
            try:
                ranges = self._submit_ranges(path, count)
            except BrokenProcessPool:
                self._worker_died(path)
        if ranges is None:
            return pdf_page_texts(reader, 1, count)
        texts: dict[tuple[int, int], list[str | None]] = {}
        for r, task in reversed(ranges.tasks):
            if task.cancel():  # no worker has started it: extract it here
                texts[r] = pdf_page_texts(reader, *r)
        for r, task in ranges.tasks:
            if r in texts:
                continue
            try:
                texts[r] = task.result() if self._workers else pdf_page_texts(reader, *r)
            except BrokenProcessPool:
                self._worker_died(path)
                texts[r] = pdf_page_texts(reader, *r)
        return [text for r, _ in ranges.tasks for text in texts[r]]

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending.clear()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
