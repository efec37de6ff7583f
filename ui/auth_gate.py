"""Sign-in, first-admin setup, forced password change, session timeout and page guards.

A sign-in starts a server-side session (``auth.web_sessions``) whose signed id the browser keeps in a cookie
(``ui.cookies``), so a reload resumes it until it is revoked (sign-out, password change, disabled account),
idle for the timeout, or older than the longest session. Only UI glue: credentials, lockout, roles and audit
records are the auth services' job."""

from __future__ import annotations

import time

import streamlit as st

from auth.roles import Permission, require
from auth.service import client_key
from auth.session import SessionClock
from auth.store import User
from auth.web_sessions import WebSession
from core.errors import CQAError
from ui import cookies
from ui.errors import show_error
from ui.i18n import t
from ui.state import container, lang


def current_user() -> User | None:
    return st.session_state.get("user")


def _set_user(user: User | None, via: str = "password", resumed: tuple[WebSession, str] | None = None) -> None:
    """Sign ``user`` in to this browser session (a new server-side session, or the ``resumed`` one with its
    cookie value), or sign whoever it was out (None)."""
    services = container()
    st.session_state.user = user
    st.session_state.signed_in_via = via if user is not None else None
    st.session_state.clock = SessionClock(services.settings.security.session_timeout_minutes)
    st.session_state.chat = []
    st.session_state.pop("conversation_id", None)
    if user is None:
        st.session_state.web_session = st.session_state.session_token = None
    elif resumed is not None:
        st.session_state.web_session, st.session_state.session_token = resumed
    else:
        token = services.web_sessions.start(user.name, via)
        st.session_state.web_session = services.web_sessions.resume(token).session
        st.session_state.session_token = token


def _resume_from_cookie() -> User | None:
    """The user of the session the browser's cookie names, once per browser session (a reload)."""
    if st.session_state.get("cookie_checked"):
        return None
    st.session_state.cookie_checked = True
    token = cookies.cookie(cookies.SESSION_COOKIE)
    if token is None:
        return None
    services = container()
    resumed = services.web_sessions.resume(token)
    if resumed.session is None:
        if resumed.refusal == "idle":
            st.session_state.session_notice = "session_expired"
        return None
    user = services.auth.current(resumed.session.user)
    if user is None or user.disabled:
        services.web_sessions.revoke(resumed.session, "disabled")
        return None
    _set_user(user, via=resumed.session.via, resumed=(resumed.session, token))
    return user


def _sync_cookies() -> None:
    """The browser keeps this session's cookie while someone is signed in, and the language."""
    session: WebSession | None = st.session_state.get("web_session")
    token = st.session_state.get("session_token") if current_user() is not None else None
    max_hours = container().settings.security.session_max_hours
    age = int(max_hours * 3600 - (time.time() - session.created_at)) if session is not None and token else 0
    cookies.sync(token if age > 0 else None, age, lang())


def client() -> str:
    """This browser session's client for sign-in throttling: its address (see auth.service.client_key)."""
    header = container().settings.security.client_address_header
    return client_key(st.context.ip_address, st.context.headers, header)


def _first_admin_form() -> None:
    L = lang()
    st.title(t("app_title", L))
    st.info(t("first_admin", L))
    with st.form("first-admin"):
        name = st.text_input(t("user_name", L), value="admin")
        pw1 = st.text_input(t("password", L), type="password")
        pw2 = st.text_input(t("password_again", L), type="password")
        if st.form_submit_button(t("create_admin", L)):
            if pw1 != pw2:
                st.error(t("passwords_differ", L))
                return
            try:
                container().auth.create_first_admin(name, pw1, client=client())
            except CQAError as exc:
                show_error(exc)
                return
            st.success(t("admin_created", L))
            st.rerun()


def _sso_identity() -> dict | None:
    """The claims of the IdP's ID token when this browser signed in through st.login."""
    info = st.user
    if not getattr(info, "is_logged_in", False):
        return None
    return info.to_dict()


