"""Copy a data dir's SQLite stores (users, audit log, registry, eval runs, feedback, conversations, sessions,
embedding cache) into a PostgreSQL database, then verify: the same number of rows in every table, and the audit
log's hash chain (with the data dir's head anchor). A target that already holds any of these stores is refused
unless --replace (which drops those stores there first). Run it with the app stopped; then set database.url.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, func, inspect, make_url, select, text

from audit.anchor import ANCHOR_FILE_NAME
from audit.log import AUDIT_DB_NAME, AuditLog
from auth.store import USERS_DB_NAME
from core.cli import ArgumentParser, run
from core.errors import CQAError
from db import Database
from eval.run_store import store_path
from settings import load_settings
from settings.model import DatabaseSettings

PROG = "python -m scripts.migrate_state"
BATCH = 1000


def sqlite_files(data_dir: Path) -> dict[str, Path]:
    """Each store's schema name and its SQLite file in ``data_dir`` (as wiring/ opens them)."""
    return {
        "users": data_dir / USERS_DB_NAME,
        "audit": data_dir / AUDIT_DB_NAME,
        "registry": data_dir / "registry.sqlite3",
        "eval_runs": store_path(data_dir),
        "feedback": data_dir / "feedback.sqlite3",
        "conversations": data_dir / "conversations.sqlite3",
        "sessions": data_dir / "sessions.sqlite3",
        "embedding_cache": data_dir / "embeddings.sqlite3",
    }


@dataclass(frozen=True)
class TableCount:
    schema: str
    table: str
    source: int
    target: int


def _tables(db: Database) -> list[Table]:
    """The store's tables (not Alembic's), parents before children."""
    meta = MetaData()
    with db.read() as conn:
        meta.reflect(conn)
    return [t for t in meta.sorted_tables if t.name != "alembic_version"]


def _count(db: Database, name: str) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(Table(name, MetaData(), autoload_with=conn))).scalar_one()


def existing_stores(url: str, schemas: list[str]) -> list[str]:
    """The stores among ``schemas`` that the database at ``url`` already holds (their schema exists)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_schema_names())
    finally:
        engine.dispose()
    return [s for s in schemas if s in present]


def drop_stores(url: str, schemas: list[str]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


def copy_store(source: Database, target: Database) -> list[TableCount]:
    """Copy every row of every table (the target freshly migrated: rows a migration seeded, such as the audit
    head, are replaced); triggers are off for the copy's transaction and identity sequences moved past the
    copied ids."""
    counts = []
    target_tables = {t.name: t for t in _tables(target)}
    with source.read() as src, target.write() as dst:
        for table in _tables(source):
            into = target_tables.get(table.name)
            if into is None:
                raise CQAError(f"{source.schema}: table {table.name} has no counterpart in the migrated target")
            dst.execute(text(f'ALTER TABLE "{table.name}" DISABLE TRIGGER USER'))
            dst.execute(into.delete())
            columns = [c.name for c in table.columns if c.name in into.columns]
            result = src.execute(select(*(table.c[c] for c in columns)))
            while rows := result.fetchmany(BATCH):
                dst.execute(into.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
            dst.execute(text(f'ALTER TABLE "{table.name}" ENABLE TRIGGER USER'))
            for column in into.primary_key.columns:
                sequence = dst.execute(
                    text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
                ).scalar()
                if sequence:
                    dst.execute(
                        text(f'SELECT setval(:s, COALESCE((SELECT max("{column.name}") FROM "{table.name}"), 0) + 1, '
                             "false)"),
                        {"s": sequence},
                    )
    for table in _tables(source):
        counts.append(TableCount(source.schema, table.name, _count(source, table.name), _count(target, table.name)))
    return counts


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--to", required=True, metavar="URL", help="postgresql+psycopg://user@host:5432/database")
    parser.add_argument("--data-dir", type=Path, help="the SQLite data dir to copy (default: the settings' data_dir)")
    parser.add_argument("--replace", action="store_true", help="drop the stores the target already holds first")
    args = parser.parse_args(argv)
    url = DatabaseSettings(url=args.to).url.get_secret_value()  # the setting's own check of the URL
    settings = load_settings()
    data_dir = args.data_dir or settings.data_dir
    files = {schema: path for schema, path in sqlite_files(data_dir).items() if path.is_file()}
    if not files:
        raise CQAError(f"no SQLite stores in {data_dir}")
    present = existing_stores(url, list(files))
    if present and not args.replace:
        raise CQAError(f"the target already holds {', '.join(present)}: refusing to copy over it"
                       " (--replace drops them)")
    if present:
        drop_stores(url, present)
    mismatched = []
    for schema, path in files.items():
        source, target = Database(path, schema), Database(url, schema)
        try:
            for count in copy_store(source, target):
                print(f"{count.schema}.{count.table}: {count.source} rows -> {count.target}")
                if count.source != count.target:
                    mismatched.append(f"{count.schema}.{count.table}")
        finally:
            source.dispose()
            target.dispose()
    if mismatched:
        raise CQAError(f"row counts differ after the copy: {', '.join(mismatched)}")
    if "audit" in files:
        anchor = settings.security.audit_anchor_path or data_dir / ANCHOR_FILE_NAME
        key = settings.security.audit_anchor_key.get_secret_value() or None
        result = AuditLog(url, anchor_path=anchor, anchor_key=key).verify()
        if not result.ok:
            raise CQAError(f"the copied audit log does not verify: {result.reason}")
        print(f"audit chain: {result.records} records verify in the target")
    shown = make_url(url).render_as_string(hide_password=True)
    print(f"==> {len(files)} stores copied to {shown}; now set database.url to it")
    return 0


if __name__ == "__main__":
    run(PROG, main)
