"""The evaluation worker's queue, in the evaluation runs' database (``eval_runs`` schema, migration 0003).

The app enqueues a job (what to run, who asked, the store snapshot to read); a worker process claims the oldest
queued job (atomically: SQLite's ``BEGIN IMMEDIATE`` write lock, PostgreSQL's ``FOR UPDATE SKIP LOCKED``, and an
update that only moves a job still ``queued``), writes its progress, heartbeats while it works, and finishes it
(``finished`` / ``stopped`` / ``failed``). Cancelling is a flag on the row that the worker reads at each heartbeat.

A worker that dies leaves a ``running`` job whose heartbeat stops: whoever reads the queue next marks it failed
with a message naming the worker (:meth:`JobQueue.reap`): at once when the worker ran on this host and its process
is gone, else when its heartbeat is older than the timeout. Workers also record themselves in ``workers`` with a
heartbeat, so the app can tell whether one is running before it starts its own."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Double, Integer, MetaData, Table, Text, delete, func, insert, select, text, update

from core.errors import CQAError
from db import Database
from db.statements import upsert

_METADATA = MetaData()
JOBS = Table(
    "jobs",
    _METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("status", Text, nullable=False),
    Column("request", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("snapshot", Text),
    Column("created_at", Double, nullable=False),
    Column("worker", Text),
    Column("claimed_at", Double),
    Column("heartbeat_at", Double),
    Column("finished_at", Double),
    Column("cancel", Integer, nullable=False, server_default="0"),
    Column("done", Integer, nullable=False, server_default="0"),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("current_id", Text),
    Column("current_question", Text),
    Column("stage", Text),
    Column("message", Text),
    Column("seconds_left", Double),
    Column("run_id", Text),
    Column("error", Text),
    Column("failure", Text),
    Column("result", Text),
)
WORKERS = Table(
    "workers",
    _METADATA,
    Column("worker", Text, primary_key=True),
    Column("started_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Column("parent_pid", Integer),
)

ACTIVE = ("queued", "running")
ENDED = ("finished", "stopped", "failed")
PROGRESS_FIELDS = frozenset({"done", "total", "current_id", "current_question", "stage", "message", "seconds_left",
                             "run_id"})


def this_worker() -> str:
    """This process as a worker: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(worker: str) -> bool:
    """True when ``worker`` ran on this host and its process no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # an exited process its parent has not collected yet (a zombie) still answers kill(pid, 0)
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
            return True
        # the pid taken again by another process (pid_max is often 32768 and a test run spawns thousands)
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return not (b"eval" in command and b"worker" in command)
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class Job:
    """One row of the queue."""

    id: int
    status: str
    """queued | running | finished | stopped | failed"""
    request: dict
    actor: str
    snapshot: str | None
    created_at: float
    worker: str | None
    claimed_at: float | None
    heartbeat_at: float | None
    finished_at: float | None
    cancel: bool
    done: int
    total: int
    current_id: str | None
    current_question: str | None
    stage: str | None
    message: str | None
    seconds_left: float | None
    run_id: str | None
    error: str | None
    failure: dict | None
    """An expected failure as ``{"message", "key", "params"}`` (the page says it in the reader's language)."""
    result: dict | None

    @property
    def job_id(self) -> str:
        return f"job-{self.id}"


def job_number(job_id: str) -> int:
    """``job-12`` -> 12; CQAError for anything else."""
    prefix, _, number = job_id.partition("-")
    if prefix != "job" or not number.isdigit():
        raise CQAError(f"no evaluation job {job_id!r}")
    return int(number)


def _job(row) -> Job:
    values = dict(row)
    for key in ("request", "failure", "result"):
        values[key] = json.loads(values[key]) if values[key] else ({} if key == "request" else None)
    values["cancel"] = bool(values["cancel"])
    return Job(**values)


def failure_of(exc: CQAError) -> dict:
    return {"message": str(exc), "key": exc.key, "params": exc.params}


class JobQueue:
    """The queue in ``target`` (the run store's SQLite file or the database URL). A ``running`` job whose worker
    has not sent a heartbeat for ``timeout_seconds`` is taken for lost."""

    def __init__(self, target: Path | str, timeout_seconds: float = 120.0) -> None:
        self._db = Database(target, "eval_runs", wal=True, pragmas=("foreign_keys=ON",))
        self.timeout = timeout_seconds

    def close(self) -> None:
        self._db.dispose()

    # --- the app's side ---------------------------------------------------------------------

    def enqueue(self, request: dict, actor: str, snapshot: str | None = None, *, exclusive: bool = True) -> Job:
        """Add a job; with ``exclusive`` refuse (``eval_running``) while another job is queued or running."""
        self.reap()
        payload = json.dumps(request, ensure_ascii=False)
        with self._db.write() as conn:
            if exclusive:
                if conn.dialect.name == "postgresql":  # two enqueuers at once: the second waits, then sees the first
                    conn.execute(text("LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE"))
                busy = conn.execute(select(JOBS.c.id).where(JOBS.c.status.in_(ACTIVE)).order_by(JOBS.c.id)).first()
                if busy is not None:
                    raise CQAError(f"an evaluation is already running (job job-{busy[0]}); wait or stop it first",
                                   key="eval_running")
            number = conn.execute(
                insert(JOBS).values(status="queued", request=payload, actor=actor, snapshot=snapshot,
                                    created_at=time.time()).returning(JOBS.c.id)
            ).scalar_one()
        return self.get(number)

    def get(self, number: int) -> Job:
        with self._db.read() as conn:
            row = conn.execute(select(JOBS).where(JOBS.c.id == number)).mappings().first()
        if row is None:
            raise CQAError(f"no evaluation job 'job-{number}'")
        return _job(row)

    def recent(self, since: float) -> list[Job]:
        """Jobs created after ``since`` and every active one, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(JOBS).where((JOBS.c.created_at >= since) | JOBS.c.status.in_(ACTIVE)).order_by(JOBS.c.id)
            ).mappings().all()
        return [_job(row) for row in rows]

    def active(self) -> Job | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(JOBS).where(JOBS.c.status.in_(ACTIVE)).order_by(JOBS.c.id).limit(1)
            ).mappings().first()
        return _job(row) if row is not None else None

    def request_cancel(self, number: int) -> Job:
        """Ask the job to stop: a queued job stops at once, a running one when its worker next looks."""
        with self._db.write() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == number, JOBS.c.status == "queued").values(
                status="stopped", cancel=1, finished_at=time.time(), message="stopped before a worker took it"))
            conn.execute(update(JOBS).where(JOBS.c.id == number, JOBS.c.status == "running").values(cancel=1))
        return self.get(number)

    def reap(self) -> list[Job]:
        """Mark failed every running job whose worker is gone (its process on this host, or its heartbeat older
        than the timeout); return them."""
        now = time.time()
        with self._db.read() as conn:
            running = [_job(r) for r in conn.execute(select(JOBS).where(JOBS.c.status == "running")).mappings()]
        lost = []
        for job in running:
            worker = job.worker or "?"
            silent = now - (job.heartbeat_at or job.claimed_at or now)
            if _gone(worker):
                why = "its process has exited"
            elif silent > self.timeout:
                why = f"no heartbeat for {silent:.0f} s"
            else:
                continue
            message = (f"the evaluation worker {worker} stopped while running job-{job.id} ({why}); "
                       "start the evaluation again to resume its run")
            failure = failure_of(CQAError(message, key="eval_worker_lost", params={"worker": worker}))
            with self._db.write() as conn:
                moved = conn.execute(
                    update(JOBS).where(JOBS.c.id == job.id, JOBS.c.status == "running",
                                       JOBS.c.heartbeat_at == job.heartbeat_at)
                    .values(status="failed", error=message, failure=json.dumps(failure), finished_at=now,
                            current_id=None, current_question=None)
                ).rowcount
            if moved:
                lost.append(self.get(job.id))
        return lost

    def live_workers(self) -> list[str]:
        """Workers that sent a heartbeat within the timeout (and, on this host, whose process exists)."""
        with self._db.read() as conn:
            rows = conn.execute(select(WORKERS.c.worker).where(
                WORKERS.c.heartbeat_at >= time.time() - self.timeout)).scalars().all()
        return [w for w in rows if not _gone(w)]

    # --- the worker's side ------------------------------------------------------------------

    def worker_seen(self, worker: str, parent_pid: int | None = None) -> None:
        """Record ``worker``'s heartbeat (and register it the first time)."""
        now = time.time()
        with self._db.write() as conn:
            updated = conn.execute(update(WORKERS).where(WORKERS.c.worker == worker).values(heartbeat_at=now)).rowcount
            if not updated:
                upsert(conn, WORKERS, {"worker": worker, "started_at": now, "heartbeat_at": now,
                                       "parent_pid": parent_pid}, keys=("worker",))

    def worker_gone(self, worker: str) -> None:
        with self._db.write() as conn:
            conn.execute(delete(WORKERS).where(WORKERS.c.worker == worker))

    def claim(self, worker: str) -> Job | None:
        """The oldest queued job, now ``running`` for ``worker``; None when nothing waits."""
        now = time.time()
        with self._db.write() as conn:
            oldest = conn.execute(
                select(JOBS.c.id).where(JOBS.c.status == "queued").order_by(JOBS.c.id).limit(1)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the lock
            ).scalar()
            if oldest is None:
                return None
            moved = conn.execute(
                update(JOBS).where(JOBS.c.id == oldest, JOBS.c.status == "queued")
                .values(status="running", worker=worker, claimed_at=now, heartbeat_at=now, stage="starting")
            ).rowcount
        return self.get(oldest) if moved else None

    def heartbeat(self, number: int, worker: str) -> bool:
        """The job is still being worked on by ``worker``; returns whether it should stop (cancel asked, or the
        job no longer belongs to this worker: reaped while it was stalled)."""
        with self._db.write() as conn:
            owned = conn.execute(
                update(JOBS).where(JOBS.c.id == number, JOBS.c.worker == worker, JOBS.c.status == "running")
                .values(heartbeat_at=time.time())
            ).rowcount
            cancel = conn.execute(select(JOBS.c.cancel).where(JOBS.c.id == number)).scalar()
        return not owned or bool(cancel)

    def progress(self, number: int, **fields) -> None:
        unknown = set(fields) - PROGRESS_FIELDS
        if unknown:
            raise ValueError(f"cannot set {', '.join(sorted(unknown))} as progress")
        with self._db.write() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == number, JOBS.c.status == "running").values(**fields))

    def finish(self, number: int, status: str, *, run_id: str | None = None, result: dict | None = None,
               error: str | None = None, failure: dict | None = None, message: str | None = None) -> None:
        """End a running job as ``finished``, ``stopped`` or ``failed``."""
        if status not in ENDED:
            raise ValueError(f"a job ends as one of {', '.join(ENDED)}, not {status!r}")
        values: dict = {"status": status, "finished_at": time.time(), "current_id": None, "current_question": None,
                        "seconds_left": None if status != "finished" else 0.0}
        if run_id is not None:
            values["run_id"] = run_id
        if result is not None:
            values["result"] = json.dumps(result, ensure_ascii=False)
            values["done"], values["total"] = result["samples"], result["total"]
        if error is not None:
            values["error"] = error
        if failure is not None:
            values["failure"] = json.dumps(failure, ensure_ascii=False)
        if message is not None:
            values["message"] = message
        with self._db.write() as conn:
            conn.execute(update(JOBS).where(JOBS.c.id == number, JOBS.c.status == "running").values(**values))

    def count(self, status: str) -> int:
        with self._db.read() as conn:
            return conn.execute(select(func.count()).select_from(JOBS).where(JOBS.c.status == status)).scalar_one()
