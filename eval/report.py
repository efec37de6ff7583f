"""Reading stored runs: summaries, per-sample rows, comparisons, gates, CSV and HTML.

Plain data in, plain data out: the CLI and the Streamlit page both use these."""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.schema import SearchFilter
from eval.metrics import JUDGE_METRICS, LATENCY_METRICS, Aggregate, Score, aggregate
from eval.run_store import RunRecord, RunStore
from eval.withholding import withhold

CHANGE_EPSILON = 1e-9


def run_aggregate(store: RunStore, run: RunRecord) -> Aggregate:
    """The stored aggregate, or one computed from the samples (a run still in progress)."""
    if run.aggregate and run.status == "finished":
        return Aggregate(**run.aggregate)
    return aggregate(store.samples(run.run_id), run.metrics)


def readable_samples(store: RunStore, run: RunRecord, reader: SearchFilter) -> list[dict]:
    """The run's samples as ``reader`` may see them (see :mod:`eval.withholding`)."""
    run_groups = (run.config.get("requester") or {}).get("groups")
    return [withhold(r, reader, run_groups) for r in store.samples(run.run_id)]


# --- summaries ---------------------------------------------------------------------------------


@dataclass
class RunSummary:
    run_id: str
    created_at: str
    status: str
    samples: int
    total: int
    testset: str
    judge: str | None
    metrics: dict[str, float | None]
    failures: dict[str, int]
    label: str | None = None

    def as_row(self) -> dict:
        row = {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "status": self.status,
            "samples": f"{self.samples}/{self.total}",
            "testset": Path(self.testset).name,
            "judge": self.judge or "",
        }
        row.update({name: _fmt(value, name) for name, value in self.metrics.items()})
        return row


def summarise(store: RunStore, run: RunRecord) -> RunSummary:
    agg = run_aggregate(store, run)
    return RunSummary(
        run_id=run.run_id,
        created_at=run.created_at,
        status=run.status,
        samples=run.done,
        total=run.total,
        testset=run.testset,
        judge=run.judge,
        metrics=agg.means,
        failures=agg.failures,
        label=run.label,
    )


def list_runs(store: RunStore) -> list[RunSummary]:
    return [summarise(store, run) for run in store.list()]


# --- per-sample rows ---------------------------------------------------------------------------


@dataclass
class SampleRow:
    id: str
    question: str
    answerable: bool
    refused: bool | None
    answer: str
    scores: dict[str, float | None]
    statuses: dict[str, str]
    reasons: dict[str, str]
    citations: list[dict]
    contexts: list[dict]
    latency_ms: float | None
    first_token_ms: float | None
    error: str | None
    judge_details: dict[str, object] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    reference_answer: str | None = None

    def as_row(self) -> dict:
        row = {
            "id": self.id,
            "question": self.question,
            "answerable": self.answerable,
            "refused": self.refused,
            "answer": self.answer,
            "citations": f"{sum(1 for c in self.citations if c.get('verified'))}/{len(self.citations)} verified",
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms),
        }
        for name, status in self.statuses.items():
            row[name] = self.scores[name] if status == "ok" else ("FAILED" if status == "failed" else "n/a")
        if self.error:
            row["error"] = self.error
        return row


def sample_rows(records: list[dict], metric_names: list[str] | None = None) -> list[SampleRow]:
    rows = []
    for rec in records:
        case = rec.get("case") or {}
        answer = rec.get("answer") or {}
        timings = answer.get("timings") or {}
        metrics = rec.get("metrics") or {}
        names = metric_names or list(metrics)
        scores, statuses, reasons, details = {}, {}, {}, {}
        for name in names:
            if name in LATENCY_METRICS:
                continue
            raw = metrics.get(name)
            score = Score.from_dict(raw) if raw else Score.failed("not scored")
            scores[name] = score.value if score.status == "ok" else None
            statuses[name] = score.status
            if score.reason:
                reasons[name] = score.reason
            if score.details is not None and name in JUDGE_METRICS:
                details[name] = score.details
        rows.append(
            SampleRow(
                id=rec.get("id", case.get("id", "?")),
                question=case.get("question", ""),
                answerable=case.get("answerable", True),
                refused=answer.get("refused") if answer else None,
                answer=answer.get("answer", "") if answer else "",
                scores=scores,
                statuses=statuses,
                reasons=reasons,
                citations=answer.get("citations", []) if answer else [],
                contexts=[
                    {k: c.get(k) for k in ("source", "page", "pages", "section", "score", "text")}
                    for c in (answer.get("contexts", []) if answer else [])
                ],
                latency_ms=timings.get("total_ms"),
                first_token_ms=timings.get("first_token_ms"),
                error=rec.get("error"),
                judge_details=details,
                tags=case.get("tags", []),
                reference_answer=case.get("reference_answer"),
            )
        )
    return rows


