"""The signed-in user's own account (every role): who they are, their roles and groups, and the password change
the sign-in gate also asks for."""

from __future__ import annotations

import streamlit as st

from auth.roles import Permission
from ui.auth_gate import change_password_form, guard
from ui.i18n import t
from ui.state import lang

user = guard(Permission.CHAT)
L = lang()
st.title(t("account", L))
st.markdown(f"**{t('user_name', L)}**: {user.name}")
st.markdown(f"**{t('users_col_roles', L)}**: " + ", ".join(t(f"role_{r}", L) for r in user.roles))
st.markdown(f"**{t('users_col_groups', L)}**: " + (", ".join(user.groups) or "-"))
if notice := st.session_state.pop("password_notice", None):
    st.success(notice)

if user.source != "password":
    st.info(t("account_sso", L))
    st.stop()

st.subheader(t("change_password", L))
change_password_form(user, done_message=t("account_password_changed", L))
