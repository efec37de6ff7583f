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
from ui.clock import day_start, local_time
from ui.i18n import code_label, t
from ui.state import container, lang, requester

PAGE_ROWS = 200
DETAIL_CHARS = 300
EXPORT_MAX_ROWS = 100_000
"""A browser download is held in the server's memory: larger exports go through the CLI."""

guard(Permission.VIEW_AUDIT)
L = lang()
log = container().audit
st.title(t("audit", L))
st.caption(t("audit_times_in", L, zone=container().settings.ui.time_zone))


def label(prefix: str, code: str) -> str:
    return code_label(prefix, code, L)


def value_text(value) -> str:
    if isinstance(value, bool):
        return t("yes" if value else "no", L)
    if isinstance(value, list | tuple):
        return ", ".join(value_text(v) for v in value) or "-"
    if isinstance(value, dict):
        return "{" + detail_text(value) + "}"
    return "-" if value is None else str(value)


def detail_text(detail: dict) -> str:
    """A record's detail as "field: value · field: value", field names in the user's language."""
    if detail.get("withheld"):
        return t("audit_withheld", L)
    return " · ".join(f"{label('field', k)}: {value_text(v)}" for k, v in detail.items())

def problem(message: str, detail: str, show=st.error) -> None:
    """A finding in the user's language; the checker's own technical words (record ids, paths, settings) below
    it as machine text."""
    show(message)
    if detail:
        st.code(detail, language=None, wrap_lines=True)


head = log.check_head()
if head.ok:
    st.success(t("audit_head_ok", L, id=head.anchored_id or 0, n=head.records))
else:
    problem(t("audit_tampered_short", L), head.reason)
for warning in head.warnings:
    problem(t("audit_unsigned", L) if not log.anchor.signed and "signed" in warning else t("audit_warning", L),
            warning, st.warning)
if st.button(t("audit_verify_all", L)):
    with st.spinner(t("audit_verifying", L)):
        started = time.perf_counter()
        st.session_state.audit_verified = (log.verify(), time.perf_counter() - started)
if "audit_verified" in st.session_state:
    full, seconds = st.session_state.audit_verified
    if full.ok:
        st.info(t("audit_verified_ok", L, n=full.records, seconds=seconds))
    else:
        problem(t("audit_tampered_short", L), full.reason)

c1, c2, c3 = st.columns(3)
who = c1.text_input(t("audit_user", L)).strip() or None
action = c2.selectbox(t("audit_action", L), ["", *sorted(ACTIONS)], format_func=lambda a: label("action", a) if a
                      else "") or None
text = c3.text_input(t("audit_text", L)).strip() or None
d1, d2 = st.columns(2)
# Days are the site's days: a day's records are those from its midnight to the next, in the site's zone.
since = day_start(d1.date_input(t("audit_from_site", L), value=None))
until = day_start(d2.date_input(t("audit_to_site", L), value=None), next_day=True)

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
    frame = pd.DataFrame([{"ID": r.id, t("audit_col_when", L): local_time(r.ts, seconds=True),
                           t("audit_user", L): r.user, t("audit_action", L): label("action", r.action),
                           t("audit_col_detail", L): detail_text(r.detail)[:DETAIL_CHARS]} for r in records])
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
