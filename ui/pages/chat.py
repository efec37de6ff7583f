"""Chat page: streamed answers with the stage they are at, verified citation chips and a source panel; example
questions and the documents answers draw on when the conversation is empty; an as-of date."""

from __future__ import annotations

import streamlit as st

from auth.roles import Permission
from core.errors import CQAError
from core.schema import ChatTurn
from qa.feedback import Feedback
from ui.answer_view import render_answer
from ui.asking import ask_streamed, question_counter
from ui.auth_gate import guard
from ui.conversations import purge_due, restore_after_reload, save_exchange, sidebar
from ui.errors import show_error
from ui.i18n import t
from ui.markup import as_text
from ui.state import container, lang, requester

guard(Permission.CHAT)
L = lang()
services = container()
LIMIT = services.settings.security.max_question_chars
st.title(t("app_title", L))

purge_due()
restore_after_reload()
sidebar()
history: list[dict] = st.session_state.setdefault("chat", [])
notice = st.session_state.pop("conversation_notice", None)
if notice:
    st.info(t(notice, L))

with st.sidebar:
    if st.toggle(t("as_of_toggle", L), key="as_of_on"):
        as_of = st.date_input(t("as_of_date", L), key="as_of_date", format="YYYY-MM-DD")
    else:
        as_of = None


def ask_example(question: str) -> None:
    st.session_state.pending_question = question


def render_empty() -> None:
    st.subheader(t("examples_title", L))
    for n in (1, 2, 3):
        example = t(f"example_{n}", L)
        st.button(example, key=f"example-{n}", on_click=ask_example, args=(example,), icon=":material/help:")
    documents = services.viewer.documents(requester().search_filter())
    with st.expander(t("covered_documents", L, n=len(documents)), expanded=bool(documents)):
        if not documents:
            st.caption(t("covered_none", L))
        for d in documents:
            since = t("covered_since", L, date=d.effective_from.isoformat()) if d.effective_from else ""
            st.markdown("- " + as_text(t("covered_row", L, title=d.title, source=d.source, version=d.version,
                                         since=since)))


def render_feedback(turn: dict, key: str) -> None:
    score = st.feedback("thumbs", key=f"fb-{key}")
    if score is None or turn.get("feedback_saved"):
        return
    comment = st.text_input(t("feedback_comment", L), key=f"fbc-{key}")
    if st.button("OK", key=f"fbs-{key}"):
        answer = turn["answer"]
        services.record_feedback(
            Feedback(
                user=requester().name,
                question=answer.question,
                answer=answer.answer,
                positive=bool(score),
                comment=comment,
                citations=[c.model_dump() for c in answer.citations],
                prompt_version=answer.prompt_version,
                model=answer.model,
            )
        )
        turn["feedback_saved"] = True
        st.toast(t("feedback_thanks", L))


def shorten_form(question: str) -> str | None:
    """The question that was over the limit, to shorten and send; the shortened question once sent."""
    st.error(t("question_too_long", L, n=len(question), max=LIMIT))
    text = st.text_area(t("question_edit", L), value=question, key="too_long_text", height=160)
    st.caption(t("question_counter", L, n=len(text), max=LIMIT))
    if st.button(t("question_send", L), disabled=len(text.strip()) > LIMIT or not text.strip()):
        st.session_state.pop("too_long", None)
        st.session_state.pop("too_long_text", None)
        return text
    return None


if not history:
    render_empty()
for i, turn in enumerate(history):
    with st.chat_message(turn["role"]):
        if turn["role"] == "user":
            st.markdown(as_text(turn["content"]))
        else:
            if turn.get("as_of"):
                st.caption(t("as_of_note", L, date=turn["as_of"]))
            if turn.get("withheld"):
                st.info(t("answer_withheld", L), icon=":material/lock:")
                continue
            render_answer(turn["answer"], str(i), L, turn.get("checks"))
            render_feedback(turn, str(i))

typed = st.chat_input(t("ask_placeholder", L), key="question")
question_counter(LIMIT, L)
question = typed or st.session_state.pop("pending_question", None)
if question and len(question.strip()) > LIMIT:
    st.session_state.too_long = question
    st.session_state.pop("too_long_text", None)
    question = None
if question is None and st.session_state.get("too_long"):
    question = shorten_form(st.session_state.too_long)
if question and question.strip():
    try:
        services.question_limiter.check(requester().name)
    except CQAError as exc:
        show_error(exc)
        st.stop()
    turns = [ChatTurn(role=h["role"], content=h["content"]) for h in history]
    with st.chat_message("user"):
        st.markdown(as_text(question))
    with st.chat_message("assistant"):
        answer = ask_streamed(services.answers, question, requester(), turns, as_of, L)
    save_exchange(question, answer, as_of)
    history.append({"role": "user", "content": question})
    history.append({"role": "assistant", "content": answer.answer, "answer": answer,
                    "as_of": as_of.isoformat() if as_of else None})
    st.rerun()
