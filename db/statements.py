"""Statements the SQL dialects spell differently, built for the connection's dialect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from db.errors import DatabaseError

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def upsert(
    conn: Connection, table: Table, values: Mapping[str, Any] | Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``values`` (one row, or several with the same columns), or when a row with the same ``keys``
    exists, set its other columns to them (``INSERT ... ON CONFLICT (keys) DO UPDATE``: SQLite and PostgreSQL)."""
    dialect = conn.dialect.name
    if dialect not in _INSERTS:
        raise DatabaseError(f"no upsert for the {dialect} dialect (known: {', '.join(sorted(_INSERTS))})")
    rows = [values] if isinstance(values, Mapping) else list(values)
    if not rows:
        return
    statement = _INSERTS[dialect](table)
    changed = {name: statement.excluded[name] for name in rows[0] if name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changed), rows)


def lock(conn: Connection, key: str) -> None:
    """Hold ``key`` until the transaction ends, so that write transactions taking the same key (one document of
    the registry, say) run one after another across processes and hosts, as every write transaction does on
    SQLite. On PostgreSQL a transaction-level advisory lock on a hash of ``key`` (a collision only makes two
    keys wait for each other); on SQLite nothing: ``Database.write()``'s ``BEGIN IMMEDIATE`` holds the lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
