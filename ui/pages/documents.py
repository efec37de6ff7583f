"""Documents page (admins): upload and ingest or re-ingest a server folder, watch progress, see versions,
withdraw or delete."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from auth.roles import Permission
from core.errors import CQAError
from core.schema import PUBLIC_GROUP
from core.text import printable
from ingest.ocr import SKIPPED as OCR_SKIPPED
from ingest.service import IngestOptions, Upload
from ui.auth_gate import guard
from ui.errors import message_text, show_error
from ui.i18n import code_label, t
from ui.state import container, lang
from ui.uploader import file_uploader

user = guard(Permission.INGEST)
L = lang()
services = container()
st.title(t("documents", L))

with st.form("upload", clear_on_submit=True):
    files = file_uploader(t("upload", L), L, accept_multiple_files=True)
    folder = st.text_input(t("sync_folder", L))
    c1, c2, c3 = st.columns(3)
    doc_type = c1.selectbox(t("doc_type", L), ["auto", "regulation", "guidance", "manual"],
                            format_func=lambda k: t(f"doc_type_{k}", L))
    effective = c2.date_input(t("effective_from", L), value=None)
    groups = c3.text_input(t("access_groups", L))
    submitted = st.form_submit_button(t("ingest_button", L))


# Where each ingestion stage starts, as a share of one file's progress bar (done and failed fill it).
STAGE_SHARE = {"reading": 0.05, "chunking": 0.3, "embedding": 0.4, "storing": 0.9}


def label(prefix: str, code: str) -> str:
    return code_label(prefix, code, L)


def status_label(status: str) -> str:
    return label("doc_status", status)


def error_label(item) -> str:
    """Why a file failed, in the user's language (its message key), printable (a file name may be hostile)."""
    return printable(message_text(item.error_key, item.error_params, item.error or "", L)) if item.error else ""


def reason_label(reason: str) -> str:
    """Why a file is a stored document's edition ("same path", "reading changed", ...), in the user's language."""
    return label("edition_reason", reason.replace(" ", "_"))


def replaced(match) -> str:
    """The version an ingested file superseded, and why it is that document's."""
    if match is None:
        return ""
    return f"{match.label()} ({reason_label(match.reason)})" if match.reason else match.label()


def show_report(report) -> None:
    rows = [{t("doc_col_source", L): printable(Path(d.path).name), t("status", L): status_label(d.status),
             t("doc_col_version", L): d.version, t("doc_col_chunks", L): d.chunks,
             t("doc_col_embedded", L): d.embedded, t("replaces", L): replaced(d.replaces),
             t("doc_col_error", L): error_label(d)} for d in report.documents]
    st.table(pd.DataFrame(rows))
    for d in report.documents:
        if d.status == "failed":
            st.error(f"{printable(Path(d.path).name)}: {error_label(d)}")
        if any(w.startswith(OCR_SKIPPED) for w in d.warnings):
            st.warning(t("ocr_skipped", L, name=printable(Path(d.path).name)))


if submitted and (files or folder.strip()):
    options = IngestOptions(
        doc_type=None if doc_type == "auto" else doc_type,
        effective_from=effective,
        access=tuple(g.strip() for g in groups.split(",") if g.strip()),
    )
    overall = st.progress(0.0, text="")
    current = st.progress(0.0, text="")

    def show(p) -> None:
        name = printable(Path(p.path).name)
        overall.progress(p.file_index / max(p.file_count, 1), text=f"{p.file_index + 1} / {p.file_count}")
        stage = label("ingest_stage", p.stage)
        if p.ocr is not None:  # scanned pages: one step per page, and the time left at the pace so far
            seconds = int(p.ocr.seconds_left) if p.ocr.done else None
            left = t("ocr_estimating", L) if seconds is None else f"{seconds // 60}:{seconds % 60:02d}"
            current.progress(p.ocr.done / max(p.ocr.total, 1),
                             text=t("ocr_pages", L, name=name, done=p.ocr.done, total=p.ocr.total, left=left))
            return
        current.progress(STAGE_SHARE.get(p.stage, 1.0), text=f"{name}: {stage}")

    if folder.strip():  # as `python -m ingest --sync DIR FILE...`: the folder first, then the uploads
        try:
            show_report(services.ingest.sync(Path(folder.strip()), options, show, actor=user.name))
        except CQAError as exc:
            show_error(exc)
    if files:
        uploads = [Upload(f.name, f.getvalue()) for f in files]
        show_report(services.ingest.ingest_uploads(uploads, options, show, actor=user.name))
    overall.progress(1.0, text="")

