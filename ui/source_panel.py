"""The source panel under an answer: the cited page of a PDF rendered in the app with the passage marked (zoom,
previous/next page, the printed page number beside the PDF's), or for any other format the passage's section
with the passage highlighted. What the panel reads goes through ``SourceViewer``, within the reader's scope."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import streamlit as st

from core.schema import Citation, Hit
from ingest.page_view import PageImage, quote_span, render_page
from ui.i18n import t
from ui.markup import as_text
from ui.state import container, lang, requester

ZOOMS = (50, 75, 100, 125, 150, 200)
BASE_SCALE = 1.5
"""Rendering scale at 100 % (108 dpi): sharp at the chat column's width."""


@st.cache_data(max_entries=48, show_spinner=False)
def _render(path: str, page: int, quote: str, scale: float) -> PageImage | None:
    """A rendered page, kept for the next rerun. Keyed by the kept file (named by its content hash): the
    caller has checked the reader's access before asking."""
    return render_page(Path(path), page, quote, scale)


def context_of(c: Citation, contexts: list[Hit]) -> Hit | None:
    """The passage a citation quotes, among the answer's sources."""
    same = [h for h in contexts if h.chunk_id and h.doc_id == c.doc_id and h.version == c.version]
    return next((h for h in same if c.quote and c.quote in h.text), same[0] if same else None)


def show_source(c: Citation, contexts: list[Hit], key: str) -> None:
    L = lang()
    st.markdown(f"**{as_text(c.title or c.source)}** · {t('version', L)} {c.version} · {as_text(c.source)}")
    st.caption(f"{t('section', L)}: {as_text(c.section or '-')}")
    if c.ocr:
        st.caption(t("ocr_source", L))
    flt = requester().search_filter()
    path = container().viewer.pdf_path(c.doc_id, c.version, flt) if c.page else None
    if path is not None:
        _pdf_page(path, c, key)
    else:
        _section(c, context_of(c, contexts), key)


def _pdf_page(path: Path, c: Citation, key: str) -> None:
    L = lang()
    page_key, zoom_key = f"src-page-{key}", f"src-zoom-{key}"
    page = int(st.session_state.get(page_key) or c.page or 1)
    zoom = int(st.session_state.get(zoom_key, 100))
    image = _render(str(path), page, c.quote if page == c.page else "", BASE_SCALE * zoom / 100)
    if image is None:
        st.session_state.pop(page_key, None)
        st.info(t("page_unavailable", L))
        return

    def go(to: int) -> None:
        st.session_state[page_key] = to

    prev_col, next_col, back_col, zoom_col = st.columns([1, 1, 1.4, 2], vertical_alignment="bottom")
    prev_col.button(t("prev_page", L), key=f"src-prev-{key}", disabled=page <= 1, on_click=go, args=(page - 1,),
                    icon=":material/chevron_left:")
    next_col.button(t("next_page", L), key=f"src-next-{key}", disabled=page >= image.page_count, on_click=go,
                    args=(page + 1,), icon=":material/chevron_right:")
    back_col.button(t("back_to_cited", L), key=f"src-back-{key}", disabled=page == c.page, on_click=go,
                    args=(c.page,))
    zoom_col.select_slider(t("zoom", L), options=ZOOMS, value=zoom, key=zoom_key, format_func=lambda z: f"{z}%")
    printed = t("printed_page", L, label=image.label) if image.label and image.label != str(page) else ""
    st.markdown(f"**{t('page_line', L, page=page, count=image.page_count)}**{as_text(printed)}")
    if page != c.page:
        st.caption(t("cited_page_note", L, page=c.page))
    elif c.quote and not image.marked:
        st.caption(t("passage_not_marked", L))
    encoded = base64.b64encode(image.png).decode("ascii")
    box_id = "cqa-page-" + "".join(ch for ch in key if ch.isalnum() or ch == "-")
    # the page scrolls itself to the passage once the image is laid out (a page is taller than the box)
    scroll = "" if image.mark_top is None else (
        f"<script>(() => {{ const box = document.getElementById('{box_id}'); if (!box) return;"
        f" const img = box.querySelector('img');"
        f" const go = () => {{ box.scrollTop = Math.max(0, {image.mark_top:.4f} * img.offsetHeight - 40); }};"
        f" if (img.complete) go(); else img.addEventListener('load', go); }})();</script>"
    )
    st.html(
        f'<div class="cqa-page" id="{box_id}" style="overflow:auto;max-height:85vh;border:1px solid #ddd">'
        f'<img alt="{html.escape(t("page_line", L, page=page, count=image.page_count))}" '
        f'src="data:image/png;base64,{encoded}" style="width:{zoom}%;max-width:none;display:block"></div>{scroll}',
        unsafe_allow_javascript=image.mark_top is not None,
    )


def _section(c: Citation, context: Hit | None, key: str) -> None:
    """The passage's section as stored, with the passage highlighted; the passage as cited when its version
    is no longer in the index."""
    L = lang()
    section = container().viewer.section(context, requester().search_filter()) if context else None
    if section is None and context is not None:
        st.caption(t("section_as_cited", L))
    text = section.text if section else (context.text if context else c.quote)
    st.caption(t("section_view", L))
    st.html(f'<div class="cqa-section" style="white-space:pre-wrap;line-height:1.7;max-height:60vh;'
            f'overflow:auto;padding:0.5rem 0.75rem;border-left:3px solid #f0a000">{highlighted(text, c.quote)}</div>')


def highlighted(text: str, quote: str) -> str:
    """``text`` as HTML with the characters that carry ``quote`` inside ``<mark>`` (escaped throughout)."""
    marked = set(quote_span(text, quote)) if quote else set()
    for i in range(1, len(text) - 1):  # the spaces and line breaks inside the passage are part of it
        if text[i].isspace() and i - 1 in marked and any(j in marked for j in range(i + 1, min(i + 4, len(text)))):
            marked.add(i)
    out: list[str] = []
    inside = False
    for i, ch in enumerate(text):
        if (i in marked) != inside:
            out.append("<mark>" if not inside else "</mark>")
            inside = not inside
        out.append(html.escape(ch))
    return "".join(out) + ("</mark>" if inside else "")
