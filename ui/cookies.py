"""The browser's cookies for the session and the language.

Streamlit reads the cookies a browser sends when it connects (``st.context.cookies``, so a reload brings them)
but has no call that sets one; a small script in the page does, on every page of the app (the sidebar). The
session cookie holds only the signed session id (``auth.web_sessions``); the server decides whether it still
resumes a session, so clearing it is a courtesy, not the control. It is ``SameSite=Strict`` (and ``Secure``
over HTTPS). Being written by a script, it cannot be ``HttpOnly``: Streamlit escapes what pages write and the
app's own Markdown escapes links and HTML (``ui.markup``), which is what keeps other scripts out."""

from __future__ import annotations

import json
import re

import streamlit as st

from auth.web_sessions import COOKIE as SESSION_COOKIE

LANG_COOKIE = "cqa_lang"
LANG_MAX_AGE = 365 * 86400
_SAFE = re.compile(r"[A-Za-z0-9._\-]{1,512}")


def cookie(name: str) -> str | None:
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) and _SAFE.fullmatch(value) else None


def sync(session_token: str | None, session_max_age: int, lang: str) -> None:
    """Make the browser hold ``session_token`` (or no session cookie) and ``lang``."""
    if session_token is not None and not _SAFE.fullmatch(session_token):
        raise ValueError("a session token is URL-safe text")
    if lang not in ("ja", "en"):
        raise ValueError(f"unknown language {lang!r}")
    cookies = {
        SESSION_COOKIE: (session_token or "", session_max_age if session_token else 0),
        LANG_COOKIE: (lang, LANG_MAX_AGE),
    }
    st.sidebar.html(
        "<script>(() => {"
        "const secure = location.protocol === 'https:' ? '; Secure' : '';"
        f"for (const [name, [value, age]] of Object.entries({json.dumps(cookies)})) {{"
        "  document.cookie = name + '=' + value + '; Max-Age=' + age + '; Path=/; SameSite=Strict' + secure;"
        "}"
        "})();</script>",
        unsafe_allow_javascript=True,
    )
