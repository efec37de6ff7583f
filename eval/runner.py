"""Run a test set through the real answering service, score every sample, store it.

``run_testset`` answers each question with ``container.answers.ask`` (the same service the
chat page and ``python -m qa`` use), scores the answer with our own metrics and, when
asked, with the RAGAS judge, and saves the sample before moving on: an interrupted run
(Ctrl-C, a killed process, ``stop_after``) resumes where it stopped, either explicitly
(``resume=RUN_ID``) or by default when an unfinished run of the same test set and
configuration exists."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from auth.requesters import requester_for
from core.errors import CQAError
from core.schema import Answer, ChatTurn
from core.text import detect_language
from eval.judge_presets import is_meaningful, judge_llm_preset
from eval.metrics import JUDGE_METRICS, SAMPLE_METRICS, Score, aggregate, parse_metric_names, sample_metrics
from eval.run_store import RunRecord, RunStore, now, store_path
from eval.testset import TestCase, file_sha256, load_testset, select_cases
from llm.model_files import sha256_of
from llm.presets import get_preset
from prompts import prompt_set_version

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JUDGE_MAX_TOKENS = 512


@dataclass(frozen=True)
class ProgressUpdate:
    done: int
    """Samples stored in the run so far (including those of earlier, resumed attempts)."""
    total: int
    case_id: str | None
    question: str | None
    stage: str
    """starting | answering | judging | saved | finished | stopped"""


Progress = Callable[[ProgressUpdate], None]


@dataclass
class RunResult:
    run_id: str
    status: str
    samples: int
    total: int
    metrics: dict[str, float | None]
    failures: dict[str, int]
    not_applicable: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    new_samples: int = 0
    resumed: bool = False
    config: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The ``--json`` output of ``python -m eval run``."""
        return {"run_id": self.run_id, "samples": self.samples, "metrics": self.metrics, "failures": self.failures}


def new_run_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def open_store(settings) -> RunStore:
    return RunStore(settings.database.target(store_path(settings.data_dir)))


# --- configuration ---------------------------------------------------------------------------


