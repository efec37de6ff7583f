"""The next file read while the current one is embedded.

Embedding keeps both cores busy; reading a file (PDFium, Tesseract: native code that releases the GIL) and chunking
it leave one idle. ``ReadAhead`` reads files on one background thread, in the order they were started, so the next
file's reading overlaps the current file's embedding (docs/benchmarks.md, ingestion). A file's progress is held
until the caller takes its result and then passed on as it comes, so progress is reported file by file, in order,
as if the file were read when its turn came.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
Stage = Callable[..., None]
"""A file's progress: ``stage(name, ocr_progress=None)``."""


class ReadAhead(Generic[T]):
    def __init__(self, read: Callable[[int, Stage], T]) -> None:
        """``read(index, stage)``: one file's reading; it must not touch state the caller's thread writes."""
        self._read = read
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
        self._started: dict[int, tuple[Future[T], queue.SimpleQueue]] = {}

    def start(self, index: int) -> None:
        """Queue file ``index``'s reading behind the ones already started."""
        events: queue.SimpleQueue = queue.SimpleQueue()
        self._started[index] = (self._pool.submit(self._read, index, lambda *a: events.put(a)), events)

    def take(self, index: int, stage: Stage) -> T:
        """File ``index``'s reading: the one started ahead (its held progress passed to ``stage``, then the rest as
        it comes), else read now on this thread. Raises what the reading raised."""
        started = self._started.pop(index, None)
        if started is None:
            return self._read(index, stage)
        future, events = started
        while not (future.done() and events.empty()):
            try:
                stage(*events.get(timeout=0.05))
            except queue.Empty:
                pass
        return future.result()

    def drop(self, index: int) -> None:
        """A reading started ahead that is not needed after all (the file turned out unchanged): not started yet,
        it is cancelled; running, its result and progress are discarded."""
        started = self._started.pop(index, None)
        if started is not None:
            started[0].cancel()

    def close(self) -> None:
        """Cancel what has not started and wait for the reading under way."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._started.clear()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
