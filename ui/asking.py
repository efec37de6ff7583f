"""Asking from the chat page: the answer streamed with the stage it is at (searching → reading N passages →
writing, with the seconds so far), and a live character counter under the question box."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import date

import streamlit as st

from core.schema import Answer, ChatTurn, Requester
from qa.service import AnswerEvent, AnswerService, QueuedEvent, RetrievedEvent, TokenEvent
from ui.i18n import t
from ui.markup import answer_markdown

_TICK = 1.0
"""Seconds between updates of the stage line while the model has not written anything yet."""
_DONE = object()


def ask_streamed(answers: AnswerService, question: str, requester: Requester, history: list[ChatTurn],
                 as_of: date | None, lang: str) -> Answer:
    """Answer ``question`` inside the current chat message, showing the stage and the words as they come.

    The answer service runs in a thread so the page can say what it is waiting for (the model reads the
    passages for most of the time); leaving the page stops it (``cancel``)."""
    status = st.status(t("stage_searching", lang), expanded=False)
    events: queue.Queue = queue.Queue()
    cancel = threading.Event()

    def produce() -> None:
        try:
            for event in answers.stream(question, requester, history, cancel=cancel, as_of=as_of):
                events.put(event)
        except BaseException as exc:  # noqa: BLE001 - handed to the page, which raises it there
            events.put(exc)
        finally:
            events.put(_DONE)

    started = time.monotonic()
    worker = threading.Thread(target=produce, name="answer", daemon=True)
    final: dict[str, Answer] = {}

    def tokens():
        stage = t("stage_searching", lang)
        text = ""
        while True:
            try:
                event = events.get(timeout=_TICK)
            except queue.Empty:
                status.update(label=f"{stage} ({time.monotonic() - started:.0f} s)")
                continue
            if event is _DONE:
                return
            if isinstance(event, BaseException):
                raise event
            if isinstance(event, QueuedEvent):  # every model slot busy: the place in the queue, not a spinner
                stage = t("stage_queued", lang, n=event.position)
                status.update(label=stage)
            elif isinstance(event, RetrievedEvent):
                stage = t("stage_reading", lang, n=len(event.hits))
                status.update(label=stage)
            elif isinstance(event, TokenEvent):
                if not text:
                    stage = t("stage_writing", lang)
                    status.update(label=stage)
                text += event.text
                yield answer_markdown(text)
            elif isinstance(event, AnswerEvent):
                final["answer"] = event.answer

    worker.start()
    try:
        placeholder = st.empty()
        for shown in tokens():
            placeholder.markdown(shown)
    finally:
        cancel.set()
    answer = final["answer"]
    status.update(label=t("stage_done", lang, n=len(answer.citations), s=answer.timings.total_ms / 1000),
                  state="complete")
    return answer


def question_counter(limit: int, lang: str) -> None:
    """A live "n / limit" counter under the chat box (red over the limit). Streamlit's own counter comes with
    ``max_chars``, which makes the box ignore a paste over the limit without a word; the page checks the limit
    itself and says so instead."""
    unit = json.dumps(t("question_counter", lang, n=0, max=limit).split(" ", 1)[1])  # "/ 2,000 文字"
    st.html(
        "<script>(() => {"
        f"window.cqaQuestionUnit = {unit};"  # set on every run: a language switch changes it
        "const shown = document.querySelector('[data-testid=\"stChatInputTextArea\"]');"
        "if (window.cqaQuestionCounter) { if (shown) window.cqaQuestionCounter(shown); return; }"
        f"const max = {int(limit)};"
        "const show = window.cqaQuestionCounter = (box) => {"
        "  const input = box.closest('[data-testid=\"stChatInput\"]'); if (!input) return;"
        "  let out = input.parentElement.querySelector('[data-testid=\"cqaQuestionCounter\"]');"
        "  if (!out) { out = document.createElement('div'); out.setAttribute('data-testid', 'cqaQuestionCounter');"
        "    out.style.cssText = 'font-size:0.75rem;text-align:right;padding:0.1rem 0.5rem;opacity:0.8';"
        "    input.after(out); }"
        "  const n = box.value.length;"
        "  out.textContent = n.toLocaleString() + ' ' + window.cqaQuestionUnit;"
        "  out.style.color = n > max ? '#d00' : 'inherit';"
        "};"
        "for (const kind of ['input', 'keyup', 'focusin']) document.addEventListener(kind, (e) => {"
        "  if (e.target.matches && e.target.matches('[data-testid=\"stChatInputTextArea\"]')) show(e.target);"
        "}, true);"
        "})();</script>",
        unsafe_allow_javascript=True,
    )
