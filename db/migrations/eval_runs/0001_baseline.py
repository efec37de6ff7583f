"""eval/runs.sqlite3: one row per evaluation run, one per answered sample."""

import sqlalchemy as sa
from alembic import op

revision = "eval_runs_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("finished_at", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("testset", sa.Text, nullable=False),
        sa.Column("testset_sha256", sa.Text, nullable=False),
        sa.Column("config_key", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("judge", sa.Text),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("case_ids", sa.Text, nullable=False),
        sa.Column("aggregate", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.Column("label", sa.Text),
    )
    op.create_index("runs_key", "runs", ["config_key", "status"])
    op.create_table(
        "samples",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("case_id", sa.Text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "case_id"),
    )