# --- comparison --------------------------------------------------------------------------------


@dataclass
class MetricDelta:
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    failures_a: int
    failures_b: int


@dataclass
class SampleChange:
    id: str
    question: str
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    """b - a for scores; None when one side failed."""
    change: str
    """worse | better | failed | recovered"""


@dataclass
class Comparison:
    a: str
    b: str
    metrics: list[MetricDelta]
    worse: dict[str, list[SampleChange]]
    better: dict[str, list[SampleChange]]
    only_in_a: list[str]
    only_in_b: list[str]

    def metric_rows(self) -> list[dict]:
        return [asdict(m) for m in self.metrics]

    def to_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "metrics": {m.metric: {"a": m.a, "b": m.b, "delta": m.delta, "failures_a": m.failures_a,
                                   "failures_b": m.failures_b} for m in self.metrics},
            "worse": {k: [asdict(c) for c in v] for k, v in self.worse.items()},
            "better": {k: [asdict(c) for c in v] for k, v in self.better.items()},
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
        }


def compare(store: RunStore, run_a: str, run_b: str) -> Comparison:
    """B relative to A: metric deltas, and per question the scores that dropped or rose."""
    a, b = store.get(run_a), store.get(run_b)
    agg_a, agg_b = run_aggregate(store, a), run_aggregate(store, b)
    names = list(a.metrics) + [n for n in b.metrics if n not in a.metrics]
    deltas = []
    for name in names:
        va, vb = agg_a.means.get(name), agg_b.means.get(name)
        deltas.append(MetricDelta(
            name, va, vb, None if va is None or vb is None else vb - va,
            agg_a.failures.get(name, 0), agg_b.failures.get(name, 0),
        ))
    recs_a = {r["id"]: r for r in store.samples(a.run_id)}
    recs_b = {r["id"]: r for r in store.samples(b.run_id)}
    worse: dict[str, list[SampleChange]] = {}
    better: dict[str, list[SampleChange]] = {}
    for sid in [i for i in recs_a if i in recs_b]:
        ra, rb = recs_a[sid], recs_b[sid]
        question = (rb.get("case") or {}).get("question", "")
        for name in names:
            if name in LATENCY_METRICS:
                continue
            sa, sb = (ra.get("metrics") or {}).get(name), (rb.get("metrics") or {}).get(name)
            if not sa or not sb:
                continue
            sa, sb = Score.from_dict(sa), Score.from_dict(sb)
            if sa.status == "ok" and sb.status == "ok":
                d = sb.value - sa.value
                if abs(d) <= CHANGE_EPSILON:
                    continue
                change = SampleChange(sid, question, name, sa.value, sb.value, d, "better" if d > 0 else "worse")
            elif sa.status == "ok" and sb.status == "failed":
                change = SampleChange(sid, question, name, sa.value, None, None, "failed")
            elif sa.status == "failed" and sb.status == "ok":
                change = SampleChange(sid, question, name, None, sb.value, None, "recovered")
            else:
                continue
            target = better if change.change in ("better", "recovered") else worse
            target.setdefault(name, []).append(change)
    for bucket in (worse, better):
        for name in bucket:
            # biggest changes first; a score that failed (or recovered) after them
            bucket[name].sort(key=lambda c: (c.delta is None, -abs(c.delta or 0.0)))
    return Comparison(
        a.run_id, b.run_id, deltas, worse, better,
        only_in_a=[i for i in recs_a if i not in recs_b], only_in_b=[i for i in recs_b if i not in recs_a],
    )


