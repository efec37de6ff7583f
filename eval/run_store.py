"""Evaluation runs in SQLite (``<data_dir>/eval/runs.sqlite3``): one row per run with its
full configuration and aggregate, one row per answered sample, written one by one so an
interrupted run resumes where it stopped."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core.errors import CQAError
from core.sqlite import ThreadLocalSQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    testset TEXT NOT NULL,
    testset_sha256 TEXT NOT NULL,
    config_key TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    judge TEXT,
    total INTEGER NOT NULL,
    case_ids TEXT NOT NULL,
    aggregate TEXT,
    error TEXT,
    pid INTEGER,
    label TEXT
);
CREATE INDEX IF NOT EXISTS runs_key ON runs (config_key, status);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    case_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, case_id)
);
"""

UNFINISHED = ("running", "interrupted", "failed")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def store_path(data_dir: Path) -> Path:
    return data_dir / "eval" / "runs.sqlite3"


@dataclass
class RunRecord:
    run_id: str
    created_at: str
    updated_at: str
    finished_at: str | None
    status: str
    """running | interrupted | finished | failed"""
    testset: str
    testset_sha256: str
    config_key: str
    config: dict
    metrics: list[str]
    judge: str | None
    total: int
    case_ids: list[str]
    aggregate: dict | None
    error: str | None
    pid: int | None
    label: str | None
    done: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == "finished"


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore(ThreadLocalSQLite):
    SCHEMA = _SCHEMA
    PRAGMAS = ("foreign_keys=ON",)

    # --- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        testset: str,
        testset_sha256: str,
        config_key: str,
        config: dict,
        metrics: list[str],
        judge: str | None,
        case_ids: list[str],
        label: str | None = None,
    ) -> RunRecord:
        stamp = now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, created_at, updated_at, status, testset, testset_sha256, config_key, "
                "config, metrics, judge, total, case_ids, pid, label) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id, stamp, stamp, "running", testset, testset_sha256, config_key,
                    json.dumps(config, ensure_ascii=False), json.dumps(metrics), judge, len(case_ids),
                    json.dumps(case_ids, ensure_ascii=False), os.getpid(), label,
                ),
            )
        return self.get(run_id)

    def _row(self, row: sqlite3.Row) -> RunRecord:
        done = self._db().execute("SELECT COUNT(*) FROM samples WHERE run_id = ?", (row["run_id"],)).fetchone()[0]
        return RunRecord(
            run_id=row["run_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            status=row["status"],
            testset=row["testset"],
            testset_sha256=row["testset_sha256"],
            config_key=row["config_key"],
            config=json.loads(row["config"]),
            metrics=json.loads(row["metrics"]),
            judge=row["judge"],
            total=row["total"],
            case_ids=json.loads(row["case_ids"]),
            aggregate=json.loads(row["aggregate"]) if row["aggregate"] else None,
            error=row["error"],
            pid=row["pid"],
            label=row["label"],
            done=done,
        )

    def get(self, run_id: str) -> RunRecord:
        """A run by id, unique id prefix, or ``latest`` / ``previous``."""
        db = self._db()
        if run_id in ("latest", "previous"):
            rows = db.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 2").fetchall()
            index = 0 if run_id == "latest" else 1
            if len(rows) <= index:
                raise CQAError(f"there is no {run_id} run in {self.path}")
            return self._row(rows[index])
        row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            rows = db.execute("SELECT * FROM runs WHERE run_id LIKE ? || '%'", (run_id,)).fetchall()
            if len(rows) > 1:
                raise CQAError(f"run id {run_id!r} is ambiguous ({', '.join(r['run_id'] for r in rows)})")
            if not rows:
                raise CQAError(f"no run {run_id!r} in {self.path}")
            row = rows[0]
        return self._row(row)

    def list(self) -> list[RunRecord]:
        rows = self._db().execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC").fetchall()
        return [self._row(r) for r in rows]

    def find_resumable(self, config_key: str) -> RunRecord | None:
        """The newest unfinished run with this configuration that no live process owns."""
        rows = self._db().execute(
            f"SELECT * FROM runs WHERE config_key = ? AND status IN ({','.join('?' * len(UNFINISHED))}) "
            "ORDER BY created_at DESC, rowid DESC",
            (config_key, *UNFINISHED),
        ).fetchall()
        for row in rows:
            if row["status"] == "running" and _pid_alive(row["pid"]):
                continue
            return self._row(row)
        return None

    def claim(self, run_id: str) -> None:
        """Mark the run as being worked on by this process (resuming it)."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status='running', pid=?, updated_at=?, error=NULL WHERE run_id=?",
                (os.getpid(), now(), run_id),
            )

    def update(self, run_id: str, **fields) -> None:
        allowed = {"status", "aggregate", "error", "finished_at", "total", "case_ids", "config", "label", "pid"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}")
        values = {k: json.dumps(v, ensure_ascii=False) if k in ("aggregate", "case_ids", "config") else v
                  for k, v in fields.items()}
        values["updated_at"] = now()
        sets = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", (*values.values(), run_id))

    # --- samples ----------------------------------------------------------------------------

    def save_sample(self, run_id: str, idx: int, case_id: str, record: dict) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO samples (run_id, case_id, idx, created_at, record) VALUES (?,?,?,?,?)",
                (run_id, case_id, idx, now(), json.dumps(record, ensure_ascii=False)),
            )
            db.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", (now(), run_id))

    def done_ids(self, run_id: str) -> set[str]:
        rows = self._db().execute("SELECT case_id FROM samples WHERE run_id = ?", (run_id,)).fetchall()
        return {r[0] for r in rows}

    def samples(self, run_id: str) -> list[dict]:
        """Stored sample records in test-set order; each has ``saved_at`` added."""
        rows = self._db().execute(
            "SELECT record, created_at FROM samples WHERE run_id = ? ORDER BY idx", (run_id,)
        ).fetchall()
        out = []
        for r in rows:
            record = json.loads(r["record"])
            record["saved_at"] = r["created_at"]
            out.append(record)
        return out
