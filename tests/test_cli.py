"""The CLI contract: names, exit codes and JSON shapes other tools rely on."""

from __future__ import annotations

import json

import pytest

from core.cli import ArgumentParser, UsageError, exit_code
from core.errors import CQAError
from tests.conftest import EN_MD, JA_PDF
from tests.helpers import run_cli, run_json

HIT_KEYS = {"doc_id", "source", "title", "page", "pages", "section", "text", "score"}


def test_ingest_reports_each_file_and_fails_only_the_bad_one(tmp_path):
    data = tmp_path / "data"
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\n this is not really a pdf")
    code, out = run_json("ingest", str(JA_PDF), str(bad), "--doc-type", "manual", "--json", data_dir=data)
    assert code == 1
    assert set(out) == {"documents", "seconds"}
    by_name = {d["path"].rsplit("/", 1)[-1]: d for d in out["documents"]}
    good, broken = by_name[JA_PDF.name], by_name["broken.pdf"]
    assert good["status"] == "ingested" and good["pages"] >= 3 and good["chunks"] > 0 and good["doc_id"]
    assert broken["status"] == "failed" and broken["error"]
    assert {"path", "doc_id", "status", "pages", "chunks", "error"} <= set(good)

    code, again = run_json("ingest", str(JA_PDF), "--json", data_dir=data)
    assert code == 0 and again["documents"][0]["status"] == "unchanged"


def test_bad_usage_exits_2_with_one_readable_line(tmp_path):
    proc = run_cli("ingest", "--doc-type", "novel", "x", data_dir=tmp_path / "d")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("retrieval", data_dir=tmp_path / "d")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run_cli("eval", "verifier", "measure", "--testset", "eval/testsets/grounding_dev.jsonl",
                   data_dir=tmp_path / "d")  # labels are for rescoring a run, not for the labelled sentences
    assert proc.returncode == 2 and "--testset is for verifier rescore" in proc.stderr


def _command(argv: list[str]) -> int:
    p = ArgumentParser(prog="python -m demo")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("go").add_argument("--n", type=int, required=True)
    args = p.parse_args(argv)
    if args.n < 0:
        raise UsageError("--n must not be negative")
    if args.n == 0:
        raise CQAError("nothing to do:\n  the count is zero")
    if args.n == 1:
        raise KeyError("no such thing 'x'")
    if args.n == 2:
        raise RuntimeError("a bug")
    return 0


@pytest.mark.parametrize(("argv", "code", "line"), [
    (["go", "--n", "many"], 2, "python -m demo go: error: argument --n: invalid int value: 'many' (see --help)"),
    (["stop"], 2, "python -m demo: error: argument command: invalid choice: 'stop'"),
    (["go", "--n", "-1"], 2, "python -m demo: error: --n must not be negative (see --help)"),
    (["go", "--n", "0"], 1, "python -m demo: error: nothing to do: the count is zero"),
    (["go", "--n", "1"], 1, "python -m demo: error: no such thing 'x'"),
])
def test_every_command_reports_a_failure_as_one_line(capsys, argv, code, line):
    assert exit_code("python -m demo", _command, argv) == code
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(line) and err.count("\n") == 1
    assert err.endswith(" (see --help)\n") == (code == 2)


def test_cli_helper_keeps_the_traceback_of_a_bug_and_exits_0_after_help(capsys):
    with pytest.raises(RuntimeError):
        exit_code("python -m demo", _command, ["go", "--n", "2"])
    assert exit_code("python -m demo", _command, ["go", "--help"]) == 0
    assert "--n N" in capsys.readouterr().out
    assert exit_code("python -m demo", _command, ["go", "--n", "0"], failure=2) == 2


def test_retrieval_single_and_batch_json(tmp_path):
    data = tmp_path / "data"
    assert run_cli("ingest", str(JA_PDF), str(EN_MD), data_dir=data).returncode == 0
    code, out = run_json("retrieval", "口座開設時の本人確認書類は？", "--k", "3", "--json", data_dir=data)
    assert code == 0 and out["query"] == "口座開設時の本人確認書類は？"
    assert len(out["hits"]) == 3 and HIT_KEYS <= set(out["hits"][0])
    assert out["hits"][0]["page"] is not None and out["hits"][0]["pages"]
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in [
        {"id": "a", "query": "gift limit"}, {"id": "b", "query": "海外送金"}]), encoding="utf-8")
    code, lines = run_json("retrieval", "--queries", str(queries), "--k", "2", "--json", data_dir=data)
    assert code == 0 and [line["id"] for line in lines] == ["a", "b"]
    assert all(len(line["hits"]) == 2 for line in lines)
    md_hit = next(h for h in lines[0]["hits"] if h["source"] == EN_MD.name)
    assert md_hit["page"] is None and md_hit["pages"] == []


def test_qa_json_shape(tmp_path):
    data = tmp_path / "data"
    assert run_cli("ingest", str(EN_MD), data_dir=data).returncode == 0
    code, out = run_json("qa", "What is the limit for gifts from customers?", "--json", data_dir=data)
    assert code == 0
    assert {"answer", "citations", "refused", "contexts", "timings"} <= set(out)
    assert {"retrieve_ms", "first_token_ms", "total_ms"} <= set(out["timings"])
    assert out["refused"] is False and out["citations"]
    assert {"n", "doc_id", "source", "page", "section", "quote"} <= set(out["citations"][0])
    assert HIT_KEYS <= set(out["contexts"][0])
