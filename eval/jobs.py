"""Evaluation runs for the Streamlit page: start, watch, stop, read results.

A run started here is a job in the evaluation worker's queue (eval/worker_queue.py, in the run store's database):
a worker process (``python -m eval worker``, eval/worker.py) runs it, so the app process only enqueues, reads
progress and asks to stop. With the embedded store the app, which owns it, first copies it for the job (the run
reads the index as it was when started; the copy is deleted after the run); with a Qdrant server the worker reads
the server. When no worker is alive the app starts one as its child (``evaluation.app_starts_worker``).

The page keeps one ``EvalJobs`` per app (next to its ``Container``) and calls only these
methods; every return value is a plain dataclass or list of them (``.as_row()`` gives a
dict for ``st.dataframe``)."""

from __future__ import annotations

import inspect
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import CQAError
from core.schema import SearchFilter
from core.text import safe_file_name
from eval.drafts import save_reviewed
from eval.report import (
    Comparison,
    RunSummary,
    SampleRow,
    compare,
    export_csv,
    export_html,
    list_runs,
    metric_table,
    readable_samples,
    run_aggregate,
    sample_rows,
)
from eval.run_store import RunStore, store_path
from eval.runner import RunResult, run_testset
from eval.testset import TestCase
from eval.worker import queue_for, snapshot_root
from eval.worker_queue import Job, job_number

TESTSET_DIR = Path(__file__).parent / "testsets"
TESTSET_SUFFIXES = (".jsonl", ".csv", ".xlsx")
REPO = Path(__file__).resolve().parents[1]
WORKER_IDLE_EXIT_SECONDS = 300
"""The worker the app starts exits after this long without a job (and the app starts one again for the next)."""
RECENT_SECONDS = 24 * 3600
"""How far back :meth:`EvalJobs.jobs` lists ended jobs (the page shows the last one's failure)."""
_RUN_OPTIONS = frozenset(inspect.signature(run_testset).parameters) - {
    "container", "testset_path", "progress", "cancel", "log", "store", "on_run"}


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    status: str
    """queued | running | finished | stopped | failed"""
    done: int = 0
    total: int = 0
    current_id: str | None = None
    current_question: str | None = None
    stage: str | None = None
    message: str | None = None
    """The latest note from the runner or the worker (e.g. resuming, why it stopped)."""
    run_id: str | None = None
    error: str | None = None
    failure: CQAError | None = None
    """The expected failure that ended the run (its message key lets the page say it in the user's language)."""
    started_at: float | None = None
    finished_at: float | None = None
    result: RunResult | None = None
    seconds_left: float | None = None
    """Time left, from the seconds per question so far in this job; None until one question is done."""
    worker: str | None = None
    """``host:pid`` of the worker running the job."""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


def _progress(job: Job) -> JobProgress:
    failure = None
    if job.failure:
        failure = CQAError(job.failure["message"], key=job.failure.get("key"), params=job.failure.get("params"))
    return JobProgress(
        job.job_id, job.status, job.done, job.total, job.current_id, job.current_question, job.stage, job.message,
        job.run_id, job.error, failure, job.created_at, job.finished_at,
        RunResult(**job.result) if job.result else None, job.seconds_left, job.worker,
    )


