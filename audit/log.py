"""Append-only, hash-chained audit log on SQLite.

Every record carries ``prev_hash`` (the previous record's hash, or 64 zeros for the first)
and ``hash = sha256(canonical JSON of [id, ts, user, action, detail, prev_hash])``, so
editing, deleting or reordering a record breaks the chain. A one-row ``head`` table,
updated in the same transaction as every append, holds the record count and the last
id/hash, so deleting records at the end is detected too. Triggers make ``UPDATE`` and
``DELETE`` on the log and the anchors fail, and refuse to move the head back, so casual
edits with a SQLite tool are refused; ``verify`` warns when a trigger was dropped.

Retention (:meth:`AuditLog.purge_before`) deletes a prefix of the log in one transaction,
stores an anchor (the hash of the last purged record) in ``anchors`` so the remaining
chain still verifies, and appends a ``purge`` record describing what was removed.

What this does not protect against: someone with write access to the file who rewrites
the whole chain and the head consistently. Keep the head hash that ``verify`` reports
somewhere else (ticket, e-mail, printed report) to detect that.

Timestamps are UTC, stored as fixed-width ISO text (``2025-04-01T09:30:00.123456Z``), and
never go backwards within one log (a clock step back re-uses the last timestamp).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path, PurePath
from typing import IO, Any, Literal

from core.errors import CQAError
from core.sqlite import immediate_transaction

AUDIT_DB_NAME = "audit.sqlite3"
GENESIS_HASH = "0" * 64
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MAX_USER_LEN = 256

Action = Literal[
    "ask",
    "answer",
    "refuse",
    "feedback",
    "ingest",
    "withdraw",
    "delete",
    "restore",
    "confirm_edition",
    "dismiss_edition",
    "login",
    "login_failed",
    "unrestricted_scope",
    "logout",
    "eval_run",
    "eval_testset",
    "settings_change",
    "user_change",
    "purge",
]
ACTIONS: frozenset[str] = frozenset(Action.__args__)  # type: ignore[attr-defined]
"""Valid actions. ``purge`` is written by :meth:`AuditLog.purge_before` itself."""

CSV_COLUMNS = ("id", "ts", "user", "action", "detail_json", "prev_hash", "hash")
_TRIGGERS = (
    "audit_no_update",
    "audit_no_delete",
    "anchors_no_update",
    "anchors_no_delete",
    "head_no_rewind",
    "head_no_delete",
)
_NO_DELETE_TRIGGER = (
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted'); END"
)
_SCHEMA = f"""
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_ts ON audit(ts);
CREATE INDEX audit_user ON audit(user, id);
CREATE INDEX audit_action ON audit(action, id);
CREATE TABLE head (
    k INTEGER PRIMARY KEY CHECK (k = 1),
    count INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    last_ts TEXT NOT NULL
);
INSERT INTO head (k, count, last_id, last_hash, last_ts) VALUES (1, 0, 0, '{GENESIS_HASH}', '');
CREATE TABLE anchors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    cutoff TEXT NOT NULL,
    first_purged_id INTEGER NOT NULL,
    last_purged_id INTEGER NOT NULL,
    last_purged_hash TEXT NOT NULL,
    purged_count INTEGER NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be changed'); END;
{_NO_DELETE_TRIGGER};
CREATE TRIGGER anchors_no_update BEFORE UPDATE ON anchors
BEGIN SELECT RAISE(ABORT, 'audit anchors cannot be changed'); END;
CREATE TRIGGER anchors_no_delete BEFORE DELETE ON anchors
BEGIN SELECT RAISE(ABORT, 'audit anchors cannot be deleted'); END;
CREATE TRIGGER head_no_rewind BEFORE UPDATE ON head
WHEN NEW.last_id < OLD.last_id OR (NEW.last_id = OLD.last_id AND NEW.last_hash != OLD.last_hash)
BEGIN SELECT RAISE(ABORT, 'the audit head cannot be moved back'); END;
CREATE TRIGGER head_no_delete BEFORE DELETE ON head
BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END;
PRAGMA user_version = 1;
"""

# One lock per database file, shared by every AuditLog instance in this process, so threads
# queue here instead of spinning in SQLite's busy handler; BEGIN IMMEDIATE covers processes.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> threading.Lock:
    key = os.path.normcase(str(path.resolve()))
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


class AuditError(CQAError):
    """The audit log cannot be written or read as asked (for example a broken chain)."""


@dataclass(frozen=True)
class AuditRecord:
    id: int
    ts: datetime
    user: str
    action: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": format_ts(self.ts),
            "user": self.user,
            "action": self.action,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    """Records checked (those still in the log after retention purges)."""
    first_bad_id: int | None
    """The first id that is missing, altered or out of chain; None when ok (or not per record)."""
    reason: str
    head_hash: str = GENESIS_HASH
    """The hash of the last record (keep it outside the machine to detect full rewrites)."""
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"warnings": list(self.warnings)}


# --------------------------------------------------------------------------- helpers


def format_ts(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(TS_FORMAT)


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, TS_FORMAT).replace(tzinfo=UTC)


def _bound(value: datetime | date | str | None, *, upper: bool) -> str | None:
    """A search bound as timestamp text. Dates are whole UTC days: ``until`` includes its day."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not an ISO date or date-time: {value!r}") from exc
    if not isinstance(value, datetime):
        day = value + timedelta(days=1) if upper else value
        value = datetime.combine(day, time.min, tzinfo=UTC)
    return format_ts(value)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    dump = getattr(obj, "model_dump", None)  # pydantic models
    if callable(dump):
        return dump(mode="json")
    return str(obj)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 text kept as is, no NaN/Infinity."""
    return json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_json_default,
    )


def record_hash(
    record_id: int, ts: str, user: str, action: str, detail: Any, prev_hash: str
) -> str:
    payload = canonical_json([record_id, ts, user, action, detail, prev_hash])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --------------------------------------------------------------------------- the log


class AuditLog:
    """The audit log in ``db_path`` (normally ``data_dir / "audit.sqlite3"``).

    Safe to share between threads and to use from several processes at once: every call
    opens its own connection and appends run under ``BEGIN IMMEDIATE``.
    """

    def __init__(
        self,
        db_path: Path | str,
        *,
        busy_timeout: float = 30.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self._busy_timeout = busy_timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = _file_lock(self.db_path)
        self._init()

    @classmethod
    def from_settings(cls, settings: Any) -> AuditLog:
        return cls(Path(settings.data_dir) / AUDIT_DB_NAME)

    # ----------------------------------------------------------------- connection

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.db_path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: one thread of this process at a time, one process at a time."""
        with self._lock, self._connection() as conn, immediate_transaction(conn):
            yield conn

    def _init(self) -> None:
        """Create the schema in a new file; an existing log is left exactly as found."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.db_path.exists()
        with self._lock, self._connection() as conn:
            if created:
                os.chmod(self.db_path, 0o600)
            conn.execute("PRAGMA journal_mode = WAL")
            with immediate_transaction(conn):
                exists = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"
                ).fetchone()
                if not exists:
                    for statement in _SCHEMA.split(";\n"):
                        if statement.strip():
                            conn.execute(statement)

    # ----------------------------------------------------------------- append

    def append(self, user: str, action: str, detail: dict[str, Any] | None = None) -> int:
        """Append one record and return its id. ``detail`` must be JSON-serialisable-ish:
        datetimes, dates, paths, sets, dataclasses and pydantic models are converted."""
        user, action, detail_json = self._validate(user, action, detail)
        with self._write() as conn:
            return self._append_in(conn, user, action, detail_json)

    @staticmethod
    def _validate(user: str, action: str, detail: dict[str, Any] | None) -> tuple[str, str, str]:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r} (known: {', '.join(sorted(ACTIONS))})")
        if not isinstance(user, str) or not user.strip():
            raise ValueError("audit user must be a non-empty string")
        user = "".join(ch if ch.isprintable() else "?" for ch in user.strip())[:MAX_USER_LEN]
        if detail is None:
            detail = {}
        if not isinstance(detail, dict):
            raise TypeError("audit detail must be a dict")
        try:
            detail_json = canonical_json(detail)
        except ValueError as exc:  # NaN / Infinity, circular references
            raise ValueError(f"audit detail is not valid JSON: {exc}") from exc
        return user, action, detail_json

    def _append_in(self, conn: sqlite3.Connection, user: str, action: str, detail_json: str) -> int:
        count, last_id, last_hash, last_ts = conn.execute(
            "SELECT count, last_id, last_hash, last_ts FROM head WHERE k = 1"
        ).fetchone()
        ts = max(format_ts(self._clock()), last_ts)
        record_id = last_id + 1
        digest = record_hash(record_id, ts, user, action, json.loads(detail_json), last_hash)
        try:
            conn.execute(
                "INSERT INTO audit (id, ts, user, action, detail_json, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record_id, ts, user, action, detail_json, last_hash, digest),
            )
        except sqlite3.IntegrityError as exc:
            raise AuditError(
                f"audit log is inconsistent (record {record_id} already exists); run verify"
            ) from exc
        conn.execute(
            "UPDATE head SET count = ?, last_id = ?, last_hash = ?, last_ts = ? WHERE k = 1",
            (count + 1, record_id, digest, ts),
        )
        return record_id

    # ----------------------------------------------------------------- verify

    def verify(self) -> VerifyResult:
        """Check the whole chain, the anchors of past purges and the head."""
        with self._connection() as conn:
            conn.execute("BEGIN")  # one consistent snapshot
            try:
                return self._verify_in(conn)
            finally:
                conn.execute("ROLLBACK")

    def _verify_in(self, conn: sqlite3.Connection) -> VerifyResult:
        warnings: list[str] = []
        present = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        missing = [t for t in _TRIGGERS if t not in present]
        if missing:
            warnings.append(f"append-only trigger(s) missing: {', '.join(missing)}")

        expected_prev = GENESIS_HASH
        expected_id = 1
        for _aid, first, last, last_hash in conn.execute(
            "SELECT id, first_purged_id, last_purged_id, last_purged_hash FROM anchors ORDER BY id"
        ):
            if first != expected_id or last < first:
                return VerifyResult(
                    False, 0, first, f"retention anchors are inconsistent (purge of {first}..{last})",
                    warnings=tuple(warnings),
                )
            expected_id, expected_prev = last + 1, last_hash

        def bad(rid: int | None, reason: str, n: int) -> VerifyResult:
            return VerifyResult(False, n, rid, reason, expected_prev, tuple(warnings))

        n = 0
        prev_ts = ""
        rows = conn.execute(
            "SELECT id, ts, user, action, detail_json, prev_hash, hash FROM audit ORDER BY id"
        )
        for rid, ts, user, action, detail_json, prev_hash, digest in rows:
            if rid != expected_id:
                if rid < expected_id:
                    return bad(rid, f"record {rid} precedes the retention anchor (re-inserted?)", n)
                gap = f"{expected_id}" if rid == expected_id + 1 else f"{expected_id}..{rid - 1}"
                return bad(expected_id, f"record(s) {gap} missing (deleted) before record {rid}", n)
            if prev_hash != expected_prev:
                return bad(
                    rid,
                    f"record {rid} does not link to the previous record "
                    "(it or its predecessor was altered, deleted or reordered)",
                    n,
                )
            try:
                detail = json.loads(detail_json)
            except (TypeError, ValueError):
                return bad(rid, f"record {rid} detail is not valid JSON (edited)", n)
            if record_hash(rid, ts, user, action, detail, prev_hash) != digest:
                return bad(rid, f"record {rid} content does not match its hash (edited)", n)
            if action not in ACTIONS:
                return bad(rid, f"record {rid} has an unknown action {action!r}", n)
            if not isinstance(ts, str) or ts < prev_ts:
                return bad(rid, f"record {rid} is older than its predecessor (reordered)", n)
            prev_ts = ts
            expected_prev = digest
            expected_id += 1
            n += 1

        head = conn.execute("SELECT count, last_id, last_hash FROM head WHERE k = 1").fetchone()
        if head is None:
            return bad(None, "head record is missing", n)
        h_count, h_last_id, h_last_hash = head
        last_id = expected_id - 1
        if h_last_id > last_id:
            gap = f"{last_id + 1}" if h_last_id == last_id + 1 else f"{last_id + 1}..{h_last_id}"
            return bad(last_id + 1, f"record(s) {gap} missing (deleted) at the end of the log", n)
        if h_last_id < last_id:
            return bad(h_last_id + 1, f"record(s) after {h_last_id} were added outside the log API", n)
        if h_last_hash != expected_prev:
            return bad(last_id or None, f"the last record {last_id} does not match the head hash", n)
        if h_count != n:
            return bad(None, f"head counts {h_count} records but {n} are present", n)
        return VerifyResult(True, n, None, "chain intact", expected_prev, tuple(warnings))

    # ----------------------------------------------------------------- retention

    def purge_before(
        self, cutoff: datetime | date | str, *, actor: str = "system", dry_run: bool = False
    ) -> int:
        """Delete every record older than ``cutoff`` (a date means 00:00 UTC of that day).

        Refuses when the chain does not verify (so retention cannot launder a tampered log).
        Runs in one transaction: drop the delete trigger, delete the prefix, store the anchor,
        recreate the trigger, append a ``purge`` record. Returns the number of records purged.
        """
        bound = _bound(cutoff, upper=False)
        assert bound is not None
        if bound > format_ts(self._clock()):
            raise AuditError(f"refusing to purge: the cutoff {bound} is in the future")
        with self._write() as conn:
            result = self._verify_in(conn)
            if not result.ok:
                raise AuditError(f"refusing to purge: audit log does not verify: {result.reason}")
            # Timestamps never decrease, so the old records are a prefix of the log.
            (last_id,) = conn.execute("SELECT max(id) FROM audit WHERE ts < ?", (bound,)).fetchone()
            if last_id is None:
                return 0
            first_id, count = conn.execute(
                "SELECT min(id), count(*) FROM audit WHERE id <= ?", (last_id,)
            ).fetchone()
            if dry_run:
                return count
            (last_hash,) = conn.execute("SELECT hash FROM audit WHERE id = ?", (last_id,)).fetchone()
            conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")  # recreated just below
            conn.execute("DELETE FROM audit WHERE id <= ?", (last_id,))
            conn.execute(_NO_DELETE_TRIGGER)
            conn.execute(
                "INSERT INTO anchors (created_at, cutoff, first_purged_id, last_purged_id,"
                " last_purged_hash, purged_count) VALUES (?, ?, ?, ?, ?, ?)",
                (format_ts(self._clock()), bound, first_id, last_id, last_hash, count),
            )
            conn.execute("UPDATE head SET count = count - ? WHERE k = 1", (count,))
            detail = {
                "cutoff": bound,
                "purged_count": count,
                "first_purged_id": first_id,
                "last_purged_id": last_id,
                "anchor_hash": last_hash,
            }
            user, action, detail_json = self._validate(actor, "purge", detail)
            self._append_in(conn, user, action, detail_json)
            return count

    # ----------------------------------------------------------------- reading

    def head(self) -> tuple[int, int, str]:
        """(records present, last id, last hash)."""
        with self._connection() as conn:
            count, last_id, last_hash = conn.execute(
                "SELECT count, last_id, last_hash FROM head WHERE k = 1"
            ).fetchone()
        return count, last_id, last_hash

    def anchors(self) -> list[dict[str, Any]]:
        with self._connection() as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM anchors ORDER BY id")]

    @staticmethod
    def _where(
        user: str | None,
        action: str | None,
        text: str | None,
        since: datetime | date | str | None,
        until: datetime | date | str | None,
    ) -> tuple[str, list[Any]]:
        conds: list[str] = []
        args: list[Any] = []
        if user:
            conds.append("user = ?")
            args.append(user)
        if action:
            if action not in ACTIONS:
                raise ValueError(f"unknown audit action {action!r}")
            conds.append("action = ?")
            args.append(action)
        if text:
            conds.append("detail_json LIKE ? ESCAPE '\\'")
            args.append(_like_pattern(text))
        lo, hi = _bound(since, upper=False), _bound(until, upper=True)
        if lo:
            conds.append("ts >= ?")
            args.append(lo)
        if hi:
            conds.append("ts < ?")
            args.append(hi)
        return (" WHERE " + " AND ".join(conds)) if conds else "", args

    def search(
        self,
        user: str | None = None,
        action: str | None = None,
        text: str | None = None,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        limit: int = 200,
    ) -> list[AuditRecord]:
        """Newest first. ``text`` is a case-insensitive substring of the detail JSON;
        ``since`` is inclusive, ``until`` exclusive (a date ``until`` includes that whole day)."""
        where, args = self._where(user, action, text, since, until)
        limit = max(0, min(int(limit), 100_000))
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, ts, user, action, detail_json, prev_hash, hash FROM audit"
                f"{where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: tuple) -> AuditRecord:
        rid, ts, user, action, detail_json, prev_hash, digest = row
        try:
            detail = json.loads(detail_json)
        except (TypeError, ValueError):
            detail = {"_unparseable": str(detail_json)}
        return AuditRecord(rid, parse_ts(ts), user, action, detail, prev_hash, digest)

    def export_csv(
        self,
        path_or_file: Path | str | IO[str],
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
    ) -> int:
        """Write the records in [since, until) as CSV (oldest first, UTF-8); return the count.

        Columns: id, ts, user, action, detail_json, prev_hash, hash. A ``user`` that starts
        with a spreadsheet formula character is prefixed with ``'``.
        """
        if isinstance(path_or_file, str | PurePath):
            with open(path_or_file, "w", encoding="utf-8", newline="") as fh:
                return self.export_csv(fh, since, until)
        where, args = self._where(None, None, None, since, until)
        writer = csv.writer(path_or_file)
        writer.writerow(CSV_COLUMNS)
        n = 0
        with self._connection() as conn:
            for rid, ts, user, action, detail_json, prev_hash, digest in conn.execute(
                "SELECT id, ts, user, action, detail_json, prev_hash, hash FROM audit"
                f"{where} ORDER BY id",
                args,
            ):
                writer.writerow([rid, ts, _csv_safe(user), action, detail_json, prev_hash, digest])
                n += 1
        return n


__all__ = [
    "ACTIONS",
    "AUDIT_DB_NAME",
    "GENESIS_HASH",
    "Action",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "VerifyResult",
    "canonical_json",
    "record_hash",
]
