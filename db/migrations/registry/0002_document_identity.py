"""Document identity: the path a version was ingested from, and suggested editions awaiting an admin.

A registry from before Alembic may have either already: each is added only when missing."""

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "source_path" not in {c["name"] for c in inspector.get_columns("documents")}:
        op.add_column("documents", sa.Column("source_path", sa.Text, nullable=False, server_default=""))
    if not inspector.has_table("edition_suggestions"):
        op.create_table(
            "edition_suggestions",
            sa.Column("doc_id", sa.Text, nullable=False),
            sa.Column("of_doc_id", sa.Text, nullable=False),
            sa.Column("overlap", sa.REAL, nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("doc_id", "of_doc_id"),
        )
