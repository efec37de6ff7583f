"""Evaluation page (compliance): replaced by the full dashboard once eval services land."""

import streamlit as st

from auth.roles import Permission
from ui.auth_gate import guard
from ui.i18n import t
from ui.state import lang

guard(Permission.EVALUATE)
st.title(t("evaluation", lang()))
