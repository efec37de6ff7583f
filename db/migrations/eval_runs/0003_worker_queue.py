"""The evaluation worker's queue (eval/worker_queue.py): one row per job the app enqueues and a worker claims,
and one per worker process with its last heartbeat."""

import sqlalchemy as sa
from alembic import op

revision = "eval_runs_0003"
down_revision = "eval_runs_0002"


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("snapshot", sa.Text),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("worker", sa.Text),
        sa.Column("claimed_at", sa.Double),
        sa.Column("heartbeat_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("cancel", sa.Integer, nullable=False, server_default="0"),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("current_id", sa.Text),
        sa.Column("current_question", sa.Text),
        sa.Column("stage", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("seconds_left", sa.Double),
        sa.Column("run_id", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("failure", sa.Text),
        sa.Column("result", sa.Text),
    )
    op.create_index("jobs_status", "jobs", ["status", "id"])
    op.create_table(
        "workers",
        sa.Column("worker", sa.Text, primary_key=True),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("heartbeat_at", sa.Double, nullable=False),
        sa.Column("parent_pid", sa.Integer),
    )
