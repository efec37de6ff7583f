"""The evaluation worker: ``python -m eval worker [--once] [--parent PID]``.

It runs evaluations outside the app process, one job at a time, from the queue in the database
(:mod:`eval.worker_queue`): claims the oldest queued job, builds the services for it (its own container: its own
model, at the lowest OS priority, or the evaluation's own LLM server; the job's snapshot of the embedded store, or
the Qdrant server), runs :func:`eval.runner.run_testset` with the job's options, writes progress and time left, and
finishes the job with its run id. A heartbeat thread keeps the job alive in the queue, reads the stop flag into the
run's cancel event (checked between samples and by the model while it writes), and ends the process when a stop
is not honoured within ``evaluation.cancel_grace_seconds`` (a CPU model reading a long prompt cannot be
interrupted), leaving the run resumable.

A worker the app started (``--parent``) stops, as if asked, when that app process is gone."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from core.errors import CQAError
from eval.run_store import RunStore, store_path
from eval.runner import ProgressUpdate, run_testset
from eval.worker_queue import Job, JobQueue, failure_of, this_worker

log = logging.getLogger("cqa.eval.worker")

MakeContainer = Callable[..., object]
"""``wiring.Container`` (passed in by ``python -m eval``: the services layer does not import the wiring)."""


def worker_settings(settings):
    """The settings a worker runs evaluations with: the staff's, with the LLM pointed at
    ``evaluation.llm_base_url`` when one is kept for evaluations."""
    url = settings.evaluation.llm_base_url
    if not url:
        return settings
    llm = settings.llm.model_copy(update={"backend": "http", "http_url": url, "servers": 1, "server_slots": 1})
    return settings.model_copy(update={"llm": llm})


def queue_for(settings) -> JobQueue:
    return JobQueue(settings.database.target(store_path(settings.data_dir)),
                    timeout_seconds=settings.evaluation.worker_timeout_seconds)


def snapshot_root(data_dir: Path) -> Path:
    """Where the app copies the embedded store for each job (``<data_dir>/eval/snapshots/job-N``)."""
    return data_dir / "eval" / "snapshots"


def _parent_gone(parent_pid: int | None) -> bool:
    return parent_pid is not None and os.getppid() != parent_pid


class _Heartbeat(threading.Thread):
    """While a job runs: heartbeat, stop flag -> ``cancel``, parent watch, and the hard stop after the grace."""

    def __init__(self, queue: JobQueue, job: Job, worker: str, settings, cancel: threading.Event,
                 parent_pid: int | None, on_hard_stop: Callable[[str], None]) -> None:
        super().__init__(name=f"heartbeat-{job.job_id}", daemon=True)
        self.queue, self.job, self.worker, self.cancel = queue, job, worker, cancel
        self.every = settings.evaluation.heartbeat_seconds
        self.grace = settings.evaluation.cancel_grace_seconds
        self.parent_pid = parent_pid
        self.on_hard_stop = on_hard_stop
        self.why: str | None = None
        self._done = threading.Event()

    def run(self) -> None:
        asked_at = None
        while not self._done.wait(self.every):
            try:
                stop = self.queue.heartbeat(self.job.id, self.worker)
                self.queue.worker_seen(self.worker)
            except Exception:  # the database away for a moment: try again at the next beat
                log.exception("heartbeat of %s failed", self.job.job_id)
                continue
            if _parent_gone(self.parent_pid) and self.why is None:
                self.why = "the app that started this worker has stopped"
                stop = True
            if stop and not self.cancel.is_set():
                self.why = self.why or "stopped on request"
                self.cancel.set()
                asked_at = time.monotonic()
            if asked_at is not None and time.monotonic() - asked_at > self.grace:
                self.on_hard_stop(self.why or "stopped on request")

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=30)


def run_job(queue: JobQueue, job: Job, worker: str, settings, make_container: MakeContainer,
            parent_pid: int | None = None) -> None:
    """Run one claimed job to its end in the queue (finished, stopped or failed)."""
    request = dict(job.request)
    cancel = threading.Event()
    started = time.monotonic()
    answered_at: list[float] = []
    first_done: list[int] = []
    run_ids: list[str] = []

    def progress(update: ProgressUpdate) -> None:
        if update.stage == "starting":
            first_done.append(update.done)
            answered_at.append(time.monotonic())
        left = None
        if update.stage == "saved" and first_done:
            answered = update.done - first_done[0]
            if answered > 0:
                left = (time.monotonic() - answered_at[0]) / answered * (update.total - update.done)
        fields = {"done": update.done, "total": update.total, "current_id": update.case_id,
                  "current_question": update.question, "stage": update.stage}
        if left is not None or update.stage in ("starting", "finished", "stopped"):
            fields["seconds_left"] = left
        queue.progress(job.id, **fields)

    def on_run(run_id: str) -> None:
        run_ids.append(run_id)
        queue.progress(job.id, run_id=run_id)

    def note(message: str) -> None:
        queue.progress(job.id, message=message)

    def hard_stop(why: str) -> None:
        """The stop was not reached within the grace time: record it and end the process (resumable run)."""
        if run_ids:
            store = RunStore(settings.database.target(store_path(settings.data_dir)))
            store.update(run_ids[0], status="interrupted", pid=None)
        queue.finish(job.id, "stopped", run_id=run_ids[0] if run_ids else None,
                     message=f"{why}: the worker ended its process to stop at once; the run can be resumed")
        queue.worker_gone(worker)
        _remove_snapshot(job)
        os._exit(0)

    beat = _Heartbeat(queue, job, worker, settings, cancel, parent_pid, hard_stop)
    beat.start()
    ending: dict = {}
    try:
        ending = _run(job, request, settings, make_container, progress, cancel, note, on_run)
        if ending["status"] == "stopped":
            ending["message"] = beat.why
        log.info("%s %s: run %s in %.0f s", job.job_id, ending["status"], ending["run_id"], time.monotonic() - started)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run is left resumable, the job says so
        ending = {"status": "stopped", "message": "the worker was stopped (interrupted); the run can be resumed"}
        raise
    except CQAError as exc:
        ending = {"status": "failed", "error": str(exc), "failure": failure_of(exc)}
        log.warning("%s failed: %s", job.job_id, exc)
    except Exception as exc:  # a bug: its traceback goes to the page's log line and the worker's log
        expected = isinstance(exc, ValueError | KeyError | OSError)
        ending = {"status": "failed",
                  "error": str(exc) if expected else f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"}
        log.exception("%s failed", job.job_id)
    finally:
        beat.stop()
        _remove_snapshot(job)  # before the job ends: whoever sees it ended finds its copy gone
        queue.finish(job.id, **{"run_id": run_ids[0] if run_ids else None, **ending})


def _run(job: Job, request: dict, settings, make_container: MakeContainer, progress, cancel, note, on_run) -> dict:
    """Build the job's services, run it, close them; how the job ends (``JobQueue.finish``'s arguments)."""
    if job.snapshot is None and settings.store.backend == "edge":
        raise CQAError(f"{job.job_id} has no snapshot of the embedded store to read (enqueued by something "
                       "other than the app?)", key="eval_no_snapshot")
    store_dir = Path(job.snapshot) if job.snapshot else None
    if store_dir is not None and not store_dir.is_dir():
        raise CQAError(f"the store snapshot {store_dir} of {job.job_id} is gone", key="eval_no_snapshot")
    store = RunStore(settings.database.target(store_path(settings.data_dir)))
    container = None
    try:
        container = make_container(worker_settings(settings), store_dir=store_dir)
        result = run_testset(container, request.pop("testset"), progress=progress, cancel=cancel, log=note,
                             store=store, actor=job.actor, on_run=on_run, **request)
    finally:
        store.close()
        if container is not None:
            container.close()
    return {"status": "finished" if result.status == "finished" else "stopped", "run_id": result.run_id,
            "result": asdict(result)}


def _remove_snapshot(job: Job) -> None:
    if job.snapshot:
        shutil.rmtree(Path(job.snapshot).parent, ignore_errors=True)


def serve(settings, make_container: MakeContainer, *, once: bool = False, parent_pid: int | None = None,
          poll_seconds: float = 1.0, idle_exit: float | None = None) -> int:
    """Claim and run jobs until stopped (Ctrl-C, SIGTERM, the parent app gone); ``once``: until the queue is
    empty; ``idle_exit``: after that many seconds without a job. Returns the number of jobs run."""
    os.nice(max(0, settings.evaluation.worker_nice - os.nice(0)))  # lowering it again would need root
    worker = this_worker()
    queue = queue_for(settings)
    ran = 0
    idle_since = time.monotonic()
    try:
        queue.worker_seen(worker, parent_pid)
        log.info("evaluation worker %s at nice %d, polling %s", worker, os.nice(0), queue_target(settings))
        while not _parent_gone(parent_pid):
            queue.reap()
            job = queue.claim(worker)
            if job is None:
                if once or (idle_exit is not None and time.monotonic() - idle_since > idle_exit):
                    break
                queue.worker_seen(worker, parent_pid)
                time.sleep(poll_seconds)
                continue
            log.info("%s claimed by %s", job.job_id, worker)
            run_job(queue, job, worker, settings, make_container, parent_pid)
            ran += 1
            idle_since = time.monotonic()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: a job it was running is already marked stopped
        log.info("evaluation worker %s stopped", worker)
    finally:
        queue.worker_gone(worker)
        queue.close()
    return ran


def queue_target(settings) -> str:
    target = settings.database.target(store_path(settings.data_dir))
    return "the PostgreSQL database" if isinstance(target, str) else str(target)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="run the queued jobs, then exit")
    parser.add_argument("--parent", type=int, metavar="PID",
                        help="stop when this process (the app that started the worker) is gone")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS", help="how often an idle worker looks")
    parser.add_argument("--idle-exit", type=float, metavar="SECONDS",
                        help="exit after this long without a job (the app's worker: the app starts another)")