suggestions = services.ingest.suggestions()
if suggestions:
    st.subheader(t("suggestions", L))
for suggestion, new, stored in suggestions:
    with st.container(border=True):
        st.write(t("suggestion_text", L, new=new.title, source=new.source, old=stored.title, version=stored.version,
                   reason=reason_label(suggestion.reason),
                   overlap=f"{suggestion.overlap:.0%}"))
        c1, c2 = st.columns(2)
        key = f"{suggestion.doc_id}-{suggestion.of_doc_id}"
        if c1.button(t("confirm_edition", L), key=f"confirm-{key}"):
            merged = services.ingest.confirm_edition(suggestion.doc_id, suggestion.of_doc_id, actor=user.name)
            st.session_state["documents_notice"] = t("edition_confirmed", L, title=merged.title,
                                                     version=merged.version)
            st.rerun()
        if c2.button(t("dismiss", L), key=f"dismiss-{key}"):
            services.ingest.dismiss_suggestion(suggestion.doc_id, suggestion.of_doc_id, actor=user.name)
            st.rerun()
if notice := st.session_state.pop("documents_notice", None):
    st.success(notice)

versions = services.registry.all_versions()
round_ = st.session_state.get("documents_round", 0)  # bumped after a withdrawal or delete: fresh choices
if versions:
    frame = pd.DataFrame(
        [
            {
                "ID": v.doc_id,
                t("doc_col_title", L): v.title,
                t("doc_col_version", L): v.version,
                t("status", L): status_label(v.status),
                t("doc_col_type", L): t(f"doc_type_{v.doc_type}", L) if v.doc_type else "",
                t("doc_col_source", L): v.source,
                t("doc_col_chunks", L): v.chunks,
                t("doc_col_pages", L): v.pages,
                t("doc_col_from", L): v.effective_from,
                t("doc_col_to", L): v.effective_to,
                t("doc_col_access", L): ",".join(t("everyone", L) if g == PUBLIC_GROUP else g for g in v.access),
                t("doc_col_warnings", L): len(v.warnings),
            }
            for v in versions
        ]
    )
    st.table(frame)
    active = {f"{v.title} (v{v.version})": v.doc_id for v in versions if v.status == "active"}
    if active:
        target = st.selectbox(t("withdraw", L), list(active), index=None, placeholder=t("delete_pick", L),
                              key=f"withdraw-{round_}")
        if st.button(t("withdraw", L), disabled=target is None):
            withdrawn = services.ingest.withdraw(active[target], actor=user.name)
            st.session_state["documents_notice"] = t("withdrawn_done", L, title=withdrawn.title)
            st.session_state.documents_round = round_ + 1
            st.rerun()
    earlier = {f"{v.title} v{v.version} ({v.status})": v for v in versions if v.status in ("superseded", "withdrawn")}
    if earlier:
        with st.expander(t("restore", L)):
            chosen = earlier[st.selectbox(t("restore_version", L), list(earlier))]
            if st.button(t("restore", L)):
                restored = services.ingest.restore(chosen.doc_id, chosen.version, actor=user.name)
                st.session_state["documents_notice"] = t("restored", L, title=restored.title,
                                                         version=restored.version)
                st.rerun()
    documents = {f"{v.title} ({v.doc_id})": v for v in versions}
    # open while a document is chosen: a rerun that redraws the page above must not fold the confirmation away
    with st.expander(t("delete", L), expanded=st.session_state.get(f"delete-doc-{round_}") is not None):
        # Nothing is chosen or ticked at first, and again after each delete (new widget keys): the next
        # document is never one click from deletion.
        doomed = st.selectbox(t("delete_document", L), list(documents), index=None,
                              placeholder=t("delete_pick", L), key=f"delete-doc-{round_}")
        sure = st.checkbox(t("delete_confirm", L), key=f"delete-sure-{round_}", disabled=doomed is None)
        if st.button(t("delete", L), disabled=not (sure and doomed)):
            gone = documents[doomed]
            services.ingest.delete(gone.doc_id, actor=user.name)
            st.session_state["documents_notice"] = t("deleted_done", L, title=gone.title)
            st.session_state.documents_round = round_ + 1
            st.rerun()
else:
    st.info(t("no_documents", L))
