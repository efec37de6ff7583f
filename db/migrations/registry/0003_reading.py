"""What read and chunked each version (``ingest.reading``): a stored file read by an older reader or chunker is read
again when it is ingested again. Versions stored before have '' (not known), so they are read again too."""

import sqlalchemy as sa
from alembic import op

revision = "registry_0003"
down_revision = "registry_0002"


def upgrade() -> None:
    op.add_column("documents", sa.Column("reading", sa.Text, nullable=False, server_default=""))