def code_version() -> dict:
    """The git commit of this checkout (and whether tracked files differ from it)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO, capture_output=True, text=True, timeout=10,
        ).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _hash_cache_get(cache_file: Path, key: str) -> str | None:
    try:
        return json.loads(cache_file.read_text(encoding="utf-8")).get(key)
    except (OSError, json.JSONDecodeError):
        return None


def _hash_cache_put(cache_file: Path, key: str, value: str) -> None:
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        data = {}
    data[key] = value
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(cache_file)


def model_identity(chat, preset_name: str, cache_file: Path) -> dict:
    """Which model file answered or judged: name, size and sha256.

    A packaged model whose size matches the pinned one reports the pinned sha256 (it was
    checked when the parts were assembled); any other file is hashed once with
    ``llm.model_files.sha256_of`` and the digest cached by path, size and mtime in
    ``<data_dir>/eval/model_hashes.json`` (hashing a 20 GB GGUF takes a while, once)."""
    info: dict = {"preset": preset_name, "name": getattr(chat, "name", None)}
    path = getattr(chat, "model_path", None)
    if path is None:
        info["file"] = None
        info["sha256"] = None
        info["note"] = "served over HTTP: the file is not visible from here"
        return info
    path = Path(path)
    st = path.stat()
    info.update(file=path.name, size=st.st_size)
    packaged = get_preset(preset_name).packaged if preset_name else None
    if packaged and packaged.sha256 and path.name == packaged.file_name and st.st_size == packaged.size:
        info.update(sha256=packaged.sha256, sha256_source="pinned")
        return info
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    digest = _hash_cache_get(cache_file, key)
    if digest is None:
        digest = sha256_of(path)
        _hash_cache_put(cache_file, key, digest)
    info.update(sha256=digest, sha256_source="computed")
    return info


def corpus_snapshot(registry) -> list[dict]:
    return [
        {"doc_id": v.doc_id, "version": v.version, "sha256": v.sha256, "status": v.status, "source": v.source}
        for v in registry.all_versions()
    ]


def _key_parts(config: dict) -> dict:
    """What must be equal for a run to be resumed: everything that changes the scores,
    but not the sample limit (a resumed run may go further) nor timestamps."""
    return {
        "testset": {"sha256": config["testset"]["sha256"], "ids": config["testset"]["ids"],
                    "tags": config["testset"]["tags"]},
        "metrics": config["metrics"],
        "answer_model": {k: config["answer_model"].get(k) for k in ("preset", "file", "sha256")},
        "judge": None if config["judge"] is None else {
            k: config["judge"].get(k) for k in ("preset", "max_tokens", "context_tokens", "ja_prompts")
        } | {"sha256": config["judge"]["model"].get("sha256")},
        "prompt_set_version": config["prompt_set_version"],
        "embedder": config["embedder"],
        "chunking": config["chunking"],
        "retrieval": config["retrieval"],
        "llm": config["llm"],
        "corpus": config["corpus"],
        "code": config["code"]["commit"],
        "requester": config["requester"],
    }


def config_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(_key_parts(config), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def changed_key_parts(before: dict, after: dict) -> list[str]:
    """The parts of the resume key that differ between two run configurations."""
    old, new = _key_parts(before), _key_parts(after)
    return [k for k in new if old.get(k) != new[k]]


# --- judge-side helpers -------------------------------------------------------------------------


def trim_contexts(texts: list[str], budget: int, count_tokens: Callable[[str], int]) -> tuple[list[str], bool]:
    """Keep contexts in order within ``budget`` tokens, cutting the last one that overflows."""
    out: list[str] = []
    used = 0
    for text in texts:
        n = count_tokens(text)
        if used + n <= budget:
            out.append(text)
            used += n
            continue
        room = budget - used
        if room >= 32 or not out:
            out.append(text[: max(1, int(len(text) * max(room, 32) / max(n, 1) * 0.95))])
        return out, True
    return out, False


def judge_scores(judge, names: list[str], case: TestCase, answer: Answer, lang: str, budget: int) -> tuple[dict, bool]:
    """RAGAS scores for one answered sample, with n/a where a metric does not apply."""
    texts = [h.text for h in answer.contexts if h.text.strip()]
    contexts, trimmed = trim_contexts(texts, budget, judge.llm.chat.count_tokens)
    reference = case.reference_answer
    out: dict[str, Score] = {}
    for name in names:
        if name == "faithfulness":
            if answer.refused:
                out[name] = Score.na("refused: no claims to check")
            elif not contexts:
                out[name] = Score.na("no contexts")
            else:
                out[name] = judge.score(name, lang, user_input=case.question, response=answer.answer,
                                        retrieved_contexts=contexts)
        elif name == "answer_relevancy":
            if not case.answerable:
                out[name] = Score.na("unanswerable question")
            elif answer.refused:
                out[name] = Score.ok(0.0, reason="refused (noncommittal)")
            else:
                out[name] = judge.score(name, lang, user_input=case.question, response=answer.answer)
        elif name in ("context_precision", "context_recall"):
            if not case.answerable:
                out[name] = Score.na("unanswerable question")
            elif not reference:
                out[name] = Score.na("no reference answer")
            elif not contexts:
                out[name] = Score.ok(0.0, reason="no contexts retrieved")
            else:
                out[name] = judge.score(name, lang, user_input=case.question, reference=reference,
                                        retrieved_contexts=contexts)
        elif name == "factual_correctness":
            if not case.answerable:
                out[name] = Score.na("unanswerable question")
            elif not reference:
                out[name] = Score.na("no reference answer")
            elif answer.refused:
                out[name] = Score.ok(0.0, reason="refused")
            else:
                out[name] = judge.score(name, lang, response=answer.answer, reference=reference)
    return out, trimmed


# --- the run ---------------------------------------------------------------------------------------


class _Stopped(Exception):
    pass


def run_testset(
    container,
    testset_path: str | Path,
    metrics: str | list[str] | None = None,
    judge_preset: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    *,
    resume: str | None = None,
    new: bool = False,
    ids: list[str] | None = None,
    tags: list[str] | None = None,
    stop_after: int | None = None,
    cancel: threading.Event | None = None,
    judge_max_tokens: int | None = None,
    judge_context_tokens: int | None = None,
    judge_model_path: Path | None = None,
    ja_prompts: str | None = None,
    user: str | None = None,
    label: str | None = None,
    log: Callable[[str], None] | None = None,
    store: RunStore | None = None,
    actor: str = "cli",
    on_run: Callable[[str], None] | None = None,
) -> RunResult:
    """Answer and score a test set; return the run's aggregate.

    ``metrics``: names or groups (``all``, ``judge``, ``ours``, ``latency``, ``retrieval``),
    default all. ``judge_preset``: ``dev`` / ``judge-1.5b`` / ``production`` (or an LLM
    preset name); only loaded when a judge metric is asked for. ``resume``: continue that
    run with its own options (arguments given here override them). Without ``resume`` an
    unfinished run with the same configuration is continued unless ``new``. ``user`` is who the
    questions are asked as (their access groups); ``actor`` who started the run (audit trail).
    ``stop_after``: answer at most that many new samples, leaving the run resumable. ``on_run`` is told the run
    id as soon as the run is created or resumed (the evaluation worker writes it into its job)."""
    log = log or (lambda message: None)
    settings = container.settings
    own_store = store is None
    store = store or open_store(settings)
    try:
        previous: RunRecord | None = store.get(resume) if resume else None
        opts = dict(previous.config.get("options", {})) if previous else {}
        given = {
            "metrics": metrics, "judge": judge_preset, "limit": limit, "ids": ids, "tags": tags,
            "judge_max_tokens": judge_max_tokens, "judge_context_tokens": judge_context_tokens,
            "ja_prompts": ja_prompts, "user": user,
            "judge_model_path": str(judge_model_path) if judge_model_path else None,
        }
        opts.update({k: v for k, v in given.items() if v is not None})
        names = parse_metric_names(opts.get("metrics"))
        opts["metrics"] = names
        judge_names = [n for n in names if n in JUDGE_METRICS]
        opts.setdefault("judge", "production" if settings.profile == "production" else "dev")
        opts.setdefault("judge_max_tokens", DEFAULT_JUDGE_MAX_TOKENS)
        # the dev judge cannot translate RAGAS prompts (measured: every adaptation failed)
        opts.setdefault("ja_prompts", "adapt" if is_meaningful(opts["judge"]) else "fixed")
        for key in ("limit", "ids", "tags", "judge_context_tokens", "user", "judge_model_path"):
            opts.setdefault(key, None)

        testset_path = Path(testset_path)
        if previous and Path(previous.testset).resolve() != testset_path.resolve():
            raise CQAError(f"run {previous.run_id} is for test set {previous.testset}, not {testset_path.resolve()}")
        cases = load_testset(testset_path)
        selected = select_cases(cases, opts["ids"], opts["tags"], opts["limit"])

        # Load what answers first, then the judge: a missing model fails before any work.
        answers = container.answers
        answer_chat = answers.llm
        judge = None
        judge_cfg = None
        if judge_names:
            from eval.judge import RAGAS_VERSION, Judge, load_judge_chat  # imports RAGAS: only when judging

            preset = judge_llm_preset(opts["judge"])
            model_path = Path(opts["judge_model_path"]) if opts["judge_model_path"] else None
            chat, shared = load_judge_chat(container, preset, model_path)
            judge = Judge(
                chat, container.embedder, preset, int(opts["judge_max_tokens"]),
                settings.data_dir / "eval" / "prompts", opts["ja_prompts"], shared=shared, cancel=cancel, log=log,
            )
            languages = {detect_language(c.question) for c in selected}
            prompt_info = judge.prepare(judge_names, languages)
            budgets = {lang: opts["judge_context_tokens"] or judge.context_budget(judge_names, lang)
                       for lang in languages}
            judge_cfg = {
                "name": opts["judge"],
                "preset": preset,
                "meaningful": is_meaningful(opts["judge"]),
                "model": model_identity(chat, preset, settings.data_dir / "eval" / "model_hashes.json"),
                "shared_with_answer_model": shared,
                "max_tokens": int(opts["judge_max_tokens"]),
                "context_tokens": opts["judge_context_tokens"],
                "context_budget": budgets,
                "sampling": asdict(judge.llm.sampling),
                "ja_prompts": opts["ja_prompts"],
                "prompts": prompt_info,
                "ragas": RAGAS_VERSION,
            }
        else:
            budgets = {}

        # as `qa` and `retrieval`: the named user's groups, or public documents only
        requester = requester_for(settings, opts["user"])
        config = {
            "testset": {
                "path": str(testset_path.resolve()),
                "sha256": file_sha256(testset_path),
                "cases_in_file": len(cases),
                "ids": opts["ids"],
                "tags": opts["tags"],
                "limit": opts["limit"],
            },
            "metrics": names,
            "options": opts,
            "answer_model": model_identity(
                answer_chat, settings.llm.preset, settings.data_dir / "eval" / "model_hashes.json"
            ),
            "judge": judge_cfg,
            "prompt_set_version": prompt_set_version(),
            "embedder": container.embedder.name,
            "chunking": settings.ingest.model_dump(mode="json"),
            "retrieval": settings.retrieval.model_dump(mode="json"),
            "hit_k": settings.retrieval.top_k,
            "llm": {
                "preset": settings.llm.preset,
                "backend": settings.llm.backend,
                "max_answer_tokens": settings.llm.max_answer_tokens,
                "n_ctx": answer_chat.n_ctx,
                "seed": settings.llm.seed,
                "sampling": asdict(answers.sampling),
            },
            "store": {"backend": settings.store.backend, "collection": settings.store.collection},
            "corpus": corpus_snapshot(container.registry),
            "code": code_version(),
            "requester": {"name": requester.name, "groups": list(requester.groups)},
            "profile": settings.profile,
            "python": sys.version.split()[0],
        }
        key = config_key(config)

        if previous is None and not new:
            previous = store.find_resumable(key)
            if previous is not None:
                log(f"resuming unfinished run {previous.run_id} ({previous.done}/{previous.total} samples done)")
        if previous is not None:
            if previous.config_key != key:
                changed = changed_key_parts(previous.config, config)
                raise CQAError(
                    f"run {previous.run_id} was made with another configuration (changed: {', '.join(changed) or '?'})"
                    "; start a new run instead"
                )
            run = previous
            done_ids = store.done_ids(run.run_id)
            case_ids = [c.id for c in selected] + [i for i in run.case_ids if i in done_ids and
                                                   i not in {c.id for c in selected}]
            store.claim(run.run_id)
            store.update(run.run_id, case_ids=case_ids, total=len(case_ids), config=config)
            resumed = True
        else:
            run = store.create_run(
                new_run_id(), str(testset_path.resolve()), config["testset"]["sha256"], key, config, names,
                opts["judge"] if judge_names else None, [c.id for c in selected], label,
            )
            done_ids = set()
            case_ids = [c.id for c in selected]
            resumed = False
        if on_run is not None:
            on_run(run.run_id)
        container.audit.append(actor, "eval_run", {"run_id": run.run_id, "testset": testset_path.name,
                                                   "judge": run.judge, "resumed": resumed})

        index = {c.id: i for i, c in enumerate(cases)}
        total = len(case_ids)
        done = len(done_ids & set(case_ids))
        todo = [c for c in selected if c.id not in done_ids]
        report = progress or (lambda update: None)
        report(ProgressUpdate(done, total, None, None, "starting"))
        answered = 0
        k = settings.retrieval.top_k
        wanted_ours = [n for n in names if n in SAMPLE_METRICS]
        try:
            for case in todo:
                if stop_after is not None and answered >= stop_after:
                    raise _Stopped
                if cancel is not None and cancel.is_set():
                    raise _Stopped
                report(ProgressUpdate(done, total, case.id, case.question, "answering"))
                record = _sample(case, answers, requester, judge, judge_names, wanted_ours, k, budgets, report,
                                 done, total, cancel)
                if cancel is not None and cancel.is_set():
                    raise _Stopped  # the answer or the judge may have been cut off: asked again when resumed
                store.save_sample(run.run_id, index[case.id], case.id, record)
                answered += 1
                done += 1
                report(ProgressUpdate(done, total, case.id, case.question, "saved"))
        except _Stopped:
            status = "interrupted"
        except KeyboardInterrupt:
            _finish(store, run.run_id, names, "interrupted")
            raise
        except BaseException as exc:
            _finish(store, run.run_id, names, "failed", error=f"{type(exc).__name__}: {exc}"[:500])
            raise
        else:
            status = "finished" if done >= total else "interrupted"
        agg = _finish(store, run.run_id, names, status)
        report(ProgressUpdate(done, total, None, None, "finished" if status == "finished" else "stopped"))
        return RunResult(
            run_id=run.run_id,
            status=status,
            samples=done,
            total=total,
            metrics=agg.means,
            failures=agg.failures,
            not_applicable=agg.not_applicable,
            counts=agg.counts,
            new_samples=answered,
            resumed=resumed,
            config=config,
        )
    finally:
        if own_store:
            store.close()


def _answer(answers, question: str, requester, history, cancel: threading.Event | None) -> Answer:
    """The service's answer, its generation stopped by ``cancel`` (the evaluation worker's stop)."""
    from qa.service import AnswerEvent

    final = None
    for event in answers.stream(question, requester, history, cancel=cancel):
        if isinstance(event, AnswerEvent):
            final = event.answer
    if final is None:
        raise CQAError("the answering service ended without an answer")
    return final


def _sample(case, answers, requester, judge, judge_names, wanted_ours, k, budgets, report, done, total,
            cancel: threading.Event | None = None) -> dict:
    lang = detect_language(case.question)
    record: dict = {
        "id": case.id,
        "case": case.model_dump(mode="json"),
        "language": lang,
        "answer": None,
        "metrics": {},
        "error": None,
        "answered_at": now(),
    }
    try:
        history = [ChatTurn(role=t["role"], content=t["content"]) for t in case.history]
        answer = _answer(answers, case.question, requester, history or None, cancel)
    except CQAError:
        raise  # a missing model or broken store: every sample would fail the same way
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"[:500]
        reason = f"answer failed: {record['error']}"
        record["metrics"] = {n: Score.failed(reason).to_dict() for n in [*wanted_ours, *judge_names]}
        return record
    record["answer"] = answer.model_dump(mode="json")
    scores = sample_metrics(case, answer, k, wanted_ours)
    if judge is not None and judge_names:
        report(ProgressUpdate(done, total, case.id, case.question, "judging"))
        started = time.perf_counter()
        judged, trimmed = judge_scores(judge, judge_names, case, answer, lang, budgets.get(lang, 2048))
        scores.update(judged)
        record["judge_ms"] = round((time.perf_counter() - started) * 1000, 1)
        record["judge_contexts_trimmed"] = trimmed
    record["metrics"] = {n: s.to_dict() for n, s in scores.items()}
    return record


def _finish(store: RunStore, run_id: str, names: list[str], status: str, error: str | None = None):
    agg = aggregate(store.samples(run_id), names)
    fields = {"status": status, "aggregate": agg.to_dict(), "pid": None}
    if status == "finished":
        fields["finished_at"] = now()
    if error:
        fields["error"] = error
    store.update(run_id, **fields)
    return agg
