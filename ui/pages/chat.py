"""Chat page: streamed answers with verified citation chips and a source panel."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from auth.roles import Permission
from core.errors import CQAError
from core.schema import Answer, ChatTurn
from qa.feedback import Feedback
from qa.service import AnswerEvent, RetrievedEvent, TokenEvent
from ui.auth_gate import guard
from ui.i18n import t
from ui.markup import as_text
from ui.state import container, lang, requester

guard(Permission.CHAT)
L = lang()
services = container()
st.title(t("app_title", L))

if st.sidebar.button(t("new_chat", L)):
    st.session_state.chat = []
history: list[dict] = st.session_state.setdefault("chat", [])


def render_removed(answer: Answer) -> None:
    if answer.removed_claims:
        with st.expander(t("removed_claims", L, n=len(answer.removed_claims))):
            for claim in answer.removed_claims:
                st.text(claim)


def render_sources(answer: Answer, key: str) -> None:
    if answer.refused:
        st.info(t(f"refused_{answer.refusal_reason or 'no_relevant_passage'}", L))
        if answer.contexts:
            with st.expander(t("closest_passages", L)):
                for h in answer.contexts[:3]:
                    st.markdown(f"**{as_text(h.title)}** · {as_text(h.section)} · {t('page', L)} {h.page or '-'}")
                    st.caption(as_text(h.text[:400]))
        render_removed(answer)
        if not answer.citations:
            return
    elif answer.removed_claims:
        st.warning(t("unsupported", L))
        render_removed(answer)
    if not answer.citations:
        return
    labels = {f"[{c.n}] {c.source}" + (f" p.{c.page}" if c.page else ""): c for c in answer.citations}
    chosen = st.pills(t("sources", L), list(labels), key=f"pills-{key}")
    if chosen:
        c = labels[chosen]
        context = next((h for h in answer.contexts if h.chunk_id and h.doc_id == c.doc_id and c.quote in h.text), None)
        with st.container(border=True):
            st.markdown(f"**{as_text(c.title)}** · {t('version', L)} {c.version} · {t('page', L)} {c.page or '-'}")
            st.caption(f"{t('section', L)}: {as_text(c.section or '-')}")
            text, quote = as_text(context.text if context else c.quote), as_text(c.quote)
            st.markdown(text.replace(quote, f":orange-background[{quote}]") if quote else text)
            scope = requester().search_filter()
            page_pdf = services.ingest.page_pdf(c.doc_id, c.version, c.page, scope) if c.page else None
            if page_pdf:
                st.download_button(
                    t("open_page", L, page=c.page), page_pdf, file_name=f"{Path(c.source).stem}-p{c.page}.pdf",
                    mime="application/pdf", key=f"page-{key}-{c.n}",
                )
    copy = (
        answer.answer
        + "\n\n"
        + "\n".join(f"[{c.n}] {c.title} ({c.source}) p.{c.page or '-'} {c.section}" for c in answer.citations)
    )
    with st.popover(t("copy_answer", L)):
        st.code(copy, language=None)
    timing = answer.timings
    st.caption(
        t("timings", L, r=round(timing.retrieve_ms), f=round(timing.first_token_ms or 0), t=round(timing.total_ms))
    )


def render_feedback(turn: dict, key: str) -> None:
    score = st.feedback("thumbs", key=f"fb-{key}")
    if score is None or turn.get("feedback_saved"):
        return
    comment = st.text_input(t("feedback_comment", L), key=f"fbc-{key}")
    if st.button("OK", key=f"fbs-{key}"):
        answer: Answer = turn["answer"]
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


for i, turn in enumerate(history):
    with st.chat_message(turn["role"]):
        if turn["role"] == "user":
            st.markdown(as_text(turn["content"]))
        else:
            st.markdown(as_text(turn["answer"].answer))  # verified claims only: the answer service removed the rest
            render_sources(turn["answer"], str(i))
            render_feedback(turn, str(i))

question = st.chat_input(t("ask_placeholder", L), max_chars=services.settings.security.max_question_chars)
if question:
    try:
        services.question_limiter.check(requester().name)
    except CQAError as exc:
        st.error(str(exc))
        st.stop()
    turns = [ChatTurn(role=h["role"], content=h["content"]) for h in history]
    with st.chat_message("user"):
        st.markdown(as_text(question))
    with st.chat_message("assistant"):
        status = st.status(t("searching", L))
        final: dict[str, Answer] = {}

        def tokens():
            for event in services.answers.stream(question, requester(), turns):
                if isinstance(event, RetrievedEvent):
                    status.update(label=f"{t('sources', L)}: {len(event.hits)}", state="complete")
                elif isinstance(event, TokenEvent):
                    yield as_text(event.text)
                elif isinstance(event, AnswerEvent):
                    final["answer"] = event.answer

        st.write_stream(tokens())
        answer = final["answer"]
    history.append({"role": "user", "content": question})
    history.append({"role": "assistant", "content": answer.answer, "answer": answer})
    st.rerun()
