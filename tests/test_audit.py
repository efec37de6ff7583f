"""Audit log: hash chain, append-only triggers, tamper detection, head anchor against an insider,
retention, search, export, CLI, and the audit page."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from audit.anchor import ANCHOR_FILE_NAME
from audit.log import (
    ACTIONS,
    AUDIT_DB_NAME,
    GENESIS_HASH,
    AuditError,
    AuditLog,
    record_hash,
)
from tests.helpers import EVERYTHING

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
    """A consistent copy through SQLite's backup API (the log runs in WAL mode), with its head anchor."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    shutil.copyfile(src.with_name(ANCHOR_FILE_NAME), dst.with_name(ANCHOR_FILE_NAME))
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


def run_cli(
    module: str, *args: str, data_dir: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "CQA_DATA_DIR": str(data_dir), **(env or {})}
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
    records = log.search(reader=EVERYTHING)
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
        mine = log.search(user=f"thread{t}", limit=10_000, reader=EVERYTHING)
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
    chain = chain_only(dup)
    assert not chain.ok and chain.first_bad_id == 21 and "does not link" in chain.reason
    result = AuditLog(dup).verify()  # the head anchor names the record itself
    assert not result.ok and result.first_bad_id == 20 and "head anchor" in result.reason


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
    assert len(proc.stderr.strip().splitlines()) == 3  # trigger and unsigned-anchor warnings + the verdict
    proc = run_cli("audit", "verify", "--json", data_dir=dup.parent)
    assert proc.returncode == 1
    payload = json.loads(proc.stdout)
    assert payload["ok"] is False and payload["first_bad_id"] == 33


# --------------------------------------------------------------------------- an insider with file access

KEY = "audit-anchor-test-key-0123456789abcdef"  # as CQA_SECURITY__AUDIT_ANCHOR_KEY would give it
TRIGGERS = ("audit_no_update", "audit_no_delete", "head_no_rewind", "head_no_delete")


def insider(path: Path, *statements: str, params: tuple = ()) -> None:
    """What someone with the file and a SQLite tool can do: drop the triggers, change rows, then
    rewrite every hash and the head so that the database alone is consistent again."""
    conn = sqlite3.connect(path)
    try:
        for trigger in TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
        rows = conn.execute("SELECT id, ts, user, action, detail_json FROM audit ORDER BY id").fetchall()
        prev = GENESIS_HASH
        for new_id, (rid, ts, user, action, detail_json) in enumerate(rows, start=1):
            digest = record_hash(new_id, ts, user, action, json.loads(detail_json), prev)
            conn.execute("UPDATE audit SET id = ?, prev_hash = ?, hash = ? WHERE id = ?", (new_id, prev, digest, rid))
            prev = digest
        last_ts = rows[-1][1] if rows else ""
        conn.execute("UPDATE head SET count = ?, last_id = ?, last_hash = ?, last_ts = ?",
                     (len(rows), len(rows), prev, last_ts))
        conn.commit()
    finally:
        conn.close()


def chain_only(path: Path):
    """The verdict of the database alone (what verify said before the head anchor existed)."""
    log = AuditLog(path)
    with log._snapshot() as (conn, _size):
        return log._verify_in(conn, None)


def cli_verify(path: Path, key: str | None = None) -> subprocess.CompletedProcess:
    env = {"CQA_SECURITY__AUDIT_ANCHOR_KEY": key} if key else None
    return run_cli("audit", "verify", data_dir=path.parent, env=env)


