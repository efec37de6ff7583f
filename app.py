"""Compliance Q&A — Streamlit entry point: `streamlit run app.py` (see README)."""

import streamlit as st

import core.offline  # noqa: F401  (offline switches before any library loads)
from auth.roles import allowed_pages
from ui.auth_gate import gate, sign_out_button
from ui.i18n import t
from ui.state import lang

st.set_page_config(page_title="Compliance Q&A", page_icon="📘", layout="wide")

L = lang()
choice = st.sidebar.radio(t("language", L), ["日本語", "English"], index=0 if L == "ja" else 1, horizontal=True)
new_lang = "ja" if choice == "日本語" else "en"
if new_lang != L:
    st.session_state.lang = new_lang
    st.rerun()

user = gate()
if user is None:
    st.stop()

PAGES = {
    "chat": lambda: st.Page("ui/pages/chat.py", title=t("chat", L), icon="💬", default=True, url_path="chat"),
    "evaluate": lambda: st.Page("ui/pages/evaluation.py", title=t("evaluation", L), icon="📊", url_path="evaluation"),
    "ingest": lambda: st.Page("ui/pages/documents.py", title=t("documents", L), icon="📚", url_path="documents"),
    "users": lambda: st.Page("ui/pages/users.py", title=t("users", L), icon="👥", url_path="users"),
    "audit": lambda: st.Page("ui/pages/audit.py", title=t("audit", L), icon="🧾", url_path="audit"),
}
st.sidebar.caption(t("signed_in_as", L, name=user.name))
sign_out_button(user)
st.navigation([PAGES[key]() for key in allowed_pages(user)]).run()
