"""Tamper-evident audit trail: an append-only, hash-chained log on SQLite."""

from audit.log import (
    ACTIONS,
    AUDIT_DB_NAME,
    Action,
    AuditError,
    AuditLog,
    AuditRecord,
    VerifyResult,
)

__all__ = [
    "ACTIONS",
    "AUDIT_DB_NAME",
    "Action",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "VerifyResult",
]
