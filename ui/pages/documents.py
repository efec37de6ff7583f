"""Documents page (admins): upload and ingest, watch progress, see versions, withdraw."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from auth.roles import Permission
from core.text import safe_file_name
from ingest.service import IngestOptions
from ui.auth_gate import guard
from ui.i18n import t
from ui.state import container, lang

user = guard(Permission.INGEST)
L = lang()
services = container()
st.title(t("documents", L))

with st.form("upload", clear_on_submit=True):
    files = st.file_uploader(t("upload", L), accept_multiple_files=True)
    c1, c2, c3 = st.columns(3)
    doc_type = c1.selectbox(t("doc_type", L), ["(auto)", "regulation", "guidance", "manual"])
    effective = c2.date_input(t("effective_from", L), value=None)
    groups = c3.text_input(t("access_groups", L))
    submitted = st.form_submit_button(t("ingest_button", L))

if submitted and files:
    upload_dir = services.settings.data_dir / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    options = IngestOptions(
        doc_type=None if doc_type == "(auto)" else doc_type,
        effective_from=effective,
        access=tuple(g.strip() for g in groups.split(",") if g.strip()),
    )
    overall = st.progress(0.0, text="")
    results = []
    for i, f in enumerate(files):
        try:
            name = safe_file_name(f.name)
        except ValueError as exc:
            results.append({"file": f.name, "status": "failed", "error": str(exc)})
            continue
        path = upload_dir / name
        path.write_bytes(f.getbuffer())
        overall.progress(i / len(files), text=f"{name}")
        stages = st.empty()

        def show(p, stages=stages, name=name) -> None:
            stages.caption(f"{name}: {p.stage}")

        report = services.ingest.ingest([path], options, show, actor=user.name)
        for d in report.documents:
            results.append(
                {"file": name, "status": d.status, "version": d.version, "chunks": d.chunks, "error": d.error or ""}
            )
    overall.progress(1.0, text="")
    st.table(pd.DataFrame(results))
    for r in results:
        if r["status"] == "failed":
            st.error(f"{r['file']}: {r['error']}")

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
else:
    st.info(t("no_documents", L))