class EvalJobs:
    """At most one evaluation is queued or running at a time (across every app process on the database)."""

    def __init__(self, container) -> None:
        self.container = container
        self.settings = container.settings
        self._queue = queue_for(self.settings)
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None

    # --- runs in the worker -------------------------------------------------------------------

    def start(
        self,
        testset: str | Path,
        metrics: str | list[str] | None = None,
        judge: str | None = None,
        limit: int | None = None,
        resume: str | None = None,
        **options,
    ) -> str:
        """Queue a run for the worker and return its job id (``run_testset`` keyword options pass through, e.g.
        ``ids``, ``ja_prompts``, ``judge_max_tokens``; ``actor`` is who started it, for the audit trail)."""
        unknown = set(options) - _RUN_OPTIONS
        if unknown:
            raise TypeError(f"run_testset takes no option {', '.join(sorted(unknown))}")
        actor = options.pop("actor", "cli")
        request = {"testset": str(Path(testset).resolve()), "metrics": metrics, "judge_preset": judge,
                   "limit": limit, "resume": resume}
        request |= {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
        busy = self.active_job()
        if busy is not None:
            raise CQAError(f"an evaluation is already running (job {busy.job_id}); wait or stop it first",
                           key="eval_running")
        snapshot = self._snapshot() if self.settings.store.backend == "edge" else None
        try:
            job = self._queue.enqueue(request, actor, str(snapshot) if snapshot else None)
        except BaseException:
            if snapshot is not None:
                shutil.rmtree(snapshot.parent, ignore_errors=True)
            raise
        self.ensure_worker()
        return job.job_id

    def _snapshot(self) -> Path:
        """A copy of the embedded store for one job (this process owns the store; the worker opens the copy)."""
        root = snapshot_root(self.settings.data_dir)
        active = {Path(j.snapshot).parent for j in self._queue.recent(time.time()) if j.active and j.snapshot}
        for old in root.glob("snap-*") if root.is_dir() else ():
            if old not in active:  # left by a job that ended without its worker (killed, stopped while queued)
                shutil.rmtree(old, ignore_errors=True)
        folder = root / f"snap-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        folder.mkdir(parents=True)
        self.container.store.copy_to(folder / "store")
        return folder / "store"

    def ensure_worker(self) -> None:
        """Start a worker child process unless one is alive (this process's child, or any worker whose heartbeat
        is recent) or the site runs its own (``evaluation.app_starts_worker = false``)."""
        if not self.settings.evaluation.app_starts_worker:
            return
        with self._lock:
            if self._child is not None and self._child.poll() is None:
                return
            if self._queue.live_workers():
                return
            env = {**os.environ, "CQA_DATA_DIR": str(self.settings.data_dir.resolve()),
                   "CQA_MODEL_DIR": str(self.settings.model_dir)}
            url = self.settings.database.url.get_secret_value()
            if url:
                env["CQA_DATABASE__URL"] = url
            log_path = self.settings.data_dir / "eval" / "worker.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as log:
                self._child = subprocess.Popen(
                    [sys.executable, "-m", "eval", "worker", "--parent", str(os.getpid()),
                     "--idle-exit", str(WORKER_IDLE_EXIT_SECONDS)],
                    cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )

    @property
    def worker_pid(self) -> int | None:
        """The pid of the worker this object started, while it runs."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker this object started (its job, if any, ends as stopped and stays resumable)."""
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout)
        self._queue.reap()

    def _reap(self) -> None:
        """Mark failed the jobs of workers that are gone (collecting this process's own exited child first: a
        child that has exited but was not waited for still has its pid)."""
        if self._child is not None:
            self._child.poll()
        self._queue.reap()

    def progress(self, job_id: str) -> JobProgress:
        number = job_number(job_id)
        self._reap()
        job = self._queue.get(number)
        if job.status == "queued":  # the worker may have died before claiming it: start one
            self.ensure_worker()
        return _progress(job)

    def jobs(self) -> list[JobProgress]:
        """The jobs of the last day and every active one, oldest first."""
        self._reap()
        return [_progress(j) for j in self._queue.recent(time.time() - RECENT_SECONDS)]

    def active_job(self) -> JobProgress | None:
        self._reap()
        job = self._queue.active()
        return _progress(job) if job is not None else None

    def stop(self, job_id: str) -> None:
        """Ask the job to stop: at once while queued, else after the current sample or the model call it is in
        (the run stays resumable)."""
        job = self._queue.request_cancel(job_number(job_id))
        if job.status == "stopped" and job.worker is None and job.snapshot:
            shutil.rmtree(Path(job.snapshot).parent, ignore_errors=True)

    def wait(self, job_id: str, timeout: float | None = None) -> JobProgress:
        """The job's progress once it has ended, or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.progress(job_id)
            if not job.active or (deadline is not None and time.monotonic() >= deadline):
                return job
            time.sleep(0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic())))

    # --- reading results ----------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[RunStore]:
        store = RunStore(self.container.settings.database.target(store_path(self.container.settings.data_dir)))
        try:
            yield store
        finally:
            store.close()

    # --- test sets ----------------------------------------------------------------------------

    @property
    def upload_dir(self) -> Path:
        """Where uploaded and reviewed test sets are kept (the built-in ones stay in the code)."""
        return self.container.settings.data_dir / "eval" / "testsets"

    def testsets(self) -> list[Path]:
        """The built-in test sets, then the uploaded and reviewed ones."""
        return [p for folder in (TESTSET_DIR, self.upload_dir) if folder.is_dir() for p in sorted(folder.glob("*"))
                if p.suffix.lower() in TESTSET_SUFFIXES]

    def _upload_path(self, name: str) -> Path:
        """A test set's place in the upload folder, by a safe version of ``name``; CQAError if none."""
        try:
            path = self.upload_dir / safe_file_name(name)
        except ValueError as exc:
            raise CQAError(f"{name!r} cannot be a file name: {exc}", key="bad_file_name",
                           params={"name": name}) from exc
        if path.suffix.lower() not in TESTSET_SUFFIXES:
            raise CQAError(f"a test set is a {', '.join(TESTSET_SUFFIXES)} file, not {path.name}",
                           key="testset_suffix", params={"suffixes": ", ".join(TESTSET_SUFFIXES), "name": path.name})
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def save_testset(self, name: str, data: bytes) -> Path:
        """Keep an uploaded test set under its own (safe) name; checked when a run starts."""
        path = self._upload_path(name)
        path.write_bytes(data)
        return path

    def save_reviewed(self, cases: list[TestCase], name: str, actor: str) -> tuple[Path, int]:
        """Add reviewed drafts to a JSONL test set of the upload folder (audited); returns the file and
        the number of cases it now holds."""
        path = self._upload_path(name if name.endswith(".jsonl") else f"{name}.jsonl")
        total = save_reviewed(cases, path)
        self.container.audit.append(actor, "eval_testset", {"testset": path.name, "added": len(cases)})
        return path, total

    def list_runs(self) -> list[RunSummary]:
        with self._reading() as store:
            return list_runs(store)

    def run_config(self, run_id: str) -> dict:
        with self._reading() as store:
            return store.get(run_id).config

    def samples(self, run_id: str, reader: SearchFilter) -> list[SampleRow]:
        """The run's questions as ``reader`` may see them (contexts outside their scope withheld)."""
        with self._reading() as store:
            run = store.get(run_id)
            return sample_rows(readable_samples(store, run, reader), run.metrics)

    def metric_rows(self, run_id: str) -> list[dict]:
        """Summary table of one run: metric, mean, n, failed, n/a."""
        with self._reading() as store:
            return metric_table(run_aggregate(store, store.get(run_id)))

    def compare(self, run_a: str, run_b: str) -> Comparison:
        with self._reading() as store:
            return compare(store, run_a, run_b)

    def report(self, run_id: str, kind: Literal["html", "csv"], reader: SearchFilter, lang: str = "en",
               reason_words: Callable[[str], str] = str) -> bytes:
        """The run's report as :meth:`export` writes it, as bytes (for a download)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"report.{kind}"
            self.export(run_id, reader, lang=lang, reason_words=reason_words, **{kind: path})
            return path.read_bytes()

    def export(self, run_id: str, reader: SearchFilter, html: Path | None = None, csv: Path | None = None,
               lang: str = "en", reason_words: Callable[[str], str] = str) -> None:
        """Write the run's report, as ``reader`` may see it, as a self-contained HTML page (headings in ``lang``,
        reasons as ``reason_words`` says them) and/or a CSV (the data as stored)."""
        with self._reading() as store:
            if html is not None:
                export_html(store, run_id, html, reader, lang, reason_words)
            if csv is not None:
                export_csv(store, run_id, csv, reader)
