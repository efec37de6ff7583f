"""Compliance Q&A — Streamlit entry point: `streamlit run app.py` (see README)."""

import streamlit as st

import core.offline  # noqa: F401  (offline switches before any library loads)
from ui.i18n import t
from ui.state import lang

st.set_page_config(page_title="Compliance Q&A", page_icon="📘", layout="wide")

L = lang()
choice = st.sidebar.radio(t("language", L), ["日本語", "English"], index=0 if L == "ja" else 1, horizontal=True)
new_lang = "ja" if choice == "日本語" else "en"
if new_lang != L:
    st.session_state.lang = new_lang
    st.rerun()

pages = [
    st.Page("ui/pages/chat.py", title=t("chat", L), icon="💬", default=True),
    st.Page("ui/pages/documents.py", title=t("documents", L), icon="📚"),
]
st.navigation(pages).run()
