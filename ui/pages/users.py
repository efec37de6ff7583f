"""User management (admins): the users, add one, edit roles and groups, reset a password, disable or enable,
unlock, delete (every change audited by the auth service; nobody deletes or disables themselves or the last
admin). A form keeps what was typed when the change is refused."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from auth.roles import Permission
from auth.store import ROLES, User
from core.errors import CQAError
from ui.auth_gate import guard
from ui.clock import local_time
from ui.errors import show_error
from ui.i18n import t
from ui.state import container, lang

user = guard(Permission.MANAGE_USERS)
L = lang()
services = container()
admin = services.auth.admin_for(user)
st.title(t("users", L))
if notice := st.session_state.pop("users_notice", None):
    st.success(notice)


def role_label(role: str) -> str:
    return t(f"role_{role}", L)


def state_label(account: User) -> str:
    if account.disabled:
        return t("state_disabled", L)
    return t("state_locked", L) if account.is_locked(None) else t("state_active", L)


def split_groups(text: str) -> list[str]:
    return [g.strip() for g in text.split(",") if g.strip()]


def done(message: str, form: str | None = None) -> None:
    """Say what was done on the next run; a form that succeeded starts empty (new widget keys)."""
    st.session_state.users_notice = message
    if form:
        st.session_state[f"{form}_round"] = st.session_state.get(f"{form}_round", 0) + 1
    st.rerun()


users = services.users.list_users()
st.dataframe(
    pd.DataFrame([{t("users_col_name", L): u.name, t("users_col_roles", L): ", ".join(map(role_label, u.roles)),
                   t("users_col_groups", L): ", ".join(u.groups), t("users_col_state", L): state_label(u),
                   t("users_col_source", L): t(f"source_{u.source}", L),
                   t("users_col_last", L): local_time(u.last_login_at)} for u in users]),
    hide_index=True, width="stretch",
)

add_round = st.session_state.get("add_user_round", 0)
with st.form(f"add-user-{add_round}"):
    st.subheader(t("users_add", L))
    name = st.text_input(t("user_name", L))
    roles = st.multiselect(t("users_col_roles", L), sorted(ROLES), default=["staff"], format_func=role_label)
    groups = st.text_input(t("access_groups", L))
    password = st.text_input(t("users_initial_password", L), type="password")
    if st.form_submit_button(t("users_add_button", L)):
        try:
            added = admin.add_user(name.strip(), password, roles, split_groups(groups))
        except CQAError as exc:
            show_error(exc)  # the form keeps what was typed
        else:
            done(t("user_added", L, name=added.name), "add_user")

if users:
    st.subheader(t("users_edit", L))
    names = [u.name for u in users]
    target = services.users.get(st.selectbox(t("users_pick", L), names, key="users_target"))
    if target is not None:
        edit_round = st.session_state.get("edit_user_round", 0)
        with st.form(f"edit-user-{target.name}-{edit_round}"):
            new_roles = st.multiselect(t("users_col_roles", L), sorted(ROLES), default=list(target.roles),
                                       format_func=role_label)
            new_groups = st.text_input(t("access_groups", L), value=", ".join(target.groups))
            if st.form_submit_button(t("save", L)):
                try:
                    if set(new_roles) != set(target.roles):
                        admin.set_roles(target.name, new_roles)
                    if tuple(sorted(split_groups(new_groups))) != tuple(sorted(target.groups)):
                        admin.set_groups(target.name, split_groups(new_groups))
                except CQAError as exc:
                    show_error(exc)
                else:
                    done(t("users_saved", L, name=target.name), "edit_user")
        myself = target.name.lower() == user.name.lower()
        c1, c2, c3 = st.columns(3)
        with c1:
            new_pw = st.text_input(t("new_password", L), type="password", key=f"reset-pw-{edit_round}")
            if st.button(t("users_reset_password", L), disabled=target.source != "password"):
                try:
                    admin.reset_password(target.name, new_pw)
                except CQAError as exc:
                    show_error(exc)
                else:
                    done(t("users_password_reset", L, name=target.name), "edit_user")
        with c2:
            toggle = "users_enable" if target.disabled else "users_disable"
            if st.button(t(toggle, L), disabled=myself):
                try:
                    if target.disabled:
                        admin.enable(target.name)
                    else:
                        admin.disable(target.name)
                except CQAError as exc:
                    show_error(exc)
                else:
                    done(t("users_enabled" if target.disabled else "users_disabled", L, name=target.name))
            if st.button(t("users_unlock", L), disabled=not target.is_locked(None)):
                admin.unlock(target.name)
                done(t("users_unlocked", L, name=target.name))
        with c3:
            sure = st.checkbox(t("users_delete_confirm", L, name=target.name), key=f"delete-{target.name}-{edit_round}",
                               disabled=myself)
            if st.button(t("users_delete", L), type="primary", disabled=myself or not sure):
                try:
                    admin.delete(target.name)
                except CQAError as exc:
                    show_error(exc)
                else:
                    st.session_state.pop("users_target", None)
                    done(t("users_deleted", L, name=target.name), "edit_user")
        if myself:
            st.caption(t("users_self_note", L))
