"""What admins rely on: editions replace editions without losing history, unchanged files
cost nothing, a folder sync withdraws what is gone, bad files fail alone, and a killed run
leaves the previous version serving."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from datetime import date

import pytest

from core.schema import UNRESTRICTED, SearchFilter
from ingest.registry import Registry
from ingest.service import IngestOptions
from qa.service import Requester
from tests.conftest import EN_MD, JA_PDF, SAMPLES, corpus_path
from tests.helpers import EVERYTHING, REPO, cli_env, run_json

V2 = SAMPLES / "editions" / "ja_account_opening_manual_v2.pdf"
EVERYONE = SearchFilter(access_groups=UNRESTRICTED)


def test_a_new_edition_supersedes_the_old_one_which_stays_queryable_as_of_its_dates(state_container):
    first = state_container.ingest.ingest([JA_PDF], IngestOptions(effective_from=date(2024, 4, 1))).documents[0]
    second = state_container.ingest.ingest([V2], IngestOptions(effective_from=date(2025, 4, 1), doc_key=first.doc_id))
    second = second.documents[0]
    assert (first.status, second.status) == ("ingested", "updated")
    assert second.doc_id == first.doc_id and second.version == 2
    assert second.replaces is not None and second.replaces.version == 1
    assert first.embedded == first.chunks and 0 < second.embedded < second.chunks  # unchanged text: cached
    versions = {v.version: v for v in state_container.registry.versions_of(first.doc_id)}
    assert versions[1].status == "superseded" and versions[1].effective_to == date(2025, 4, 1)
    assert versions[2].status == "active"

    now = state_container.retrieval.retrieve("贈答品を受け取ってよい金額の上限は？", EVERYONE, k=5)
    assert {h.version for h in now} == {2}
    assert "3,000円" in " ".join(h.text for h in now) and "5,000円" not in " ".join(h.text for h in now)
    past = state_container.retrieval.retrieve("贈答品を受け取ってよい金額の上限は？",
                                        SearchFilter(access_groups=UNRESTRICTED, as_of=date(2024, 12, 1)), k=5)
    assert {h.version for h in past} == {1} and "5,000円" in " ".join(h.text for h in past)


def test_the_old_edition_never_reaches_the_answer_context(container):
    [first] = container.ingest.ingest([JA_PDF], IngestOptions(effective_from=date(2024, 4, 1))).documents
    container.ingest.ingest([V2], IngestOptions(effective_from=date(2025, 4, 1), doc_key=first.doc_id))
    staff_filter = Requester("staff", ()).search_filter()
    hits = container.retrieval.retrieve("健康保険証は本人確認書類として使えますか？", staff_filter, k=8)
    assert hits and all(h.version == 2 for h in hits)
    assert all("健康保険証（補完書類と併用する場合に限る。）" not in h.text for h in hits)


def test_identical_file_under_another_name_is_unchanged_and_costs_nothing(state_container, tmp_path):
    state_container.ingest.ingest([JA_PDF])
    copy = tmp_path / "renamed copy.pdf"
    shutil.copy(JA_PDF, copy)
    stages = []
    [item] = state_container.ingest.ingest([copy], progress=lambda p: stages.append(p.stage)).documents
    assert item.status == "unchanged" and item.version == 1 and item.embedded == 0
    assert stages == ["reading", "done"]  # recognised by its hash: not parsed, chunked, embedded or stored


def test_sync_makes_the_store_match_a_folder_and_does_no_work_the_second_time(tmp_path, state_env):
    folder, data = tmp_path / "docs", tmp_path / "data"
    folder.mkdir()
    shutil.copy(JA_PDF, folder)
    shutil.copy(EN_MD, folder)
    code, first = run_json("ingest", "--sync", str(folder), "--json", data_dir=data)
    assert code == 0 and sorted(d["status"] for d in first["documents"]) == ["ingested", "ingested"]
    code, second = run_json("ingest", "--sync", str(folder), "--json", data_dir=data)
    assert code == 0 and [d["status"] for d in second["documents"]] == ["unchanged", "unchanged"]
    (folder / EN_MD.name).unlink()
    code, third = run_json("ingest", "--sync", str(folder), "--json", data_dir=data)
    assert code == 0
    assert sorted(d["status"] for d in third["documents"]) == ["unchanged", "withdrawn"]
    code, listing = run_json("ingest", "--list", "--json", data_dir=data)
    statuses = {d["source"]: d["status"] for d in listing["documents"]}
    assert statuses == {JA_PDF.name: "active", EN_MD.name: "withdrawn"}
    gone = next(d["doc_id"] for d in listing["documents"] if d["source"] == EN_MD.name)
    assert run_json("ingest", "--delete", gone, "--json", data_dir=data) == (0, {"doc_id": gone, "status": "deleted"})
    code, listing = run_json("ingest", "--list", "--json", data_dir=data)
    assert [d["source"] for d in listing["documents"]] == [JA_PDF.name]


def test_each_bad_file_gets_its_own_clear_error_and_nothing_stored_is_lost(tmp_path):
    from pypdf import PdfReader, PdfWriter

    data, bad = tmp_path / "data", tmp_path / "bad"
    bad.mkdir()
    assert run_json("ingest", str(EN_MD), "--json", data_dir=data)[0] == 0
    (bad / "empty.txt").write_bytes(b"")
    (bad / "image.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    (bad / "truncated.pdf").write_bytes(JA_PDF.read_bytes()[:3000])
    writer = PdfWriter(clone_from=PdfReader(JA_PDF))
    writer.encrypt("secret-password", algorithm="AES-256")
    with open(bad / "locked.pdf", "wb") as fh:
        writer.write(fh)
    (bad / "big.txt").write_text("大きな文書です。" * 200_000, encoding="utf-8")
    (bad / "scan.pdf").write_bytes(_blank_pdf())
    (bad / "na\x07me.md").write_text("# 制御文字\n\n本文です。", encoding="utf-8")
    shutil.copy(JA_PDF, bad / "good.pdf")
    code, out = run_json("ingest", str(bad), "--json", data_dir=data, CQA_INGEST__MAX_FILE_MB="2")
    assert code == 1
    by_name = {d["path"].rsplit("/", 1)[-1]: d for d in out["documents"]}
    expected = {
        "empty.txt": "empty", "image.pdf": "unsupported", "truncated.pdf": "damaged", "locked.pdf": "password",
        "big.txt": "larger than", "scan.pdf": "OCR",
    }
    for name, phrase in expected.items():
        assert by_name[name]["status"] == "failed" and phrase in by_name[name]["error"], by_name[name]
    assert by_name["good.pdf"]["status"] == "ingested"
    assert by_name["na\x07me.md"]["status"] == "ingested"
    code, listing = run_json("ingest", "--list", "--json", data_dir=data)
    assert {d["source"] for d in listing["documents"]} == {EN_MD.name, "good.pdf", "name.md"}
    code, hits = run_json("retrieval", "gift limit", "--json", data_dir=data)
    assert hits["hits"][0]["source"] == EN_MD.name


def _blank_pdf() -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_run_killed_mid_document_leaves_the_previous_version_serving(tmp_path, state_env):
    data = tmp_path / "data"
    big = tmp_path / "manual.md"
    big.write_text("# 事務マニュアル\n\n## 第1章 総則\n\n旧版の規定です。受付は窓口で行う。\n", encoding="utf-8")
    assert run_json("ingest", str(big), "--json", data_dir=data)[0] == 0
    article = "## 第{i}条\n\n新版の規定第{i}条です。手続は所定の様式で行い、記録を保存する。\n\n"
    body = "".join(article.format(i=i) for i in range(1, 4000))
    big.write_text("# 事務マニュアル\n\n" + body, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "ingest", str(big)], cwd=REPO, env=cli_env(data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    registry = Registry(state_env or data / "registry.sqlite3")
    deadline = time.time() + 120
    while time.time() < deadline:
        if registry.pending():
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the second run never started writing")
    registry.close()
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    code, hits = run_json("retrieval", "受付は窓口で行う", "--json", data_dir=data)
    assert code == 0 and hits["hits"] and all(h["version"] == 1 for h in hits["hits"])
    code, out = run_json("ingest", str(big), "--json", data_dir=data)
    assert code == 0 and out["documents"][0]["status"] == "updated" and out["documents"][0]["version"] == 2
    code, listing = run_json("ingest", "--list", "--json", data_dir=data)
    assert sorted((d["version"], d["status"]) for d in listing["documents"]) == [(1, "superseded"), (2, "active")]


def test_ingest_and_withdraw_are_on_the_audit_trail_and_cited_pages_can_be_opened(state_container):
    import io

    from pypdf import PdfReader

    [item] = state_container.ingest.ingest([JA_PDF], actor="admin1").documents
    state_container.ingest.withdraw(item.doc_id, actor="admin1")
    actions = [(r.user, r.action) for r in state_container.audit.search(user="admin1", reader=EVERYTHING)]
    assert ("admin1", "ingest") in actions and ("admin1", "withdraw") in actions
    assert state_container.audit.verify().ok
    page = state_container.ingest.page_pdf(item.doc_id, 1, 3, SearchFilter(access_groups=()))
    assert page and "支払等報告書" in PdfReader(io.BytesIO(page)).pages[0].extract_text()


def test_uploads_are_kept_under_safe_names_and_a_name_that_cannot_be_one_fails_alone(state_container):
    from ingest.service import Upload

    uploads = [Upload("...", b"# x\n\ntext"), Upload("..\\..\\etc\\手順書.md", EN_MD.read_bytes()),
               Upload("empty.txt", b"")]
    report = state_container.ingest.ingest_uploads(uploads, actor="admin1")
    assert [(d.status, d.path.rsplit("/", 1)[-1]) for d in report.documents] == [
        ("failed", "..."), ("ingested", "手順書.md"), ("failed", "empty.txt")]
    assert "empty after removing unsafe characters" in report.documents[0].error
    assert (state_container.settings.data_dir / "uploads" / "手順書.md").read_bytes() == EN_MD.read_bytes()
    assert [v.source for v in state_container.registry.active()] == ["手順書.md"]


@pytest.mark.corpus
def test_a_new_edition_of_a_real_guideline_embeds_only_its_changed_chunks(tmp_path):
    """The ingest benchmark's re-load case, on the FSA guideline: the same PDF less one page becomes
    version 2 and reuses the vectors of every chunk whose text did not change."""
    corpus_path("ja", "fsa_amlcft")
    code, out = run_json("bench.ingest", "--set", "ja", "--limit", "1", "--new-edition", "--json",
                         data_dir=tmp_path)
    assert code == 0, out
    ours, edition = out["ja"]["ours"], out["ja"]["ours"]["new_edition"]
    assert ours["embedded"] == ours["chunks"] and not ours["failed"]
    assert edition["updated"] == 1 and not edition["failed"] and edition["pages"] == ours["pages"] - 1
    assert 0 < edition["embedded"] < edition["chunks"] / 4
    assert out["ja"]["baseline_new_edition"]["pages"] == edition["pages"]
