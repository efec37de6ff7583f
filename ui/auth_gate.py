"""Sign-in, first-admin setup, forced password change, session timeout and page guards.

Only UI glue: credentials, lockout, roles and audit records are the auth services' job."""

from __future__ import annotations

import time

import streamlit as st

from auth.roles import Permission, require
from auth.service import client_key
from auth.session import SessionClock
from auth.store import User
from core.errors import CQAError
from ui.i18n import t
from ui.state import container, lang


def current_user() -> User | None:
    return st.session_state.get("user")


def _set_user(user: User | None, via: str = "password") -> None:
    st.session_state.user = user
    st.session_state.signed_in_via = via if user is not None else None
    st.session_state.clock = SessionClock(container().settings.security.session_timeout_minutes)
    st.session_state.chat = []


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
                st.error(str(exc))
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
                st.error(str(exc))
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
            reason = getattr(exc, "reason", "")
            st.error(t("sso_unknown_user", L) if reason.startswith("sso_") and reason != "sso_expired" else str(exc))
        else:
            _set_user(account, via="oidc")
            st.rerun()
    if st.button(t("sign_in_sso", L)):
        st.login(provider)


def _change_password_form(user: User) -> None:
    L = lang()
    services = container()
    st.title(t("change_password", L))
    with st.form("change-password"):
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
                st.error(str(exc))
                return
            st.session_state.user = updated
            st.rerun()


def _end_session(user: User, reason: str) -> bool:
    """Sign out: audit, forget the user; a single sign-on session also drops Streamlit's
    identity cookie and, when the IdP publishes an end_session_endpoint, the IdP's session (the
    browser is sent there: True)."""
    via = st.session_state.get("signed_in_via")
    container().auth.sign_out(user, reason)
    _set_user(None)
    if via == "oidc":
        st.logout()
        return True
    return False


def gate() -> User | None:
    """The signed-in user, or None after rendering whatever screen comes first."""
    services = container()
    if not services.auth.has_admin():
        _first_admin_form()
        return None
    user = current_user()
    if user is None:
        _login_form()
        return None
    clock: SessionClock = st.session_state.clock
    if clock.expired(time.time()):
        _end_session(user, "timeout")
        st.warning(t("session_expired", lang()))
        _login_form()
        return None
    clock.touch(time.time())
    fresh = services.auth.current(user.name)
    if fresh is None or fresh.disabled:
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
