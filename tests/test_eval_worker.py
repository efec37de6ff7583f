"""Evaluations outside the app process: the queue in the database (SQLite and PostgreSQL), the worker process
(`python -m eval worker`) with the packaged dev model on the ingested samples, and the page's ``EvalJobs`` on
top of them: progress, result, stop, a killed worker, two workers racing for jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from core.errors import CQAError
from core.schema import SearchFilter

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
SAMPLE = REPO / "eval" / "testsets" / "sample.jsonl"

CLAIMER = """
import sys, time
from eval.worker_queue import JobQueue
queue = JobQueue(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # both claimers start at once
mine = []
while (job := queue.claim(sys.argv[2])) is not None:
    mine.append(job.id)
    time.sleep(0.01)
print(",".join(map(str, mine)))
"""


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


# --- the queue, on both databases -------------------------------------------------------------------------


def test_two_workers_never_claim_the_same_job(state_target):
    """Two real processes claim from 24 queued jobs at once: every job is claimed exactly once."""
    from eval.worker_queue import JobQueue

    target = state_target("eval_runs")
    queue = JobQueue(target)
    ids = {queue.enqueue({"testset": f"t{i}"}, "tester", exclusive=False).id for i in range(24)}
    claimers = [subprocess.Popen([sys.executable, "-c", CLAIMER, str(target), f"w{n}:0"], cwd=REPO,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for n in (1, 2)]
    assert [proc.stdout.readline().strip() for proc in claimers] == ["ready", "ready"]
    for proc in claimers:
        proc.stdin.write("go\n")
        proc.stdin.close()
    claimed = []
    for proc in claimers:
        out = proc.stdout.read()
        proc.wait(120)
        assert proc.returncode == 0
        claimed.append([int(i) for i in out.strip().split(",") if i])
    assert sorted(claimed[0] + claimed[1]) == sorted(ids), claimed
    assert not set(claimed[0]) & set(claimed[1])
    assert claimed[0] and claimed[1], claimed  # they did race: each took some
    assert queue.count("running") == 24 and queue.claim("w3:0") is None
    running = {job.id: job.worker for job in queue.recent(0)}
    assert running == {i: "w1:0" for i in claimed[0]} | {i: "w2:0" for i in claimed[1]}


def test_of_workers_claiming_one_job_at_the_same_instant_exactly_one_wins(state_target):
    """Four claimers, each with its own connections, released together by a barrier onto a single queued job,
    twelve times over: each time exactly one gets it, running under its name, and the others get nothing."""
    import threading

    from eval.worker_queue import JobQueue

    target = state_target("eval_runs")
    queue = JobQueue(target)
    claimers = [JobQueue(target) for _ in range(4)]
    rounds = 12
    start = threading.Barrier(len(claimers))
    won: list[list[int | None]] = [[] for _ in claimers]
    ready = threading.Semaphore(0)
    enqueued = threading.Barrier(len(claimers) + 1)

    def claim(n: int) -> None:
        for _ in range(rounds):
            enqueued.wait(60)
            start.wait(60)
            job = claimers[n].claim(f"w{n}:0")
            won[n].append(job.id if job is not None else None)
            ready.release()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(claimers))]
    for t in threads:
        t.start()
    jobs = []
    for _ in range(rounds):
        jobs.append(queue.enqueue({"testset": "t"}, "tester", exclusive=False).id)
        enqueued.wait(60)
        for _ in claimers:
            assert ready.acquire(timeout=60)
    for t in threads:
        t.join(60)
    for claimer in claimers:
        claimer.close()
    for r, number in enumerate(jobs):
        winners = [n for n in range(len(claimers)) if won[n][r] is not None]
        assert len(winners) == 1 and won[winners[0]][r] == number, (r, [w[r] for w in won])
        job = queue.get(number)
        assert job.status == "running" and job.worker == f"w{winners[0]}:0"
    assert queue.count("queued") == 0 and queue.count("running") == rounds


def test_the_queue_refuses_a_second_run_stops_a_queued_one_and_fails_a_lost_one(state_target):
    from eval.worker_queue import JobQueue, this_worker

    queue = JobQueue(state_target("eval_runs"), timeout_seconds=30)
    first = queue.enqueue({"testset": "a"}, "comp1")
    with pytest.raises(CQAError, match="already running") as refused:
        queue.enqueue({"testset": "b"}, "comp2")
    assert refused.value.key == "eval_running"
    stopped = queue.request_cancel(first.id)  # nobody took it yet: stopped at once
    assert stopped.status == "stopped" and stopped.cancel and stopped.worker is None

    elsewhere = queue.enqueue({"testset": "c"}, "comp1")
    assert queue.claim("other-host:4242").id == elsewhere.id
    assert not queue.heartbeat(elsewhere.id, "other-host:4242")  # working, no stop asked
    queue.progress(elsewhere.id, done=1, total=3, stage="answering", seconds_left=20.0)
    assert queue.reap() == []  # its heartbeat is fresh
    queue.request_cancel(elsewhere.id)
    assert queue.heartbeat(elsewhere.id, "other-host:4242")  # the worker reads the stop at its next beat
    queue.timeout = 0.0  # as if 30 s had passed without a heartbeat from the other host
    time.sleep(0.01)
    (lost,) = queue.reap()
    assert lost.id == elsewhere.id and lost.status == "failed" and lost.failure["key"] == "eval_worker_lost"
    assert "other-host:4242" in lost.error and "no heartbeat" in lost.error and lost.done == 1
    assert queue.heartbeat(elsewhere.id, "other-host:4242")  # a worker that comes back is told to stop

    queue.timeout = 30.0
    here = queue.enqueue({"testset": "d"}, "comp1")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = f"{this_worker().rpartition(':')[0]}:{dead.stdout.strip()}"  # a pid on this host that has exited
    queue.claim(gone)
    (lost,) = queue.reap()  # at once: no need to wait for the timeout
    assert lost.id == here.id and "its process has exited" in lost.error

    with pytest.raises(ValueError, match="cannot set status"):
        queue.progress(here.id, status="finished")
    with pytest.raises(ValueError, match="not 'done'"):
        queue.finish(here.id, "done")


def test_evaluation_settings_refuse_bad_values(monkeypatch, tmp_path):
    from settings import load_settings

    monkeypatch.setenv("CQA_DATA_DIR", str(tmp_path))
    assert load_settings().evaluation.worker_nice == 19
    bad = {
        "CQA_EVALUATION__LLM_BASE_URL": ("ftp://llm:8081", "must be empty or an http"),
        "CQA_EVALUATION__WORKER_NICE": ("20", "less than or equal to 19"),
        "CQA_EVALUATION__WORKER_TIMEOUT_SECONDS": ("10", "at least 3 heartbeats"),
        "CQA_EVALUATION__HEARTBEAT_SECONDS": ("0", "greater than 0"),
        "CQA_EVALUATION__WORKER": ("auto", "CQA_EVALUATION__WORKER"),
    }
    for variable, (value, message) in bad.items():
        monkeypatch.setenv(variable, value)
        with pytest.raises(Exception, match=message):
            load_settings()
        monkeypatch.delenv(variable)
    monkeypatch.setenv("CQA_EVALUATION__LLM_BASE_URL", "http://10.0.0.5:8081/v1/")
    from eval.worker import worker_settings

    settings = worker_settings(load_settings())
    assert settings.llm.backend == "http" and settings.llm.http_url == "http://10.0.0.5:8081/v1"


# --- the worker process with the dev model ---------------------------------------------------------------


@pytest.fixture
def jobs(samples_container, monkeypatch):
    """The page's EvalJobs on a copy of the ingested samples; the worker it starts is stopped at the end."""
    from eval.jobs import EvalJobs

    monkeypatch.setenv("CQA_LLM__MAX_ANSWER_TOKENS", "48")
    monkeypatch.setenv("CQA_EVALUATION__HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("CQA_EVALUATION__CANCEL_GRACE_SECONDS", "120")
    jobs = EvalJobs(samples_container)
    yield jobs
    jobs.close()


def test_a_run_is_enqueued_run_by_the_worker_and_listed(jobs):
    job = jobs.start(SAMPLE, metrics="ours", ids=["ja-001", "en-004", "ja-002"], actor="comp1")
    assert jobs.progress(job).status in ("queued", "running") and jobs.worker_pid is not None
    with pytest.raises(CQAError, match="already running"):
        jobs.start(SAMPLE, metrics="ours")
    seen = []
    while (now := jobs.progress(job)).active:
        seen.append((now.stage, now.done, now.seconds_left, now.current_id))
        time.sleep(0.3)
    assert now.status == "finished", now.error
    assert now.run_id and now.done == now.total == 3 and now.result.summary()["samples"] == 3
    assert now.worker and now.worker.endswith(f":{jobs.worker_pid}")  # the app's own worker child ran it
    assert any(stage == "answering" for stage, *_ in seen)
    assert any(left is not None and left > 0 for stage, done, left, _ in seen if done >= 1), seen
    (summary,) = jobs.list_runs()
    assert summary.run_id == now.run_id and summary.as_row()["samples"] == "3/3"
    assert {r.id for r in jobs.samples(now.run_id, SearchFilter(access_groups=()))} == {"ja-001", "en-004", "ja-002"}
    assert not list((jobs.settings.data_dir / "eval" / "snapshots").glob("snap-*/store"))  # its copy is gone
    assert [j.job_id for j in jobs.jobs()] == [job]


def test_stop_ends_a_running_job_and_its_run_resumes(jobs):
    job = jobs.start(SAMPLE, metrics="ours", ids=["ja-001", "ja-002", "en-001"])
    wait_for(lambda: jobs.progress(job).stage == "answering", 180, "the worker answering")
    jobs.stop(job)
    stopped = jobs.wait(job, timeout=300)
    assert stopped.status == "stopped" and stopped.done < 3 and stopped.run_id, stopped
    resumed = jobs.wait(jobs.start(SAMPLE, metrics="ours", ids=["ja-001", "ja-002", "en-001"]), timeout=600)
    assert resumed.status == "finished" and resumed.run_id == stopped.run_id and resumed.result.resumed


def test_a_killed_worker_leaves_the_job_failed_with_a_message(jobs):
    job = jobs.start(SAMPLE, metrics="ours", ids=["ja-001", "ja-002"])
    wait_for(lambda: jobs.progress(job).stage == "answering", 180, "the worker answering")
    os.kill(jobs.worker_pid, signal.SIGKILL)
    failed = wait_for(lambda: (p := jobs.progress(job)).status == "failed" and p, 30, "the job marked failed")
    assert "stopped while running" in failed.error and "its process has exited" in failed.error
    assert failed.failure.key == "eval_worker_lost" and jobs.active_job() is None
    again = jobs.start(SAMPLE, metrics="ours", ids=["ja-001"])  # a new worker is started for the next run
    assert jobs.wait(again, timeout=600).status == "finished"


def test_the_worker_command_fails_a_job_it_cannot_read_and_exits_with_once(data_dir, state_env):
    """A job without a copy of the embedded store (not enqueued by the app): failed with why, not run on the
    app's own store; ``--once`` exits when the queue is empty (and the worker has left the workers' table)."""
    from eval.run_store import store_path
    from eval.worker_queue import JobQueue
    from tests.helpers import run_cli

    queue = JobQueue(state_env or store_path(data_dir))
    job = queue.enqueue({"testset": str(SAMPLE), "metrics": "ours"}, "cli")
    proc = run_cli("eval", "worker", "--once", data_dir=data_dir, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1 job(s) run" in proc.stderr and "Traceback" not in proc.stderr
    failed = queue.get(job.id)
    assert failed.status == "failed" and failed.failure["key"] == "eval_no_snapshot" and "snapshot" in failed.error
    assert queue.live_workers() == [] and queue.claim("w:1") is None
    assert state_env is None or not store_path(data_dir).exists()  # the worker used the database, not a file
    bad = run_cli("eval", "worker", "--poll", "soon", data_dir=data_dir, timeout=120)
    assert bad.returncode == 2 and "--poll" in bad.stderr


def test_on_postgresql_the_app_hands_the_database_to_its_worker(samples_data_dir, tmp_path, postgres_url, monkeypatch):
    """``database.url`` set in the app's settings only (not its environment): the worker it starts finds the
    queue there, and the run is stored there."""
    import shutil

    from eval.jobs import EvalJobs
    from eval.run_store import store_path
    from tests.conftest import make_container

    data = tmp_path / "data"
    shutil.copytree(samples_data_dir, data)
    monkeypatch.setenv("CQA_DATA_DIR", str(data))
    monkeypatch.delenv("CQA_DATABASE__URL", raising=False)
    container = make_container(data, database={"url": postgres_url})
    jobs = EvalJobs(container)
    try:
        ended = jobs.wait(jobs.start(SAMPLE, metrics="ours", ids=["en-004"]), timeout=600)
        assert ended.status == "finished", ended.error
        assert [r.run_id for r in jobs.list_runs()] == [ended.run_id]
    finally:
        jobs.close()
        container.close()
    local = store_path(data)
    assert not local.exists() or ended.run_id not in local.read_bytes().decode("latin-1")


def test_a_stop_the_model_call_does_not_see_ends_the_worker_after_the_grace(jobs, monkeypatch):
    """The evaluation's own LLM server (``evaluation.llm_base_url``) takes the question and never answers, as a CPU
    model reading a long prompt does not look at the cancel event: after the grace the worker ends its process,
    the job is stopped with why and the run stays resumable."""
    import socket

    from eval.run_store import RunStore, store_path

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the kernel; nothing ever reads the request
    try:
        monkeypatch.setenv("CQA_EVALUATION__LLM_BASE_URL", f"http://127.0.0.1:{silent.getsockname()[1]}/v1")
        monkeypatch.setenv("CQA_EVALUATION__CANCEL_GRACE_SECONDS", "2")
        job = jobs.start(SAMPLE, metrics="ours", ids=["ja-001"])
        wait_for(lambda: jobs.progress(job).stage == "answering", 180, "the worker asking the model")
        worker = jobs.worker_pid
        time.sleep(2)  # the request is in the silent server's queue
        jobs.stop(job)
        stopped = jobs.wait(job, timeout=60)
        assert stopped.status == "stopped" and "ended its process" in stopped.message, stopped
        wait_for(lambda: jobs.worker_pid is None, 30, "the worker process gone")
        assert worker is not None and stopped.run_id
        run = RunStore(store_path(jobs.settings.data_dir)).get(stopped.run_id)
        assert run.status == "interrupted" and run.done == 0
    finally:
        silent.close()
