"""Audit trail (admins): search records and check the hash chain."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from audit.log import ACTIONS
from auth.roles import Permission
from ui.auth_gate import guard
from ui.i18n import t
from ui.state import container, lang

guard(Permission.VIEW_AUDIT)
L = lang()
log = container().audit
st.title(t("audit", L))

result = log.verify()
(st.success if result.ok else st.error)(f"verify: {'OK' if result.ok else result.reason} ({result.records} records)")

c1, c2, c3 = st.columns(3)
who = c1.text_input("user") or None
action = c2.selectbox("action", ["", *sorted(ACTIONS)])
text = c3.text_input("text") or None
records = log.search(user=who, action=action or None, text=text, limit=500)
frame = pd.DataFrame([{"id": r.id, "ts": r.ts, "user": r.user, "action": r.action,
                       "detail": str(r.detail)[:300]} for r in records])
st.dataframe(frame, hide_index=True, width="stretch")
buffer = io.StringIO()
log.export_csv(buffer, None, None)
st.download_button("CSV", buffer.getvalue(), file_name="audit.csv", mime="text/csv")
