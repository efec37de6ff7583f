"""The refusal gate measured: ``retrieval.refusal_min_dense`` refuses a question without asking the model when the
best dense cosine of its passages is below it. How many questions each threshold refuses, per kind of question:
staff questions with gold pages and answerable grounding cases (which should reach the model), on-topic questions
the documents do not answer, and off-topic ones (``eval/testsets/off_topic.jsonl``). ``python -m eval
refusal-gate`` on a data dir holding the shared documents (the grounding set's)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from core.schema import SearchFilter
from qa.service import best_dense_score

TESTSETS = Path(__file__).resolve().parent / "testsets"
THRESHOLDS = (0.20, 0.22, 0.25, 0.28, 0.30)


@dataclass(frozen=True)
class GateRow:
    questions: str
    count: int
    lowest: float
    median: float
    refused: dict[float, int]
    """threshold -> how many of the questions it refuses before the model"""


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (TESTSETS / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def question_sets() -> dict[str, list[str]]:
    """Single-turn questions only: a follow-up is searched with its condensed form, which needs the model."""
    grounding = [c for c in _jsonl("grounding_dev.jsonl") if not c.get("history")]
    return {
        "staff questions with gold pages (dev-pages)": [
            c["question"] for name in ("dev_retrieval_ja.jsonl", "dev_retrieval_en.jsonl") for c in _jsonl(name)],
        "grounding dev, answerable": [c["question"] for c in grounding if c["answerable"]],
        "grounding dev, unanswerable (on topic)": [c["question"] for c in grounding if not c["answerable"]],
        "off-topic": [c["question"] for c in _jsonl("off_topic.jsonl")],
    }


def measure(retrieval, flt: SearchFilter, sets: dict[str, list[str]],
            thresholds: tuple[float, ...] = THRESHOLDS) -> list[GateRow]:
    rows = []
    for name, questions in sets.items():
        scores = [best_dense_score(retrieval.retrieve(q, flt)) for q in questions]
        rows.append(GateRow(name, len(scores), round(min(scores), 3), round(statistics.median(scores), 3),
                            {t: sum(s < t for s in scores) for t in thresholds}))
    return rows
