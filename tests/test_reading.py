"""An upgrade reaches the files that did not change: a stored version read or chunked otherwise than now is read
again when its file is ingested again, as a new version of the same document with its dates, access and title;
and a change to what the readers and the chunker make of a file cannot land without raising ``READING_VERSION``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
from datetime import date

import pytest

import ingest.reading
from ingest.reading import READING_VERSION, reading_stamp
from ingest.service import READ_AGAIN_READING, IngestOptions
from settings.model import IngestSettings
from tests.conftest import EN_MD, JA_PDF, SAMPLES, corpus_path, make_container
from tests.helpers import run_json

V2 = SAMPLES / "editions" / "ja_account_opening_manual_v2.pdf"


def test_a_version_read_by_an_older_release_is_read_again_as_a_new_version_of_its_document(
        state_container, tmp_path, monkeypatch):
    options = IngestOptions(effective_from=date(2024, 4, 1), access=("compliance",), title="口座開設マニュアル")
    [first] = state_container.ingest.ingest([JA_PDF], options).documents
    assert state_container.registry.get(first.doc_id, 1).reading == reading_stamp(IngestSettings())

    monkeypatch.setattr(ingest.reading, "READING_VERSION", READING_VERSION + 1)  # a release that reads otherwise
    moved = tmp_path / "moved" / "manual.pdf"  # the file has moved since: the content says which document it is
    moved.parent.mkdir()
    shutil.copy(JA_PDF, moved)
    [planned] = state_container.ingest.plan([moved]).documents
    assert (planned.status, planned.doc_id) == ("would-update", first.doc_id)
    assert planned.replaces is not None and planned.replaces.reason == READ_AGAIN_READING

    [again] = state_container.ingest.ingest([moved]).documents  # on defaults: nothing typed
    assert (again.status, again.doc_id, again.version) == ("updated", first.doc_id, 2)
    assert again.replaces is not None and (again.replaces.version, again.replaces.reason) == (1, READ_AGAIN_READING)
    assert again.embedded == 0  # the same text: every vector from the embedding cache
    versions = {v.version: v for v in state_container.registry.versions_of(first.doc_id)}
    assert versions[1].status == "superseded" and versions[2].status == "active"
    kept = versions[2]
    assert (kept.title, kept.effective_from, kept.access) == ("口座開設マニュアル", date(2024, 4, 1), ("compliance",))
    assert kept.reading == reading_stamp(IngestSettings()) != versions[1].reading
    assert state_container.ingest.ingest([moved, JA_PDF]).documents[0].status == "unchanged"  # read once only


def test_other_chunk_settings_read_the_stored_files_again_and_other_settings_do_not(tmp_path):
    data = tmp_path / "data"
    first = make_container(data)
    try:
        [stored] = first.ingest.ingest([EN_MD]).documents
    finally:
        first.close()
    for ingest_settings, status in (({"max_file_mb": 50, "ocr_dpi": 200}, "unchanged"),
                                    ({"chunk_tokens": 120}, "updated")):
        container = make_container(data, ingest=ingest_settings)
        try:
            [item] = container.ingest.ingest([EN_MD]).documents
        finally:
            container.close()
        assert (item.status, item.doc_id) == (status, stored.doc_id), ingest_settings
    assert item.chunks > stored.chunks  # 120-token chunks: more of them


def test_an_old_edition_ingested_again_after_an_upgrade_is_not_brought_back(state_container, monkeypatch):
    [first] = state_container.ingest.ingest([JA_PDF]).documents
    state_container.ingest.ingest([V2], IngestOptions(doc_key=first.doc_id))
    monkeypatch.setattr(ingest.reading, "READING_VERSION", READING_VERSION + 1)
    [old] = state_container.ingest.ingest([JA_PDF]).documents
    assert (old.status, old.version) == ("unchanged", 1)  # superseded stays superseded: --restore brings it back
    assert state_container.registry.active_version(first.doc_id).version == 2


def test_versions_stored_before_the_reading_was_recorded_are_read_again_once(tmp_path):
    """A registry from before migration registry_0003: its versions have reading '' (not known)."""
    data = tmp_path / "data"
    code, first = run_json("ingest", str(JA_PDF), "--json", data_dir=data)
    assert code == 0 and first["documents"][0]["status"] == "ingested"
    with sqlite3.connect(data / "registry.sqlite3") as conn:
        conn.execute("UPDATE documents SET reading = ''")
    conn.close()
    code, second = run_json("ingest", str(JA_PDF), "--json", data_dir=data)
    assert code == 0 and second["documents"][0]["status"] == "updated"
    assert second["documents"][0]["replaces"]["reason"] == READ_AGAIN_READING
    code, third = run_json("ingest", str(JA_PDF), "--json", data_dir=data)
    assert code == 0 and third["documents"][0]["status"] == "unchanged"


# What READING_VERSION makes of these files: the chunks' text, sections, pages and page marks, hashed.
# Changed reading with the same READING_VERSION fails below; raise it, then record what the test prints.
RECORDED = {
    "samples": (1, "713f42c21c90fc2b"),
    "corpus": (1, "ef5f188d07c58d5d"),
}
CORPUS_FILES = (
    ("en", "aml_regulatory", "fatf", "FATF-40-Recommendations.pdf"),
    ("en", "aml_regulatory", "jmlsg", "JMLSG-Part-I.pdf"),
    ("ja", "fsa_amlcft", "211122_amlcft_guidelines.pdf"),
    ("ja", "egov_laws_2013", "text", "犯罪による収益の移転防止に関する法律.txt"),
    ("ja", "egov_laws_2013", "html", "犯罪による収益の移転防止に関する法律.html"),
    ("en", "obliqa", "regulatory_documents_txt", "AML_VER09.211223.txt"),
)


def _reading_fingerprint(container, paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        doc, drafts = container.ingest._read(path, lambda *_: None)
        digest.update(json.dumps([doc.page_count, [dataclasses.asdict(d) for d in drafts]],
                                 ensure_ascii=False, sort_keys=True).encode())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("files", sorted(RECORDED))
def test_what_the_readers_and_the_chunker_make_changes_only_with_the_reading_version(files, container):
    if files == "samples":
        paths = [JA_PDF, EN_MD, V2, SAMPLES / "editions" / "en_gifts_and_aml_manual.docx"]
    else:
        paths = [corpus_path(*parts) for parts in CORPUS_FILES]
    fingerprint = _reading_fingerprint(container, paths)
    version, recorded = RECORDED[files]
    assert (version, recorded) == (READING_VERSION, fingerprint), (
        f"what the readers and the chunker make of the {files} files has changed (now {fingerprint}): stored "
        "versions keep the old chunks until read again. Raise READING_VERSION in ingest/reading.py, so that "
        "re-ingesting reads them again, and record the new version and fingerprint in RECORDED."
    )