def tampered(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    verdict = proc.stderr.strip().splitlines()[-1]
    assert "TAMPERED" in verdict and "Traceback" not in proc.stderr
    for word in words:
        assert word in verdict, verdict
    return verdict


@pytest.fixture()
def signed(tmp_path: Path) -> Path:
    """A 50-record log whose head anchor is signed with KEY."""
    path = tmp_path / "signed" / AUDIT_DB_NAME
    log = AuditLog(path, anchor_key=KEY)
    for i in range(50):
        log.append(f"user{i % 3}", "ask", {"question": f"質問 {i}", "n": i})
    proc = cli_verify(path, KEY)
    assert proc.returncode == 0 and "anchored at record 50" in proc.stdout and "(signed)" in proc.stdout
    assert "warning" not in proc.stderr  # signed, triggers in place
    return path


def test_insider_edit_with_rewritten_chain_is_caught_by_the_anchor(signed: Path) -> None:
    insider(signed, """UPDATE audit SET detail_json = '{"n":20,"question":"改ざん"}' WHERE id = 20""")
    assert chain_only(signed).ok  # the database alone is consistent again
    tampered(cli_verify(signed, KEY), "record 20", "head anchor", "rewritten")


def test_insider_deleting_a_middle_record_and_renumbering_is_caught(signed: Path) -> None:
    insider(signed, "DELETE FROM audit WHERE id = 20")
    assert chain_only(signed).ok and chain_only(signed).records == 49
    tampered(cli_verify(signed, KEY), "record 20", "head anchor")


@pytest.mark.parametrize("cut", [1, 7, 50])
def test_insider_truncating_the_tail_is_caught(signed: Path, cut: int) -> None:
    """The last ``cut`` records removed and the head set back: a hash chain alone cannot see it."""
    insider(signed, "DELETE FROM audit WHERE id > ?", params=(50 - cut,))
    assert chain_only(signed).ok and chain_only(signed).records == 50 - cut
    verdict = tampered(cli_verify(signed, KEY), "removed")
    assert f"names record 50 but the log ends at record {50 - cut}" in verdict


def test_truncation_stays_detected_after_the_app_appends_again(signed: Path) -> None:
    insider(signed, "DELETE FROM audit WHERE id > 45")
    log = AuditLog(signed, anchor_key=KEY)
    for i in range(10):  # the app carries on: records 46.. again, with new content
        log.append("alice", "login", {"i": i})
    assert chain_only(signed).ok and chain_only(signed).records == 55
    tampered(cli_verify(signed, KEY), "record 46", "does not match the head anchor")


def test_forged_record_added_with_sql_is_caught_even_after_later_appends(signed: Path) -> None:
    conn = sqlite3.connect(signed)
    (last_hash,) = conn.execute("SELECT hash FROM audit WHERE id = 50").fetchone()
    ts = "2099-01-01T00:00:00.000000Z"
    digest = record_hash(51, ts, "mallory", "login", {}, last_hash)
    conn.execute("INSERT INTO audit VALUES (51, ?, 'mallory', 'login', '{}', ?, ?)", (ts, last_hash, digest))
    conn.execute("UPDATE head SET count = 51, last_id = 51, last_hash = ?, last_ts = ?", (digest, ts))
    conn.commit()
    conn.close()
    tampered(cli_verify(signed, KEY), "record 51", "no head anchor line")
    AuditLog(signed, anchor_key=KEY).append("alice", "logout", {})  # record 52 builds on the forgery
    assert chain_only(signed).ok
    tampered(cli_verify(signed, KEY), "record(s) 51 were never anchored")


def test_anchor_lines_cannot_be_rewritten_without_the_key(signed: Path) -> None:
    """The insider rewrites the chain and then the anchor file to match, but does not hold the key."""
    insider(signed, "DELETE FROM audit WHERE id > 40")
    forged = AuditLog(signed, anchor_path=signed.parent / "forged.jsonl", anchor_key="x" * 40)
    conn = sqlite3.connect(signed)
    rows = conn.execute("SELECT id, hash, ts FROM audit ORDER BY id").fetchall()
    conn.close()
    forged.anchor.write_lines(forged.anchor.encode(*row) for row in rows)  # signed with the wrong key
    (signed.parent / "forged.jsonl").replace(signed.with_name(ANCHOR_FILE_NAME))
    tampered(cli_verify(signed, KEY), "line 1", "signature does not match")
    # The same lines without a signature are refused too while a key is configured.
    unsigned = AuditLog(signed, anchor_path=signed.parent / "unsigned.jsonl")
    unsigned.anchor.write_lines(unsigned.anchor.encode(*row) for row in rows)
    (signed.parent / "unsigned.jsonl").replace(signed.with_name(ANCHOR_FILE_NAME))
    tampered(cli_verify(signed, KEY), "line 1", "not signed")


def test_edited_or_cut_anchor_file_is_caught(signed: Path) -> None:
    anchor = signed.with_name(ANCHOR_FILE_NAME)
    original = anchor.read_bytes()
    lines = original.splitlines(keepends=True)
    anchor.write_bytes(b"".join(lines[:-3]))  # the anchor alone cut back: the log has more records
    tampered(cli_verify(signed, KEY), "record(s) 48..50", "no head anchor line")
    anchor.write_bytes(b"".join(lines[:10]) + lines[10].replace(b'"seq":11', b'"seq":12') + b"".join(lines[11:]))
    tampered(cli_verify(signed, KEY), "line 11")
    anchor.write_bytes(original[:-5])  # the last line cut in the middle
    tampered(cli_verify(signed, KEY), "incomplete")
    anchor.write_bytes(original)
    assert cli_verify(signed, KEY).returncode == 0


def test_signed_anchor_needs_the_key_to_verify(signed: Path) -> None:
    tampered(cli_verify(signed), "signed, but no anchor key is configured")
    proc = cli_verify(signed, "a-different-key-of-at-least-32-characters")
    tampered(proc, "signature does not match")


def test_missing_anchor_fails_closed_until_anchor_init(signed: Path) -> None:
    signed.with_name(ANCHOR_FILE_NAME).unlink()
    tampered(cli_verify(signed, KEY), "no head anchor", "anchor --init")
    env = {"CQA_SECURITY__AUDIT_ANCHOR_KEY": KEY}
    proc = run_cli("audit", "anchor", data_dir=signed.parent, env=env)
    assert proc.returncode == 1 and "no head anchor" in proc.stderr

    proc = run_cli("audit", "anchor", "--init", data_dir=signed.parent, env=env)
    assert proc.returncode == 0 and "anchored at record 51" in proc.stdout and "(signed)" in proc.stdout
    proc = cli_verify(signed, KEY)
    assert proc.returncode == 0 and proc.stdout.startswith("OK: 51 records") and "anchored at record 51" in proc.stdout
    (record,) = AuditLog(signed, anchor_key=KEY).search(action="anchor", reader=EVERYTHING)
    assert record.user.startswith("cli:") and record.detail["previous_anchor"] == "none"
    assert record.detail["head_before"]["id"] == 50 and record.detail["signed"] is True

    # Nothing to do now; and it cannot be used to bless a log that was cut back afterwards...
    proc = run_cli("audit", "anchor", "--init", data_dir=signed.parent, env=env)
    assert proc.returncode == 1 and "nothing to do" in proc.stderr
    insider(signed, "DELETE FROM audit WHERE id > 48")
    proc = run_cli("audit", "anchor", "--init", data_dir=signed.parent, env=env)
    assert proc.returncode == 1 and "--force" in proc.stderr and "removed" in proc.stderr
    proc = run_cli("audit", "anchor", "--init", "--force", data_dir=signed.parent, env=env)
    assert proc.returncode == 2 and "--reason" in proc.stderr
    # ...except knowingly, on the record: the reason and what the old anchor said stay in the log.
    proc = run_cli("audit", "anchor", "--init", "--force", "--reason", "INC-4711 restored from backup",
                   data_dir=signed.parent, env=env)
    assert proc.returncode == 0, proc.stderr
    assert cli_verify(signed, KEY).returncode == 0
    last = AuditLog(signed, anchor_key=KEY).search(action="anchor", limit=1, reader=EVERYTHING)[0]
    assert last.detail["reason"] == "INC-4711 restored from backup"
    assert "names record 51 but the log ends at record 48" in last.detail["previous_anchor"]
    assert signed.with_name(ANCHOR_FILE_NAME).read_text().count('"init":true') == 2  # old lines kept


def test_a_log_from_before_anchors_is_migrated_with_anchor_init(tmp_path: Path) -> None:
    """A log written before this change has no anchor file: verify fails until an admin anchors it."""
    path = tmp_path / AUDIT_DB_NAME
    make_log(path, 5)
    path.with_name(ANCHOR_FILE_NAME).unlink()
    tampered(cli_verify(path), "no head anchor")
    AuditLog(path).append("alice", "login", {})  # the app, upgraded but not yet anchored, carries on
    tampered(cli_verify(path), "begins at record 6 without an init line")
    assert run_cli("audit", "anchor", "--init", data_dir=tmp_path).returncode == 1
    proc = run_cli("audit", "anchor", "--init", "--force", "--reason", "upgrade", data_dir=tmp_path)
    assert proc.returncode == 0 and "unsigned" in proc.stdout
    proc = cli_verify(path)
    assert proc.returncode == 0 and "(unsigned)" in proc.stdout and "not signed" in proc.stderr


def test_an_empty_log_needs_no_anchor_and_a_deleted_log_is_caught(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    log = AuditLog(path)
    assert log.verify().ok and log.check_head().ok
    log.append("alice", "login", {})
    log.append("alice", "logout", {})
    path.unlink()  # the whole database removed; the app starts a new one
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    AuditLog(path).append("mallory", "login", {})
    tampered(cli_verify(path), "record 1", "does not match the head anchor")


def test_anchor_goes_where_the_settings_say(tmp_path: Path, monkeypatch) -> None:
    from settings import load_settings

    elsewhere = tmp_path / "worm-mount"
    elsewhere.mkdir()
    env = {"CQA_SECURITY__AUDIT_ANCHOR_PATH": str(elsewhere / "cqa-audit.jsonl"), "CQA_SECURITY__AUDIT_ANCHOR_KEY": KEY}
    data = tmp_path / "data"
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        log = AuditLog.from_settings(load_settings(data_dir=data))
    log.append("alice", "login", {})
    assert (elsewhere / "cqa-audit.jsonl").is_file() and not (data / ANCHOR_FILE_NAME).exists()
    assert log.anchor.signed
    proc = run_cli("audit", "verify", data_dir=data, env=env)
    assert proc.returncode == 0 and str(elsewhere / "cqa-audit.jsonl") in proc.stdout
    proc = run_cli("audit", "verify", data_dir=data)  # default settings: the anchor would be in the data dir
    tampered(proc, "no head anchor")
    monkeypatch.setenv("CQA_SECURITY__AUDIT_ANCHOR_KEY", "short")
    with pytest.raises(ValueError, match="at least 32"):
        AuditLog.from_settings(load_settings(data_dir=data))


def test_an_append_whose_anchor_cannot_be_written_is_not_committed(tmp_path: Path) -> None:
    path = tmp_path / AUDIT_DB_NAME
    log = AuditLog(path, anchor_path=tmp_path / "unmounted" / "anchor.jsonl")
    with pytest.raises(AuditError, match="cannot write the audit head anchor"):
        log.append("alice", "login", {})
    assert log.head() == (0, 0, GENESIS_HASH) and log.search(reader=EVERYTHING) == []
    (tmp_path / "unmounted").mkdir()
    log.append("alice", "login", {})
    assert log.verify().ok and log.verify().anchored_id == 1


def test_check_head_is_quick_and_sees_a_cut_tail(signed: Path) -> None:
    log = AuditLog(signed, anchor_key=KEY)
    quick = log.check_head()
    assert quick.ok and quick.anchored_id == 50 and quick.anchor_signed
    insider(signed, "DELETE FROM audit WHERE id > 47")
    quick = log.check_head()
    assert not quick.ok and "names record 50 but the log ends at record 47" in quick.reason


def test_verify_while_appending_never_sees_a_false_alarm(tmp_path: Path) -> None:
    """Anchor lines go out before their record commits: verify takes its snapshot and the anchor's
    size together, so a concurrent append never looks like a removed tail."""
    path = tmp_path / AUDIT_DB_NAME
    make_log(path, 20)
    code = (
        "import sys; from audit.log import AuditLog; log = AuditLog(sys.argv[1]);"
        "[log.append('writer', 'feedback', {'i': i}) for i in range(150)]"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=REPO)
    log = AuditLog(path)
    verdicts = []
    while writer.poll() is None:
        verdicts.append(log.verify())
        verdicts.append(log.check_head())
    assert writer.wait() == 0 and len(verdicts) >= 4
    assert all(v.ok for v in verdicts), [v.reason for v in verdicts if not v.ok]
    assert log.verify().anchored_id == 170


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
    purge = log.search(action="purge", reader=EVERYTHING)[0]
    assert purge.user == "ops" and purge.detail["purged_count"] == 15
    assert purge.detail["first_purged_id"] == 1 and purge.detail["last_purged_id"] == 15
    assert min(r.ts for r in log.search(limit=1000, reader=EVERYTHING)) >= datetime(2024, 1, 4, tzinfo=UTC)
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
    assert [r.action for r in log.search(user="bob", reader=EVERYTHING)] == ["refuse", "feedback"]
    assert len(log.search(action="ask", reader=EVERYTHING)) == 6
    assert len(log.search(text="正しい", reader=EVERYTHING)) == 1
    assert len(log.search(text="100%", reader=EVERYTHING)) == 1 and log.search(text="0%%", reader=EVERYTHING) == []
    assert len(log.search(text="_回答", reader=EVERYTHING)) == 1 and log.search(text="い回答", reader=EVERYTHING) == []
    assert len(log.search(since=date(2024, 1, 2), until=date(2024, 1, 2), reader=EVERYTHING)) == 2
    assert len(log.search(since="2024-01-02", action="ask", reader=EVERYTHING)) == 4
    assert len(log.search(until=datetime(2024, 1, 2, tzinfo=UTC), reader=EVERYTHING)) == 2
    assert len(log.search(limit=3, reader=EVERYTHING)) == 3
    with pytest.raises(ValueError):
        log.search(action="nope", reader=EVERYTHING)


def test_export_csv(tmp_path: Path) -> None:
    log, _ = _dated_log(tmp_path / AUDIT_DB_NAME, days=3, per_day=2)
    log.append("=HYPERLINK(\"x\")", "login_failed", {"reason": "bad_credentials"})
    buf = io.StringIO()
    assert log.export_csv(buf, EVERYTHING) == 7
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == ["id", "ts", "user", "action", "detail_json", "prev_hash", "hash"]
    assert [int(r["id"]) for r in rows] == list(range(1, 8))
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert json.loads(rows[0]["detail_json"])["day"] == "2024-01-01"
    assert rows[-1]["user"].startswith("'=")  # spreadsheet formula neutralised
    out = tmp_path / "jan2.csv"
    assert log.export_csv(out, EVERYTHING, since=date(2024, 1, 2), until=date(2024, 1, 2)) == 2
    with out.open(encoding="utf-8", newline="") as fh:
        assert [r["id"] for r in csv.DictReader(fh)] == ["3", "4"]


def test_search_pages_by_keyset_and_day_bounds_match_a_plain_filter(tmp_path: Path) -> None:
    from bench.audit import fill

    log = AuditLog(tmp_path / AUDIT_DB_NAME)
    fill(log, 3000)
    assert log.verify().ok and log.verify().anchored_id == 3000
    everything = log.search(limit=10_000, reader=EVERYTHING)
    for kwargs in ({}, {"user": "user007"}, {"action": "login"},
                   {"since": date(2024, 6, 1), "until": date(2024, 9, 30)},
                   {"user": "user042", "since": date(2025, 1, 1)}, {"until": date(2024, 2, 29), "action": "answer"}):
        since, until = kwargs.get("since"), kwargs.get("until")
        lo = datetime.combine(since, datetime.min.time(), tzinfo=UTC) if since else datetime.min.replace(tzinfo=UTC)
        hi = (datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=UTC) if until
              else datetime.max.replace(tzinfo=UTC))
        expected = [r.id for r in everything if lo <= r.ts < hi
                    and r.user == kwargs.get("user", r.user) and r.action == kwargs.get("action", r.action)]
        assert expected, kwargs
        pages, before = [], None
        while True:  # the page's keyset paging, 100 at a time
            page = log.search(**kwargs, limit=100, before_id=before, reader=EVERYTHING)
            pages += [r.id for r in page]
            if len(page) < 100:
                break
            before = page[-1].id
        assert pages == expected, kwargs
        if "user" not in kwargs and "action" not in kwargs:
            assert log.count(since, until) == len(expected)
            buf = io.StringIO()
            assert log.export_csv(buf, EVERYTHING, since, until) == len(expected)
            assert [int(r["id"]) for r in csv.DictReader(io.StringIO(buf.getvalue()))] == expected[::-1]
    assert log.search(since="2030-01-01", reader=EVERYTHING) == [] and log.count("2030-01-01") == 0


def test_searches_and_exports_read_in_id_order_without_sorting(tmp_path: Path) -> None:
    """Day bounds become id bounds: SQLite walks the table (or the user/action index) by id, so the
    newest page stops after its rows and an export streams; no query sorts the whole range."""
    from sqlalchemy import select

    from audit.log import AUDIT
    from bench.audit import fill

    log = AuditLog(tmp_path / AUDIT_DB_NAME)
    fill(log, 2000)
    cases = [
        (None, None, None, "2024-03-01", "2025-03-01", True),
        ("user001", None, None, "2024-03-01", None, True),
        (None, "answer", "本人", None, "2024-12-31", True),
        (None, None, None, "2024-03-01", "2025-03-01", False),  # the export
    ]
    with log._connection() as conn:
        for user, action, text, since, until, newest_page in cases:
            query = select(AUDIT).where(*log._where(conn, user, action, text, since, until))
            query = query.order_by(AUDIT.c.id.desc()).limit(200) if newest_page else query.order_by(AUDIT.c.id)
            sql = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "TEMP B-TREE" not in plan and "audit_ts" not in plan, plan


@pytest.fixture()
def audit_page(data_dir: Path):
    """The audit page on a 450-record log in the test data dir, as an admin or a staff user."""
    from streamlit.testing.v1 import AppTest

    import ui.state
    from bench.audit import fill
    from tests.conftest import make_container

    services = make_container(data_dir)
    admin = services.users.add_user("admin1", "correct-horse-battery", ["admin"])
    staff = services.users.add_user("staff1", "correct-horse-battery", ["staff"])
    fill(services.audit, 450)
    ui.state.container.clear()

    def make(user):
        at = AppTest.from_file(str(REPO / "ui" / "pages" / "audit.py"), default_timeout=120)
        at.session_state["user"] = admin if user == "admin" else staff
        return at

    yield services.audit, make
    ui.state.container.clear()
    services.close()


def test_audit_page_pages_filters_verifies_and_shows_tampering(audit_page) -> None:
    log, make = audit_page
    at = make("admin")
    at.run()
    assert not at.exception, at.exception
    assert "450" in at.success[0].value  # the head check on every view
    ids = list(at.dataframe[0].value["ID"])
    assert ids == list(range(450, 250, -1))
    older = next(b for b in at.button if b.label == "さらに古い記録")
    older.click().run()
    assert list(at.dataframe[0].value["ID"]) == list(range(250, 50, -1))
    next(b for b in at.button if b.label == "さらに古い記録").click().run()
    assert list(at.dataframe[0].value["ID"]) == list(range(50, 0, -1))
    assert next(b for b in at.button if b.label == "さらに古い記録").disabled
    next(b for b in at.button if b.label == "最新へ").click().run()
    assert list(at.dataframe[0].value["ID"])[0] == 450
    assert at.get("download_button") and "450" in at.get("download_button")[0].proto.label

    at.selectbox[0].set_value("login").run()  # a filter starts from the newest again
    shown = list(at.dataframe[0].value["ID"])
    logins = log.search(action="login", limit=200, reader=EVERYTHING)
    assert shown == [r.id for r in logins] and set(at.dataframe[0].value["操作"]) == {"サインイン"}

    next(b for b in at.button if b.label == "全件を検証").click().run()
    assert not at.exception and "450" in at.info[0].value

    insider(log.db_path, "DELETE FROM audit WHERE id > 440")  # cut the tail, head made consistent
    at.run()
    assert at.error and "改ざん" in at.error[0].value  # said in the user's language, the checker's words below
    assert "names record 450 but the log ends at record 440" in at.code[0].value


def test_audit_page_refuses_staff(audit_page) -> None:
    _log, make = audit_page
    at = make("staff")
    at.run()
    assert at.error and "権限" in at.error[0].value
    assert not at.dataframe and not at.get("download_button")


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
    purge = AuditLog(tmp_path / AUDIT_DB_NAME).search(action="purge", reader=EVERYTHING)
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
