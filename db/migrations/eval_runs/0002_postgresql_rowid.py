"""On PostgreSQL, a ``rowid`` column numbering runs in insertion order, as SQLite's implicit rowid does (the
run store breaks ties between runs created in the same second with it). Nothing on SQLite."""

from alembic import op

revision = "eval_runs_0002"
down_revision = "eval_runs_0001"


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE runs ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY")