# --- gate ----------------------------------------------------------------------------------------


@dataclass
class GateCheck:
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    note: str = ""


def parse_thresholds(items: list[str] | None, flag: str) -> list[tuple[str, float]]:
    out = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{flag} expects NAME=VALUE, got {item!r}")
        try:
            out.append((name.strip(), float(value)))
        except ValueError:
            raise ValueError(f"{flag} {item!r}: {value!r} is not a number") from None
    return out


def gate(store: RunStore, run_id: str, minimums: list[tuple[str, float]], maximums: list[tuple[str, float]]):
    """Check a run's means against thresholds; ``NAME_failures`` names a failure count."""
    run = store.get(run_id)
    agg = run_aggregate(store, run)
    values: dict[str, float | None] = dict(agg.means)
    values.update({f"{n}_failures": float(c) for n, c in agg.failures.items()})
    checks = []
    for op, items in ((">=", minimums), ("<=", maximums)):
        for name, threshold in items:
            if name not in values:
                checks.append(GateCheck(name, op, threshold, None, False, "not measured in this run"))
                continue
            value = values[name]
            if value is None:
                checks.append(GateCheck(name, op, threshold, None, False, "no valid value (all failed or n/a)"))
                continue
            passed = value >= threshold if op == ">=" else value <= threshold
            checks.append(GateCheck(name, op, threshold, value, passed))
    if run.status != "finished":
        checks.append(GateCheck("run", "==", 1.0, None, False, f"run is {run.status} ({run.done}/{run.total})"))
    return run, checks


# --- formatting ----------------------------------------------------------------------------------


