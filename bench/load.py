"""Load test on loopback: ``python -m bench.load [--staff 1 2 4 8 16] [--duration 180] [--pace 20]
[--questions eval/testsets/sample.jsonl] [--kill-at SECONDS] [--out DIR]``.

For each number of staff N: two ``llama_cpp.server`` processes with the dev model behind HAProxy
(deploy/haproxy.cfg, bench/llm_cluster.py), and the QA service the app uses (``Container.answers``, backend
``http`` through the balancer) on the sample documents. N simulated staff each ask a question from the file,
read the streamed answer, think for an exponential time of mean ``--pace`` seconds, and ask again, until
``--duration`` seconds are over; questions still being answered then may finish for ``--grace`` seconds,
after which they are cancelled. Reported per N: answers per minute, first word and full answer p50/p95
(from sending the question), queue wait for a model slot, error rate, and the peak memory of each process;
as a Markdown table on stdout, JSON and a plot in ``--out``. ``--kill-at S`` kills one LLM server S seconds
into every level, to see the failover cost.

``--evaluation none shared own`` runs each level once per mode with an evaluation going on meanwhile, as the
評価 page starts one: a job in the evaluation worker's queue (``EvalJobs``, the worker process it starts, at
nice 19), on the questions file, started again whenever it ends. ``shared``: the worker's questions go to the
staff's balancer; ``own``: to a third llama_cpp.server at nice 19 kept for evaluations
(``evaluation.llm_base_url``); ``none``: staff alone. Staff start asking once the worker is answering.

A bounded thread generator, not locust: locust's users are gevent greenlets and its documentation asks for
protocol libraries gevent can monkey-patch; the service path runs the embedder and the tokenizer in C, which
would block every simulated user behind one (docs.locust.io, "Testing other systems")."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import core.offline  # noqa: F401
from bench.llm_cluster import LLMCluster, llm_cluster
from bench.load_report import LevelSummary, Outcome, from_json, level_key, markdown_table, plot, summarise
from bench.memory import rss_mib
from core.cli import ArgumentParser, run
from core.errors import CQAError
from core.localhost import free_port, wait_http
from core.schema import Requester

PROG = "python -m bench.load"
REPO = Path(__file__).resolve().parents[1]
SAMPLES = [REPO / "samples" / "ja_account_opening_manual.pdf", REPO / "samples" / "en_gifts_and_aml_manual.md"]


def read_questions(path: Path) -> list[str]:
    """The ``question`` of every JSON line (an evaluation test set); an empty file is an error."""
    questions = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    if not questions:
        raise ValueError(f"{path} holds no questions")
    return questions


class RetryCount(logging.Handler):
    """Counts the HTTP backend's "retrying once" log lines (a request that failed before its first word)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("retrying once")


class MemoryWatch(threading.Thread):
    """Peak resident memory of named processes, sampled every second."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(1.0):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mib(pid))

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        return self.peak


def staff_member(number: int, answers, questions: list[str], pace: float, stop_at: float,
                 cancel: threading.Event, outcomes: list[Outcome]) -> None:
    """Ask, read, think, until ``stop_at``; starts at a random point of the first think time."""
    from qa.service import AnswerEvent, TokenEvent

    rng = random.Random(number)
    requester = Requester(f"staff{number}", ())
    cancel.wait(rng.uniform(0, pace))
    while time.monotonic() < stop_at and not cancel.is_set():
        question = rng.choice(questions)
        sent = time.perf_counter()
        first_word = answer = None
        try:
            for event in answers.stream(question, requester, cancel=cancel):
                if isinstance(event, TokenEvent) and first_word is None:
                    first_word = (time.perf_counter() - sent) * 1000
                elif isinstance(event, AnswerEvent):
                    answer = event.answer
        except CQAError as exc:
            outcomes.append(Outcome(number, first_word, None, None, False, exc.key or type(exc).__name__))
        else:
            if answer is not None and not cancel.is_set():
                queue_ms = answer.timings.queue_ms if first_word is not None else None  # the model was asked
                outcomes.append(Outcome(number, first_word, (time.perf_counter() - sent) * 1000, queue_ms,
                                        answer.refused, None))
        cancel.wait(min(rng.expovariate(1 / pace), max(0.0, stop_at - time.monotonic())))


class EvaluationLoad:
    """An evaluation kept going in the worker process while staff ask: a job on ``testset`` through the page's
    ``EvalJobs`` (which starts the worker), started again whenever it ends."""

    def __init__(self, container, testset: Path) -> None:
        from eval.jobs import EvalJobs

        self.jobs = EvalJobs(container)
        self.testset = testset
        self.evaluated = 0
        self._stop = threading.Event()
        self._job = self.jobs.start(testset, metrics="ours", new=True, actor="bench")
        self._thread = threading.Thread(target=self._keep_going, name="evaluation", daemon=True)

    def wait_answering(self, timeout: float = 600) -> None:
        """Until the worker is answering its first question (its models loaded)."""
        deadline = time.monotonic() + timeout
        while (job := self.jobs.progress(self._job)).stage not in ("answering", "judging", "saved"):
            if not job.active or time.monotonic() > deadline:
                raise RuntimeError(f"the evaluation did not start answering: {job.status} {job.error or ''}")
            time.sleep(0.5)
        self._thread.start()

    def _keep_going(self) -> None:
        while not self._stop.is_set():
            job = self.jobs.wait(self._job, timeout=1.0)
            if not job.active and not self._stop.is_set():
                self.evaluated += job.done
                self._job = self.jobs.start(self.testset, metrics="ours", new=True, actor="bench")

    def stop(self) -> int:
        """Stop the job and the worker; the questions evaluated during the level."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.jobs.stop(self._job)
        job = self.jobs.wait(self._job, timeout=300)
        self.evaluated += job.done
        self.jobs.close()
        return self.evaluated


