"""Audit log: hash chain, append-only triggers, tamper detection, retention, search, export, CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from audit.log import (
    ACTIONS,
    AUDIT_DB_NAME,
    GENESIS_HASH,
    AuditError,
    AuditLog,
    record_hash,
)

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """A settable clock (the log takes any callable returning an aware datetime)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def make_log(path: Path, n: int) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.append(f"user{i % 3}", "ask", {"question": f"質問 {i}", "n": i})
    return log


def copy_db(src: Path, dst: Path) -> Path:
    """A consistent copy through SQLite's backup API (the log runs in WAL mode)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    return dst


def tamper(path: Path, *statements: str, params: tuple = ()) -> None:
    """Edit the file with the plain sqlite3 module, as an attacker with a DB tool would."""
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
        conn.commit()
    finally:
        conn.close()


def run_cli(module: str, *args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CQA_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )


# --------------------------------------------------------------------------- append & verify


def test_append_and_verify(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / AUDIT_DB_NAME)
    assert log.verify().ok and log.verify().records == 0
    detail = {
        "question": "外国送金の本人確認は？",
        "answer": "…",
        "sources": [{"doc_id": "aml-01", "version": 3, "page": 12}],
        "versions": {"model": "qwen3-32b", "prompt": "p7", "index": "2025-04-01"},
        "timings_ms": {"retrieve": 12.5, "generate": 900},
        "when": datetime(2025, 4, 1, 9, 0, tzinfo=UTC),
        "day": date(2025, 4, 1),
        "path": Path("/tmp/x.pdf"),
        "tags": {"b", "a"},
    }
    first = log.append("alice", "ask", detail)
    second = log.append("alice", "answer", {"n": 1})
    assert (first, second) == (1, 2)
    result = log.verify()
    assert result.ok and result.records == 2 and result.first_bad_id is None
    records = log.search()
    assert [r.id for r in records] == [2, 1]  # newest first
    rec = records[1]
    assert rec.prev_hash == GENESIS_HASH
    assert rec.detail["when"] == "2025-04-01T09:00:00+00:00" and rec.detail["tags"] == ["a", "b"]
    assert rec.hash == record_hash(1, rec.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "alice", "ask",
                                   rec.detail, GENESIS_HASH)
    assert records[0].prev_hash == rec.hash
    assert result.head_hash == records[0].hash
    assert log.head() == (2, 2, records[0].hash)


def test_append_rejects_bad_input(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / AUDIT_DB_NAME)
    with pytest.raises(ValueError, match="unknown audit action"):
        log.append("alice", "delete_everything", {})
    with pytest.raises(ValueError, match="non-empty"):
        log.append("  ", "ask", {})
    with pytest.raises(ValueError, match="not valid JSON"):
        log.append("alice", "ask", {"score": float("nan")})
    with pytest.raises(TypeError):
        log.append("alice", "ask", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert log.verify().records == 0
    assert {"ask", "answer", "refuse", "feedback", "ingest", "withdraw", "login", "login_failed",
            "logout", "eval_run", "settings_change", "user_change"} <= ACTIONS


def test_four_threads_thousands_of_records(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    AuditLog(path)
    per_thread, errors = 750, []

    def worker(t: int) -> None:
        log = AuditLog(path)  # separate instances share the same file
        try:
            for i in range(per_thread):
                log.append(f"thread{t}", "ask", {"i": i, "t": t})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    log = AuditLog(path)
    result = log.verify()
    assert result.ok, result
    assert result.records == 4 * per_thread
    for t in range(4):
        mine = log.search(user=f"thread{t}", limit=10_000)
        assert sorted(r.detail["i"] for r in mine) == list(range(per_thread))


def test_several_processes_append_safely(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    AuditLog(path)
    code = (
        "import sys; from audit.log import AuditLog; log = AuditLog(sys.argv[1]);"
        "[log.append('proc' + sys.argv[2], 'feedback', {'i': i}) for i in range(150)]"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(p)], cwd=REPO)
        for p in range(3)
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    result = AuditLog(path).verify()
    assert result.ok and result.records == 450


def test_triggers_refuse_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    make_log(path, 3)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET user = 'mallory' WHERE id = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError, match="head"):
        conn.execute("UPDATE head SET count = 2, last_id = 2")
    with pytest.raises(sqlite3.IntegrityError, match="head"):
        conn.execute("DELETE FROM head")
    conn.close()
    assert AuditLog(path).verify().ok


# --------------------------------------------------------------------------- tampering


@pytest.fixture()
def original(tmp_path: Path) -> Path:
    path = tmp_path / "orig" / AUDIT_DB_NAME
    path.parent.mkdir()
    make_log(path, 50)
    assert AuditLog(path).verify().ok
    return path


@pytest.fixture()
def dup(original: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    target.mkdir()
    return copy_db(original, target / AUDIT_DB_NAME)


def _recomputed_hash(path: Path, rid: int) -> str:
    conn = sqlite3.connect(path)
    ts, user, action, detail_json, prev = conn.execute(
        "SELECT ts, user, action, detail_json, prev_hash FROM audit WHERE id = ?", (rid,)
    ).fetchone()
    conn.close()
    return record_hash(rid, ts, user, action, json.loads(detail_json), prev)


def test_copy_verifies_before_tampering(dup: Path) -> None:
    assert AuditLog(dup).verify().ok


def test_detects_edited_detail(dup: Path, original: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_update",
           """UPDATE audit SET detail_json = '{"n":20,"question":"改ざん"}' WHERE id = 20""")
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 20 and "edited" in result.reason
    assert any("audit_no_update" in w for w in result.warnings)
    assert AuditLog(original).verify().ok


def test_detects_edited_user_only(dup: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_update", "UPDATE audit SET user = 'someone' WHERE id = 7")
    result = AuditLog(dup).verify()
    assert (result.ok, result.first_bad_id) == (False, 7)


def test_detects_edit_with_recomputed_hash_at_next_record(dup: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_update",
           """UPDATE audit SET detail_json = '{"n":20,"question":"forged"}' WHERE id = 20""")
    tamper(dup, "UPDATE audit SET hash = ? WHERE id = 20", params=(_recomputed_hash(dup, 20),))
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 21
    assert "does not link" in result.reason


def test_detects_edit_with_recomputed_hash_of_last_record(dup: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_update",
           """UPDATE audit SET detail_json = '{"n":49,"question":"forged"}' WHERE id = 50""")
    tamper(dup, "UPDATE audit SET hash = ? WHERE id = 50", params=(_recomputed_hash(dup, 50),))
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 50 and "head" in result.reason


def test_detects_deleted_middle_record(dup: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_delete", "DELETE FROM audit WHERE id = 20")
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 20 and "missing" in result.reason


def test_detects_deleted_first_record(dup: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_delete", "DELETE FROM audit WHERE id = 1")
    result = AuditLog(dup).verify()
    assert (result.ok, result.first_bad_id) == (False, 1)


def test_detects_deleted_last_record(dup: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_delete", "DELETE FROM audit WHERE id = 50")
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 50 and "end" in result.reason
    assert result.records == 49


def test_detects_deleted_middle_with_relinked_chain(dup: Path) -> None:
    """Delete record 20 and rewrite every later hash so prev_hash links again: the id gap remains."""
    tamper(dup, "DROP TRIGGER audit_no_delete", "DROP TRIGGER audit_no_update",
           "DELETE FROM audit WHERE id = 20")
    conn = sqlite3.connect(dup)
    prev = conn.execute("SELECT hash FROM audit WHERE id = 19").fetchone()[0]
    for rid, ts, user, action, detail_json in conn.execute(
        "SELECT id, ts, user, action, detail_json FROM audit WHERE id > 20 ORDER BY id"
    ).fetchall():
        digest = record_hash(rid, ts, user, action, json.loads(detail_json), prev)
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, rid))
        prev = digest
    conn.execute("DROP TRIGGER head_no_rewind")
    conn.execute("UPDATE head SET count = count - 1, last_hash = ?", (prev,))
    conn.commit()
    conn.close()
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 20


def test_detects_reordered_records(dup: Path) -> None:
    conn = sqlite3.connect(dup)
    rows = {rid: row for rid, *row in conn.execute(
        "SELECT id, ts, user, action, detail_json, prev_hash, hash FROM audit WHERE id IN (10, 11)")}
    conn.close()
    tamper(dup, "DROP TRIGGER audit_no_update")
    for rid, other in ((10, 11), (11, 10)):
        tamper(dup, "UPDATE audit SET ts = ?, user = ?, action = ?, detail_json = ?, prev_hash = ?,"
               " hash = ? WHERE id = ?", params=(*rows[other], rid))
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 10


def test_detects_forged_record_appended_outside_api(dup: Path) -> None:
    conn = sqlite3.connect(dup)
    last_hash = conn.execute("SELECT hash FROM audit WHERE id = 50").fetchone()[0]
    ts = "2099-01-01T00:00:00.000000Z"
    digest = record_hash(51, ts, "mallory", "login", {}, last_hash)
    conn.execute("INSERT INTO audit VALUES (51, ?, 'mallory', 'login', '{}', ?, ?)", (ts, last_hash, digest))
    conn.commit()
    conn.close()
    result = AuditLog(dup).verify()
    assert not result.ok and result.first_bad_id == 51


def test_cli_verify_reports_tampered_copy(dup: Path) -> None:
    tamper(dup, "DROP TRIGGER audit_no_delete", "DELETE FROM audit WHERE id = 33")
    proc = run_cli("audit", "verify", data_dir=dup.parent)
    assert proc.returncode == 1
    assert "record 33" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2  # the trigger warning + the verdict
    proc = run_cli("audit", "verify", "--json", data_dir=dup.parent)
    assert proc.returncode == 1
    payload = json.loads(proc.stdout)
    assert payload["ok"] is False and payload["first_bad_id"] == 33


# --------------------------------------------------------------------------- retention


def _dated_log(path: Path, days: int, per_day: int = 5) -> tuple[AuditLog, FakeClock]:
    clock = FakeClock(datetime(2024, 1, 1, 12, 0, tzinfo=UTC))
    log = AuditLog(path, clock=clock)
    for _day in range(days):
        for i in range(per_day):
            log.append("alice", "ask", {"i": i, "day": clock.now.date()})
        clock.advance(days=1)
    return log, clock


def test_purge_keeps_chain_verifiable(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    log, clock = _dated_log(path, days=10)
    assert log.purge_before(date(2024, 1, 4), dry_run=True) == 15
    assert log.verify().records == 50  # dry run deleted nothing
    assert log.purge_before(date(2024, 1, 4), actor="ops") == 15
    result = log.verify()
    assert result.ok, result
    assert result.records == 50 - 15 + 1  # + the purge record
    purge = log.search(action="purge")[0]
    assert purge.user == "ops" and purge.detail["purged_count"] == 15
    assert purge.detail["first_purged_id"] == 1 and purge.detail["last_purged_id"] == 15
    assert min(r.ts for r in log.search(limit=1000)) >= datetime(2024, 1, 4, tzinfo=UTC)
    log.append("bob", "login", {})
    assert log.purge_before(date(2024, 1, 7)) == 15
    assert log.purge_before(date(2024, 1, 7)) == 0
    result = log.verify()
    assert result.ok and result.records == 50 - 30 + 3
    anchors = log.anchors()
    assert [(a["first_purged_id"], a["last_purged_id"]) for a in anchors] == [(1, 15), (16, 30)]
    # The delete trigger is back after the purge.
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM audit WHERE id = 40")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM anchors")
    conn.close()


def test_purge_everything_then_continue(tmp_path: Path) -> None:
    log, clock = _dated_log(tmp_path / AUDIT_DB_NAME, days=3)
    assert log.purge_before(clock.now) == 15
    log.append("alice", "logout", {})
    result = log.verify()
    assert result.ok and result.records == 2


def test_purge_detects_deleting_after_anchor(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    log, _ = _dated_log(path, days=4)
    log.purge_before(date(2024, 1, 3))
    tamper(path, "DROP TRIGGER audit_no_delete", "DELETE FROM audit WHERE id = 11")
    result = log.verify()
    assert not result.ok and result.first_bad_id == 11


def test_purge_refuses_tampered_log_and_future_cutoff(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    log, clock = _dated_log(path, days=3)
    with pytest.raises(AuditError, match="future"):
        log.purge_before(clock.now + timedelta(days=2))
    tamper(path, "DROP TRIGGER audit_no_update", "UPDATE audit SET user = 'x' WHERE id = 2")
    with pytest.raises(AuditError, match="does not verify"):
        log.purge_before(date(2024, 1, 3))
    assert AuditLog(path).verify().first_bad_id == 2  # nothing was purged


# --------------------------------------------------------------------------- search & export


def test_search_filters(tmp_path: Path) -> None:
    log, _ = _dated_log(tmp_path / AUDIT_DB_NAME, days=3, per_day=2)
    log.append("bob", "feedback", {"comment": "100% 正しい_回答"})
    log.append("bob", "refuse", {"question": "社外秘"})
    assert [r.action for r in log.search(user="bob")] == ["refuse", "feedback"]
    assert len(log.search(action="ask")) == 6
    assert len(log.search(text="正しい")) == 1
    assert len(log.search(text="100%")) == 1 and log.search(text="0%%") == []
    assert len(log.search(text="_回答")) == 1 and log.search(text="い回答") == []
    assert len(log.search(since=date(2024, 1, 2), until=date(2024, 1, 2))) == 2
    assert len(log.search(since="2024-01-02", action="ask")) == 4
    assert len(log.search(until=datetime(2024, 1, 2, tzinfo=UTC))) == 2
    assert len(log.search(limit=3)) == 3
    with pytest.raises(ValueError):
        log.search(action="nope")


def test_export_csv(tmp_path: Path) -> None:
    log, _ = _dated_log(tmp_path / AUDIT_DB_NAME, days=3, per_day=2)
    log.append("=HYPERLINK(\"x\")", "login_failed", {"reason": "bad_credentials"})
    buf = io.StringIO()
    assert log.export_csv(buf) == 7
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == ["id", "ts", "user", "action", "detail_json", "prev_hash", "hash"]
    assert [int(r["id"]) for r in rows] == list(range(1, 8))
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert json.loads(rows[0]["detail_json"])["day"] == "2024-01-01"
    assert rows[-1]["user"].startswith("'=")  # spreadsheet formula neutralised
    out = tmp_path / "jan2.csv"
    assert log.export_csv(out, since=date(2024, 1, 2), until=date(2024, 1, 2)) == 2
    with out.open(encoding="utf-8", newline="") as fh:
        assert [r["id"] for r in csv.DictReader(fh)] == ["3", "4"]


# --------------------------------------------------------------------------- CLI


def test_cli_commands(tmp_path: Path) -> None:
    log, _ = _dated_log(tmp_path / AUDIT_DB_NAME, days=4, per_day=3)
    log.append("bob", "feedback", {"comment": "good"})

    proc = run_cli("audit", "verify", data_dir=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("OK: 13 records")
    proc = run_cli("audit", "verify", "--json", data_dir=tmp_path)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["ok"] is True and json.loads(proc.stdout)["records"] == 13

    proc = run_cli("audit", "export", "--from", "2024-01-02", "--to", "2024-01-03", data_dir=tmp_path)
    assert proc.returncode == 0
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["id"] for r in rows] == ["4", "5", "6", "7", "8", "9"]
    out = tmp_path / "all.csv"
    proc = run_cli("audit", "export", "--out", str(out), data_dir=tmp_path)
    assert proc.returncode == 0 and proc.stdout == ""
    assert len(list(csv.DictReader(out.open(encoding="utf-8", newline="")))) == 13

    proc = run_cli("audit", "search", "--user", "bob", "--json", data_dir=tmp_path)
    assert proc.returncode == 0
    found = json.loads(proc.stdout)
    assert [(r["user"], r["action"], r["detail"]) for r in found] == [
        ("bob", "feedback", {"comment": "good"})
    ]
    proc = run_cli("audit", "search", "--action", "ask", data_dir=tmp_path)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 12

    proc = run_cli("audit", "purge", "--before", "2024-01-03", data_dir=tmp_path)
    assert proc.returncode == 0 and "purged 6 records" in proc.stdout
    proc = run_cli("audit", "verify", data_dir=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("OK: 8 records")
    purge = AuditLog(tmp_path / AUDIT_DB_NAME).search(action="purge")
    assert purge and purge[0].user.startswith("cli:")


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("frobnicate",),
        ("export", "--from", "2024-13-01"),
        ("export", "--from", "2024-02-01", "--to", "2024-01-01"),
        ("purge",),
        ("purge", "--before", "yesterday"),
        ("search", "--action", "nope"),
        ("search", "--limit", "0"),
    ],
)
def test_cli_bad_usage_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    make_log(tmp_path / AUDIT_DB_NAME, 1)
    proc = run_cli("audit", *args, data_dir=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_cli_failures_exit_1(tmp_path: Path) -> None:
    proc = run_cli("audit", "verify", data_dir=tmp_path / "empty")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no audit log" in proc.stderr
    make_log(tmp_path / AUDIT_DB_NAME, 2)
    future = (date.today() + timedelta(days=3)).isoformat()
    proc = run_cli("audit", "purge", "--before", future, data_dir=tmp_path)
    assert proc.returncode == 1 and "future" in proc.stderr and "Traceback" not in proc.stderr
