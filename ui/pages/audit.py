"""Audit trail (admins): the newest records page by page with filters, a quick head check on
every view, the whole chain checked on request, and a CSV of the chosen days.

Every view reads a few rows, however long the log: the head check compares the newest record
with the head anchor, pages are keyset-paged by id, and the CSV is written only when the button
is pressed (bench/audit.py measures it on a million records)."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from audit.log import ACTIONS
from auth.roles import Permission
from ui.auth_gate import guard
from ui.i18n import t
from ui.state import container, lang, requester

PAGE_ROWS = 200
EXPORT_MAX_ROWS = 100_000
"""A browser download is held in the server's memory: larger exports go through the CLI."""

guard(Permission.VIEW_AUDIT)
L = lang()
log = container().audit
st.title(t("audit", L))

head = log.check_head()
if head.ok:
    st.success(t("audit_head_ok", L, id=head.anchored_id or 0, n=head.records))
else:
    st.error(t("audit_tampered", L, reason=head.reason))
for warning in head.warnings:
    st.warning(warning)
if st.button(t("audit_verify_all", L)):
    with st.spinner(t("audit_verifying", L)):
        started = time.perf_counter()
        st.session_state.audit_verified = (log.verify(), time.perf_counter() - started)
if "audit_verified" in st.session_state:
    full, seconds = st.session_state.audit_verified
    text = t("audit_verified", L, n=full.records, seconds=seconds, reason=full.reason)
    (st.info if full.ok else st.error)(text if full.ok else t("audit_tampered", L, reason=full.reason))

c1, c2, c3 = st.columns(3)
who = c1.text_input(t("audit_user", L)).strip() or None
action = c2.selectbox(t("audit_action", L), ["", *sorted(ACTIONS)]) or None
text = c3.text_input(t("audit_text", L)).strip() or None
d1, d2 = st.columns(2)
since = d1.date_input(t("audit_from", L), value=None)
until = d2.date_input(t("audit_to", L), value=None)

# Keyset paging: the ids below which each page starts; a change of filter starts over.
filters = (who, action, text, since, until)
if st.session_state.get("audit_filters") != filters:
    st.session_state.audit_filters = filters
    st.session_state.audit_pages = [None]
pages: list[int | None] = st.session_state.audit_pages
reader = requester().search_filter()  # answers drawn from documents outside the viewer's groups are withheld
records = log.search(user=who, action=action, text=text, since=since, until=until,
                     limit=PAGE_ROWS, before_id=pages[-1], reader=reader)
if records:
    frame = pd.DataFrame([{"id": r.id, "ts": r.ts, "user": r.user, "action": r.action,
                           "detail": str(r.detail)[:300]} for r in records])
    st.dataframe(frame, hide_index=True, width="stretch")
else:
    st.info(t("audit_none", L))
b1, b2 = st.columns(2)
if b1.button(t("audit_newest", L), disabled=len(pages) == 1):
    st.session_state.audit_pages = [None]
    st.rerun()
if b2.button(t("audit_older", L), disabled=len(records) < PAGE_ROWS):
    pages.append(records[-1].id)
    st.rerun()

n_export = log.count(since, until)
if n_export > EXPORT_MAX_ROWS:
    st.info(t("audit_export_too_many", L, n=n_export, max=EXPORT_MAX_ROWS))
else:
    def export() -> bytes:
        import io

        buffer = io.StringIO()
        log.export_csv(buffer, reader, since, until)
        return buffer.getvalue().encode("utf-8")

    st.download_button(t("audit_export", L, n=n_export), export, file_name="audit.csv", mime="text/csv",
                       on_click="ignore")