def evaluation_server(model_path: Path, n_ctx: int) -> tuple[subprocess.Popen, str]:
    """A llama_cpp.server at nice 19 for the evaluation worker alone (what ``evaluation.llm_base_url`` names)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", "local",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "1",
         "--interrupt_requests", "false", "--verbose", "false"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: os.nice(19),
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", timeout=180, proc=proc)
    except BaseException:
        proc.kill()
        proc.wait(30)
        raise
    return proc, f"http://127.0.0.1:{port}/v1"


def run_level(container, cluster: LLMCluster, staff: int, questions: list[str], duration: float, pace: float,
              grace: float, kill_at: float | None, raw: dict[str, list[Outcome]],
              evaluation: EvaluationLoad | None = None, mode: str | None = None) -> LevelSummary:
    outcomes = raw[level_key(staff, mode)] = []
    cancel = threading.Event()
    started = time.monotonic()
    stop_at = started + duration
    watched = {"app": os.getpid()} | {n: p for n, p in cluster.pids.items() if n != "haproxy"}
    if evaluation is not None and evaluation.jobs.worker_pid:
        watched["eval worker"] = evaluation.jobs.worker_pid
    watch = MemoryWatch(watched | {"haproxy": cluster.balancer.pid})
    watch.start()
    retries = RetryCount()
    backend_log = logging.getLogger("llm.http_chat")
    backend_log.addHandler(retries)
    backend_log.setLevel(logging.INFO)
    killer = None
    if kill_at is not None:
        killer = threading.Timer(kill_at, cluster.servers[-1].kill)
        killer.start()
    workers = [threading.Thread(target=staff_member, name=f"staff{i}",
                                args=(i, container.answers, questions, pace, stop_at, cancel, outcomes))
               for i in range(staff)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(0.0, stop_at + grace - time.monotonic()))
    cancel.set()  # past the grace time: what is still being answered is cancelled and not counted
    for w in workers:
        w.join(120)
    if killer is not None:
        killer.cancel()
    seconds = time.monotonic() - started
    killed = cluster.servers[-1].name if kill_at is not None and kill_at < seconds else None
    backend_log.removeHandler(retries)
    evaluated = evaluation.stop() if evaluation is not None else 0
    return summarise(staff, seconds, outcomes, watch.stop(), killed, retries.count, mode, evaluated)


def measure_level(container, cluster: LLMCluster, staff: int, questions: list[str], args, mode: str,
                  model_path: Path, n_ctx: int, raw: dict[str, list[Outcome]]) -> LevelSummary:
    """One level, with the evaluation of ``mode`` going on (its own server started and stopped here)."""
    own = None
    evaluation = None
    try:
        if mode == "own":
            own, url = evaluation_server(model_path, n_ctx)
            os.environ["CQA_EVALUATION__LLM_BASE_URL"] = url  # the worker the page starts reads its environment
        if mode != "none":
            evaluation = EvaluationLoad(container, args.questions)
            evaluation.wait_answering()
        return run_level(container, cluster, staff, questions, args.duration, args.pace, args.grace, args.kill_at,
                         raw, evaluation, None if mode == "none" else mode)
    finally:
        if evaluation is not None:
            evaluation.jobs.close()
        os.environ.pop("CQA_EVALUATION__LLM_BASE_URL", None)
        if own is not None:
            own.terminate()
            own.wait(30)
        container.close()


def run_title(pace: float, duration: float, kill_at: float | None) -> str:
    return (f"dev model (0.5B Q4, CPU), 2 llama_cpp.server behind HAProxy, pace {pace:g} s, {duration:g} s per level"
            + (f", one server killed at {kill_at:g} s" if kill_at is not None else ""))


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG)
    parser.add_argument("--staff", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                        help="numbers of simulated staff, one level each (cap it lower on a small machine)")
    parser.add_argument("--duration", type=float, default=180, help="seconds each level asks questions")
    parser.add_argument("--pace", type=float, default=20, help="mean seconds a staff member thinks between questions")
    parser.add_argument("--grace", type=float, default=240, help="seconds open answers may still finish")
    parser.add_argument("--questions", type=Path, default=REPO / "eval" / "testsets" / "sample.jsonl")
    parser.add_argument("--answer-tokens", type=int, default=128, help="longest answer (llm.max_answer_tokens)")
    parser.add_argument("--kill-at", type=float, default=None, help="kill one LLM server this many seconds in")
    parser.add_argument("--evaluation", nargs="+", choices=("none", "shared", "own"), default=["none"],
                        help="run each level once per mode with an evaluation going on in the worker: none (staff "
                             "alone), shared (the worker asks the staff's servers), own (its own niced server)")
    parser.add_argument("--out", type=Path, default=REPO / "test-output" / "bench-load")
    parser.add_argument("--report", type=Path, default=None,
                        help="only print the table and draw the plot again from a run's load.json")
    args = parser.parse_args(argv)
    if args.report is not None:
        saved = json.loads(args.report.read_text(encoding="utf-8"))
        rows = from_json(saved)
        kill_at = saved["args"]["kill_at"]
        plot(rows, args.out / "load.png", run_title(float(saved["args"]["pace"]), float(saved["args"]["duration"]),
                                                    None if kill_at == "None" else float(kill_at)))
        print(markdown_table(rows))
        return 0
    if min(args.staff) < 1 or args.duration <= 0 or args.pace <= 0 or args.grace < 0 or args.answer_tokens < 1:
        parser.error("--staff, --duration, --pace and --answer-tokens must be positive, --grace not negative")
    questions = read_questions(args.questions)
    # A plain `kill` ends the run like Ctrl-C: the servers and the balancer it started are stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    from llm.model_files import assemble_packaged
    from llm.presets import get_preset
    from settings import load_settings
    from wiring import Container

    base = load_settings()
    preset = get_preset(base.llm.preset)
    model_path = assemble_packaged(preset.packaged, base.model_dir)
    rows = []
    raw: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        ingesting = Container(load_settings(data_dir=data_dir))
        try:
            ingesting.ingest.ingest(SAMPLES)
        finally:
            ingesting.close()
        for staff in args.staff:
            for mode in args.evaluation:
                with llm_cluster(model_path, n_ctx=preset.n_ctx) as cluster:
                    os.environ.update({"CQA_LLM__BACKEND": "http", "CQA_LLM__HTTP_URL": cluster.url,
                                       "CQA_LLM__SERVERS": str(len(cluster.servers)), "CQA_LLM__SERVER_SLOTS": "1",
                                       "CQA_LLM__MAX_ANSWER_TOKENS": str(args.answer_tokens),
                                       "CQA_DATA_DIR": str(data_dir)})
                    rows.append(measure_level(Container(load_settings(data_dir=data_dir)), cluster, staff,
                                              questions, args, mode, model_path, preset.n_ctx, raw))
                print(markdown_table(rows[-1:]), flush=True)
    title = run_title(args.pace, args.duration, args.kill_at)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "levels": [r.to_json() for r in rows],
         "questions": {n: [asdict(o) for o in outcomes] for n, outcomes in raw.items()}},
        ensure_ascii=False, indent=1), encoding="utf-8")
    plot(rows, args.out / "load.png", title)
    print(markdown_table(rows))
    print(f"JSON and plot in {args.out}")
    return 0


if __name__ == "__main__":
    run(PROG, main)
