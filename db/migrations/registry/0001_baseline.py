"""registry.sqlite3 as the first releases wrote it: every version of every document, and a key/value table."""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("doc_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("doc_key", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("doc_type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("effective_from", sa.Text),
        sa.Column("effective_to", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("access", sa.Text, nullable=False),
        sa.Column("ingested_at", sa.Text, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("chunks", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),
        sa.Column("store_synced", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("doc_id", "version"),
    )
    op.create_index("documents_sha", "documents", ["sha256"])
    op.create_index("documents_key", "documents", ["doc_key"])
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
