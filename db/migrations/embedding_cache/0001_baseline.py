"""embeddings.sqlite3: vectors keyed by a hash of (embedder, text)."""

import sqlalchemy as sa
from alembic import op

revision = "embedding_cache_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "vectors",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
