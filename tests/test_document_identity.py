"""Every document stays itself: a file is a new edition only when it comes from the same path, carries an
explicit --doc-key, or an admin confirms a suggested match. Equal titles never merge documents."""

from __future__ import annotations

import shutil

from core.schema import UNRESTRICTED, SearchFilter
from ingest.service import IngestOptions
from tests.conftest import JA_PDF, SAMPLES, corpus_path
from tests.helpers import EVERYTHING, run_cli, run_json

V2 = SAMPLES / "editions" / "ja_account_opening_manual_v2.pdf"
EVERYONE = SearchFilter(access_groups=UNRESTRICTED)
MANUAL = "# 事務手続\n\n## 第1条 受付\n\n{body}\n"


def _manual(path, body: str):
    path.write_text(MANUAL.format(body=body), encoding="utf-8")
    return path


def test_forty_regulations_whose_first_line_is_the_same_heading_stay_forty_documents(container, tmp_path):
    """The ADGM folder as an admin ingests it (no --title): 17 files open with "1. INTRODUCTION"; each is
    its own document. The files are cut to their first 4,000 characters to keep the test fast."""
    source = corpus_path("en", "obliqa", "regulatory_documents_txt")
    folder = tmp_path / "adgm"
    folder.mkdir()
    for path in sorted(source.glob("*.txt")):
        (folder / path.name).write_text(path.read_text(encoding="utf-8")[:4000], encoding="utf-8")
    report = container.ingest.ingest([folder])
    assert not report.failed, [d.error for d in report.documents if d.error]
    active = container.registry.active()
    assert len(active) == 40 and len({v.doc_id for v in active}) == 40
    assert not [v.title for v in active if "INTRODUCTION" in v.title.upper()]
    assert all(d.suggested_edition_of is None for d in report.documents)


def test_the_three_jmlsg_parts_stay_three_documents(container, tmp_path):
    """The three parts share their PDF title; their first pages (decrypted, same file names) stay apart."""
    from pypdf import PdfReader, PdfWriter

    folder = tmp_path / "jmlsg"
    folder.mkdir()
    for path in sorted(corpus_path("en", "aml_regulatory", "jmlsg").glob("*.pdf")):
        reader = PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("")
        writer = PdfWriter()
        for page in reader.pages[:4]:
            writer.add_page(page)
        writer.add_metadata({k: v for k, v in (reader.metadata or {}).items() if isinstance(v, str)})
        with open(folder / path.name, "wb") as fh:
            writer.write(fh)
    report = container.ingest.ingest([folder])
    assert [d.status for d in report.documents] == ["ingested"] * 3
    assert len({d.doc_id for d in report.documents}) == 3 == len(container.registry.active())


