"""User management (admins): add users, roles, groups, reset passwords, disable."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from auth.roles import Permission
from auth.store import ROLES
from core.errors import CQAError
from ui.auth_gate import guard
from ui.i18n import t
from ui.state import container, lang

user = guard(Permission.MANAGE_USERS)
L = lang()
services = container()
admin = services.auth.admin_for(user)
st.title(t("users", L))

users = services.users.list_users()
st.dataframe(
    pd.DataFrame([{"name": u.name, "roles": ",".join(sorted(u.roles)), "groups": ",".join(u.groups),
                   "disabled": u.disabled, "locked": u.is_locked(None), "sign-in": u.source} for u in users]),
    hide_index=True, width="stretch",
)

with st.form("add-user", clear_on_submit=True):
    st.subheader("+")
    name = st.text_input(t("user_name", L))
    roles = st.multiselect("roles", sorted(ROLES), default=["staff"])
    groups = st.text_input(t("access_groups", L))
    password = st.text_input(t("password", L), type="password")
    if st.form_submit_button("OK"):
        try:
            admin.add_user(name, password, roles, [g.strip() for g in groups.split(",") if g.strip()])
            st.rerun()
        except CQAError as exc:
            st.error(str(exc))

if users:
    target = st.selectbox(t("user_name", L), [u.name for u in users])
    c1, c2, c3 = st.columns(3)
    new_pw = c1.text_input(t("new_password", L), type="password", key="reset-pw")
    try:
        if c1.button(t("change_password", L)):
            admin.reset_password(target, new_pw)
            st.success("OK")
        if c2.button("disable / enable"):
            account = services.users.get(target)
            (admin.enable if account.disabled else admin.disable)(target)
            st.rerun()
        if c3.button("unlock"):
            admin.unlock(target)
            st.rerun()
    except CQAError as exc:
        st.error(str(exc))
