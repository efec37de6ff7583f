"""Documents page (admins): upload and ingest or re-ingest a server folder, watch progress, see versions,
withdraw or delete."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from auth.roles import Permission
from core.errors import CQAError
from core.text import printable
from ingest.service import IngestOptions, Upload
from ui.auth_gate import guard
from ui.i18n import t
from ui.state import container, lang

user = guard(Permission.INGEST)
L = lang()
services = container()
st.title(t("documents", L))

with st.form("upload", clear_on_submit=True):
    files = st.file_uploader(t("upload", L), accept_multiple_files=True)
    folder = st.text_input(t("sync_folder", L))
    c1, c2, c3 = st.columns(3)
    doc_type = c1.selectbox(t("doc_type", L), ["(auto)", "regulation", "guidance", "manual"])
    effective = c2.date_input(t("effective_from", L), value=None)
    groups = c3.text_input(t("access_groups", L))
    submitted = st.form_submit_button(t("ingest_button", L))


# Where each ingestion stage starts, as a share of one file's progress bar (done and failed fill it).
STAGE_SHARE = {"reading": 0.05, "chunking": 0.3, "embedding": 0.4, "storing": 0.9}


def show_report(report) -> None:
    rows = [{"file": printable(Path(d.path).name), "status": d.status, "version": d.version, "chunks": d.chunks,
             "embedded": d.embedded, t("replaces", L): d.replaces.label() if d.replaces else "",
             "error": printable(d.error or "")} for d in report.documents]
    st.table(pd.DataFrame(rows))
    for r in rows:
        if r["status"] == "failed":
            st.error(f"{r['file']}: {r['error']}")


if submitted and (files or folder.strip()):
    options = IngestOptions(
        doc_type=None if doc_type == "(auto)" else doc_type,
        effective_from=effective,
        access=tuple(g.strip() for g in groups.split(",") if g.strip()),
    )
    overall = st.progress(0.0, text="")
    current = st.progress(0.0, text="")

    def show(p) -> None:
        name = printable(Path(p.path).name)
        overall.progress(p.file_index / max(p.file_count, 1), text=f"{p.file_index + 1} / {p.file_count}")
        current.progress(STAGE_SHARE.get(p.stage, 1.0), text=f"{name}: {p.stage}")

    if folder.strip():  # as `python -m ingest --sync DIR FILE...`: the folder first, then the uploads
        try:
            show_report(services.ingest.sync(Path(folder.strip()), options, show, actor=user.name))
        except CQAError as exc:
            st.error(str(exc))
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
                   reason=suggestion.reason, overlap=f"{suggestion.overlap:.0%}"))
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
if versions:
    frame = pd.DataFrame(
        [
            {
                "doc_id": v.doc_id,
                "title": v.title,
                "version": v.version,
                t("status", L): v.status,
                "type": v.doc_type,
                "source": v.source,
                "chunks": v.chunks,
                "pages": v.pages,
                "effective_from": v.effective_from,
                "effective_to": v.effective_to,
                "access": ",".join(v.access),
                "warnings": len(v.warnings),
            }
            for v in versions
        ]
    )
    st.table(frame)
    active = {f"{v.title} (v{v.version})": v.doc_id for v in versions if v.status == "active"}
    if active:
        target = st.selectbox(t("withdraw", L), list(active))
        if st.button(t("withdraw", L)):
            services.ingest.withdraw(active[target], actor=user.name)
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
    documents = {f"{v.title} ({v.doc_id})": v.doc_id for v in versions}
    with st.expander(t("delete", L)):
        doomed = st.selectbox(t("delete_document", L), list(documents))
        sure = st.checkbox(t("delete_confirm", L))
        if st.button(t("delete", L), disabled=not sure):
            services.ingest.delete(documents[doomed], actor=user.name)
            st.rerun()
else:
    st.info(t("no_documents", L))