def test_equal_titles_at_different_paths_are_different_documents(state_container, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _manual(tmp_path / "a" / "manual.md", "口座開設の受付は窓口で行う。本人確認書類の原本を確認する。")
    b = _manual(tmp_path / "b" / "manual.md", "両替の受付は専用端末で行う。外貨の在庫を毎日点検する。")
    report = state_container.ingest.ingest([a, b])
    assert [d.status for d in report.documents] == ["ingested", "ingested"]
    assert report.documents[0].doc_id != report.documents[1].doc_id
    assert report.documents[1].suggested_edition_of is None  # same title and name, different text
    assert not state_container.ingest.suggestions()


def test_the_same_path_ingested_again_is_a_new_edition_that_says_what_it_replaces(state_container, tmp_path):
    path = _manual(tmp_path / "manual.md", "受付は窓口で行う。")
    [first] = state_container.ingest.ingest([path]).documents
    _manual(path, "受付は窓口または郵送で行う。")
    [second] = state_container.ingest.ingest([path]).documents
    assert second.status == "updated" and second.doc_id == first.doc_id and second.version == 2
    assert second.replaces is not None and second.replaces.label() == "事務手続 v1"
    assert second.replaces.reason == "same path"
    ingests = [r.detail for r in state_container.audit.search(action="ingest", reader=EVERYTHING)]
    assert ingests[0]["replaces"]["version"] == 1  # newest first


def test_a_renamed_edition_is_suggested_not_merged_and_an_admin_confirms_it(state_container):
    [first] = state_container.ingest.ingest([JA_PDF]).documents
    [second] = state_container.ingest.ingest([V2]).documents
    assert second.status == "ingested" and second.doc_id != first.doc_id  # two documents until confirmed
    match = second.suggested_edition_of
    assert match is not None and match.doc_id == first.doc_id and match.reason == "same title"
    assert 0.5 <= match.overlap < 1.0
    [(suggestion, new, stored)] = state_container.ingest.suggestions()
    assert (suggestion.doc_id, new.source, stored.source) == (second.doc_id, V2.name, JA_PDF.name)

    merged = state_container.ingest.confirm_edition(second.doc_id, first.doc_id, actor="admin1")
    assert (merged.doc_id, merged.version, merged.source) == (first.doc_id, 2, V2.name)
    assert [v.doc_id for v in state_container.registry.active()] == [first.doc_id]
    assert not state_container.registry.versions_of(second.doc_id) and not state_container.ingest.suggestions()
    hits = state_container.retrieval.retrieve("贈答品を受け取ってよい金額の上限は？", EVERYONE, k=5)
    assert {(h.doc_id, h.version) for h in hits} == {(first.doc_id, 2)}
    # the read of the new document's chunks, whoever may read them, is on the trail before the confirmation
    trail = state_container.audit.search(user="admin1", reader=EVERYTHING)
    assert [r.action for r in trail] == ["confirm_edition", "unrestricted_scope"]
    # the confirmed file's path now belongs to the merged document
    assert state_container.ingest.plan([V2]).documents[0].status == "unchanged"


def test_a_dismissed_suggestion_leaves_two_documents(state_container):
    [first] = state_container.ingest.ingest([JA_PDF]).documents
    [second] = state_container.ingest.ingest([V2]).documents
    state_container.ingest.dismiss_suggestion(second.doc_id, first.doc_id, actor="admin1")
    assert not state_container.ingest.suggestions() and len(state_container.registry.active()) == 2


def test_doc_key_names_a_stored_document_by_its_id(state_container, tmp_path):
    [first] = state_container.ingest.ingest([JA_PDF]).documents
    [second] = state_container.ingest.ingest([V2], IngestOptions(doc_key=first.doc_id)).documents
    assert (second.status, second.doc_id, second.replaces.reason) == ("updated", first.doc_id, "doc key")


def test_dry_run_lists_what_would_replace_what_and_writes_nothing(tmp_path):
    data, folder = tmp_path / "data", tmp_path / "docs"
    folder.mkdir()
    path = _manual(folder / "manual.md", "受付は窓口で行う。")
    shutil.copy(JA_PDF, folder)
    assert run_json("ingest", str(path), "--json", data_dir=data)[0] == 0
    _manual(path, "受付は窓口または郵送で行う。")
    code, plan = run_json("ingest", str(folder), "--dry-run", "--json", data_dir=data)
    assert code == 0
    by_name = {d["path"].rsplit("/", 1)[-1]: d for d in plan["documents"]}
    assert by_name["manual.md"]["status"] == "would-update"
    assert by_name["manual.md"]["replaces"]["title"] == "事務手続" and by_name["manual.md"]["replaces"]["version"] == 1
    assert by_name[JA_PDF.name]["status"] == "would-ingest"
    text = run_cli("ingest", str(folder), "--dry-run", data_dir=data).stdout
    assert "replaces 事務手続 v1 (same path)" in text
    code, listing = run_json("ingest", "--list", "--json", data_dir=data)
    assert [(d["source"], d["version"]) for d in listing["documents"]] == [("manual.md", 1)]


def test_restore_brings_back_an_earlier_version_and_is_audited(tmp_path, state_env):
    data = tmp_path / "data"
    path = _manual(tmp_path / "manual.md", "旧版：受付は窓口で行う。")
    code, first = run_json("ingest", str(path), "--json", data_dir=data)
    _manual(path, "新版：受付は郵送のみで行う。")
    assert run_json("ingest", str(path), "--json", data_dir=data)[1]["documents"][0]["version"] == 2
    doc_id = first["documents"][0]["doc_id"]
    code, restored = run_json("ingest", "--restore", doc_id, "1", "--json", data_dir=data)
    assert code == 0 and restored["status"] == "active" and restored["version"] == 1
    code, listing = run_json("ingest", "--list", "--json", data_dir=data)
    assert sorted((d["version"], d["status"]) for d in listing["documents"]) == [(1, "active"), (2, "superseded")]
    code, hits = run_json("retrieval", "受付", "--json", data_dir=data)
    assert {h["version"] for h in hits["hits"]} == {1} and "旧版" in hits["hits"][0]["text"]
    code, log = run_json("audit", "search", "--action", "restore", "--json", data_dir=data)
    assert [r["detail"]["replaced_version"] for r in log] == [2]
    again = run_cli("ingest", "--restore", doc_id, "1", data_dir=data)
    assert again.returncode != 0 and "already the active one" in again.stderr


def test_the_cli_lists_a_suggestion_and_confirms_it(tmp_path):
    data = tmp_path / "data"
    code, first = run_json("ingest", str(JA_PDF), "--json", data_dir=data)
    text = run_cli("ingest", str(V2), data_dir=data).stdout
    assert "looks like a new edition of" in text and "--confirm-edition" in text
    code, listed = run_json("ingest", "--suggestions", "--json", data_dir=data)
    [row] = listed["suggestions"]
    assert row["of_doc_id"] == first["documents"][0]["doc_id"] and row["reason"] == "same title"
    code, merged = run_json("ingest", "--confirm-edition", row["doc_id"], row["of_doc_id"], "--json", data_dir=data)
    assert code == 0 and (merged["doc_id"], merged["version"]) == (row["of_doc_id"], 2)
    assert run_json("ingest", "--suggestions", "--json", data_dir=data)[1] == {"suggestions": []}
