"""python -m scripts.migrate_state end to end: a data dir with real content (the ingested samples, a user, feedback,
a conversation, an evaluation run, audit records) copied into a real PostgreSQL database, verified, and used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.errors import CQAError
from eval.run_store import RunStore, store_path
from qa.conversations import Message
from qa.feedback import Feedback
from scripts.migrate_state import main
from tests.conftest import make_container


def test_a_data_dir_moves_into_postgresql_and_the_app_runs_on_it(
    samples_data_dir: Path, tmp_path: Path, postgres_url: str, capsys
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(samples_data_dir, data_dir)
    c = make_container(data_dir)
    try:
        c.users.add_user("alice", "correct horse battery", roles="admin")
        c.record_feedback(Feedback("alice", "q?", "a.", True, "", [], "p1", "m"))
        cid = c.conversations.start("alice", "質問")
        c.conversations.add(cid, "alice", Message("user", "質問"))
        documents = len(c.registry.active())
        audit_records = c.audit.verify().records
    finally:
        c.close()
    RunStore(store_path(data_dir)).create_run("r1", "set", "0" * 64, "k", {}, ["m"], None, ["c1"])

    assert main(["--to", postgres_url, "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert f"audit chain: {audit_records} records verify" in out
    assert "registry.documents:" in out and "embedding_cache.vectors:" in out

    with pytest.raises(CQAError, match="already holds"):
        main(["--to", postgres_url, "--data-dir", str(data_dir)])
    assert main(["--to", postgres_url, "--data-dir", str(data_dir), "--replace"]) == 0

    moved = make_container(data_dir, database={"url": postgres_url})
    try:
        assert len(moved.registry.active()) == documents
        assert moved.users.get("alice") is not None
        assert [s.title for s in moved.conversations.conversations("alice")] == ["質問"]
        assert len(moved.feedback.recent()) == 1
        moved.audit.append("alice", "login", {})  # the chain goes on from the copied head
        assert moved.audit.verify().ok
        moved.record_feedback(Feedback("alice", "q2?", "b.", False, "", [], "p1", "m"))  # ids go on too
        assert len(moved.feedback.recent()) == 2
    finally:
        moved.close()


def test_a_target_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="database.url"):
        main(["--to", "sqlite:///elsewhere.sqlite3", "--data-dir", str(tmp_path)])
