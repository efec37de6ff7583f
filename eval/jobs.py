"""Background evaluation runs for the Streamlit page: start, watch, stop, read results.

The page keeps one ``EvalJobs`` per app (next to its ``Container``) and calls only these
methods; every return value is a plain dataclass or list of them (``.as_row()`` gives a
dict for ``st.dataframe``)."""

from __future__ import annotations

import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
from eval.runner import ProgressUpdate, RunResult, run_testset
from eval.testset import TestCase

TESTSET_DIR = Path(__file__).parent / "testsets"
TESTSET_SUFFIXES = (".jsonl", ".csv", ".xlsx")


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
    """The latest note from the runner (e.g. resuming, adapting prompts)."""
    run_id: str | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result: RunResult | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


class EvalJobs:
    """At most one evaluation runs at a time (the models are shared with the chat)."""

    def __init__(self, container) -> None:
        self.container = container
        self._lock = threading.Lock()
        self._jobs: dict[str, JobProgress] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._counter = 0

    # --- runs in the background ---------------------------------------------------------------

    def start(
        self,
        testset: str | Path,
        metrics: str | list[str] | None = None,
        judge: str | None = None,
        limit: int | None = None,
        resume: str | None = None,
        **options,
    ) -> str:
        """Start a run in a background thread and return its job id (``run_testset``
        keyword options pass through, e.g. ``ids``, ``ja_prompts``, ``judge_max_tokens``)."""
        with self._lock:
            busy = [j for j in self._jobs.values() if j.active]
            if busy:
                raise CQAError(f"an evaluation is already running (job {busy[0].job_id}); wait or stop it first")
            self._counter += 1
            job_id = f"job-{self._counter}"
            self._jobs[job_id] = JobProgress(job_id, "queued", started_at=time.time())
            cancel = threading.Event()
            self._cancel[job_id] = cancel
        thread = threading.Thread(
            target=self._work,
            args=(job_id, Path(testset), metrics, judge, limit, resume, cancel, options),
            name=f"eval-{job_id}",
            daemon=True,
        )
        self._threads[job_id] = thread
        thread.start()
        return job_id

    def _update(self, job_id: str, **fields) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **fields)

    def _work(self, job_id, testset, metrics, judge, limit, resume, cancel, options) -> None:
        self._update(job_id, status="running")

        def progress(update: ProgressUpdate) -> None:
            self._update(
                job_id, done=update.done, total=update.total, current_id=update.case_id,
                current_question=update.question, stage=update.stage,
            )

        def log(message: str) -> None:
            self._update(job_id, message=message)

        store = RunStore(store_path(self.container.settings.data_dir))
        try:
            result = run_testset(
                self.container, testset, metrics=metrics, judge_preset=judge, limit=limit, progress=progress,
                resume=resume, cancel=cancel, log=log, store=store, **options,
            )
            status = "finished" if result.status == "finished" else "stopped"
            self._update(job_id, status=status, run_id=result.run_id, result=result, finished_at=time.time(),
                         done=result.samples, total=result.total, current_id=None, current_question=None)
        except Exception as exc:  # shown on the page; the run itself is marked failed in the store
            message = str(exc) if isinstance(exc, CQAError | ValueError | KeyError | OSError) else (
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
            )
            self._update(job_id, status="failed", error=message, finished_at=time.time())
        finally:
            store.close()

    def progress(self, job_id: str) -> JobProgress:
        with self._lock:
            if job_id not in self._jobs:
                raise CQAError(f"no evaluation job {job_id!r}")
            return self._jobs[job_id]

    def jobs(self) -> list[JobProgress]:
        with self._lock:
            return list(self._jobs.values())

    def active_job(self) -> JobProgress | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.active), None)

    def stop(self, job_id: str) -> None:
        """Ask the job to stop after the current sample (the run stays resumable)."""
        event = self._cancel.get(job_id)
        if event is not None:
            event.set()

    def wait(self, job_id: str, timeout: float | None = None) -> JobProgress:
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.progress(job_id)

    # --- reading results ----------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[RunStore]:
        store = RunStore(store_path(self.container.settings.data_dir))
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
            raise CQAError(f"{name!r} cannot be a file name: {exc}") from exc
        if path.suffix.lower() not in TESTSET_SUFFIXES:
            raise CQAError(f"a test set is a {', '.join(TESTSET_SUFFIXES)} file, not {path.name}")
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

    def report(self, run_id: str, kind: Literal["html", "csv"], reader: SearchFilter) -> bytes:
        """The run's report as :meth:`export` writes it, as bytes (for a download)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"report.{kind}"
            self.export(run_id, reader, **{kind: path})
            return path.read_bytes()

    def export(self, run_id: str, reader: SearchFilter, html: Path | None = None, csv: Path | None = None) -> None:
        """Write the run's report, as ``reader`` may see it, as a self-contained HTML page and/or a CSV."""
        with self._reading() as store:
            if html is not None:
                export_html(store, run_id, html, reader)
            if csv is not None:
                export_csv(store, run_id, csv, reader)
