"""sessions.sqlite3: signed-in browser sessions, so a reload keeps the sign-in until it is revoked or idle."""

import sqlalchemy as sa
from alembic import op

revision = "sessions_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("sid_hash", sa.Text, primary_key=True),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("via", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("revoked_why", sa.Text),
    )
    op.create_index("web_sessions_user", "web_sessions", ["user"])
