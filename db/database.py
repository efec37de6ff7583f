"""An engine for one database URL, with connections that always close and SQLite's pragmas and locking."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from db.errors import DatabaseError
from db.migrate import upgrade

_IMMEDIATE = "cqa_begin_immediate"
"""Execution option that makes the next ``BEGIN`` on a SQLite connection a ``BEGIN IMMEDIATE``."""


def database_url(target: Path | str) -> URL:
    """The SQLAlchemy URL of ``target``: a path is a SQLite file; text with ``://`` is a URL as it stands
    (``postgresql+psycopg://user@host/db``)."""
    if isinstance(target, str) and "://" in target:
        return make_url(target)
    return URL.create("sqlite", database=str(Path(target)))


class Database:
    """The database at ``target`` (a SQLite file path or a URL), migrated to the newest revision of
    ``schema`` (the directory ``db/migrations/<schema>/``) when opened.

    On SQLite every connection is a new ``sqlite3`` connection (closed when its block ends, so a file
    replaced or removed underneath is seen at once, as before the move to SQLAlchemy), with
    ``busy_timeout`` seconds of waiting for a lock and ``pragmas`` (e.g. ``"synchronous=FULL"``) run on
    connect. ``wal`` puts the file in write-ahead-log mode once, when it is opened (the mode stays with the
    file). ``file_mode`` (e.g. ``0o600``) is applied to a SQLite file this call creates."""

    def __init__(
        self,
        target: Path | str,
        schema: str,
        *,
        busy_timeout: float = 30.0,
        pragmas: Sequence[str] = (),
        wal: bool = False,
        file_mode: int | None = None,
    ) -> None:
        self.url = database_url(target)
        self.schema = schema
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.path: Path | None = Path(self.url.database or "")
            if not self.url.database or self.url.database == ":memory:":
                raise DatabaseError("a SQLite database must be a file (each connection is a new one)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if file_mode is not None and not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, file_mode))
                os.chmod(self.path, file_mode)  # whatever the umask took away
            self.engine = _sqlite_engine(self.url, busy_timeout, tuple(pragmas))
            if wal:
                _set_wal(self.engine)
        else:
            self.path = None
            self.engine = _postgresql_engine(self.url, schema)
        upgrade(self)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading; its transaction (begun by the first statement) ends with the block.
        A driver error that leaves the block (locked, not a database, disk full...) is a :class:`DatabaseError`
        naming the database (an expected failure: one line on a command line)."""
        try:
            with self.engine.connect() as conn:
                if not self.is_sqlite:  # one snapshot for the whole block, as a SQLite read transaction has
                    conn.execution_options(isolation_level="REPEATABLE READ")
                yield conn
        except DBAPIError as exc:
            raise self._error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` on SQLite, committed at the end of the block and
        rolled back on any exception; driver errors as in :meth:`read`."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{_IMMEDIATE: True})
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: DBAPIError) -> DatabaseError:
        where = self.path if self.path is not None else self.url.render_as_string(hide_password=True)
        return DatabaseError(f"database {where}: {exc.orig}")

    def dispose(self) -> None:
        """Close the engine's pooled connections (none on SQLite, where each block has its own)."""
        self.engine.dispose()


def _set_wal(engine: Engine) -> None:
    """``PRAGMA journal_mode=WAL`` outside any transaction (SQLite refuses the change inside one)."""
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


def _sqlite_engine(url: URL, busy_timeout: float, pragmas: tuple[str, ...]) -> Engine:
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"timeout": busy_timeout, "check_same_thread": False}
    )

    # SQLAlchemy's documented recipe (sqlite dialect, "Transactions with SQLite and the sqlite3 driver"):
    # the driver stops issuing its own BEGIN, and the "begin" hook issues ours.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")

    return engine


def _postgresql_engine(url: URL, schema: str) -> Engine:
    """An engine whose connections work in the PostgreSQL schema named ``schema`` (created here if missing):
    the stores share one database, each in its own schema with its own ``alembic_version`` table, so their
    table names need not differ. ``search_path`` is set per connection, so the stores' unqualified tables
    and Alembic's version table land in that schema."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise DatabaseError(f"{schema!r} is not a PostgreSQL schema name")
    engine = create_engine(url, pool_pre_ping=True, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.begin() as conn:  # two processes creating the schema at once: one waits for the other
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"cqa schema {schema}"})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except DBAPIError as exc:
        engine.dispose()
        raise DatabaseError(f"database {url.render_as_string(hide_password=True)}: {exc.orig}") from exc
    return engine
