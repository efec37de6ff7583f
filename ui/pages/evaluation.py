"""Evaluation page (compliance): run a test set in the background, watch progress, read the
charts, drill into a question, compare two runs, download the report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from auth.roles import Permission
from core.errors import CQAError
from core.schema import SearchFilter
from eval.drafts import draft_questions
from eval.jobs import TESTSET_SUFFIXES
from eval.judge_presets import JUDGE_PRESETS, is_meaningful
from eval.metrics import ALL_METRICS
from ui.auth_gate import guard
from ui.clock import local_time, site_zone, wall_clock
from ui.errors import error_text, guarded, show_error
from ui.i18n import code_label, reason_text, t
from ui.markup import as_text
from ui.state import container, eval_jobs, lang, requester
from ui.uploader import file_uploader

user = guard(Permission.EVALUATE)
L = lang()
services = container()
jobs = eval_jobs()
reader = requester().search_filter()  # what the signed-in user may read of stored runs' contexts
st.title(t("evaluation", L))



def dev_judge_warning(judge: str | None) -> None:
    """The dev judge only exercises the plumbing: say so wherever it is chosen or its scores are shown."""
    try:
        meaningful = not judge or is_meaningful(judge)
    except ValueError:  # a preset name this build does not know: nothing to say about it
        meaningful = True
    if not meaningful:
        st.warning(t("eval_dev_judge", L, judge=judge))


def stage_label(stage: str | None) -> str:
    return code_label("eval_stage", stage, L) if stage else ""


def label(prefix: str, code: str) -> str:
    return code_label(prefix, code, L)


# a run comparison's columns (eval.report.MetricDelta, SampleChange), each with a key eval_compare_col_<name>
COMPARE_COLUMNS = ("metric", "a", "b", "delta", "failures_a", "failures_b", "id", "question", "change")


runs = jobs.list_runs()
with st.expander(t("eval_new_run", L), expanded=not runs):
    uploaded = file_uploader(t("eval_upload_testset", L), L, type=[s.lstrip(".") for s in TESTSET_SUFFIXES])
    if uploaded is not None and st.session_state.get("eval_saved_upload") != uploaded.file_id:  # once per upload
        try:
            jobs.save_testset(uploaded.name, uploaded.getvalue())
            st.session_state.eval_saved_upload = uploaded.file_id
        except CQAError as exc:
            show_error(exc)
    choice = st.selectbox(t("eval_testset", L), jobs.testsets(), format_func=lambda p: Path(p).name)
    metrics = st.multiselect(t("eval_metrics", L), list(ALL_METRICS), default=list(ALL_METRICS))
    c1, c2 = st.columns(2)
    judge = c1.selectbox(t("eval_judge", L), list(JUDGE_PRESETS))
    limit = c2.number_input(t("eval_limit", L), min_value=0, value=0, help="0 = ∞")
    dev_judge_warning(judge)
    if st.button(t("eval_start", L), type="primary", disabled=jobs.active_job() is not None or not metrics):
        try:
            jobs.start(choice, metrics=metrics, judge=judge, limit=int(limit) or None, actor=user.name,
                       user=user.name)  # answered as the signed-in user: their access groups
        except CQAError as exc:
            show_error(exc)
        else:
            st.rerun()  # show the new run's progress and list it

with st.expander(t("eval_drafts", L)):
    c1, c2 = st.columns([1, 3])
    n_drafts = c1.number_input(t("eval_draft_count", L), min_value=1, max_value=50, value=3)
    if c2.button(t("eval_draft_generate", L)):
        bar = st.progress(0.0)
        skipped: list[str] = []
        st.session_state.eval_drafts = draft_questions(
            services, reader, n=int(n_drafts), skipped=skipped,
            progress=lambda i, n: bar.progress(i / n, text=f"{i}/{n}"),
        )
        for reason in skipped:
            st.warning(reason)
    drafts = st.session_state.get("eval_drafts") or []
    if drafts:
        table = pd.DataFrame(
            [{"keep": True, "question": d.question, "reference_answer": d.reference_answer,
              "source": d.gold_sources[0].source, "pages": ", ".join(map(str, d.gold_sources[0].pages))}
             for d in drafts]
        )
        edited = st.data_editor(
            table, hide_index=True, width="stretch", disabled=["source", "pages"], key="draft_editor",
            column_config={"keep": st.column_config.CheckboxColumn(t("eval_draft_keep", L)),
                           **{name: st.column_config.Column(t(f"eval_draft_col_{name}", L))
                              for name in ("question", "reference_answer", "source", "pages")}},
        )
        target = st.text_input(t("eval_draft_target", L), value="reviewed.jsonl")
        if st.button(t("eval_draft_save", L), type="primary"):
            kept = [
                d.model_copy(update={"question": row.question, "reference_answer": row.reference_answer})
                for d, row in zip(drafts, edited.itertuples(), strict=True)
                if row.keep
            ]
            try:
                path, total = jobs.save_reviewed(kept, target, actor=user.name)
            except CQAError as exc:
                show_error(exc)
            else:
                st.session_state.eval_drafts = []
                st.success(t("eval_draft_saved", L, n=len(kept), name=path.name, total=total))


# Polls every 2 s only while a run is going (an idle page does not rerun); the page reruns when a run starts
# and when the watched run ends, which sets the polling again.
@st.fragment(run_every=2 if jobs.active_job() is not None else None)
@guarded("evaluation progress")
def progress_panel() -> None:
    active = jobs.active_job()
    if active is None:
        recent = jobs.jobs()
        if recent and recent[-1].status == "failed":
            failed = recent[-1]
            why = error_text(failed.failure, L) if failed.failure is not None else (
                (failed.error or "").strip().splitlines() or [""])[-1]  # the last line, not the traceback
            st.error(t("eval_failed_run", L, error=why))
        elif st.session_state.pop("eval_watching", False):  # the run we watched ended: show it in full
            st.rerun()
        return
    st.session_state.eval_watching = True
    if active.status == "queued":
        st.info(t("eval_queued", L))
    else:
        label = t("eval_status", L, done=active.done, total=active.total,
                  stage=f"{active.current_id or ''} {stage_label(active.stage)}")
        if active.seconds_left is not None:
            label += f" ・ {t('eval_time_left', L, minutes=max(1, round(active.seconds_left / 60)))}"
        st.progress(active.fraction, text=label)
    if st.button(t("eval_stop", L), key=f"stop-{active.job_id}", icon=":material/stop_circle:"):
        jobs.stop(active.job_id)
        st.toast(t("eval_stop_requested", L))


progress_panel()

if not runs:
    st.info(t("eval_no_runs", L))
    st.stop()

history = pd.DataFrame([{"run": r.run_id, **r.metrics} for r in runs])
history.insert(1, "created", wall_clock(r.created_at for r in runs))  # the site's time zone, not UTC
long = history.melt(id_vars=["run", "created"], var_name="metric", value_name="score").dropna()
scores = long[~long.metric.str.endswith("_ms")]
if not scores.empty:
    st.altair_chart(
        alt.Chart(scores).mark_line(point=True).encode(
            x=alt.X("created:T", title=f"{t('eval_col_created', L)} ({site_zone().key})"),
            y=alt.Y("score:Q", scale=alt.Scale(domain=[0, 1]), title=t("eval_col_score", L)),
            color=alt.Color("metric:N", title=t("eval_col_metric", L)),
            tooltip=[alt.Tooltip("run:N", title=t("eval_run", L)),
                     alt.Tooltip("metric:N", title=t("eval_col_metric", L)),
                     alt.Tooltip("score:Q", title=t("eval_col_score", L)),
                     alt.Tooltip("created:T", title=t("eval_col_created", L), format="%Y-%m-%d %H:%M")],
        ),
        width="stretch",
    )

run_ids = [r.run_id for r in runs]
run_id = st.selectbox(t("eval_run", L), run_ids, index=len(run_ids) - 1,
                      format_func=lambda r: f"{r} ({local_time(next(x.created_at for x in runs if x.run_id == r))})")
shown = next(r for r in runs if r.run_id == run_id)
dev_judge_warning(shown.judge)
metrics = pd.DataFrame(jobs.metric_rows(run_id))
METRIC_COLUMNS = {"metric": "eval_col_metric", "mean": "eval_col_mean", "n": "eval_col_n", "failed": "eval_col_failed",
                  "n/a": "eval_col_na"}
if not metrics.empty:
    st.table(metrics.rename(columns={k: t(v, L) for k, v in METRIC_COLUMNS.items()}))
bars = metrics[~metrics["metric"].str.endswith("_ms")].dropna(subset=["mean"]) if not metrics.empty else metrics
if not bars.empty:
    st.altair_chart(
        alt.Chart(bars).mark_bar().encode(
            x=alt.X("mean:Q", scale=alt.Scale(domain=[0, 1]), title=t("eval_col_mean", L)),
            y=alt.Y("metric:N", title=t("eval_col_metric", L)),
        ),
        width="stretch",
    )

samples = jobs.samples(run_id, reader)
st.subheader(t("eval_questions", L))


def score_text(sample, name: str) -> str:
    status = sample.statuses.get(name)
    if status == "ok" and sample.scores.get(name) is not None:
        return f"{sample.scores[name]:.2f}"
    return t("eval_score_failed", L) if status == "failed" else t("eval_score_na", L)


def failing_metrics(samples) -> None:
    """Each metric that failed on some questions, with why (the judge's own words, counted)."""
    for name in sorted({n for s in samples for n, status in s.statuses.items() if status == "failed"}):
        reasons = Counter(reason_text(s.reasons.get(name), L)[:80] for s in samples if s.statuses.get(name) == "failed")
        n = sum(reasons.values())
        st.error(t("eval_metric_failing", L, metric=name, n=n,
                   reasons="; ".join(f"{why} ×{k}" for why, k in reasons.most_common(3))))


if not samples:  # a run that has just started: no question finished yet
    st.info(t("eval_no_samples", L))
else:
    failing_metrics(samples)
    names = [n for n in samples[0].statuses if n in ALL_METRICS]
    table = pd.DataFrame([
        {t("eval_col_id", L): s.id, t("eval_col_question", L): s.question,
         t("eval_col_refused", L): t("yes" if s.refused else "no", L),
         t("eval_col_citations", L): f"{sum(1 for c in s.citations if c.get('verified'))}/{len(s.citations)}",
         t("eval_col_seconds", L): None if s.latency_ms is None else round(s.latency_ms / 1000, 1),
         **{n: score_text(s, n) for n in names}}
        for s in samples
    ])
    st.dataframe(table, hide_index=True, width="stretch")
    by_id = {s.id: s for s in samples}
    sample = by_id.get(st.selectbox(t("eval_details", L), list(by_id))) or samples[0]
    with st.container(border=True):
        st.markdown(f"**{as_text(sample.question)}**")
        st.markdown(as_text(sample.answer) or "—")
        st.table(pd.DataFrame([
            {t("eval_col_metric", L): n, t("eval_col_score", L): score_text(sample, n),
             t("eval_col_reason", L): reason_text(sample.reasons.get(n), L)}
            for n in sample.statuses if n in ALL_METRICS
        ]))
        if sample.judge_details:
            with st.expander(t("eval_judge_verdicts", L)):
                st.json(sample.judge_details, expanded=False)
        st.markdown(f"**{t('eval_context', L)}**")
        for ctx in sample.contexts[:5]:
            page = f" p.{ctx['page']}" if ctx.get("page") else ""
            st.caption(f"{ctx.get('source')}{page} · {ctx.get('section', '')}")
            st.text(str(ctx.get("text", ""))[:400])

if len(run_ids) > 1:
    st.subheader(t("eval_compare", L))
    other = st.selectbox(t("eval_compare_with", L), [r for r in run_ids if r != run_id])
    comparison = jobs.compare(other, run_id)
    columns = {name: t(f"eval_compare_col_{name}", L) for name in COMPARE_COLUMNS}
    st.table(pd.DataFrame(comparison.metric_rows()).rename(columns=columns))
    worse = [{**vars(c), "metric": m, "change": label("eval_change", c.change)}
             for m, changes in comparison.worse.items() for c in changes]
    if worse:
        st.markdown(t("eval_worse", L))
        st.table(pd.DataFrame(worse).rename(columns=columns))


@st.cache_data(max_entries=8, show_spinner=False)
def report_bytes(run_id: str, kind: str, status: str, samples: int, groups: tuple[str, ...], lang: str) -> bytes:
    """A run's report as a reader with ``groups`` may see it, built once: status and sample count key it (a
    finished run never changes). Not a deferred (callable) download: the progress fragment's reruns drop
    deferred files."""
    return jobs.report(run_id, kind, SearchFilter(access_groups=groups), lang,
                       reason_words=lambda reason: reason_text(reason, lang))


groups = reader.access_groups
c1, c2 = st.columns(2)
c1.download_button(t("eval_download_html", L), report_bytes(run_id, "html", shown.status, shown.samples, groups, L),
                   file_name=f"{run_id}.html", mime="text/html")
c2.download_button(t("eval_download_csv", L), report_bytes(run_id, "csv", shown.status, shown.samples, groups, L),
                   file_name=f"{run_id}.csv", mime="text/csv")
