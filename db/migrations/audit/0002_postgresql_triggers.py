"""On PostgreSQL, the same append-only guards as the SQLite triggers of 0001 (same names, same messages):
one trigger function that refuses the change with its argument as the message. Nothing on SQLite."""

from alembic import op

revision = "audit_0002"
down_revision = "audit_0001"

_REFUSE = (
    "CREATE FUNCTION cqa_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$"
)
_TRIGGERS = (
    ("audit_no_update", "BEFORE UPDATE ON audit", "", "audit log is append-only: records cannot be changed"),
    ("audit_no_delete", "BEFORE DELETE ON audit", "", "audit log is append-only: records cannot be deleted"),
    ("anchors_no_update", "BEFORE UPDATE ON anchors", "", "audit anchors cannot be changed"),
    ("anchors_no_delete", "BEFORE DELETE ON anchors", "", "audit anchors cannot be deleted"),
    (
        "head_no_rewind", "BEFORE UPDATE ON head",
        "WHEN (NEW.last_id < OLD.last_id OR (NEW.last_id = OLD.last_id AND NEW.last_hash <> OLD.last_hash))",
        "the audit head cannot be moved back",
    ),
    ("head_no_delete", "BEFORE DELETE ON head", "", "the audit head cannot be deleted"),
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_REFUSE)
    for name, when, condition, message in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} {when} FOR EACH ROW {condition} EXECUTE FUNCTION cqa_audit_refuse('{message}')"
        )
