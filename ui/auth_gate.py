"""Sign-in, first-admin setup, forced password change, session timeout and page guards.

Only UI glue: credentials, lockout, roles and audit records are the auth services' job."""

from __future__ import annotations

import time

import streamlit as st

from auth.roles import Permission, require
from auth.service import change_own_password, sign_in, sign_out
from auth.session import SessionClock
from auth.store import User
from core.errors import CQAError
from ui.i18n import t
from ui.state import container, lang


def current_user() -> User | None:
    return st.session_state.get("user")


def _set_user(user: User | None) -> None:
    st.session_state.user = user
    st.session_state.clock = SessionClock(container().settings.security.session_timeout_minutes)
    st.session_state.chat = []


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
                services = container()
                user = services.users.create_initial_admin(name, pw1, ())
                services.audit.append(user.name, "user_change", {"op": "create_initial_admin", "target": user.name})
            except CQAError as exc:
                st.error(str(exc))
                return
            st.success(t("admin_created", L))
            st.rerun()


def _login_form() -> None:
    L = lang()
    services = container()
    st.title(t("app_title", L))
    with st.form("login"):
        name = st.text_input(t("user_name", L))
        password = st.text_input(t("password", L), type="password")
        if st.form_submit_button(t("sign_in", L)):
            try:
                user = sign_in(services.users, services.audit, name, password, client="ui")
            except CQAError as exc:
                st.error(str(exc))
                return
            _set_user(user)
            st.rerun()
    provider = services.settings.security.oidc_provider
    if provider:
        if st.button(t("sign_in_sso", L)):
            st.login(provider)
        if getattr(st.user, "is_logged_in", False):
            account = services.users.get(str(st.user.get("preferred_username") or st.user.get("email") or ""))
            if account is None or account.disabled:
                st.error(t("sso_unknown_user", L))
            else:
                services.audit.append(account.name, "login", {"via": "oidc"})
                _set_user(account)
                st.rerun()


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
                updated = change_own_password(services.users, services.audit, user, old, new1)
            except CQAError as exc:
                st.error(str(exc))
                return
            st.session_state.user = updated
            st.rerun()


def gate() -> User | None:
    """The signed-in user, or None after rendering whatever screen comes first."""
    services = container()
    if not services.users.has_admin():
        _first_admin_form()
        return None
    user = current_user()
    if user is None:
        _login_form()
        return None
    clock: SessionClock = st.session_state.clock
    if clock.expired(time.time()):
        sign_out(services.audit, user, "timeout")
        _set_user(None)
        st.warning(t("session_expired", lang()))
        _login_form()
        return None
    clock.touch(time.time())
    fresh = services.users.get(user.name)
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
        sign_out(container().audit, user)
        _set_user(None)
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
