"""On PostgreSQL, user names ignore case as they do on SQLite (NOCASE, 0001): the name column gets a
nondeterministic ICU collation, so ``alice`` and ``ALICE`` are one key in lookups and in the primary key.
Nothing on SQLite."""

from alembic import op

revision = "users_0003"
down_revision = "users_0002"


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("CREATE COLLATION cqa_nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
    op.execute("ALTER TABLE users ALTER COLUMN name TYPE text COLLATE cqa_nocase")
