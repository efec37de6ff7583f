"""Evaluation page (compliance): run a test set in the background, watch progress, read the
charts, drill into a question, compare two runs, download the report."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from auth.roles import Permission
from core.errors import CQAError
from core.schema import SearchFilter
from eval.drafts import draft_questions
from eval.jobs import TESTSET_SUFFIXES
from eval.judge_presets import JUDGE_PRESETS
from eval.metrics import ALL_METRICS
from ui.auth_gate import guard
from ui.i18n import t
from ui.markup import as_text
from ui.state import container, eval_jobs, lang, requester

user = guard(Permission.EVALUATE)
L = lang()
services = container()
jobs = eval_jobs()
reader = requester().search_filter()  # what the signed-in user may read of stored runs' contexts
st.title(t("evaluation", L))

runs = jobs.list_runs()
with st.expander(t("eval_new_run", L), expanded=not runs):
    uploaded = st.file_uploader(t("eval_upload_testset", L), type=[s.lstrip(".") for s in TESTSET_SUFFIXES])
    if uploaded is not None and st.session_state.get("eval_saved_upload") != uploaded.file_id:  # once per upload
        try:
            jobs.save_testset(uploaded.name, uploaded.getvalue())
            st.session_state.eval_saved_upload = uploaded.file_id
        except CQAError as exc:
            st.error(str(exc))
    choice = st.selectbox(t("eval_testset", L), jobs.testsets(), format_func=lambda p: Path(p).name)
    metrics = st.multiselect(t("eval_metrics", L), list(ALL_METRICS), default=list(ALL_METRICS))
    c1, c2 = st.columns(2)
    judge = c1.selectbox(t("eval_judge", L), list(JUDGE_PRESETS))
    limit = c2.number_input(t("eval_limit", L), min_value=0, value=0, help="0 = all")
    if st.button(t("eval_start", L), type="primary", disabled=jobs.active_job() is not None or not metrics):
        try:
            jobs.start(choice, metrics=metrics, judge=judge, limit=int(limit) or None, actor=user.name,
                       user=user.name)  # answered as the signed-in user: their access groups
        except CQAError as exc:
            st.error(str(exc))
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
            column_config={"keep": st.column_config.CheckboxColumn(t("eval_draft_keep", L))},
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
                st.error(str(exc))
            else:
                st.session_state.eval_drafts = []
                st.success(t("eval_draft_saved", L, n=len(kept), name=path.name, total=total))


@st.fragment(run_every=2)
def progress_panel() -> None:
    active = jobs.active_job()
    if active is None:
        recent = jobs.jobs()
        if recent and recent[-1].status == "failed":
            st.error(recent[-1].error)
        elif st.session_state.pop("eval_watching", False):  # the run we watched ended: show it in full
            st.rerun()
        return
    st.session_state.eval_watching = True
    label = f"{active.done}/{active.total} · {active.current_id or ''} {active.stage or ''}"
    st.progress(active.fraction, text=label)


progress_panel()

if not runs:
    st.info(t("eval_no_runs", L))
    st.stop()

history = pd.DataFrame([{"run": r.run_id, "created": r.created_at, **r.metrics} for r in runs])
long = history.melt(id_vars=["run", "created"], var_name="metric", value_name="score").dropna()
scores = long[~long.metric.str.endswith("_ms")]
if not scores.empty:
    st.altair_chart(
        alt.Chart(scores).mark_line(point=True).encode(
            x="created:T", y=alt.Y("score:Q", scale=alt.Scale(domain=[0, 1])), color="metric:N",
            tooltip=["run", "metric", "score"],
        ),
        width="stretch",
    )

run_ids = [r.run_id for r in runs]
run_id = st.selectbox(t("eval_run", L), run_ids, index=len(run_ids) - 1)
metrics = pd.DataFrame(jobs.metric_rows(run_id))
st.table(metrics)
bars = metrics[~metrics["metric"].str.endswith("_ms")].dropna(subset=["mean"])
if not bars.empty:
    st.altair_chart(
        alt.Chart(bars).mark_bar().encode(x=alt.X("mean:Q", scale=alt.Scale(domain=[0, 1])), y="metric:N"),
        width="stretch",
    )

samples = jobs.samples(run_id, reader)
st.subheader(t("eval_questions", L))
table = pd.DataFrame([s.as_row() for s in samples])
scored = [c for c in table.columns if c in ALL_METRICS]  # scores with FAILED / n/a: one text type per column
table[scored] = table[scored].map(lambda v: "" if pd.isna(v) else f"{v:.2f}" if isinstance(v, int | float) else v)
st.dataframe(table, hide_index=True, width="stretch")
picked = st.selectbox(t("eval_details", L), [s.id for s in samples])
sample = next(s for s in samples if s.id == picked)
with st.container(border=True):
    st.markdown(f"**{as_text(sample.question)}**")
    st.markdown(as_text(sample.answer) or "—")
    st.json({"scores": sample.scores, "statuses": sample.statuses, "reasons": sample.reasons,
             "citations": sample.citations, "judge": sample.judge_details}, expanded=False)
    for ctx in sample.contexts[:5]:
        page = f" p.{ctx['page']}" if ctx.get("page") else ""
        st.caption(f"{ctx.get('source')}{page} · {ctx.get('section', '')}")
        st.text(str(ctx.get("text", ""))[:400])

if len(run_ids) > 1:
    st.subheader(t("eval_compare", L))
    other = st.selectbox(t("eval_compare_with", L), [r for r in run_ids if r != run_id])
    comparison = jobs.compare(other, run_id)
    st.table(pd.DataFrame(comparison.metric_rows()))
    worse = [{"metric": m, **vars(c)} for m, changes in comparison.worse.items() for c in changes]
    if worse:
        st.markdown(t("eval_worse", L))
        st.table(pd.DataFrame(worse))


@st.cache_data(max_entries=8, show_spinner=False)
def report_bytes(run_id: str, kind: str, status: str, samples: int, groups: tuple[str, ...]) -> bytes:
    """A run's report as a reader with ``groups`` may see it, built once: status and sample count key it (a
    finished run never changes). Not a deferred (callable) download: the progress fragment's reruns drop
    deferred files."""
    return jobs.report(run_id, kind, SearchFilter(access_groups=groups))


shown = next(r for r in runs if r.run_id == run_id)
groups = reader.access_groups
c1, c2 = st.columns(2)
c1.download_button(t("eval_download_html", L), report_bytes(run_id, "html", shown.status, shown.samples, groups),
                   file_name=f"{run_id}.html", mime="text/html")
c2.download_button(t("eval_download_csv", L), report_bytes(run_id, "csv", shown.status, shown.samples, groups),
                   file_name=f"{run_id}.csv", mime="text/csv")
