"""Answers with feedback (compliance): the recent ratings and comments, and one step from an answer to a test
case in a test set (its question, a reference answer the reviewer writes, the cited pages as gold sources).
Answers drawn from documents the reviewer may not read are not shown."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from auth.roles import Permission
from core.errors import CQAError
from eval.drafts import case_from_feedback
from ui.auth_gate import guard
from ui.clock import local_time
from ui.errors import show_error
from ui.i18n import t
from ui.markup import as_text
from ui.state import container, eval_jobs, lang, requester

RECENT = 200

user = guard(Permission.EVALUATE)
L = lang()
services = container()
reader = requester().search_filter()
st.title(t("feedback", L))
if notice := st.session_state.pop("feedback_notice", None):
    st.success(notice)

access = {v.doc_id: v.access for v in services.registry.all_versions()}


def readable(row: dict) -> bool:
    """Every document the answer cites still exists and is inside the reader's scope."""
    cited = {c.get("doc_id") for c in json.loads(row.get("citations") or "[]")}
    return all(doc in access and reader.can_read(access[doc]) for doc in cited)


rows = services.feedback.recent(RECENT)
shown = [r for r in rows if readable(r)]
if len(shown) < len(rows):
    st.caption(t("feedback_withheld", L, n=len(rows) - len(shown)))
if not shown:
    st.info(t("feedback_none", L))
    st.stop()

st.dataframe(
    pd.DataFrame([{
        "ID": r["id"], t("feedback_col_when", L): local_time(r["ts"]), t("feedback_col_user", L): r["user"],
        t("feedback_col_rating", L): t("feedback_good" if r["positive"] else "feedback_bad", L),
        t("eval_col_question", L): r["question"], t("feedback_col_comment", L): r["comment"],
    } for r in shown]),
    hide_index=True, width="stretch",
)

by_id = {r["id"]: r for r in shown}
picked = by_id[st.selectbox(t("feedback_pick", L), list(by_id),
                            format_func=lambda i: f"#{i} {by_id[i]['question'][:60]}")]
round_ = st.session_state.get("feedback_round", 0)
with st.form(f"feedback-case-{picked['id']}-{round_}"):
    st.markdown(f"**{as_text(picked['question'])}**")
    st.markdown(as_text(picked["answer"] or "—"))
    reference = st.text_area(t("feedback_reference", L), value=picked["answer"] if picked["positive"] else "")
    target = st.text_input(t("eval_draft_target", L), value="from-feedback.jsonl")
    if st.form_submit_button(t("feedback_to_case", L), type="primary"):
        case = case_from_feedback(picked, reference)
        try:
            path, total = eval_jobs().save_reviewed([case], target, actor=user.name)
        except CQAError as exc:
            show_error(exc)
        else:
            st.session_state.feedback_notice = t("feedback_saved", L, id=case.id, name=path.name, total=total)
            st.session_state.feedback_round = round_ + 1
            st.rerun()
