"""feedback.sqlite3: thumbs up/down with a comment on an answer."""

import sqlalchemy as sa
from alembic import op

revision = "feedback_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.Text),
        sa.Column("user", sa.Text),
        sa.Column("question", sa.Text),
        sa.Column("answer", sa.Text),
        sa.Column("positive", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("citations", sa.Text),
        sa.Column("prompt_version", sa.Text),
        sa.Column("model", sa.Text),
    )
