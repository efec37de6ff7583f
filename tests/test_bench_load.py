"""The load test's inputs and arithmetic (its measurements belong to `python -m bench.load` itself)."""

from __future__ import annotations

import json

import pytest

from bench.load import main, read_questions
from bench.load_report import Outcome, markdown_table, percentile, summarise
from core.cli import UsageError


@pytest.mark.parametrize("argv", [["--staff", "0"], ["--duration", "0"], ["--pace", "-1"], ["--grace", "-5"],
                                  ["--answer-tokens", "0"], ["--staff", "two"]])
def test_settings_that_cannot_run_are_refused_before_anything_starts(argv):
    with pytest.raises(UsageError):
        main(argv)


def test_a_question_file_without_questions_is_refused(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no questions"):
        read_questions(empty)
    lines = tmp_path / "two.jsonl"
    lines.write_text("\n".join(json.dumps({"id": i, "question": q}) for i, q in enumerate(["一", "two"])),
                     encoding="utf-8")
    assert read_questions(lines) == ["一", "two"]


def test_a_level_is_summed_up_from_what_each_staff_member_saw():
    outcomes = [Outcome(0, 1000.0 * i, 2000.0 * i, 100.0 * i, False, None) for i in range(1, 11)]
    outcomes += [Outcome(1, None, 500.0, None, True, None), Outcome(1, 3000.0, None, None, False, "llm_broke_off")]
    row = summarise(2, 120.0, outcomes, {"app": 600.4, "llm1": 1600.0, "llm2": 1700.0, "haproxy": 12.0}, "llm2")
    assert (row.asked, row.answered, row.refused, row.errors) == (12, 11, 1, 1)
    assert row.answers_per_min == 5.5 and round(row.error_rate, 3) == 0.083
    assert (row.first_word_p50_s, row.first_word_p95_s) == (5.0, 10.0)
    assert (row.total_p50_s, row.total_p95_s) == (10.0, 20.0)
    assert (row.queue_p50_s, row.queue_p95_s) == (0.5, 1.0)
    table = markdown_table([row])
    assert "| 2 (one LLM server killed: llm2) | 12 | 11 (1) | 1 (8%; 0) | 5.50 |" in table
    assert "600 / 1700 / 12" in table
    assert percentile([], 50) is None


def test_a_level_with_an_evaluation_running_says_where_it_ran_and_reads_back_from_json():
    from dataclasses import asdict

    from bench.load_report import from_json, level_key

    outcomes = [Outcome(0, 4000.0, 5000.0, 0.0, False, None)]
    alone = summarise(1, 60.0, outcomes, {"app": 600.0}, None)
    shared = summarise(1, 60.0, outcomes, {"app": 600.0}, None, 0, "shared", 3)
    table = markdown_table([alone, shared])
    assert "| 1 | 1 |" in table
    assert "| 1, evaluation running on the staff's LLM servers (3 questions evaluated) |" in table
    saved = {"levels": [r.to_json() for r in (alone, shared)],
             "questions": {level_key(1, None): [asdict(o) for o in outcomes],
                           level_key(1, "shared"): [asdict(o) for o in outcomes]}}
    assert from_json(json.loads(json.dumps(saved))) == [alone, shared]
