"""Every state store on both backends: a SQLite file per store (the embedded default) and one real PostgreSQL
database shared by all stores (tests/postgres.py starts the server), as ``database.url`` selects; and the audit
hash chain on PostgreSQL with two processes appending at once."""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from audit.log import AuditLog
from auth.store import AuthError, UserStore
from db import Database, DatabaseError
from eval.run_store import RunStore
from ingest.registry import DocumentVersion, Registry
from qa.conversations import ConversationStore, Message
from qa.feedback import Feedback, FeedbackStore
from scripts.migrate_state import existing_stores
from tests.conftest import EN_MD, make_container
from tests.helpers import EVERYTHING
from tests.test_audit import FakeClock


def test_users_sign_in_and_lockout(state_target) -> None:
    users = UserStore(state_target("users"), max_failed_attempts=2)
    users.add_user("alice", "correct horse battery", roles="staff", groups="aml")
    assert users.authenticate("alice", "correct horse battery").name == "alice"
    for _ in range(2):
        with pytest.raises(AuthError):
            users.authenticate("alice", "wrong password!!")
    assert users.get("alice").is_locked()
    assert [u.name for u in UserStore(state_target("users")).list_users()] == ["alice"]


def test_audit_chain_appends_and_verifies(state_target, tmp_path: Path) -> None:
    log = AuditLog(state_target("audit"), anchor_path=tmp_path / "anchor.log")
    ids = [log.append("alice", "login", {"n": i}) for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    result = log.verify()
    assert result.ok and result.records == 5, result


def test_audit_purge_search_and_append_only_guards(state_target, tmp_path: Path) -> None:
    clock = FakeClock(datetime(2024, 1, 1, 12, 0, tzinfo=UTC))
    log = AuditLog(state_target("audit"), anchor_path=tmp_path / "anchor.log", clock=clock)
    for day in range(4):
        log.append("alice", "login", {"day": day, "text": f"question {day}"})
        clock.advance(days=1)
    assert [r.detail["day"] for r in log.search(text="QUESTION 2", reader=EVERYTHING)] == [2]
    assert log.purge_before(date(2024, 1, 3), actor="ops") == 2
    result = log.verify()
    assert result.ok and result.records == 3 and not [w for w in result.warnings if "trigger" in w], result
    db = Database(state_target("audit"), "audit")
    for statement in ("UPDATE audit SET action = 'login'", "DELETE FROM audit", "DELETE FROM head"):
        with pytest.raises(DatabaseError, match="append-only|cannot be deleted"), db.write() as conn:
            conn.execute(text(statement))
    assert log.verify().ok


def test_eval_runs_and_samples(state_target) -> None:
    runs = RunStore(state_target("eval_runs"))
    for run_id in ("r1", "r2", "r3"):  # mostly within one second: the insertion order breaks the tie
        runs.create_run(run_id, "set", "0" * 64, "key", {"k": 1}, ["faithfulness"], None, ["c1", "c2"])
    runs.save_sample("r1", 0, "c1", {"score": 1.0})
    runs.save_sample("r1", 0, "c1", {"score": 0.5})  # the same sample again replaces it
    assert runs.done_ids("r1") == {"c1"} and [s["score"] for s in runs.samples("r1")] == [0.5]
    assert (runs.get("latest").run_id, runs.get("previous").run_id) == ("r3", "r2")
    assert [(r.run_id, r.done) for r in runs.list()] == [("r3", 0), ("r2", 0), ("r1", 1)]
    assert runs.find_resumable("key").run_id == "r3"  # this process's own unfinished run
    runs.update("r3", status="finished", aggregate={"faithfulness": 1.0})
    runs.update("r2", pid=os.getppid())  # owned by a live process: not resumable
    assert runs.find_resumable("key").run_id == "r1" and runs.find_resumable("other") is None
    runs.update("r1", status="interrupted", error="stopped")
    runs.claim("r1")
    resumed = runs.get("r1")
    assert (resumed.status, resumed.pid, resumed.error) == ("running", os.getpid(), None)
    assert runs.get("r3").aggregate == {"faithfulness": 1.0}
    with pytest.raises(ValueError, match="cannot update"):
        runs.update("r1", testset="other")


def _draft(doc_id: str, n: int) -> DocumentVersion:
    return DocumentVersion(doc_id=doc_id, version=0, doc_key=doc_id, title="事務規程", doc_type="markdown",
                           source=f"rules-{n}.md", sha256=f"{n:064x}", effective_from=None, effective_to=None,
                           status="pending", access=(), ingested_at="", pages=1, chunks=0, source_path="/docs/rules.md")


def test_registry_editions_of_one_document_written_at_once_stay_one_line(state_target) -> None:
    """Eight writers, each with its own connections, add and activate a new version of one document at the same
    instant (two app nodes ingesting the same file): each version gets its own number, exactly one stays active and
    every other one is superseded; a restore racing with the writers leaves one active version too."""
    target = state_target("registry")
    Registry(target).close()  # the schema exists before the race
    writers = 8
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(n: int, restore: bool = False) -> None:
        registry = Registry(target)
        try:
            start.wait(60)
            if restore:
                registry.restore("doc-1", 1)
            else:
                version = registry.begin_version(_draft("doc-1", n))
                registry.activate("doc-1", version.version, chunks=n)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            registry.close()

    registry = Registry(target)
    registry.activate("doc-1", registry.begin_version(_draft("doc-1", 0)).version, chunks=1)
    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, writers)]
    threads.append(threading.Thread(target=write, args=(writers, True)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    versions = registry.versions_of("doc-1")
    assert [v.version for v in versions] == list(range(1, writers + 1))
    statuses = [v.status for v in versions]
    assert statuses.count("active") == 1 and statuses.count("superseded") == writers - 1, statuses
    assert all(v.effective_to is not None for v in versions if v.status == "superseded")
    assert {v.version for v in registry.unsynced()} == set(range(1, writers + 1))  # the store must catch up


def test_feedback_and_conversations(state_target) -> None:
    feedback = FeedbackStore(state_target("feedback"))
    fid = feedback.add(Feedback("alice", "q?", "a.", True, "", [{"doc_id": "d"}], "p1", "m"))
    assert [row["id"] for row in feedback.recent()] == [fid]
    events: list[tuple] = []
    conversations = ConversationStore(state_target("conversations"), lambda *a, **k: events.append(a), 30)
    cid = conversations.start("alice", "最初の質問")
    conversations.add(cid, "alice", Message("user", "最初の質問"))
    assert [m.content for m in conversations.messages(cid, "alice")] == ["最初の質問"]
    conversations.delete(cid, "alice")
    assert conversations.conversations("alice") == []


def test_the_container_puts_every_store_in_the_database_url(postgres_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    c = make_container(data_dir, database={"url": postgres_url})
    try:
        c.users.add_user("alice", "correct horse battery", roles="admin")
        report = c.ingest.ingest([EN_MD])
        assert not report.failed, report
        assert c.audit.verify().ok
    finally:
        c.close()
    stores = ["users", "audit", "registry", "embedding_cache"]
    assert existing_stores(postgres_url, stores) == stores
    assert not list(data_dir.glob("*.sqlite3")), "a store wrote a SQLite file although database.url is set"


def _append_many(url: str, anchor: str, who: str, n: int) -> None:
    log = AuditLog(url, anchor_path=anchor)
    for i in range(n):
        log.append(who, "login", {"i": i})


def test_audit_chain_holds_with_two_processes_appending_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    anchor = str(tmp_path / "anchor.log")
    AuditLog(postgres_url, anchor_path=anchor)  # the schema exists before the race
    n = 60
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(postgres_url, anchor, who, n)) for who in ("p1", "p2")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    log = AuditLog(postgres_url, anchor_path=anchor)
    result = log.verify()
    assert result.ok and result.records == 2 * n, result
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text('SELECT id, "user", prev_hash, hash FROM audit.audit ORDER BY id')).all()
    finally:
        engine.dispose()
    assert [r.id for r in rows] == list(range(1, 2 * n + 1))
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert {r.user for r in rows} == {"p1", "p2"}


def test_verify_while_another_process_appends_on_postgresql_sees_no_false_alarm(
    postgres_url: str, tmp_path: Path
) -> None:
    anchor = str(tmp_path / "anchor.log")
    log = AuditLog(postgres_url, anchor_path=anchor)
    log.append("p0", "login", {})
    writer = multiprocessing.get_context("spawn").Process(target=_append_many, args=(postgres_url, anchor, "p1", 150))
    writer.start()
    verdicts = []
    while writer.is_alive() or not verdicts:
        verdicts.append(log.verify())
    writer.join(120)
    assert writer.exitcode == 0 and len(verdicts) >= 2
    assert all(v.ok for v in verdicts), [v.reason for v in verdicts if not v.ok]
    assert log.verify().records == 151


def test_a_database_url_that_is_not_postgresql_is_refused(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="database.url"):
        make_container(data_dir, database={"url": "mysql://db.internal/cqa"})
