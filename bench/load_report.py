"""The load test's figures: one row per number of staff (percentiles over the questions asked in that level),
as a Markdown table and a plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Outcome:
    """One question as the simulated staff member saw it (times from sending it, in ms)."""

    staff: int
    first_word_ms: float | None
    total_ms: float | None
    queue_ms: float | None
    refused: bool
    error: str | None


@dataclass(frozen=True)
class LevelSummary:
    staff: int
    seconds: float
    asked: int
    answered: int
    refused: int
    errors: int
    answers_per_min: float
    first_word_p50_s: float | None
    first_word_p95_s: float | None
    total_p50_s: float | None
    total_p95_s: float | None
    queue_p50_s: float | None
    queue_p95_s: float | None
    peak_rss_mib: dict[str, float]
    killed: str | None
    retried: int = 0
    """Requests the app sent once more because they failed before their first word (llm/http_chat.py)."""
    evaluation: str | None = None
    """The evaluation the worker ran meanwhile (``shared``: through the staff's balancer; ``own``: its own
    niced server, ``evaluation.llm_base_url``), or None for staff alone."""
    evaluated: int = 0
    """Questions the evaluation answered and stored during the level."""

    @property
    def error_rate(self) -> float:
        return self.errors / self.asked if self.asked else 0.0

    def to_json(self) -> dict:
        return asdict(self) | {"error_rate": round(self.error_rate, 3)}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (a value that occurred), in seconds, of ms values; None without values."""
    if not values:
        return None
    import numpy

    return round(float(numpy.percentile(values, q, method="inverted_cdf")) / 1000, 1)


def summarise(staff: int, seconds: float, outcomes: list[Outcome], peak_rss_mib: dict[str, float],
              killed: str | None, retried: int = 0, evaluation: str | None = None, evaluated: int = 0) -> LevelSummary:
    done = [o for o in outcomes if o.error is None]
    asked_model = [o for o in done if o.first_word_ms is not None]  # not refused before the model was asked
    spoken = [o.first_word_ms for o in asked_model]
    totals = [o.total_ms for o in asked_model if o.total_ms is not None]
    waits = [o.queue_ms for o in done if o.queue_ms is not None]
    return LevelSummary(
        staff=staff, seconds=round(seconds, 1), asked=len(outcomes), answered=len(done),
        refused=sum(o.refused for o in done), errors=len(outcomes) - len(done),
        answers_per_min=round(len(done) / seconds * 60, 2) if seconds else 0.0,
        first_word_p50_s=percentile(spoken, 50), first_word_p95_s=percentile(spoken, 95),
        total_p50_s=percentile(totals, 50), total_p95_s=percentile(totals, 95),
        queue_p50_s=percentile(waits, 50), queue_p95_s=percentile(waits, 95),
        peak_rss_mib={k: round(v) for k, v in peak_rss_mib.items()}, killed=killed, retried=retried,
        evaluation=evaluation, evaluated=evaluated,
    )


def level_key(staff: int, evaluation: str | None) -> str:
    """A level's key in ``load.json``'s questions: the number of staff, with the evaluation mode if any."""
    return f"{staff}+{evaluation}" if evaluation else str(staff)


def from_json(saved: dict) -> list[LevelSummary]:
    """The rows again from a run's JSON (``load.json``): summed up anew from each question's outcome."""
    rows = []
    for level in saved["levels"]:
        evaluation = level.get("evaluation")
        outcomes = [Outcome(**o) for o in saved["questions"][level_key(level["staff"], evaluation)]]
        rows.append(summarise(level["staff"], level["seconds"], outcomes, level["peak_rss_mib"], level["killed"],
                              level.get("retried", 0), evaluation, level.get("evaluated", 0)))
    return rows


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown_table(rows: list[LevelSummary]) -> str:
    head = ("| staff | asked | answered (refused) | errors (rate; retried) | answers/min | first word p50 / p95 "
            "| full answer p50 / p95 | queue wait p50 / p95 | peak RSS MiB: app / each LLM server / haproxy |")
    lines = [head, "|" + " --- |" * 9]
    for r in rows:
        servers = [v for k, v in r.peak_rss_mib.items() if k.startswith("llm")]
        rss = (f"{r.peak_rss_mib.get('app', 0):.0f} / {max(servers, default=0):.0f} / "
               f"{r.peak_rss_mib.get('haproxy', 0):.0f}")
        killed = f" (one LLM server killed: {r.killed})" if r.killed else ""
        if r.evaluation:
            where = "its own niced LLM server" if r.evaluation == "own" else "the staff's LLM servers"
            killed += f", evaluation running on {where} ({r.evaluated} questions evaluated)"
        lines.append(
            f"| {r.staff}{killed} | {r.asked} | {r.answered} ({r.refused}) "
            f"| {r.errors} ({r.error_rate:.0%}; {r.retried}) "
            f"| {r.answers_per_min:.2f} | {_s(r.first_word_p50_s)} s / {_s(r.first_word_p95_s)} s "
            f"| {_s(r.total_p50_s)} s / {_s(r.total_p95_s)} s | {_s(r.queue_p50_s)} s / {_s(r.queue_p95_s)} s "
            f"| {rss} |"
        )
    return "\n".join(lines)


def plot(rows: list[LevelSummary], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if any(r.evaluation for r in rows):
        rows = [r for r in rows if not r.evaluation]  # the evaluation comparison is the table's; the plot is by staff
    if not rows:
        return
    staff = [r.staff for r in rows]
    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 4))
    for label, values, style in (
        ("first word p50", [r.first_word_p50_s for r in rows], "o-"),
        ("first word p95", [r.first_word_p95_s for r in rows], "o--"),
        ("full answer p50", [r.total_p50_s for r in rows], "s-"),
        ("full answer p95", [r.total_p95_s for r in rows], "s--"),
        ("queue wait p95", [r.queue_p95_s for r in rows], "^:"),
    ):
        latency.plot(staff, [v if v is not None else float("nan") for v in values], style, label=label)
    latency.set_xlabel("staff asking")
    latency.set_ylabel("seconds")
    latency.set_xticks(staff)
    latency.legend(fontsize=8)
    throughput.bar([str(s) for s in staff], [r.answers_per_min for r in rows])
    throughput.set_xlabel("staff asking")
    throughput.set_ylabel("answers per minute")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
