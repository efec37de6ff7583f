"""Keep a database at the newest revision of its schema with Alembic, when it is opened.

Each schema's revisions are the files in ``db/migrations/<schema>/``; ``db/migrations/env.py`` runs them on
the connection :func:`upgrade` hands over (Alembic's "sharing a connection" recipe), inside one write
transaction, so two processes opening a new database at once do not both create it.

A database written before the move to Alembic (tables, but no ``alembic_version``) is adopted: stamped at
the schema's first revision (the oldest layout any release wrote), then upgraded like any other; the
revisions after the first check what is there before they add it, as the code they replace did.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from db.errors import DatabaseError

if TYPE_CHECKING:
    from db.database import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"


def _config(schema: str, connection: Connection | None = None) -> Config:
    versions = MIGRATIONS_DIR / schema
    if not versions.is_dir():
        raise DatabaseError(f"no migrations for the database schema {schema!r} (expected {versions})")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(versions))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script(schema: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(_config(schema))


def heads(schema: str) -> frozenset[str]:
    """The newest revision(s) of ``schema``."""
    return frozenset(_script(schema).get_heads())


def baseline(schema: str) -> str:
    """The first revision of ``schema``: the one a database from before Alembic is stamped at."""
    base = _script(schema).get_base()
    if base is None:
        raise DatabaseError(f"the migrations of {schema!r} have no single first revision")
    return base


def current(conn: Connection) -> frozenset[str]:
    """The revision(s) the database is at (empty: never migrated)."""
    return frozenset(MigrationContext.configure(conn).get_current_heads())


def upgrade(db: Database) -> None:
    """Bring ``db`` to the newest revision of its schema (a read, and nothing else, when it is there)."""
    newest = heads(db.schema)
    with db.read() as conn:
        if current(conn) == newest:
            return
    with db.write() as conn:  # again under the write lock: another process may have done it meanwhile
        if conn.dialect.name == "postgresql":  # PostgreSQL has no database-wide write lock: a lock per schema
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"cqa migrate {db.schema}"})
        at = current(conn)
        if at == newest:
            return
        config = _config(db.schema, conn)
        if not at and set(inspect(conn).get_table_names()) - {VERSION_TABLE}:
            command.stamp(config, baseline(db.schema))
        command.upgrade(config, "heads")
