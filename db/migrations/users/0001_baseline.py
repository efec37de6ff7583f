"""users.sqlite3 as the first releases wrote it: the users table (before single sign-on accounts)."""

import sqlalchemy as sa
from alembic import op

revision = "users_0001"
down_revision = None


def upgrade() -> None:
    # User names are case-insensitive: SQLite's NOCASE collation on the key (PostgreSQL needs citext or a
    # unique index on lower(name) instead).
    name_type = sa.Text(collation="NOCASE") if op.get_context().dialect.name == "sqlite" else sa.Text()
    op.create_table(
        "users",
        sa.Column("name", name_type, primary_key=True),
        sa.Column("pw_hash", sa.Text, nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("groups_json", sa.Text, nullable=False),
        sa.Column("disabled", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("password_changed_at", sa.Text, nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("locked_until", sa.Text),
        sa.Column("must_change_password", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_login_at", sa.Text),
    )
