"""audit.sqlite3: the hash-chained log, its one-row head and the anchors of retention purges.

On SQLite, triggers make the log and the anchors append-only and keep the head from moving back
(audit.log names them and warns when one is missing); their text is exactly what the log wrote before
Alembic, and ``audit_no_delete`` is recreated by ``AuditLog.purge_before`` from ``audit.log``'s copy."""

import sqlalchemy as sa
from alembic import op

revision = "audit_0001"
down_revision = None

GENESIS_HASH = "0" * 64
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit\n"
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be changed'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted'); END",
    "CREATE TRIGGER anchors_no_update BEFORE UPDATE ON anchors\n"
    "BEGIN SELECT RAISE(ABORT, 'audit anchors cannot be changed'); END",
    "CREATE TRIGGER anchors_no_delete BEFORE DELETE ON anchors\n"
    "BEGIN SELECT RAISE(ABORT, 'audit anchors cannot be deleted'); END",
    "CREATE TRIGGER head_no_rewind BEFORE UPDATE ON head\n"
    "WHEN NEW.last_id < OLD.last_id OR (NEW.last_id = OLD.last_id AND NEW.last_hash != OLD.last_hash)\n"
    "BEGIN SELECT RAISE(ABORT, 'the audit head cannot be moved back'); END",
    "CREATE TRIGGER head_no_delete BEFORE DELETE ON head\n"
    "BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END",
)


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("detail_json", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("audit_ts", "audit", ["ts"])
    op.create_index("audit_user", "audit", ["user", "id"])
    op.create_index("audit_action", "audit", ["action", "id"])
    head = op.create_table(
        "head",
        sa.Column("k", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.Text, nullable=False),
        sa.Column("last_ts", sa.Text, nullable=False),
        sa.CheckConstraint("k = 1", name="head_one_row"),
    )
    op.bulk_insert(head, [{"k": 1, "count": 0, "last_id": 0, "last_hash": GENESIS_HASH, "last_ts": ""}])
    op.create_table(
        "anchors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("cutoff", sa.Text, nullable=False),
        sa.Column("first_purged_id", sa.Integer, nullable=False),
        sa.Column("last_purged_id", sa.Integer, nullable=False),
        sa.Column("last_purged_hash", sa.Text, nullable=False),
        sa.Column("purged_count", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    if op.get_context().dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("PRAGMA user_version = 1")
