"""conversations.sqlite3: each user's conversations with the app, message by message (answers with their
citations as the answer service returned them), kept until the retention period after the last message."""

import sqlalchemy as sa
from alembic import op

revision = "conversations_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("conversations_user", "conversations", ["user", "updated_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("as_of", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("messages_conversation", "messages", ["conversation_id", "id"])
