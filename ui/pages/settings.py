"""Settings in effect (admins): read-only, secrets masked by their SecretStr type."""

from __future__ import annotations

import streamlit as st

from auth.roles import Permission
from ui.auth_gate import guard
from ui.i18n import t
from ui.state import container, lang

guard(Permission.VIEW_SETTINGS)
L = lang()
st.title(t("settings", L))
st.caption(t("settings_caption", L))
st.json(container().settings.model_dump(mode="json"), expanded=2)
