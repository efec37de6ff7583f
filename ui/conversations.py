"""The chat page's stored conversations: listed in the sidebar, reopened (also after a reload: the open one is
named in the address, ``?c=<id>``), renamed, deleted, exported as Markdown or PDF; every answer saved as it
comes. Reopening shows what the reader may read now (``qa.conversations.recheck``). Conversations past the
retention period are purged, at most once an hour per server process."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import streamlit as st

from qa.conversations import ConversationNotFound, Message, ReopenedMessage, recheck
from qa.export import ExportLabels, to_markdown, to_pdf
from ui.clock import site_zone
from ui.i18n import t
from ui.state import container, lang, requester

PARAM = "c"
LISTED = 30
"""Conversations listed in the sidebar (the most recent)."""
PURGE_EVERY = 3600.0


@st.cache_resource(show_spinner=False)
def _purge_clock() -> dict:
    return {"last": 0.0, "lock": threading.Lock()}


def purge_due() -> None:
    """Run the retention purge when it has not run in this process for an hour."""
    clock = _purge_clock()
    with clock["lock"]:
        if time.time() - clock["last"] < PURGE_EVERY:
            return
        clock["last"] = time.time()
    container().conversations.purge()


def labels(lang_: str) -> ExportLabels:
    return ExportLabels(
        exported=t("export_exported", lang_), question=t("export_question", lang_), answer=t("export_answer", lang_),
        sources=t("sources", lang_), version=t("version", lang_), page=t("page", lang_),
        section=t("section", lang_), withheld=t("answer_withheld", lang_),
        superseded=t("source_superseded", lang_), withdrawn=t("source_withdrawn", lang_),
        as_of=t("as_of_note", lang_),
    )


def _turns(reopened: list[ReopenedMessage]) -> list[dict]:
    turns = []
    for m in reopened:
        message = m.message
        turn: dict = {"role": message.role, "content": message.content}
        if message.answer is not None:
            turn.update(answer=message.answer, as_of=message.as_of.isoformat() if message.as_of else None,
                        checks=m.checks, withheld=m.withheld)
        turns.append(turn)
    return turns


def _reopened(conversation_id: str) -> list[ReopenedMessage]:
    services = container()
    messages = services.conversations.messages(conversation_id, requester().name)
    return recheck(messages, requester().search_filter(), services.document_state)


def open_conversation(conversation_id: str) -> None:
    """Show a stored conversation of the signed-in user (as they may read it now)."""
    try:
        turns = _turns(_reopened(conversation_id))
    except ConversationNotFound:
        forget()
        st.session_state.conversation_notice = "conversation_not_found"
        return
    st.session_state.chat = turns
    st.session_state.conversation_id = conversation_id
    st.session_state.pop("too_long", None)
    st.query_params[PARAM] = conversation_id


def forget() -> None:
    """An empty chat: no conversation open."""
    st.session_state.chat = []
    st.session_state.pop("conversation_id", None)
    st.query_params.pop(PARAM, None)


def restore_after_reload() -> None:
    """Reopen the conversation the address names, once per browser session (a reload)."""
    if st.session_state.get("conversation_restored"):
        return
    st.session_state.conversation_restored = True
    wanted = st.query_params.get(PARAM)
    if wanted and not st.session_state.get("chat"):
        open_conversation(wanted)


def save_exchange(question: str, answer, as_of) -> None:
    """Store a question and its answer in the open conversation (a new one for the first question)."""
    store = container().conversations
    user = requester().name
    conversation_id = st.session_state.get("conversation_id")
    if conversation_id is None:
        conversation_id = store.start(user, question)
        st.session_state.conversation_id = conversation_id
        st.query_params[PARAM] = conversation_id
    store.add(conversation_id, user, Message("user", question))
    store.add(conversation_id, user, Message("assistant", answer.answer, answer, as_of))


def sidebar() -> None:
    """New conversation, the conversation list and what can be done with the open one."""
    L = lang()
    store = container().conversations
    user = requester().name
    if st.sidebar.button(t("new_chat", L), icon=":material/add:", key="new-chat"):
        forget()
        st.session_state.pop("too_long", None)
    current = st.session_state.get("conversation_id")
    listed = store.conversations(user)[:LISTED]
    if not listed:
        return
    st.sidebar.caption(t("conversations", L))
    for c in listed:
        st.sidebar.button(c.title, key=f"conv-{c.id}", on_click=open_conversation, args=(c.id,),
                          type="primary" if c.id == current else "tertiary", icon=":material/chat_bubble:")
    if current is not None and any(c.id == current for c in listed):
        _manage(current, next(c.title for c in listed if c.id == current), L)


def _manage(conversation_id: str, title: str, L: str) -> None:
    services = container()
    user, flt = requester().name, requester().search_filter()
    with st.sidebar.expander(t("this_conversation", L), icon=":material/tune:"):
        new_title = st.text_input(t("conversation_title", L), value=title, key=f"title-{conversation_id}",
                                  max_chars=120)
        if st.button(t("rename", L), key=f"rename-{conversation_id}", disabled=new_title.strip() == title):
            services.conversations.rename(conversation_id, user, new_title)
            st.rerun()
        export_labels = labels(L)
        zone = site_zone()

        def reopened() -> list[ReopenedMessage]:  # called when the file is asked for: access as it is then
            return recheck(services.conversations.messages(conversation_id, user), flt, services.document_state)

        stem = f"conversation-{conversation_id}"
        st.download_button(t("export_markdown", L), key=f"md-{conversation_id}", file_name=f"{stem}.md",
                           mime="text/markdown", icon=":material/description:", on_click="ignore",
                           data=lambda: to_markdown(title, reopened(), export_labels, user, datetime.now(zone)))
        st.download_button(t("export_pdf", L), key=f"pdf-{conversation_id}", file_name=f"{stem}.pdf",
                           mime="application/pdf", icon=":material/picture_as_pdf:", on_click="ignore",
                           data=lambda: to_pdf(title, reopened(), export_labels, user, datetime.now(zone)))
        confirm = st.checkbox(t("delete_conversation_confirm", L), key=f"del-ok-{conversation_id}")
        if st.button(t("delete_conversation", L), key=f"del-{conversation_id}", disabled=not confirm,
                     type="primary"):
            services.conversations.delete(conversation_id, user)
            st.session_state.pop(f"del-ok-{conversation_id}", None)
            forget()
            st.toast(t("conversation_deleted", L))
            st.rerun()
