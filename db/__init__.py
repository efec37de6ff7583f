"""The database layer every store uses: an engine from a URL, connections that always close, and the
schema of each database kept by versioned Alembic migrations, run when the database is opened.

By default every database is a SQLite file in the data directory (``users.sqlite3``, ``audit.sqlite3``, ...).
With ``database.url`` set (``postgresql+psycopg://...``) every store opens that one PostgreSQL database instead,
each in its own PostgreSQL schema named after its migrations directory (``search_path`` per connection, so each
has its own ``alembic_version``); ``read()`` there is one REPEATABLE READ snapshot, as a SQLite read is, and a
store that needs a lock across processes takes it on a row (``SELECT ... FOR UPDATE``, the audit head) or on a
key (:func:`db.statements.lock`, the registry's documents); a write transaction that reads before it writes needs
one there, where SQLite's ``BEGIN IMMEDIATE`` already lets one writer in at a time.

A store opens its database with ``Database(path, "<schema>")`` and runs SQLAlchemy Core statements in
``db.read()`` (a deferred transaction, rolled back at the end) or ``db.write()`` (``BEGIN IMMEDIATE`` on
SQLite: the write lock up front, so concurrent writers queue instead of failing at commit; committed at
the end, rolled back on any exception). The store module declares its tables (``sqlalchemy.Table``) for
its queries; the migrations, not those declarations, create and change them.

Adding a table or a column (a new store, or a change to one):

1. A new store gets a directory ``db/migrations/<schema>/``; its first file creates its tables, e.g.
   ``0001_baseline.py`` with ``revision = "<schema>_0001"`` and ``down_revision = None``.
2. A change is a new file in that directory: ``000N_<what>.py`` with ``revision = "<schema>_000N"``,
   ``down_revision`` the previous revision, and an ``upgrade()`` made of ``alembic.op`` calls
   (``op.create_table``, ``op.add_column``, ``op.create_index``; SQLite-only statements, such as the audit
   log's triggers, behind a check of ``op.get_context().dialect.name``). Never edit a migration that has
   been released: databases in the field have already run it.
3. Declare the new table or column in the store module too (``sqlalchemy.Table``), and name the table in
   ``tests/test_db.py``'s test that declared and migrated columns agree. Opening runs ``upgrade head`` (see
   :mod:`db.migrate`). A database written before its store used Alembic needs its old schema in that file's
   ``LEGACY``, which checks that it is adopted without losing a row.
"""

from db.database import Database, database_url
from db.errors import DatabaseError

__all__ = ["Database", "DatabaseError", "database_url"]
