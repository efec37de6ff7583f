"""python -m eval run|list|compare|gate|export|retrieval ...

    run TESTSET [--metrics m1,m2] [--judge dev|judge-1.5b|production] [--limit N]
                [--resume RUN_ID] [--new] [--ids a,b] [--tags t] [--stop-after N] [--json]
    list [--json]
    compare RUN_A RUN_B [--top N] [--json]
    gate RUN --min faithfulness=0.8 [--min ...] [--max latency_p95_ms=5000]
    export RUN --csv FILE | --html FILE
    retrieval ...            (retrieval quality on public labelled sets)
    verifier build|measure   (the citation verifier on labelled sentences)
    verifier rescore RUN [--testset FILE]  (a stored run's answers checked again by the current verifier and,
                             with FILE, against its labels as they are now; without the model)
    refusal-gate [--user U] [--json]   (how many questions each refusal_min_dense refuses before the model)
    worker [--once] [--parent PID]   (runs the evaluations the app enqueues, docs/operations.md "Evaluations")

Run ids may be abbreviated to a unique prefix, or be ``latest`` / ``previous``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tqdm import tqdm

from core.cli import ArgumentParser, UsageError, print_json, run
from core.errors import CQAError
from eval.judge_presets import judge_llm_preset
from eval.metrics import Aggregate, parse_metric_names
from eval.report import (
    _fmt,
    compare,
    comparison_text,
    export_csv,
    export_html,
    gate,
    list_runs,
    metric_table,
    parse_thresholds,
    text_table,
)
from eval.rescore import rescore
from eval.retrieval_quality import main_retrieval
from eval.run_store import RunStore, store_path
from eval.runner import run_testset
from eval.testset import load_testset, obliqa_cases
from eval.testset import write_jsonl as write_testset
from eval.verifier_set import build, measure, read_jsonl
from eval.verifier_set import write_jsonl as write_labelled
from eval.worker import add_arguments as add_worker_arguments
from eval.worker import serve
from settings import load_settings
from wiring import Container, open_container, requester_for

PROG = "python -m eval"
VERIFIER_SET = Path(__file__).resolve().parent / "testsets" / "verifier_labelled.jsonl"


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Evaluate the answering pipeline on a test set.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    r = sub.add_parser("run", help="answer and score a test set (resumable)")
    r.add_argument("testset", help=".jsonl, .csv or .xlsx")
    r.add_argument("--metrics", help="comma-separated metric names or groups (all, judge, ours, latency, retrieval)")
    r.add_argument("--judge", help="dev | judge-1.5b | production (default: production on the production profile, "
                                   "else dev)")
    r.add_argument("--limit", type=int, help="only the first N selected cases")
    r.add_argument("--ids", help="only these case ids (comma-separated)")
    r.add_argument("--tags", help="only cases with any of these tags (comma-separated)")
    r.add_argument("--resume", metavar="RUN_ID", help="continue this run")
    r.add_argument("--new", action="store_true", help="do not resume an unfinished run of the same configuration")
    r.add_argument("--stop-after", type=int, metavar="N",
                   help="answer at most N new samples, leaving the run resumable")
    r.add_argument("--judge-max-tokens", type=int, metavar="N", help="output tokens per judge call (default 512)")
    r.add_argument("--judge-context-tokens", type=int, metavar="N",
                   help="retrieved-context tokens shown to the judge (default: what its context window allows)")
    r.add_argument("--judge-model-path", type=Path, default=os.environ.get("CQA_EVAL_JUDGE_MODEL_PATH") or None,
                   help="GGUF of a judge preset without a packaged model (env CQA_EVAL_JUDGE_MODEL_PATH)")
    r.add_argument("--ja-prompts", choices=("adapt", "fixed", "english"),
                   help="Japanese judge prompts: adapted with the judge and cached (default), our fixed Japanese "
                        "instructions, or RAGAS' English prompts")
    r.add_argument("--user", help="answer as this user (their access groups); default: public documents only")
    r.add_argument("--label", help="a note stored with the run")
    r.add_argument("--json", action="store_true")

    ls = sub.add_parser("list", help="stored runs")
    ls.add_argument("--json", action="store_true")

    c = sub.add_parser("compare", help="B relative to A: metric deltas and questions that changed")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--top", type=int, default=10, help="questions listed per metric and direction")
    c.add_argument("--json", action="store_true")

    g = sub.add_parser("gate", help="exit 1 when a metric misses its threshold")
    g.add_argument("run_id")
    g.add_argument("--min", action="append", metavar="METRIC=VALUE", help="mean must be at least VALUE")
    g.add_argument("--max", action="append", metavar="METRIC=VALUE",
                   help="mean (or METRIC_failures count) must be at most VALUE")
    g.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="write a run as CSV (per question) and/or a self-contained HTML report")
    e.add_argument("run_id")
    e.add_argument("--csv", type=Path, metavar="FILE")
    e.add_argument("--html", type=Path, metavar="FILE")
    e.add_argument("--user", help="read as this user: contexts outside their groups are withheld "
                                  "(default: public documents only)")

    o = sub.add_parser("import-obliqa", help="write ObliQA questions as a test set (gold passages as references)")
    o.add_argument("out", type=Path, help="the .jsonl to write")
    o.add_argument("--source", type=Path, default=Path("../shared/corpus/en/obliqa/ObliQA_dev.json"))
    o.add_argument("--documents", help="comma-separated DocumentIDs: keep questions answered by these only (1 = AML)")
    o.add_argument("--limit", type=int, help="keep the first N questions")

    sub.add_parser("retrieval", help="retrieval quality on public labelled sets (python -m eval retrieval --help)",
                   add_help=False)

    v = sub.add_parser("verifier", help="the citation verifier's precision/recall on labelled sentences")
    v.add_argument("action", choices=("build", "measure", "rescore"))
    v.add_argument("run_id", nargs="?", help="rescore: the stored run whose answers are checked again")
    v.add_argument("--testset", type=Path, metavar="FILE",
                   help="rescore: score against this test set's labels (gold pages corrected since the run)")
    v.add_argument("--set", dest="labelled", type=Path, default=VERIFIER_SET, help="the labelled .jsonl")
    v.add_argument("--corpus-dir", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "corpus")
    v.add_argument("--json", action="store_true")

    r = sub.add_parser("refusal-gate", help="how many questions of each kind each retrieval.refusal_min_dense "
                       "refuses before the model (on a data dir holding the shared documents)")
    r.add_argument("--user", help="search as this user (default: public documents only)")
    r.add_argument("--json", action="store_true")

    w = sub.add_parser("worker", help="run the evaluations the app enqueues, one at a time, at low priority")
    add_worker_arguments(w)
    return p


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _store(missing_ok: bool = False):
    """The run store, never created by a read-only command."""
    settings = load_settings()
    path = store_path(settings.data_dir)
    if settings.database.url.get_secret_value():
        return RunStore(settings.database.target(path))
    if not path.is_file():
        if missing_ok:
            return None
        raise CQAError(f"no evaluation runs in {path.parent.parent} (run `python -m eval run TESTSET` first)")
    return RunStore(path)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _cmd_run(args) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.stop_after is not None and args.stop_after < 1:
        raise UsageError("--stop-after must be at least 1")
    if args.resume and args.new:
        raise UsageError("--resume and --new exclude each other")

    try:
        if args.metrics is not None:
            parse_metric_names(args.metrics)
        if args.judge is not None:
            judge_llm_preset(args.judge)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    bar = None
    progress = None
    if sys.stderr.isatty():
        def progress(update):
            nonlocal bar
            if bar is None:
                bar = tqdm(total=update.total, initial=update.done, unit="q", file=sys.stderr, dynamic_ncols=True)
            bar.n = update.done
            if update.case_id:
                bar.set_description(f"{update.stage} {update.case_id}", refresh=False)
            bar.refresh()

    container = open_container(store_wait_seconds=5.0)
    try:
        result = run_testset(
            container, args.testset, metrics=args.metrics, judge_preset=args.judge, limit=args.limit,
            progress=progress, resume=args.resume, new=args.new, ids=_split(args.ids), tags=_split(args.tags),
            stop_after=args.stop_after, judge_max_tokens=args.judge_max_tokens,
            judge_context_tokens=args.judge_context_tokens, judge_model_path=args.judge_model_path,
            ja_prompts=args.ja_prompts, user=args.user, label=args.label, log=_say,
        )
    finally:
        if bar is not None:
            bar.close()
        container.close()
    if args.json:
        print_json(result.summary())
        return 0
    agg = Aggregate(result.metrics, result.failures, result.counts, result.not_applicable)
    judge = result.config.get("judge")
    print(f"run {result.run_id}: {result.status}, {result.samples}/{result.total} samples "
          f"({result.new_samples} answered now{', resumed' if result.resumed else ''})")
    if judge and not judge.get("meaningful", True):
        print("judge: dev (0.5B) — plumbing only, its scores are not meaningful")
    print(text_table(metric_table(agg)))
    if result.status != "finished":
        print(f"resume with: python -m eval run {args.testset} --resume {result.run_id}")
    return 0


def _cmd_list(args) -> int:
    store = _store(missing_ok=True)
    runs = []
    if store is not None:
        try:
            runs = list_runs(store)
        finally:
            store.close()
    if args.json:
        print_json([
            {"run_id": r.run_id, "created_at": r.created_at, "status": r.status, "samples": r.samples,
             "total": r.total, "testset": r.testset, "judge": r.judge, "metrics": r.metrics,
             "failures": r.failures, "label": r.label}
            for r in runs
        ])
        return 0
    if not runs:
        print("no evaluation runs yet")
        return 0
    keys = ("faithfulness", "answer_relevancy", "hit_at_k", "refusal_accuracy", "latency_p95_ms")
    rows = []
    for r in runs:
        row = {k: v for k, v in r.as_row().items() if k in ("run_id", "created_at", "status", "samples", "testset",
                                                            "judge") or k in keys}
        rows.append(row)
    print(text_table(rows))
    return 0


def _cmd_compare(args) -> int:
    store = _store()
    try:
        cmp = compare(store, args.run_a, args.run_b)
    finally:
        store.close()
    if args.json:
        print_json(cmp.to_dict())
    else:
        print(comparison_text(cmp, args.top))
    return 0


def _cmd_gate(args) -> int:
    if not args.min and not args.max:
        raise UsageError("gate needs at least one --min or --max")
    try:
        minimums = parse_thresholds(args.min, "--min")
        maximums = parse_thresholds(args.max, "--max")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    store = _store()
    try:
        run_rec, checks = gate(store, args.run_id, minimums, maximums)
    finally:
        store.close()
    failed = [c for c in checks if not c.passed]
    if args.json:
        print_json({"run_id": run_rec.run_id, "passed": not failed,
                    "checks": [c.__dict__ for c in checks]})
    else:
        for c in checks:
            mark = "PASS" if c.passed else "FAIL"
            value = _fmt(c.value, c.metric)
            note = f"  ({c.note})" if c.note else ""
            print(f"{mark} {c.metric} = {value} (required {c.op} {c.threshold:g}){note}")
    if failed:
        print(f"gate failed for run {run_rec.run_id}: " + ", ".join(c.metric for c in failed), file=sys.stderr)
        return 1
    return 0


def _cmd_export(args) -> int:
    if not args.csv and not args.html:
        raise UsageError("export needs --csv FILE and/or --html FILE")
    reader = requester_for(load_settings(), args.user).search_filter()
    store = _store()
    try:
        if args.csv:
            n = export_csv(store, args.run_id, args.csv, reader)
            print(f"wrote {args.csv} ({n} questions)")
        if args.html:
            n = export_html(store, args.run_id, args.html, reader)
            print(f"wrote {args.html} ({n} questions)")
    finally:
        store.close()
    return 0


def _cmd_import_obliqa(args) -> int:
    if not args.source.is_file():
        raise UsageError(f"{args.source} not found (the shared corpus's ObliQA_dev.json; give --source)")
    try:
        documents = {int(d) for d in _split(args.documents)} if args.documents else None
    except ValueError:
        raise UsageError("--documents takes DocumentIDs, e.g. 1,3") from None
    cases = obliqa_cases(args.source, documents)[: args.limit]
    write_testset(cases, args.out)
    print(f"wrote {args.out} ({len(cases)} questions)")
    return 0


def _cmd_verifier(args) -> int:
    if args.testset and args.action != "rescore":
        raise UsageError("--testset is for verifier rescore")
    if args.action == "build":
        if not args.corpus_dir.is_dir():
            raise UsageError(f"the shared corpus is needed at {args.corpus_dir}")
        items = build(args.corpus_dir)
        write_labelled(items, args.labelled)
        _say(f"wrote {len(items)} labelled sentences to {args.labelled}")
        return 0
    if args.action == "rescore":
        return _rescore(args)
    result = measure(read_jsonl(args.labelled))
    if args.json:
        print_json(result)
        return 0
    print(f"{result['items']} labelled sentences: unsupported precision {result['unsupported_precision']}, "
          f"recall {result['unsupported_recall']}; supported kept {result['supported_kept']}")
    for kind, accuracy in result["accuracy_by_perturbation"].items():
        print(f"  {kind:<10} {accuracy:.3f} of {result['count_by_perturbation'][kind]}")
    uncited = result["uncited"]
    print(f"left uncited, attributed among five sources: unsupported precision {uncited['unsupported_precision']}, "
          f"recall {uncited['unsupported_recall']}; supported kept {uncited['supported_kept']} "
          f"({uncited['supported_attributed_elsewhere']} to another passage than their own)")
    return 0


def _rescore(args) -> int:
    if not args.run_id:
        raise UsageError("verifier rescore needs a RUN id")
    store = _store()
    try:
        labels = {case.id: case for case in load_testset(args.testset)} if args.testset else None
        before, after, changed = rescore(store, args.run_id, labels=labels)
    finally:
        store.close()
    if args.json:
        print_json({"stored": before.means, "rechecked": after.means, "changed": changed})
        return 0
    for name, value in before.means.items():
        print(f"{name:<18} {_num(value)} -> {_num(after.means.get(name))}")
    for line in changed:
        print(f"  {line}")
    return 0


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cmd_refusal_gate(args) -> int:
    from eval.refusal_gate import measure, question_sets

    container = open_container(store_wait_seconds=5.0)
    try:
        flt = requester_for(container.settings, args.user).search_filter()
        rows = measure(container.retrieval, flt, question_sets())
        current = container.settings.retrieval.refusal_min_dense
    finally:
        container.close()
    if args.json:
        print_json({"refusal_min_dense": current, "rows": [vars(r) for r in rows]})
        return 0
    print(f"refused before the model, per threshold (configured: {current:g})")
    print(text_table([{"questions": r.questions, "n": r.count, "lowest": r.lowest, "median": r.median,
                       **{f"< {t:g}": n for t, n in r.refused.items()}} for r in rows]))
    return 0


def _cmd_worker(args) -> int:
    import logging
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # systemd's stop: the job ends as "stopped"
    ran = serve(load_settings(), Container, once=args.once, parent_pid=args.parent, poll_seconds=args.poll,
                idle_exit=args.idle_exit)
    _say(f"evaluation worker: {ran} job(s) run")
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "retrieval":
        return main_retrieval(argv[1:], make_container=Container)
    args = _parser().parse_args(argv)
    if args.command is None:
        raise UsageError("choose a command: run, list, compare, gate, export, import-obliqa, retrieval, verifier, "
                         "refusal-gate, worker "
                         "(see --help)")
    return {
        "run": _cmd_run,
        "list": _cmd_list,
        "compare": _cmd_compare,
        "gate": _cmd_gate,
        "export": _cmd_export,
        "import-obliqa": _cmd_import_obliqa,
        "verifier": _cmd_verifier,
        "refusal-gate": _cmd_refusal_gate,
        "worker": _cmd_worker,
    }[args.command](args)


if __name__ == "__main__":
    run(PROG, main)
