"""Evaluation runs in SQLite (``<data_dir>/eval/runs.sqlite3``): one row per run with its
full configuration and aggregate, one row per answered sample, written one by one so an
interrupted run resumes where it stopped."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    RowMapping,
    Select,
    Table,
    Text,
    func,
    insert,
    literal_column,
    select,
    update,
)

from core.errors import CQAError
from db import Database
from db.statements import upsert

_METADATA = MetaData()
RUNS = Table(
    "runs",
    _METADATA,
    Column("run_id", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("status", Text, nullable=False),
    Column("testset", Text, nullable=False),
    Column("testset_sha256", Text, nullable=False),
    Column("config_key", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("judge", Text),
    Column("total", Integer, nullable=False),
    Column("case_ids", Text, nullable=False),
    Column("aggregate", Text),
    Column("error", Text),
    Column("pid", Integer),
    Column("label", Text),
)
SAMPLES = Table(
    "samples",
    _METADATA,
    Column("run_id", Text, ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("case_id", Text, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("record", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "case_id"),
)
_ROWID = literal_column("runs.rowid")
"""Insertion order, which breaks ties between runs created in the same second (SQLite's rowid; on PostgreSQL an
identity column of that name, db/migrations/eval_runs/0002)."""
_DONE = (
    select(func.count()).select_from(SAMPLES).where(SAMPLES.c.run_id == RUNS.c.run_id).scalar_subquery().label("done")
)

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


def _record(row: RowMapping) -> RunRecord:
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
        done=row["done"],
    )


class RunStore:
    """The runs in ``path`` (a SQLite file, WAL, foreign keys on) or a database URL."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._db = Database(path, "eval_runs", wal=True, pragmas=("foreign_keys=ON",))

    def close(self) -> None:
        """Nothing stays open between calls; kept for the callers that close what they open."""
        self._db.dispose()

    def _runs(self, query: Select) -> list[RunRecord]:
        with self._db.read() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]

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
        with self._db.write() as conn:
            conn.execute(
                insert(RUNS).values(
                    run_id=run_id, created_at=stamp, updated_at=stamp, status="running", testset=testset,
                    testset_sha256=testset_sha256, config_key=config_key,
                    config=json.dumps(config, ensure_ascii=False), metrics=json.dumps(metrics), judge=judge,
                    total=len(case_ids), case_ids=json.dumps(case_ids, ensure_ascii=False), pid=os.getpid(),
                    label=label,
                )
            )
        return self.get(run_id)

    def get(self, run_id: str) -> RunRecord:
        """A run by id, unique id prefix, or ``latest`` / ``previous``."""
        runs = select(RUNS, _DONE)
        if run_id in ("latest", "previous"):
            rows = self._runs(runs.order_by(RUNS.c.created_at.desc(), _ROWID.desc()).limit(2))
            index = 0 if run_id == "latest" else 1
            if len(rows) <= index:
                raise CQAError(f"there is no {run_id} run in {self.path}")
            return rows[index]
        rows = self._runs(runs.where(RUNS.c.run_id == run_id))
        if not rows:
            rows = self._runs(runs.where(RUNS.c.run_id.startswith(run_id)))
            if len(rows) > 1:
                raise CQAError(f"run id {run_id!r} is ambiguous ({', '.join(r.run_id for r in rows)})")
            if not rows:
                raise CQAError(f"no run {run_id!r} in {self.path}")
        return rows[0]

    def list(self) -> list[RunRecord]:
        return self._runs(select(RUNS, _DONE).order_by(RUNS.c.created_at.desc(), _ROWID.desc()))

    def find_resumable(self, config_key: str) -> RunRecord | None:
        """The newest unfinished run with this configuration that no live process owns."""
        rows = self._runs(
            select(RUNS, _DONE)
            .where(RUNS.c.config_key == config_key, RUNS.c.status.in_(UNFINISHED))
            .order_by(RUNS.c.created_at.desc(), _ROWID.desc())
        )
        for row in rows:
            if row.status == "running" and _pid_alive(row.pid):
                continue
            return row
        return None

    def claim(self, run_id: str) -> None:
        """Mark the run as being worked on by this process (resuming it)."""
        with self._db.write() as conn:
            conn.execute(
                update(RUNS)
                .where(RUNS.c.run_id == run_id)
                .values(status="running", pid=os.getpid(), updated_at=now(), error=None)
            )

    def update(self, run_id: str, **fields) -> None:
        allowed = {"status", "aggregate", "error", "finished_at", "total", "case_ids", "config", "label", "pid"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}")
        values = {k: json.dumps(v, ensure_ascii=False) if k in ("aggregate", "case_ids", "config") else v
                  for k, v in fields.items()}
        values["updated_at"] = now()
        with self._db.write() as conn:
            conn.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(**values))

    # --- samples ----------------------------------------------------------------------------

    def save_sample(self, run_id: str, idx: int, case_id: str, record: dict) -> None:
        with self._db.write() as conn:
            values = {"run_id": run_id, "case_id": case_id, "idx": idx, "created_at": now(),
                      "record": json.dumps(record, ensure_ascii=False)}
            upsert(conn, SAMPLES, values, keys=("run_id", "case_id"))
            conn.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(updated_at=now()))

    def done_ids(self, run_id: str) -> set[str]:
        with self._db.read() as conn:
            return set(conn.execute(select(SAMPLES.c.case_id).where(SAMPLES.c.run_id == run_id)).scalars())

    def samples(self, run_id: str) -> list[dict]:
        """Stored sample records in test-set order; each has ``saved_at`` added."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(SAMPLES.c.record, SAMPLES.c.created_at).where(SAMPLES.c.run_id == run_id).order_by(SAMPLES.c.idx)
            ).all()
        out = []
        for record_json, created_at in rows:
            record = json.loads(record_json)
            record["saved_at"] = created_at
            out.append(record)
        return out
