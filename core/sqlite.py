"""One SQLite file used from many threads: a connection per thread, WAL, explicit transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (the write lock up front, so concurrent writers queue instead of failing
    at commit), ``COMMIT`` at the end, ``ROLLBACK`` on any exception. ``db`` is in autocommit mode."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class ThreadLocalSQLite:
    """Base for the small SQLite stores (registry, eval runs, embedding cache).

    Subclasses set ``SCHEMA`` (run once on open) and ``PRAGMAS`` (run on every connection)."""

    SCHEMA = ""
    PRAGMAS: tuple[str, ...] = ()

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._db().executescript(self.SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            for pragma in ("journal_mode=WAL", *self.PRAGMAS):
                db.execute(f"PRAGMA {pragma}")
            self._local.db = db
        return db

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate_transaction(self._db())

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they end)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
