"""An answer as the chat shows it: its Markdown kept, citations numbered [1], [2], … (``qa.numbering``), chips
with a short title and page that open the source panel, what was removed or refused, a copy with its sources,
and the timings in seconds."""

from __future__ import annotations

import unicodedata

import streamlit as st

from core.schema import Answer, Citation
from qa.conversations import SourceCheck
from qa.numbering import consecutive, renumbering
from ui.i18n import t
from ui.markup import answer_markdown, as_text
from ui.source_panel import show_source

TITLE_WIDTH = 30
"""Display width of a chip's title (a CJK character counts 2): about 15 Japanese characters."""


def short_title(title: str, width: int = TITLE_WIDTH) -> str:
    out, used = "", 0
    for ch in title.strip():
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width:
            return out.rstrip() + "…"
        out, used = out + ch, used + w
    return out


def chip_label(c: Citation, lang: str) -> str:
    page = f" {t('chip_page', lang, page=c.page)}" if c.page else ""
    ocr = f" · {t('ocr_chip', lang)}" if c.ocr else ""
    return f"[{c.n}] {short_title(c.title or c.source)}{page}{ocr}"


def copy_text(answer: Answer, lang: str) -> str:
    """The answer with its [n] markers and, below it, one line per source (``answer`` numbered for reading)."""
    lines = [
        f"[{c.n}] {c.title} ({c.source})" + (f" p.{c.page}" if c.page else "") + (f" {c.section}" if c.section else "")
        for c in answer.citations
    ]
    return answer.answer + ("\n\n" + t("sources", lang) + "\n" + "\n".join(lines) if lines else "")


def render_answer(stored: Answer, key: str, lang: str, checks: dict[int, SourceCheck] | None = None) -> None:
    """The answer text and everything under it; ``checks`` (a reopened conversation's, by the stored citation
    number) say which cited versions were revised or withdrawn since."""
    answer = consecutive(stored)
    st.markdown(answer_markdown(answer.answer))  # verified claims only: the answer service removed the rest
    if checks:
        notes = []
        for old, new in sorted(renumbering(stored).items(), key=lambda item: item[1]):
            check = checks.get(old)
            if check is not None and check.state == "superseded":
                notes.append(t("source_check", lang, n=new,
                               state=t("source_superseded", lang, version=check.active_version)))
            elif check is not None and check.state == "withdrawn":
                notes.append(t("source_check", lang, n=new, state=t("source_withdrawn", lang)))
        if notes:
            st.warning(" · ".join(notes), icon=":material/update:")
    _render_sources(answer, key, lang)


def _render_removed(answer: Answer, lang: str) -> None:
    if answer.removed_claims:
        with st.expander(t("removed_claims", lang, n=len(answer.removed_claims))):
            for claim in answer.removed_claims:
                st.text(claim)


def _render_sources(answer: Answer, key: str, lang: str) -> None:
    if answer.refused:
        st.info(t(f"refused_{answer.refusal_reason or 'no_relevant_passage'}", lang))
        if answer.contexts:
            with st.expander(t("closest_passages", lang)):
                for h in answer.contexts[:3]:
                    where = (f"{t('page', lang)} {h.page}" if h.page
                             else f"{t('section', lang)}: {as_text(h.section or '-')}")
                    st.markdown(f"**{as_text(h.title)}** · {where}")
                    st.caption(as_text(h.text[:400]))
        _render_removed(answer, lang)
        if not answer.citations:
            _render_timings(answer, lang)
            return
    elif answer.removed_claims:
        st.warning(t("unsupported", lang))
        _render_removed(answer, lang)
    if answer.citations:
        labels = {chip_label(c, lang): c for c in answer.citations}
        chosen = st.pills(t("sources", lang), list(labels), key=f"pills-{key}")
        if chosen:
            with st.container(border=True):
                show_source(labels[chosen], answer.contexts, key)
        with st.popover(t("copy_answer", lang)):
            st.code(copy_text(answer, lang), language=None, wrap_lines=True)
    _render_timings(answer, lang)


def _render_timings(answer: Answer, lang: str) -> None:
    timing = answer.timings
    st.caption(t("timings", lang, r=timing.retrieve_ms / 1000, f=(timing.first_token_ms or 0) / 1000,
                 t=timing.total_ms / 1000))
