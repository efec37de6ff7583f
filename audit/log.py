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

Someone with write access to the file can drop the triggers and rewrite the chain and the
head consistently, or cut off the last records. The head anchor (:mod:`audit.anchor`), a line
per record in a file outside the database written before each append commits, detects that:
``verify`` checks the log against it, and a log with records but no anchor does not verify.

Timestamps are UTC, stored as fixed-width ISO text (``2025-04-01T09:30:00.123456Z``), and
never go backwards within one log (a clock step back re-uses the last timestamp).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path, PurePath
from typing import IO, Any, Literal

from sqlalchemy import (
    CheckConstraint,
    Column,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError

from audit.anchor import ANCHOR_FILE_NAME, AnchorError, AnchorLine, HeadAnchor, span
from audit.records import readable_detail, withheld
from core.errors import CQAError
from core.schema import SearchFilter
from db import Database

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
    "conversation",
    "purge",
    "anchor",
]
ACTIONS: frozenset[str] = frozenset(Action.__args__)  # type: ignore[attr-defined]
"""Valid actions. ``purge`` and ``anchor`` are written by :meth:`AuditLog.purge_before` and
:meth:`AuditLog.init_anchor` themselves."""

CSV_COLUMNS = ("id", "ts", "user", "action", "detail_json", "prev_hash", "hash")
_TRIGGERS = (
    "audit_no_update",
    "audit_no_delete",
    "anchors_no_update",
    "anchors_no_delete",
    "head_no_rewind",
    "head_no_delete",
)
_NO_DELETE_TRIGGER = (  # as db/migrations/audit/0001_baseline.py creates it; purge_before drops and recreates it
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted'); END"
)
_METADATA = MetaData()
AUDIT = Table(
    "audit",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("ts", Text, nullable=False),
    Column("user", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("detail_json", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    sqlite_autoincrement=True,
)
HEAD = Table(
    "head",
    _METADATA,
    Column("k", Integer, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
    Column("last_id", Integer, nullable=False),
    Column("last_hash", Text, nullable=False),
    Column("last_ts", Text, nullable=False),
    CheckConstraint("k = 1", name="head_one_row"),
)
"""One row (k = 1): the record count and the last record's id, hash and time."""
ANCHORS = Table(
    "anchors",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("cutoff", Text, nullable=False),
    Column("first_purged_id", Integer, nullable=False),
    Column("last_purged_id", Integer, nullable=False),
    Column("last_purged_hash", Text, nullable=False),
    Column("purged_count", Integer, nullable=False),
    sqlite_autoincrement=True,
)
_A, _H = AUDIT.c, HEAD.c
_RECORD = (_A.id, _A.ts, _A.user, _A.action, _A.detail_json, _A.prev_hash, _A.hash)
_HEAD_ROW = select(_H.count, _H.last_id, _H.last_hash).where(_H.k == 1)
_TS_FILTER = literal_column("+ts", Text)
"""``ts`` as a filter on the rows read: SQLite's unary ``+`` keeps the planner from sorting by the ts index."""

# One lock per database file, shared by every AuditLog instance in this process, so threads
# queue here instead of spinning in SQLite's busy handler; BEGIN IMMEDIATE covers processes.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path | str) -> threading.Lock:
    key = path if isinstance(path, str) else os.path.normcase(str(path.resolve()))
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
    """The hash of the last record checked."""
    warnings: tuple[str, ...] = ()
    anchored_id: int | None = None
    """The record the head anchor's last line names (None when not checked, or no anchor yet)."""
    anchor_signed: bool = False

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


_STRING_JSON = json.JSONEncoder(ensure_ascii=False).encode
"""A string as :func:`canonical_json` writes it (one encoder, not one per call)."""


def _stored_hash(record_id: int, ts: str, user: str, action: str, detail_json: str, prev_hash: str) -> str:
    """:func:`record_hash` over the stored detail text as it is: the same bytes when the detail was
    stored canonical (every append does that), without parsing and re-serialising it."""
    dump = _STRING_JSON
    payload = f"[{record_id},{dump(ts)},{dump(user)},{dump(action)},{detail_json},{dump(prev_hash)}]"
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Walk:
    """Where a verification stands: the next expected record and hash, records checked so far."""

    warnings: list[str]
    expected_id: int = 1
    expected_prev: str = GENESIS_HASH
    n: int = 0
    purged: dict[int, str] = dataclasses.field(default_factory=dict)
    """Last id of each retention purge -> its hash (to check the anchor lines of purged records)."""

    def bad(self, rid: int | None, reason: str) -> VerifyResult:
        return VerifyResult(False, self.n, rid, reason, self.expected_prev, tuple(self.warnings))

    def result(self, reason: str, *, anchor: HeadAnchor | None = None, anchored_id: int | None = None) -> VerifyResult:
        signed = anchor.signed if anchor is not None else False
        return VerifyResult(True, self.n, None, reason, self.expected_prev, tuple(self.warnings), anchored_id, signed)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --------------------------------------------------------------------------- the log


class AuditLog:
    """The audit log in ``db_path`` (normally ``data_dir / "audit.sqlite3"``) and its head
    anchor in ``anchor_path`` (default: ``audit-anchor.jsonl`` next to the database).

    Safe to share between threads and to use from several processes at once: every call
    opens its own connection and appends run under ``BEGIN IMMEDIATE``. Every process that
    writes one log must use the same anchor path and key (they come from the settings).
    """

    def __init__(
        self,
        db_path: Path | str,
        *,
        anchor_path: Path | str | None = None,
        anchor_key: str | None = None,
        busy_timeout: float = 30.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        is_url = isinstance(db_path, str) and "://" in db_path
        self.db_path: Path | str = db_path if is_url else Path(db_path)
        if anchor_path is None and isinstance(self.db_path, str):
            raise AuditError("an audit log in a database server needs an anchor path (security.audit_anchor_path)")
        self.anchor = HeadAnchor(
            Path(anchor_path) if anchor_path else Path(self.db_path).with_name(ANCHOR_FILE_NAME), anchor_key
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = _file_lock(self.db_path)
        with self._lock:  # a new log's schema is created once (db.migrate); an existing log is left as found
            self._db = Database(
                self.db_path, "audit", busy_timeout=busy_timeout, file_mode=0o600,
                wal=True, pragmas=("synchronous=FULL",),
            )

    @classmethod
    def from_settings(cls, settings: Any) -> AuditLog:
        security = settings.security
        data_dir = Path(settings.data_dir)
        return cls(
            settings.database.target(data_dir / AUDIT_DB_NAME),
            anchor_path=security.audit_anchor_path or data_dir / ANCHOR_FILE_NAME,
            anchor_key=security.audit_anchor_key.get_secret_value() or None,
        )

    # ----------------------------------------------------------------- connection

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with self._db.read() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: one thread of this process at a time, one process at a time."""
        with self._lock, self._db.write() as conn:
            yield conn

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

    def _append_in(
        self, conn: Connection, user: str, action: str, detail_json: str, *, init: bool = False
    ) -> int:
        """Insert the record and move the head, then write its anchor line; the caller commits.

        The line goes out before the commit, while the write lock is held: a record is never
        committed without its line (a failed anchor write rolls the record back), and lines
        are in record order across processes."""
        count, last_id, last_hash, last_ts = conn.execute(
            select(_H.count, _H.last_id, _H.last_hash, _H.last_ts).where(_H.k == 1).with_for_update()
        ).one()
        ts = max(format_ts(self._clock()), last_ts)
        record_id = last_id + 1
        digest = record_hash(record_id, ts, user, action, json.loads(detail_json), last_hash)
        try:
            conn.execute(
                insert(AUDIT).values(
                    id=record_id, ts=ts, user=user, action=action, detail_json=detail_json, prev_hash=last_hash,
                    hash=digest,
                )
            )
        except IntegrityError as exc:
            raise AuditError(
                f"audit log is inconsistent (record {record_id} already exists); run verify"
            ) from exc
        conn.execute(
            update(HEAD).where(_H.k == 1).values(count=count + 1, last_id=record_id, last_hash=digest, last_ts=ts)
        )
        try:
            self.anchor.write(record_id, digest, ts, init=init)
        except OSError as exc:
            raise AuditError(f"cannot write the audit head anchor {self.anchor.path}: {exc}") from exc
        return record_id

    # ----------------------------------------------------------------- verify

    def verify(self) -> VerifyResult:
        """Check the whole chain, the anchors of past purges, the head and the head anchor."""
        with self._snapshot() as (conn, anchor_size):
            return self._verify_in(conn, anchor_size)

    @contextmanager
    def _snapshot(self) -> Iterator[tuple[Connection, int]]:
        """A read snapshot of the log and the anchor file's size at one instant.

        Taken while holding the write lock for a moment, so that no append is between writing its
        anchor line and committing; reads then run without blocking appends."""
        with self._connection() as conn:
            with self._write() as locked:
                locked.execute(select(_H.k).where(_H.k == 1).with_for_update())  # PostgreSQL: no append half-done
                anchor_size = self.anchor.size()
                conn.begin()  # rolled back when the connection closes
                conn.execute(select(_H.count)).fetchone()  # the snapshot starts at the first read
            yield conn, anchor_size

    def _trigger_warnings(self, conn: Connection) -> list[str]:
        if conn.dialect.name == "postgresql":  # db/migrations/audit/0002 (enabled triggers of this schema's tables)
            listing = ("SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                       "WHERE c.relnamespace = current_schema()::regnamespace AND t.tgenabled <> 'D'")
        else:
            listing = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        present = set(conn.execute(sql_text(listing)).scalars())
        missing = [t for t in _TRIGGERS if t not in present]
        return [f"append-only trigger(s) missing: {', '.join(missing)}"] if missing else []

    def _anchor_warnings(self) -> list[str]:
        if self.anchor.signed:
            return []
        return [
            f"the head anchor {self.anchor.path} is not signed (set security.audit_anchor_key): "
            "someone who can write that file could forge it"
        ]

    def _verify_in(self, conn: Connection, anchor_size: int | None) -> VerifyResult:
        """Verify within ``conn``'s snapshot; ``anchor_size`` is how much of the anchor file
        belongs to that snapshot (None: check the chain only)."""
        walk = _Walk(warnings=self._trigger_warnings(conn))
        if anchor_size is not None:
            walk.warnings += self._anchor_warnings()
        a = ANCHORS.c
        for first, last, last_hash in conn.execute(
            select(a.first_purged_id, a.last_purged_id, a.last_purged_hash).order_by(a.id)
        ):
            if first != walk.expected_id or last < first:
                return walk.bad(first, f"retention anchors are inconsistent (purge of {first}..{last})")
            walk.expected_id, walk.expected_prev = last + 1, last_hash
            walk.purged[last] = last_hash
        try:
            return self._walk(conn, walk, self.anchor.lines(anchor_size) if anchor_size is not None else None)
        except AnchorError as exc:
            return walk.bad(None, f"head anchor {self.anchor.path}: {exc}")

    def _walk(self, conn: Connection, walk: _Walk, lines: Iterator[AnchorLine] | None) -> VerifyResult:
        """The records in id order, the head, and (unless ``lines`` is None) the anchor lines beside them."""
        bad = walk.bad
        last_line: AnchorLine | None = None

        def next_line() -> AnchorLine | None:
            nonlocal last_line
            entry = next(lines, None) if lines is not None else None
            if entry is not None:
                last_line = entry
            return entry

        def skip_purged(line: AnchorLine | None, below: int) -> AnchorLine | None:
            """Pass the lines of records removed by retention, checking the last one of each purge."""
            while line is not None and line.seq < below:
                if line.seq in walk.purged and walk.purged[line.seq] != line.hash:
                    raise AnchorError(f"purged record {line.seq} does not match its anchor line", line.line)
                line = next_line()
            return line

        line = next_line()
        prev_ts = ""
        rows = conn.execute(select(*_RECORD).order_by(_A.id))
        for rid, ts, user, action, detail_json, prev_hash, digest in rows:
            problem = _record_problem(walk, prev_ts, rid, ts, user, action, detail_json, prev_hash, digest)
            if problem is not None:
                return bad(*problem)
            line = skip_purged(line, rid)
            if line is not None and line.seq == rid:
                if line.hash != digest:
                    return bad(
                        rid,
                        f"record {rid} does not match the head anchor (anchor line {line.line}): "
                        f"the log was rewritten from record {rid} on",
                    )
                line = next_line()
            prev_ts = ts
            walk.expected_prev = digest
            walk.expected_id += 1
            walk.n += 1

        n = walk.n
        head = conn.execute(_HEAD_ROW).fetchone()
        if head is None:
            return bad(None, "head record is missing")
        h_count, h_last_id, h_last_hash = head
        last_id = walk.expected_id - 1
        if h_last_id > last_id:
            gap = f"{last_id + 1}" if h_last_id == last_id + 1 else f"{last_id + 1}..{h_last_id}"
            return bad(last_id + 1, f"record(s) {gap} missing (deleted) at the end of the log")
        if h_last_id < last_id:
            return bad(h_last_id + 1, f"record(s) after {h_last_id} were added outside the log API")
        if h_last_hash != walk.expected_prev:
            return bad(last_id or None, f"the last record {last_id} does not match the head hash")
        if h_count != n:
            return bad(None, f"head counts {h_count} records but {n} are present")
        if lines is None:
            return walk.result("chain intact")

        line = skip_purged(line, last_id + 1)
        if line is not None:  # lines for records after the last one
            while next_line() is not None:  # read (and check) the rest of the file
                pass
            assert last_line is not None
            return bad(
                last_id + 1,
                f"the head anchor names record {last_line.seq} but the log ends at record {last_id}: "
                f"record(s) {span(last_id + 1, last_line.seq)} were removed "
                "(or the app stopped between anchoring a record and committing it)",
            )
        if last_line is None:
            if n == 0 and not walk.purged:
                return walk.result("empty log", anchor=self.anchor)
            return bad(
                None,
                f"no head anchor at {self.anchor.path} for this log of {n} records: the anchor file was "
                "removed or moved, or the log predates anchors (python -m audit anchor --init)",
            )
        if last_line.seq < last_id:
            return bad(
                last_line.seq + 1,
                f"record(s) {span(last_line.seq + 1, last_id)} have no head anchor line "
                "(added outside the log API, or by a process with another anchor path)",
            )
        return walk.result("chain intact, matches the head anchor", anchor=self.anchor, anchored_id=last_line.seq)

    # ----------------------------------------------------------------- retention

    def purge_before(
        self, cutoff: datetime | date | str, *, actor: str = "system", dry_run: bool = False
    ) -> int:
        """Delete every record older than ``cutoff`` (a date means 00:00 UTC of that day).

        Refuses when the log does not verify, head anchor included (so retention cannot launder
        a tampered log).
        Runs in one transaction: drop the delete trigger, delete the prefix, store the anchor,
        recreate the trigger, append a ``purge`` record. Returns the number of records purged.
        """
        bound = _bound(cutoff, upper=False)
        assert bound is not None
        if bound > format_ts(self._clock()):
            raise AuditError(f"refusing to purge: the cutoff {bound} is in the future")
        with self._write() as conn:
            result = self._verify_in(conn, self.anchor.size())
            if not result.ok:
                raise AuditError(f"refusing to purge: audit log does not verify: {result.reason}")
            # Timestamps never decrease, so the old records are a prefix of the log.
            last_id = conn.execute(select(func.max(_A.id)).where(_A.ts < bound)).scalar()
            if last_id is None:
                return 0
            first_id, count = conn.execute(select(func.min(_A.id), func.count()).where(_A.id <= last_id)).one()
            if dry_run:
                return count
            last_hash = conn.execute(select(_A.hash).where(_A.id == last_id)).scalar_one()
            if conn.dialect.name == "postgresql":  # off for this transaction's delete only (ALTER is transactional)
                conn.execute(sql_text("ALTER TABLE audit DISABLE TRIGGER audit_no_delete"))
                conn.execute(delete(AUDIT).where(_A.id <= last_id))
                conn.execute(sql_text("ALTER TABLE audit ENABLE TRIGGER audit_no_delete"))
            else:
                conn.execute(sql_text("DROP TRIGGER IF EXISTS audit_no_delete"))  # recreated just below
                conn.execute(delete(AUDIT).where(_A.id <= last_id))
                conn.execute(sql_text(_NO_DELETE_TRIGGER))
            conn.execute(
                insert(ANCHORS).values(
                    created_at=format_ts(self._clock()), cutoff=bound, first_purged_id=first_id,
                    last_purged_id=last_id, last_purged_hash=last_hash, purged_count=count,
                )
            )
            conn.execute(update(HEAD).where(_H.k == 1).values(count=_H.count - count))
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

    # ----------------------------------------------------------------- head anchor

    def init_anchor(self, actor: str, *, reason: str = "", force: bool = False) -> int:
        """Start the head anchor of this log: append an ``anchor`` record and an init line for it.

        For a log that has none yet (one from before anchors), or, with ``force``, after an
        investigated mismatch (the record keeps the reason and what the old anchor said; the old
        lines stay in the file). Refuses when the chain itself does not verify, when the log
        already matches its anchor, and, without ``force``, when an anchor exists. Returns the
        id of the ``anchor`` record.
        """
        with self._write() as conn:
            chain = self._verify_in(conn, None)
            if not chain.ok:
                raise AuditError(f"refusing to anchor: the chain does not verify: {chain.reason}")
            size = self.anchor.size()
            if size:
                current = self._verify_in(conn, size)
                if current.ok:
                    raise AuditError(
                        f"the log already matches its head anchor (record {current.anchored_id}): nothing to do"
                    )
                if not force:
                    raise AuditError(
                        f"an anchor exists and does not match the log ({current.reason}); investigate, "
                        "then re-anchor with --force --reason TEXT"
                    )
                if not reason.strip():
                    raise AuditError("re-anchoring over an existing anchor needs a reason")
                previous = current.reason
            else:
                previous = "none"
            _count, last_id, last_hash = conn.execute(_HEAD_ROW).one()
            detail = {
                "op": "init",
                "reason": reason.strip(),
                "anchor_path": str(self.anchor.path),
                "signed": self.anchor.signed,
                "previous_anchor": previous,
                "head_before": {"id": last_id, "hash": last_hash},
            }
            user, action, detail_json = self._validate(actor, "anchor", detail)
            return self._append_in(conn, user, action, detail_json, init=True)

    def check_head(self) -> VerifyResult:
        """A quick check for every page view (it reads three rows, not the chain): the last record,
        the head and the head anchor's last line agree. :meth:`verify` checks everything."""
        with self._snapshot() as (conn, anchor_size):
            warnings = self._trigger_warnings(conn) + self._anchor_warnings()
            count, last_id, last_hash = conn.execute(_HEAD_ROW).one()
            row = conn.execute(select(_A.id, _A.hash).order_by(_A.id.desc()).limit(1)).fetchone()

            def bad(rid: int | None, reason: str) -> VerifyResult:
                return VerifyResult(False, count, rid, reason, last_hash, tuple(warnings))

            if row is None:
                if last_id or anchor_size:
                    return bad(1, "the log is empty but its head or anchor names records: records were removed")
                return VerifyResult(True, 0, None, "empty log", GENESIS_HASH, tuple(warnings))
            if tuple(row) != (last_id, last_hash):
                return bad(min(row[0], last_id) + 1, f"the last record {row[0]} does not match the head ({last_id})")
            try:
                line = self.anchor.last(anchor_size)
            except AnchorError as exc:
                return bad(None, f"head anchor {self.anchor.path}: {exc}")
            if line is None:
                return bad(None, f"no head anchor at {self.anchor.path}: removed, or the log predates anchors")
            if line.seq > last_id:
                return bad(last_id + 1, f"the head anchor names record {line.seq} but the log ends at record {last_id}")
            if line.seq < last_id:
                return bad(line.seq + 1, f"record(s) after {line.seq} have no head anchor line")
            if line.hash != last_hash:
                return bad(last_id, f"the last record {last_id} does not match the head anchor")
            return VerifyResult(
                True, count, None, "head matches the head anchor", last_hash, tuple(warnings), line.seq,
                self.anchor.signed,
            )

    # ----------------------------------------------------------------- reading

    def head(self) -> tuple[int, int, str]:
        """(records present, last id, last hash)."""
        with self._connection() as conn:
            count, last_id, last_hash = conn.execute(_HEAD_ROW).one()
        return count, last_id, last_hash

    def anchors(self) -> list[dict[str, Any]]:
        with self._connection() as conn:
            return [dict(r) for r in conn.execute(select(ANCHORS).order_by(ANCHORS.c.id)).mappings()]

    @staticmethod
    def _where(
        conn: Connection,
        user: str | None,
        action: str | None,
        text: str | None,
        since: datetime | date | str | None,
        until: datetime | date | str | None,
        before_id: int | None = None,
    ) -> list[ColumnElement[bool]]:
        """The conditions of a search or export.

        Time bounds become a range of ids (timestamps never decrease along the log), found with
        the ``ts`` index, so that every query reads the table in id order: newest-first pages stop
        after their rows, and exports stream without sorting."""
        conds: list[ColumnElement[bool]] = []
        if user:
            conds.append(_A.user == user)
        if action:
            if action not in ACTIONS:
                raise ValueError(f"unknown audit action {action!r}")
            conds.append(_A.action == action)
        if text:
            conds.append(_A.detail_json.ilike(_like_pattern(text), escape="\\"))
        lo, hi = _bound(since, upper=False), _bound(until, upper=True)
        if lo:
            first = conn.execute(select(_A.id).where(_A.ts >= lo).order_by(_A.ts, _A.id).limit(1)).scalar()
            conds += [_A.id >= (first if first is not None else 1 << 62), _TS_FILTER >= lo]
        if hi:
            last = conn.execute(
                select(_A.id).where(_A.ts < hi).order_by(_A.ts.desc(), _A.id.desc()).limit(1)
            ).scalar()
            conds += [_A.id <= (last if last is not None else 0), _TS_FILTER < hi]
        if before_id is not None:
            conds.append(_A.id < int(before_id))
        return conds

    def search(
        self,
        user: str | None = None,
        action: str | None = None,
        text: str | None = None,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
        limit: int = 200,
        before_id: int | None = None,
        *,
        reader: SearchFilter,
    ) -> list[AuditRecord]:
        """Newest first. ``text`` is a case-insensitive substring of the detail JSON;
        ``since`` is inclusive, ``until`` exclusive (a date ``until`` includes that whole day).
        ``before_id`` continues a listing below the last id shown (keyset pagination).
        An answer drawn from documents outside ``reader``'s scope comes with its text withheld, and is left out
        when ``text`` is searched (the search would tell what it holds)."""
        limit = max(0, min(int(limit), 100_000))
        with self._connection() as conn:
            where = self._where(conn, user, action, text, since, until, before_id)
            rows = conn.execute(select(*_RECORD).where(*where).order_by(_A.id.desc()).limit(limit)).all()
        out = []
        for record in map(self._record, rows):
            if readable_detail(record.detail, reader) is None:
                if text:
                    continue
                record = dataclasses.replace(record, detail=withheld(record.detail))
            out.append(record)
        return out

    def count(
        self,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
    ) -> int:
        """How many records :meth:`export_csv` would write for these days (counted in the ``ts``
        index, without reading the records)."""
        lo, hi = _bound(since, upper=False), _bound(until, upper=True)
        conds = ([_A.ts >= lo] if lo else []) + ([_A.ts < hi] if hi else [])
        with self._connection() as conn:
            if not conds:
                return conn.execute(select(_H.count).where(_H.k == 1)).scalar_one()
            return conn.execute(select(func.count()).select_from(AUDIT).where(*conds)).scalar_one()

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
        reader: SearchFilter,
        since: datetime | date | str | None = None,
        until: datetime | date | str | None = None,
    ) -> int:
        """Write the records in [since, until) as CSV (oldest first, UTF-8); return the count.

        Columns: id, ts, user, action, detail_json, prev_hash, hash. A ``user`` that starts
        with a spreadsheet formula character is prefixed with ``'``. Rows stream from one read
        snapshot in id order (memory does not grow with the log). An answer drawn from documents outside
        ``reader``'s scope is written with its text withheld (its hash then no longer matches its detail).
        """
        if isinstance(path_or_file, str | PurePath):
            with open(path_or_file, "w", encoding="utf-8", newline="") as fh:
                return self.export_csv(fh, reader, since, until)
        writer = csv.writer(path_or_file)
        writer.writerow(CSV_COLUMNS)
        n = 0
        with self._connection() as conn:
            conn.begin()  # the bounds and the rows from one snapshot (rolled back when the connection closes)
            where = self._where(conn, None, None, None, since, until)
            for rid, ts, user, action, detail_json, prev_hash, digest in conn.execute(
                select(*_RECORD).where(*where).order_by(_A.id)
            ):
                if '"contexts"' in detail_json:  # an answer record: does it hold text the reader may not read?
                    detail = json.loads(detail_json)
                    if readable_detail(detail, reader) is None:
                        detail_json = canonical_json(withheld(detail))
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


def _record_problem(walk: _Walk, prev_ts: str, rid: int, ts, user, action, detail_json, prev_hash,
                    digest) -> tuple[int, str] | None:
    """What is wrong with one record read in id order (the id it is reported at, and why), or None."""
    expected_id = walk.expected_id
    if rid != expected_id:
        if rid < expected_id:
            return (rid, f"record {rid} precedes the retention anchor (re-inserted?)")
        gap = f"{expected_id}" if rid == expected_id + 1 else f"{expected_id}..{rid - 1}"
        return (expected_id, f"record(s) {gap} missing (deleted) before record {rid}")
    if prev_hash != walk.expected_prev:
        return (
            rid,
            f"record {rid} does not link to the previous record "
            "(it or its predecessor was altered, deleted or reordered)",
        )
    if _stored_hash(rid, ts, user, action, detail_json, prev_hash) != digest:
        # Not the bytes the append hashed: decide on the parsed detail, as the append did.
        try:
            detail = json.loads(detail_json)
        except (TypeError, ValueError):
            return (rid, f"record {rid} detail is not valid JSON (edited)")
        try:
            same = record_hash(rid, ts, user, action, detail, prev_hash) == digest
        except UnicodeEncodeError:  # a lone surrogate written in with a SQL tool
            same = False
        if not same:
            return (rid, f"record {rid} content does not match its hash (edited)")
    if action not in ACTIONS:
        return (rid, f"record {rid} has an unknown action {action!r}")
    if not isinstance(ts, str) or ts < prev_ts:
        return (rid, f"record {rid} is older than its predecessor (reordered)")
    return None
