"""Process-wide services for the Streamlit app (one Container per server process) and the
per-session bits pages share (interface language)."""

from __future__ import annotations

import streamlit as st

import core.offline  # noqa: F401
from settings import load_settings
from wiring import Container


@st.cache_resource(show_spinner=False)
def container() -> Container:
    """The app process owns the embedded store while it runs (see docs/operations.md)."""
    return Container(load_settings(), store_wait_seconds=30.0)


def lang() -> str:
    """This browser's interface language: chosen in the sidebar, kept in a cookie across reloads (the site's
    default until chosen)."""
    if "lang" not in st.session_state:
        from ui.cookies import LANG_COOKIE, cookie

        kept = cookie(LANG_COOKIE)
        st.session_state.lang = kept if kept in ("ja", "en") else container().settings.ui.language
    return st.session_state.lang


def requester():
    """The signed-in user as the services see them (name for the audit, groups for the filter)."""
    from core.schema import Requester

    user = st.session_state.get("user")
    if user is None:
        return Requester(name="anonymous", groups=())
    from auth.roles import access_groups

    return Requester(name=user.name, groups=access_groups(user))


@st.cache_resource(show_spinner=False)
def eval_jobs():
    """Background evaluation runs, shared by every session of this process."""
    from eval.jobs import EvalJobs

    return EvalJobs(container())
