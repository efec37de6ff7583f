"""The database layer: new databases are created at the newest revision, databases written before Alembic
are adopted without losing a row, and a schema without migrations or an in-memory SQLite is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from db import Database, DatabaseError, database_url
from db.migrate import VERSION_TABLE, baseline, heads

# Each store's schema exactly as the code before SQLAlchemy and Alembic created it (copied from that code),
# with one row, so that adoption can be checked against what a release wrote.
LEGACY = {
    "audit": (
        """
        CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, user TEXT NOT NULL,
            action TEXT NOT NULL, detail_json TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX audit_ts ON audit(ts);
        CREATE INDEX audit_user ON audit(user, id);
        CREATE INDEX audit_action ON audit(action, id);
        CREATE TABLE head (k INTEGER PRIMARY KEY CHECK (k = 1), count INTEGER NOT NULL, last_id INTEGER NOT NULL,
            last_hash TEXT NOT NULL, last_ts TEXT NOT NULL);
        INSERT INTO head (k, count, last_id, last_hash, last_ts) VALUES (1, 1, 1, 'h1', 't');
        CREATE TABLE anchors (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, cutoff TEXT NOT NULL,
            first_purged_id INTEGER NOT NULL, last_purged_id INTEGER NOT NULL, last_purged_hash TEXT NOT NULL,
            purged_count INTEGER NOT NULL);
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be changed'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted'); END;
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
        INSERT INTO audit VALUES (1, 't', 'alice', 'login', '{}', '0', 'h1');
        """,
        "SELECT a.id, a.hash, h.last_hash FROM audit a JOIN head h ON h.last_id = a.id",
        [(1, "h1", "h1")],
    ),
    "users": (
        """
        CREATE TABLE users (name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE, pw_hash TEXT NOT NULL,
            roles TEXT NOT NULL, groups_json TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, password_changed_at TEXT NOT NULL,
            failed_attempts INTEGER NOT NULL DEFAULT 0, locked_until TEXT,
            must_change_password INTEGER NOT NULL DEFAULT 0, last_login_at TEXT,
            source TEXT NOT NULL DEFAULT 'password');
        CREATE TABLE failed_names (name_key TEXT NOT NULL PRIMARY KEY, failed_attempts INTEGER NOT NULL,
            locked_until TEXT, updated_at TEXT NOT NULL);
        INSERT INTO users (name, pw_hash, roles, groups_json, created_at, updated_at, password_changed_at, source)
            VALUES ('Alice', 'h', '["admin"]', '[]', 't', 't', 't', 'oidc');
        """,
        "SELECT name, source FROM users",
        [("Alice", "oidc")],
    ),
    "registry": (
        """
        CREATE TABLE documents (doc_id TEXT NOT NULL, version INTEGER NOT NULL, doc_key TEXT NOT NULL,
            title TEXT NOT NULL, doc_type TEXT NOT NULL, source TEXT NOT NULL, sha256 TEXT NOT NULL,
            effective_from TEXT, effective_to TEXT, status TEXT NOT NULL, access TEXT NOT NULL,
            ingested_at TEXT NOT NULL, pages INTEGER NOT NULL DEFAULT 0, chunks INTEGER NOT NULL DEFAULT 0,
            warnings TEXT NOT NULL DEFAULT '[]', store_synced INTEGER NOT NULL DEFAULT 1,
            source_path TEXT NOT NULL DEFAULT '', PRIMARY KEY (doc_id, version));
        CREATE INDEX documents_sha ON documents (sha256);
        CREATE INDEX documents_key ON documents (doc_key);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE edition_suggestions (doc_id TEXT NOT NULL, of_doc_id TEXT NOT NULL, overlap REAL NOT NULL,
            reason TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (doc_id, of_doc_id));
        INSERT INTO documents (doc_id, version, doc_key, title, doc_type, source, sha256, status, access,
            ingested_at, source_path) VALUES ('d1', 1, 'k', '規程', 'rule', 's', 'x', 'active', '[]', 't', '/p');
        """,
        "SELECT doc_id, title, source_path FROM documents",
        [("d1", "規程", "/p")],
    ),
    "eval_runs": (
        """
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            finished_at TEXT, status TEXT NOT NULL, testset TEXT NOT NULL, testset_sha256 TEXT NOT NULL,
            config_key TEXT NOT NULL, config TEXT NOT NULL, metrics TEXT NOT NULL, judge TEXT,
            total INTEGER NOT NULL, case_ids TEXT NOT NULL, aggregate TEXT, error TEXT, pid INTEGER, label TEXT);
        CREATE INDEX runs_key ON runs (config_key, status);
        CREATE TABLE samples (run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            case_id TEXT NOT NULL, idx INTEGER NOT NULL, created_at TEXT NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (run_id, case_id));
        INSERT INTO runs VALUES ('r1', 't', 't', NULL, 'finished', 'ts', 'sha', 'ck', '{}', '[]', NULL, 1, '[]',
            NULL, NULL, NULL, NULL);
        INSERT INTO samples VALUES ('r1', 'c1', 0, 't', '{}');
        """,
        "SELECT runs.run_id, case_id FROM runs JOIN samples USING (run_id)",
        [("r1", "c1")],
    ),
    "embedding_cache": (
        """
        CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL);
        INSERT INTO vectors VALUES ('k', x'0000803f');
        """,
        "SELECT key, vector FROM vectors",
        [("k", b"\x00\x00\x80\x3f")],
    ),
    "feedback": (
        """
        CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, ts TEXT, user TEXT, question TEXT,
            answer TEXT, positive INTEGER, comment TEXT, citations TEXT, prompt_version TEXT, model TEXT);
        INSERT INTO feedback (ts, user, question, positive) VALUES ('t', 'bob', '質問', 1);
        """,
        "SELECT id, user, question FROM feedback",
        [(1, "bob", "質問")],
    ),
}


def _columns(path: Path) -> dict[str, list[tuple]]:
    """Every table's columns as (name, type, default, primary-key position), the indexes, the triggers (name
    and text, white space aside) and the user version."""
    with sqlite3.connect(path) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        out = {t: [(c[1], c[2], c[4], c[5]) for c in conn.execute(f"PRAGMA table_info('{t}')")] for t in tables}
        out["indexes"] = sorted(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"
                                             " AND name NOT LIKE 'sqlite_autoindex%'"))
        out["triggers"] = sorted((name, " ".join(sql.split())) for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        out["user_version"] = conn.execute("PRAGMA user_version").fetchall()
    conn.close()
    return out


def _legacy_db(path: Path, script: str) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    conn.close()
    return path


@pytest.mark.parametrize("schema", sorted(LEGACY))
def test_a_database_from_before_alembic_is_adopted_with_its_rows(tmp_path: Path, schema: str) -> None:
    script, query, rows = LEGACY[schema]
    old = _legacy_db(tmp_path / "old.sqlite3", script)
    Database(old, schema)
    with sqlite3.connect(old) as conn:
        assert conn.execute(query).fetchall() == rows
        assert {v for (v,) in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")} == heads(schema)
    conn.close()
    fresh = tmp_path / "new.sqlite3"
    Database(fresh, schema)
    assert _columns(old) == _columns(fresh)  # adopted = created new, column for column


def test_files_from_before_the_last_in_code_migrations_get_their_columns_and_tables(tmp_path: Path) -> None:
    """The users file before single sign-on and the registry before document identity: Alembic adds what
    the stores used to add with ALTER TABLE, and the tables that came with it."""
    users = _legacy_db(tmp_path / "users.sqlite3", LEGACY["users"][0].split("CREATE TABLE failed_names")[0]
                       .replace(",\n            source TEXT NOT NULL DEFAULT 'password')", ")")
                       + "INSERT INTO users (name, pw_hash, roles, groups_json, created_at, updated_at,"
                         " password_changed_at) VALUES ('old', 'h', '[\"staff\"]', '[]', 't', 't', 't');")
    Database(users, "users")
    with sqlite3.connect(users) as conn:
        assert conn.execute("SELECT name, source FROM users").fetchall() == [("old", "password")]
        assert conn.execute("SELECT count(*) FROM failed_names").fetchone() == (0,)
    conn.close()
    fresh = Database(tmp_path / "fresh-users.sqlite3", "users").path
    assert fresh is not None and _columns(users) == _columns(fresh)


def test_a_new_database_is_at_the_newest_revision_and_opening_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite3"
    Database(path, "users", file_mode=0o600)
    assert path.stat().st_mode & 0o777 == 0o600
    before = path.read_bytes()
    Database(path, "users")
    assert path.read_bytes() == before
    assert baseline("users") == "users_0001" and heads("users") == {"users_0003"}


def test_unknown_schema_and_in_memory_sqlite_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no migrations for the database schema 'nope'"):
        Database(tmp_path / "x.sqlite3", "nope")
    with pytest.raises(DatabaseError, match="must be a file"):
        Database("sqlite:///:memory:", "users")


def test_a_path_is_a_sqlite_file_and_a_url_is_taken_as_it_stands(tmp_path: Path) -> None:
    odd = tmp_path / "a dir #1?" / "users.sqlite3"  # characters a hand-built sqlite:/// URL would mangle
    assert database_url(odd).get_backend_name() == "sqlite" and database_url(odd).database == str(odd)
    Database(odd, "users")
    assert odd.is_file()
    url = database_url("postgresql+psycopg://cqa@db.internal:5432/cqa")
    assert (url.get_backend_name(), url.get_driver_name(), url.host, url.database) == (
        "postgresql", "psycopg", "db.internal", "cqa")


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite3"
    path.write_bytes(b"not a database, " * 512)
    with pytest.raises(DatabaseError) as caught:
        Database(path, "users")
    assert str(caught.value) == f"database {path}: file is not a database"


def test_writes_begin_immediate_and_roll_back_on_error(tmp_path: Path) -> None:
    db = Database(tmp_path / "feedback.sqlite3", "feedback")
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.exec_driver_sql("INSERT INTO feedback (user) VALUES ('x')")
        # the write lock is held from BEGIN on: another connection cannot start writing
        other = sqlite3.connect(db.path, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
        raise RuntimeError("rolled back")
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM feedback").scalar() == 0


def test_the_tables_each_store_declares_are_the_migrated_ones(state_target) -> None:
    """A column declared in a store module without a migration (or the reverse) fails here, not in use."""
    from sqlalchemy import inspect

    from audit.log import ANCHORS, AUDIT, HEAD
    from auth.store import FAILED_NAMES, USERS
    from eval.run_store import RUNS, SAMPLES
    from eval.worker_queue import JOBS, WORKERS
    from ingest.embedding_cache import VECTORS
    from ingest.registry import DOCUMENTS, EDITION_SUGGESTIONS
    from qa.feedback import FEEDBACK

    declared = {
        "audit": (AUDIT, HEAD, ANCHORS), "users": (USERS, FAILED_NAMES), "eval_runs": (RUNS, SAMPLES, JOBS, WORKERS),
        "embedding_cache": (VECTORS,), "registry": (DOCUMENTS, EDITION_SUGGESTIONS), "feedback": (FEEDBACK,),
    }
    for schema, tables in declared.items():
        db = Database(state_target(schema), schema)
        with db.read() as conn:
            inspector = inspect(conn)
            for table in tables:
                migrated = [(c["name"], str(c["type"]).split()[0]) for c in inspector.get_columns(table.name)
                            if not (c["name"] == "rowid" and conn.dialect.name == "postgresql")]  # eval_runs 0002
                mine = [(c.name, c.type.compile(dialect=conn.dialect).split()[0]) for c in table.columns]
                assert migrated == mine, table.name


def test_the_embedding_cache_computes_each_text_once(tmp_path: Path) -> None:
    import numpy as np

    from ingest.embedding_cache import EmbeddingCache

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)

    cache = EmbeddingCache(tmp_path / "embeddings.sqlite3", "model-a")
    first, computed = cache.embed(["規程", "manual", "規程"], embed)
    assert computed == 2 and first.tolist() == [[2, ord("規")], [6, ord("m")], [2, ord("規")]]
    again, computed = EmbeddingCache(tmp_path / "embeddings.sqlite3", "model-a").embed(["manual", "新"], embed)
    assert computed == 1 and again.tolist() == [[6, ord("m")], [1, ord("新")]]
    assert sorted(calls[0]) == ["manual", "規程"] and calls[1:] == [["新"]]  # each text once
