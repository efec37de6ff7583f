"""Single sign-on accounts (``users.source``) and failure counts of names that are not accounts.

A users file from before Alembic may have either already: each is added only when missing."""

import sqlalchemy as sa
from alembic import op

revision = "users_0002"
down_revision = "users_0001"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "source" not in {c["name"] for c in inspector.get_columns("users")}:
        op.add_column("users", sa.Column("source", sa.Text, nullable=False, server_default="password"))
    if not inspector.has_table("failed_names"):
        op.create_table(
            "failed_names",
            sa.Column("name_key", sa.Text, primary_key=True),
            sa.Column("failed_attempts", sa.Integer, nullable=False),
            sa.Column("locked_until", sa.Text),
            sa.Column("updated_at", sa.Text, nullable=False),
        )
