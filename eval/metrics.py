"""Metric names, per-sample scores and aggregation; our own non-LLM metrics.

Every per-sample score is a ``Score`` with a status:

- ``ok``: a value in [0, 1] that enters the mean;
- ``failed``: the metric should apply but produced no usable value (the judge's output
  did not validate, the prompt did not fit, RAGAS returned NaN, the answer raised): counted
  per metric and shown, never averaged as zero;
- ``n/a``: the metric does not apply to this sample (e.g. retrieval metrics of a question
  without gold sources): neither averaged nor counted as a failure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Literal

import numpy as np

from core.schema import Answer, Hit
from eval.measures import percentile, score_ranking
from eval.page_retrieval import article_of
from eval.passages import GoldPassage, chunk_hits_passage
from eval.testset import GoldSource, TestCase

JUDGE_METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall", "factual_correctness")
"""RAGAS collections metrics scored by the LLM judge."""
SAMPLE_METRICS = ("hit_at_k", "mrr", "citation_validity", "refusal_accuracy", "grounded_answer", "refusal_recall",
                  "refusal_precision", "false_refusal", "removed_claims")
"""Our own metrics, computed from the answer without any LLM."""
LATENCY_METRICS = (
    "latency_p50_ms",
    "latency_p95_ms",
    "first_token_p50_ms",
    "first_token_p95_ms",
    "retrieve_p50_ms",
    "retrieve_p95_ms",
)
"""Run-level latency percentiles (``latency`` = total time of ``AnswerService.ask``)."""
GROUPS = {
    "all": JUDGE_METRICS + SAMPLE_METRICS + LATENCY_METRICS,
    "judge": JUDGE_METRICS,
    "ours": SAMPLE_METRICS + LATENCY_METRICS,
    "latency": LATENCY_METRICS,
    "retrieval": ("hit_at_k", "mrr"),
}
ALL_METRICS = GROUPS["all"]
_TIMING_OF = {"latency": "total_ms", "first_token": "first_token_ms", "retrieve": "retrieve_ms"}

Status = Literal["ok", "failed", "n/a"]


@dataclass
class Score:
    status: Status
    value: float | None = None
    reason: str | None = None
    details: dict | list | None = None

    @classmethod
    def ok(cls, value: float, reason: str | None = None, details=None) -> Score:
        value = float(value)
        if math.isnan(value):
            return cls("failed", None, "NaN" + (f": {reason}" if reason else ""), details)
        return cls("ok", round(min(1.0, max(0.0, value)), 9), reason, details)

    @classmethod
    def failed(cls, reason: str, details=None) -> Score:
        return cls("failed", None, reason, details)

    @classmethod
    def na(cls, reason: str) -> Score:
        return cls("n/a", None, reason)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None or k == "value"}

    @classmethod
    def from_dict(cls, d: dict) -> Score:
        return cls(d["status"], d.get("value"), d.get("reason"), d.get("details"))


def parse_metric_names(spec: str | Iterable[str] | None) -> list[str]:
    """``faithfulness,mrr`` or group names (all, judge, ours, latency, retrieval) -> names."""
    if spec is None:
        return list(ALL_METRICS)
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    names: list[str] = []
    for item in items:
        expanded = GROUPS.get(item, (item,))
        for name in expanded:
            if name not in ALL_METRICS:
                known = ", ".join([*GROUPS, *ALL_METRICS])
                raise ValueError(f"unknown metric {name!r} (known: {known})")
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("no metric selected")
    return names


# --- retrieval -----------------------------------------------------------------------------


def file_name(source: str) -> str:
    return PurePath(source.replace("\\", "/")).name


def context_pages(hit: Hit) -> set[int]:
    pages = set(hit.pages or [])
    if hit.page is not None:
        pages.add(hit.page)
    return pages


def matches_gold(hit: Hit, gold: GoldSource) -> bool:
    """Same file name and, when the gold source names pages (or a law's articles), one of them."""
    if file_name(hit.source) != file_name(gold.source):
        return False
    if gold.sections:
        return article_of(hit.section) in gold.sections
    return not gold.pages or bool(context_pages(hit) & set(gold.pages))


def _relevance(case: TestCase, contexts: list[Hit], k: int | None) -> list[bool]:
    """Per context in the top k: does it match a gold source (file and pages) when the case names them, else
    one of its reference passages (eval/passages.py)?"""
    top = contexts[:k] if k else contexts
    if case.gold_sources:
        return [any(matches_gold(hit, g) for g in case.gold_sources) for hit in top]
    passages = [GoldPassage("", p) for p in case.reference_contexts]
    return [any(chunk_hits_passage(hit.text, g) for g in passages) for hit in top]


def _ranked(case: TestCase, contexts: list[Hit], k: int | None, name: str) -> tuple[float, int | None]:
    """``name`` (``eval.measures``) over the contexts as ranked, and the rank of the first relevant one."""
    relevant = _relevance(case, contexts, k)
    ranking = [str(i) for i in range(len(relevant))]
    value = score_ranking(ranking, [r for r, hit in zip(ranking, relevant, strict=True) if hit], [name])[name]
    return value, next((i for i, hit in enumerate(relevant, start=1) if hit), None)


def hit_at_k(case: TestCase, contexts: list[Hit], k: int) -> Score:
    """Success@k: a context in the top k matches the gold."""
    if not case.answerable or not (case.gold_sources or case.reference_contexts):
        return Score.na("no gold sources or reference passages")
    value, rank = _ranked(case, contexts, k, f"hit@{k}")
    return Score.ok(value, details={"rank": rank, "k": k})


def mrr(case: TestCase, contexts: list[Hit], k: int | None = None) -> Score:
    """RR (RR@k with ``k``): 1 / rank of the first context that matches the gold."""
    if not case.answerable or not (case.gold_sources or case.reference_contexts):
        return Score.na("no gold sources or reference passages")
    value, rank = _ranked(case, contexts, k, f"mrr@{k}" if k else "mrr")
    return Score.ok(value, details={"rank": rank})


# --- answer --------------------------------------------------------------------------------


def citation_validity(case: TestCase, answer: Answer) -> Score:
    """Share of the answer's citations whose quote the source supports (``verified``); an
    answer to an answerable question that was not refused and cites nothing scores 0."""
    if answer.citations:
        verified = sum(1 for c in answer.citations if c.verified)
        total = len(answer.citations)
        return Score.ok(verified / total, details={"verified": verified, "total": total})
    if case.answerable and not answer.refused:
        return Score.ok(0.0, reason="answer cites nothing", details={"verified": 0, "total": 0})
    return Score.na("refused or unanswerable, no citations")


def refusal_accuracy(case: TestCase, answer: Answer) -> Score:
    """1 when an unanswerable question was refused or an answerable one was not."""
    correct = answer.refused != case.answerable
    why = f"{'answerable' if case.answerable else 'unanswerable'}, {'refused' if answer.refused else 'answered'}"
    return Score.ok(1.0 if correct else 0.0, reason=why)


def grounded_answer(case: TestCase, answer: Answer) -> Score:
    """An answerable question answered (not refused) with a verified citation on a gold page."""
    if not case.answerable:
        return Score.na("unanswerable")
    if answer.refused:
        return Score.ok(0.0, reason=f"refused ({answer.refusal_reason})")
    on_gold = [c.n for c in answer.citations if c.verified and (not case.gold_sources or any(
        matches_gold(Hit(doc_id=c.doc_id, source=c.source, title=c.title, page=c.page,
                         pages=[c.page] if c.page else [], section=c.section, text=c.quote, score=0.0), g)
        for g in case.gold_sources))]
    return Score.ok(1.0 if on_gold else 0.0, reason="verified citation on a gold page" if on_gold else
                    "no verified citation on a gold page", details={"citations": on_gold})


def refusal_recall(case: TestCase, answer: Answer) -> Score:
    """Unanswerable questions: 1 when refused (the mean is refusal recall)."""
    if case.answerable:
        return Score.na("answerable")
    return Score.ok(1.0 if answer.refused else 0.0, reason=str(answer.refusal_reason or "answered"))


def refusal_precision(case: TestCase, answer: Answer) -> Score:
    """Refused samples: 1 when the question was indeed unanswerable (the mean is refusal precision)."""
    if not answer.refused:
        return Score.na("answered")
    return Score.ok(0.0 if case.answerable else 1.0, reason=str(answer.refusal_reason))


def false_refusal(case: TestCase, answer: Answer) -> Score:
    """Answerable questions: 1 when refused (the mean is the false-refusal rate)."""
    if not case.answerable:
        return Score.na("unanswerable")
    return Score.ok(1.0 if answer.refused else 0.0, reason=str(answer.refusal_reason or "answered"))


def removed_claims(case: TestCase, answer: Answer) -> Score:
    """How many sentences the verifier removed from the answer, with them (the verifier's decisions)."""
    return Score.ok(float(len(answer.removed_claims)), details={
        "removed": answer.removed_claims,
        "decisions": [{"sentence": s.text, "verified": s.verified, "markers": s.markers} for s in answer.sentences],
    })


def sample_metrics(case: TestCase, answer: Answer, k: int, wanted: Iterable[str]) -> dict[str, Score]:
    scores = {
        "grounded_answer": lambda: grounded_answer(case, answer),
        "refusal_recall": lambda: refusal_recall(case, answer),
        "refusal_precision": lambda: refusal_precision(case, answer),
        "false_refusal": lambda: false_refusal(case, answer),
        "removed_claims": lambda: removed_claims(case, answer),
        "hit_at_k": lambda: hit_at_k(case, answer.contexts, k),
        "mrr": lambda: mrr(case, answer.contexts, k),
        "citation_validity": lambda: citation_validity(case, answer),
        "refusal_accuracy": lambda: refusal_accuracy(case, answer),
    }
    return {name: scores[name]() for name in wanted if name in scores}


# --- aggregation ---------------------------------------------------------------------------


@dataclass
class Aggregate:
    means: dict[str, float | None] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    """Samples whose value entered the mean (or the percentile)."""
    not_applicable: dict[str, int] = field(default_factory=dict)
    failure_reasons: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _reason_key(reason: str | None) -> str:
    return (reason or "unknown").split(":")[0][:80]


def aggregate(records: list[dict], metric_names: Iterable[str]) -> Aggregate:
    """Means over ``ok`` scores only; failures and n/a counted per metric.

    ``records`` are stored sample records: ``{"metrics": {name: Score dict}, "answer":
    {"timings": ...} | None, "error": str | None}``."""
    agg = Aggregate()
    for name in metric_names:
        if name in LATENCY_METRICS:
            kind, _, pct = name.removesuffix("_ms").rpartition("_p")
            key = _TIMING_OF[kind]
            values, failed, na = [], 0, 0
            for rec in records:
                answer = rec.get("answer")
                if answer is None:
                    failed += 1
                    continue
                value = (answer.get("timings") or {}).get(key)
                if value is None:
                    na += 1  # e.g. no first token: refused before the LLM
                else:
                    values.append(float(value))
            agg.means[name] = percentile(values, float(pct))
            agg.counts[name], agg.failures[name], agg.not_applicable[name] = len(values), failed, na
            continue
        values, failed, na, reasons = [], 0, 0, {}
        for rec in records:
            raw = (rec.get("metrics") or {}).get(name)
            if raw is None:
                failed += 1
                reasons["not scored"] = reasons.get("not scored", 0) + 1
                continue
            score = Score.from_dict(raw)
            if score.status == "ok" and score.value is not None and not math.isnan(score.value):
                values.append(score.value)
            elif score.status == "n/a":
                na += 1
            else:
                failed += 1
                key = _reason_key(score.reason)
                reasons[key] = reasons.get(key, 0) + 1
        agg.means[name] = float(np.mean(values)) if values else None
        agg.counts[name], agg.failures[name], agg.not_applicable[name] = len(values), failed, na
        if reasons:
            agg.failure_reasons[name] = reasons
    return agg