def _fmt(value, name: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if name.endswith("_ms"):
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def text_table(rows: list[dict]) -> str:
    if not rows:
        return "(nothing)"
    headers = list(rows[0])
    for row in rows[1:]:
        headers += [h for h in row if h not in headers]
    cells = [[str(row.get(h, "")) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def metric_table(agg: Aggregate) -> list[dict]:
    return [
        {
            "metric": name,
            "mean": _fmt(value, name),
            "n": agg.counts.get(name, 0),
            "failed": agg.failures.get(name, 0),
            "n/a": agg.not_applicable.get(name, 0),
        }
        for name, value in agg.means.items()
    ]


def comparison_text(cmp: Comparison, top: int = 10) -> str:
    rows = [
        {
            "metric": m.metric,
            "A": _fmt(m.a, m.metric),
            "B": _fmt(m.b, m.metric),
            "delta": "—" if m.delta is None else (f"{m.delta:+.0f}" if m.metric.endswith("_ms") else f"{m.delta:+.3f}"),
            "failed A/B": f"{m.failures_a}/{m.failures_b}",
        }
        for m in cmp.metrics
    ]
    out = [f"A = {cmp.a}   B = {cmp.b}", text_table(rows)]
    for title, bucket in (("worse in B", cmp.worse), ("better in B", cmp.better)):
        for name, changes in bucket.items():
            out.append(f"\n{title} — {name} ({len(changes)}):")
            for c in changes[:top]:
                size = f"{c.delta:+.3f}" if c.delta is not None else c.change
                out.append(f"  {c.id}  {_fmt(c.a)} -> {_fmt(c.b)}  ({size})  {c.question[:60]}")
    if cmp.only_in_a or cmp.only_in_b:
        out.append(f"\nonly in A: {', '.join(cmp.only_in_a) or '-'}; only in B: {', '.join(cmp.only_in_b) or '-'}")
    return "\n".join(out)


# --- export -------------------------------------------------------------------------------------


def export_csv(store: RunStore, run_id: str, path: Path, reader: SearchFilter) -> int:
    run = store.get(run_id)
    rows = sample_rows(readable_samples(store, run, reader), run.metrics)
    names = [n for n in run.metrics if n not in LATENCY_METRICS]
    headers = ["id", "question", "answerable", "refused", "answer", "citations", "verified_citations",
               "latency_ms", "first_token_ms", "error", *names, *[f"{n}_status" for n in names],
               *[f"{n}_reason" for n in names]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: Excel opens Japanese correctly
        writer = csv.DictWriter(fh, fieldnames=headers)
        writer.writeheader()
        for r in rows:
            writer.writerow({
                "id": r.id, "question": r.question, "answerable": r.answerable, "refused": r.refused,
                "answer": r.answer, "citations": len(r.citations),
                "verified_citations": sum(1 for c in r.citations if c.get("verified")),
                "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 1),
                "first_token_ms": None if r.first_token_ms is None else round(r.first_token_ms, 1),
                "error": r.error or "",
                **{n: "" if r.scores.get(n) is None else round(r.scores[n], 4) for n in names},
                **{f"{n}_status": r.statuses.get(n, "") for n in names},
                **{f"{n}_reason": r.reasons.get(n, "") for n in names},
            })
    return len(rows)


_CSS = """
body{font-family:-apple-system,"Segoe UI","Hiragino Sans","Noto Sans JP",Meiryo,sans-serif;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.failed{background:#fde2e1}td.na{color:#888}td.low{background:#fff4d6}
.answer{max-width:520px;white-space:pre-wrap}.muted{color:#777}.warn{color:#a15c00}
pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto;max-height:480px}
details{margin:2px 0}
"""


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _page(page) -> str:
    return f" p.{_esc(page)}" if page is not None else ""


REPORT_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Evaluation {run}", "heading": "Evaluation run {run}",
        "line": "{status} · {done}/{total} samples · test set {testset} · created {created} · judge {judge}",
        "none": "none", "dev_judge": "The dev judge (0.5B) only checks the plumbing: its scores are not meaningful.",
        "summary": "Summary", "metric": "metric", "mean": "mean", "n": "n", "failed": "failed", "na": "n/a",
        "why": "failure reasons", "questions": "Questions", "id": "id", "question": "question", "answer": "answer",
        "refused": "refused", "citations": "citations", "latency": "latency ms", "unsupported": "not supported",
        "answerable": "answerable", "unanswerable": "unanswerable", "verdicts": "Judge verdicts",
        "config": "Configuration", "True": "yes", "False": "no", "None": "-",
    },
    "ja": {
        "title": "評価 {run}", "heading": "評価の実行 {run}",
        "line": "{status} ・ {done}/{total} 問 ・ テストセット {testset} ・ 作成 {created} ・ 評価モデル {judge}",
        "none": "なし", "dev_judge": "開発用の評価モデル（0.5B）は動作確認用です。スコアは品質の指標になりません。",
        "summary": "概要", "metric": "指標", "mean": "平均", "n": "件数", "failed": "失敗", "na": "対象外",
        "why": "失敗の理由", "questions": "質問ごとの結果", "id": "ID", "question": "質問", "answer": "回答",
        "refused": "回答を控えた", "citations": "出典", "latency": "所要ミリ秒", "unsupported": "資料で確認できず",
        "answerable": "回答可能", "unanswerable": "回答不能", "verdicts": "評価モデルの判定",
        "config": "設定", "True": "はい", "False": "いいえ", "None": "-",
    },
}
"""The report's own words in each interface language (the data, such as questions and reasons, as stored)."""


def export_html(store: RunStore, run_id: str, path: Path, reader: SearchFilter, lang: str = "en",
                reason_words: Callable[[str], str] = str) -> int:
    """A self-contained report: inline CSS, no scripts, no external assets; its headings in ``lang``, each stored
    score reason shown as ``reason_words`` says it (the interface passes its translation)."""
    w = REPORT_TEXT.get(lang, REPORT_TEXT["en"])
    run = store.get(run_id)
    agg = run_aggregate(store, run)
    records = readable_samples(store, run, reader)
    rows = sample_rows(records, run.metrics)
    names = [n for n in run.metrics if n not in LATENCY_METRICS]
    judge = run.config.get("judge") or {}
    parts = [
        f"<!DOCTYPE html><html lang='{_esc(lang)}'><head><meta charset='utf-8'>",
        f"<title>{_esc(w['title'].format(run=run.run_id))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(w['heading'].format(run=run.run_id))}</h1>",
        "<p>" + _esc(w["line"].format(status=run.status, done=run.done, total=run.total, testset=run.testset,
                                      created=run.created_at, judge=run.judge or w["none"])) + "</p>",
    ]
    if judge and not judge.get("meaningful", True):
        parts.append(f"<p class='warn'>{_esc(w['dev_judge'])}</p>")
    parts.append(f"<h2>{_esc(w['summary'])}</h2><table><tr>"
                 + "".join(f"<th>{_esc(w[k])}</th>" for k in ("metric", "mean", "n", "failed", "na", "why"))
                 + "</tr>")
    for name, value in agg.means.items():
        reasons = agg.failure_reasons.get(name, {})
        why = "; ".join(f"{reason_words(k)} ×{v}" for k, v in reasons.items())
        parts.append(
            f"<tr><td>{_esc(name)}</td><td class='num'>{_esc(_fmt(value, name))}</td>"
            f"<td class='num'>{agg.counts.get(name, 0)}</td>"
            f"<td class='num{' failed' if agg.failures.get(name) else ''}'>{agg.failures.get(name, 0)}</td>"
            f"<td class='num'>{agg.not_applicable.get(name, 0)}</td><td>{_esc(why)}</td></tr>"
        )
    parts.append("</table>")
    parts.append(f"<h2>{_esc(w['questions'])}</h2><table><tr>"
                 + "".join(f"<th>{_esc(w[k])}</th>" for k in ("id", "question", "answer", "refused", "citations",
                                                              "latency"))
                 + "".join(f"<th>{_esc(n)}</th>" for n in names) + "</tr>")
    for r in rows:
        cites = "<br>".join(
            f"[{c.get('n')}] {_esc(c.get('source'))}{_page(c.get('page'))} "
            f"{'✓' if c.get('verified') else '✗ ' + _esc(w['unsupported'])}" for c in r.citations
        )
        cells = []
        for n in names:
            status = r.statuses.get(n)
            reason = reason_words(r.reasons.get(n, ""))
            if status == "ok":
                value = r.scores[n]
                klass = "num low" if value is not None and value < 0.5 else "num"
                cells.append(f"<td class='{klass}' title='{_esc(reason)}'>{value:.3f}</td>")
            elif status == "failed":
                cells.append(f"<td class='failed' title='{_esc(reason)}'>{_esc(w['failed'])}<br><span class='muted'>"
                             f"{_esc(reason[:80])}</span></td>")
            else:
                cells.append(f"<td class='na' title='{_esc(reason)}'>{_esc(w['na'])}</td>")
        error = f"<br><span class='warn'>{_esc(r.error)}</span>" if r.error else ""
        parts.append(
            f"<tr><td>{_esc(r.id)}</td><td>{_esc(r.question)}<br><span class='muted'>"
            f"{_esc(w['answerable' if r.answerable else 'unanswerable'])}</span></td>"
            f"<td class='answer'>{_esc(r.answer)}{error}</td><td>{_esc(w[str(r.refused)])}</td><td>{cites}</td>"
            f"<td class='num'>{_esc(_fmt(r.latency_ms, 'x_ms'))}</td>{''.join(cells)}</tr>"
        )
    parts.append("</table>")
    details = [(r.id, r.judge_details) for r in rows if r.judge_details]
    if details:
        parts.append(f"<h2>{_esc(w['verdicts'])}</h2>")
        for sid, det in details:
            body = json.dumps(det, ensure_ascii=False, indent=1)
            parts.append(f"<details><summary>{_esc(sid)}</summary><pre>{_esc(body)}</pre></details>")
    parts.append(f"<h2>{_esc(w['config'])}</h2>")
    parts.append(f"<pre>{_esc(json.dumps(run.config, ensure_ascii=False, indent=2))}</pre>")
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return len(rows)
