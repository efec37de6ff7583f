"""Compliance Q&A — Streamlit entry point: `streamlit run app.py` (see README).

Streamlit runs this file as ``__main__``; the guard keeps its body out of worker processes
that multiprocessing spawns (ingestion's read-ahead imports the main script as ``__mp_main__``).
"""

PAGE_FILES = {  # permission key -> (page under ui/pages and its title key, icon)
    "chat": ("chat", ":material/chat:"),
    "evaluate": ("evaluation", ":material/monitoring:"),
    "feedback": ("feedback", ":material/reviews:"),
    "ingest": ("documents", ":material/library_books:"),
    "users": ("users", ":material/group:"),
    "audit": ("audit", ":material/receipt_long:"),
    "settings": ("settings", ":material/settings:"),
    "account": ("account", ":material/person:"),
}


def _signed_out() -> None:
    """The only page while nobody is signed in (the sign-in form is drawn before navigation)."""


def main() -> None:
    import streamlit as st

    import core.offline  # noqa: F401  (offline switches before any library loads)
    from auth.roles import allowed_pages
    from ui.auth_gate import gate, sign_out_button
    from ui.errors import guarded
    from ui.i18n import t
    from ui.state import lang

    # An emoji favicon is drawn in the page; a ":material/...:" one makes every browser fetch it from
    # fonts.gstatic.com (tests/test_egress_syscalls.py).
    st.set_page_config(page_title="Compliance Q&A", page_icon="⚖️", layout="wide")

    L = lang()
    choice = st.sidebar.radio(t("language", L), ["日本語", "English"], index=0 if L == "ja" else 1, horizontal=True)
    new_lang = "ja" if choice == "日本語" else "en"
    if new_lang != L:
        st.session_state.lang = new_lang
        st.rerun()

    user = guarded("sign-in")(gate)()
    if user is None:
        # Rebuild the navigation with no page of any role: links a signed-in run showed (before a
        # timeout or sign-out in this session) must not stay in the sidebar.
        st.navigation([st.Page(_signed_out, title=t("sign_in", L), url_path="sign-in")], position="hidden")
        st.stop()

    st.sidebar.caption(t("signed_in_as", L, name=user.name))
    st.sidebar.caption(t("your_groups", L, groups=", ".join(user.groups) or "-"))
    sign_out_button(user)
    pages = []
    for key in allowed_pages(user):
        name, icon = PAGE_FILES[key]
        pages.append(
            st.Page(f"ui/pages/{name}.py", title=t(name, L), icon=icon, url_path=name, default=key == "chat")
        )
    page = st.navigation(pages)
    guarded(f"page {page.url_path or 'chat'}")(page.run)()


if __name__ == "__main__":
    main()