def _login_form() -> None:
    L = lang()
    services = container()
    st.title(t("app_title", L))
    with st.form("login"):
        name = st.text_input(t("user_name", L))
        password = st.text_input(t("password", L), type="password")
        if st.form_submit_button(t("sign_in", L)):
            try:
                user = services.auth.sign_in(name, password, client=client())
            except CQAError as exc:
                show_error(exc)
                return
            _set_user(user)
            st.rerun()
    provider = services.settings.security.oidc_provider
    if not provider:
        return
    claims = _sso_identity()
    if claims is not None and not st.session_state.get("sso_refused"):
        try:
            account = services.auth.sso_sign_in(claims, client=client())
        except CQAError as exc:
            # Refused (counted like a wrong password): said once; this session does not retry the
            # same identity. The button below asks the IdP again (groups as they are then).
            st.session_state.sso_refused = True
            show_error(exc)
        else:
            _set_user(account, via="oidc")
            st.rerun()
    if st.button(t("sign_in_sso", L)):
        st.login(provider)


def change_password_form(user: User, done_message: str | None = None) -> None:
    """The user's own password change (current password, the new one twice); what was typed stays when the
    change is refused. On success the session holds the updated user, the form starts empty and the script
    reruns (``done_message`` is then in ``st.session_state.password_notice`` for the page to show)."""
    L = lang()
    services = container()
    round_ = st.session_state.get("password_round", 0)
    with st.form(f"change-password-{round_}"):
        old = st.text_input(t("current_password", L), type="password")
        new1 = st.text_input(t("new_password", L), type="password")
        new2 = st.text_input(t("password_again", L), type="password")
        if st.form_submit_button(t("change_password", L)):
            if new1 != new2:
                st.error(t("passwords_differ", L))
                return
            try:
                updated = services.auth.change_password(user, old, new1)
            except CQAError as exc:
                show_error(exc)
                return
            st.session_state.user = updated
            st.session_state.password_round = round_ + 1
            services.web_sessions.revoke_user(user.name, "password_changed", keep=st.session_state.get("web_session"))
            if done_message:
                st.session_state.password_notice = done_message
            st.rerun()


def _change_password_form(user: User) -> None:
    st.title(t("change_password", lang()))
    change_password_form(user)


def _end_session(user: User, reason: str) -> bool:
    """Sign out: audit, forget the user; a single sign-on session also drops Streamlit's
    identity cookie and, when the IdP publishes an end_session_endpoint, the IdP's session (the
    browser is sent there: True)."""
    via = st.session_state.get("signed_in_via")
    services = container()
    services.auth.sign_out(user, reason)
    session = st.session_state.get("web_session")
    if session is not None:
        services.web_sessions.revoke(session, reason)
    _set_user(None)
    if via == "oidc":
        st.logout()
        return True
    return False


def gate() -> User | None:
    """The signed-in user, or None after rendering whatever screen comes first."""
    try:
        return _gate()
    finally:
        _sync_cookies()


def _gate() -> User | None:
    services = container()
    if not services.auth.has_admin():
        _first_admin_form()
        return None
    user = current_user() or _resume_from_cookie()
    if user is None:
        notice = st.session_state.pop("session_notice", None)
        if notice:
            st.warning(t(notice, lang()))
        _login_form()
        return None
    clock: SessionClock = st.session_state.clock
    if clock.expired(time.time()):  # before the stored session, which has timed out too: say why
        _end_session(user, "timeout")
        st.warning(t("session_expired", lang()))
        _login_form()
        return None
    session: WebSession | None = st.session_state.get("web_session")
    if session is not None:
        session = services.web_sessions.touch(session)
        if session is None:  # ended elsewhere: signed out in another tab, password changed, idle
            _set_user(None)
            _login_form()
            return None
        st.session_state.web_session = session
    clock.touch(time.time())
    fresh = services.auth.current(user.name)
    if fresh is None or fresh.disabled:
        services.web_sessions.revoke_user(user.name, "disabled")
        _set_user(None)
        _login_form()
        return None
    st.session_state.user = fresh
    if fresh.must_change_password:
        _change_password_form(fresh)
        return None
    return fresh


def sign_out_button(user: User) -> None:
    if st.sidebar.button(t("sign_out", lang())):
        if _end_session(user, "logout"):
            st.stop()  # a rerun now would drop the redirect to Streamlit's logout route
        st.rerun()


def guard(permission: Permission) -> User:
    """Stop the page unless the signed-in user holds ``permission`` (checked on every run)."""
    user = current_user()
    try:
        require(user, permission)
    except CQAError:
        st.error(t("forbidden", lang()))
        st.stop()
    return user  # type: ignore[return-value]
