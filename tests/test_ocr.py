"""Scanned pages are read: a page without a text layer is read by OCR (the real Tesseract), its chunks are cited
with ``ocr: true``, and without Tesseract a clear message says why while every other page and file is ingested."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.ocr import accuracy, comparable
from core.schema import SearchFilter
from ingest.__main__ import progress_bars
from ingest.ocr import OcrConfig, PageOcr, ocr_text, unavailable_reason
from qa.service import Requester
from settings import load_settings
from tests.conftest import EN_MD, JA_PDF, make_container

PUBLIC = SearchFilter(access_groups=())
STAFF = Requester("staff", ())
QUESTION = "口座開設時の本人確認書類は？"  # answered on page 1 of the sample manual


def need_tesseract() -> None:
    reason = unavailable_reason(OcrConfig())
    if reason is not None:
        pytest.skip(f"the OCR tests need Tesseract with its jpn and eng data (make ocr installs them): {reason}")


def scanned_copy(source: Path, target: Path, scanned: set[int], dpi: int = 300) -> Path:
    """``source`` with the pages ``scanned`` (1-based) replaced by their image alone, as a scanner makes them."""
    import pypdfium2

    original = pypdfium2.PdfDocument(source)
    copy = pypdfium2.PdfDocument.new()
    for index in range(len(original)):
        if index + 1 in scanned:
            image = original[index].render(scale=dpi / 72, grayscale=True).to_pil()
            buffer = io.BytesIO()
            image.save(buffer, format="PDF", resolution=dpi)
            copy.import_pages(pypdfium2.PdfDocument(buffer.getvalue()))
        else:
            copy.import_pages(original, [index])
    copy.save(target)
    return target


def page_text(pdf: Path, number: int) -> str:
    import pypdfium2

    return pypdfium2.PdfDocument(pdf)[number - 1].get_textpage().get_text_bounded()


def test_a_scanned_page_is_read_as_its_text_layer_says_with_progress_per_page(tmp_path):
    need_tesseract()
    scan = scanned_copy(JA_PDF, tmp_path / "scan.pdf", {1, 2})
    assert not page_text(scan, 1).strip() and not page_text(scan, 2).strip()  # really no text layer
    events = []
    result = PageOcr(OcrConfig(), events.append).read(scan.read_bytes(), [1, 2])
    assert [p.number for p in result.pages] == [1, 2]
    for page in result.pages:
        score, _ = accuracy(comparable(page_text(JA_PDF, page.number)), comparable(page.text))
        assert score >= 0.95, (page.number, score, page.text)
    assert "運転免許証" in result.pages[0].text
    assert [(e.page, e.done, e.total) for e in events] == [(1, 0, 2), (1, 1, 2), (2, 2, 2)]
    assert events[1].seconds_left > 0 and events[2].seconds_left == 0
    assert result.warnings == ["pages 1, 2 had no text layer and were read by OCR"]


def test_a_scanned_page_is_ingested_found_answered_and_cited_with_ocr(container, tmp_path):
    need_tesseract()
    scan = scanned_copy(JA_PDF, tmp_path / "scanned_manual.pdf", {1})
    events, shown = [], io.StringIO()
    bars = progress_bars(shown)  # python -m ingest's, on a terminal

    def progress(event) -> None:
        events.append(event)
        bars(event)

    [item] = container.ingest.ingest([scan], progress=progress).documents
    assert item.status == "ingested", item.error
    assert "page 1 had no text layer and was read by OCR" in item.warnings
    assert not any("needs OCR" in w for w in item.warnings)
    assert [(e.ocr.done, e.ocr.total) for e in events if e.stage == "ocr"] == [(0, 1), (1, 1)]
    assert [e.stage for e in events if e.ocr is None][:1] == ["reading"] and events[-1].stage == "done"
    assert re.search(r"  OCR:   0%\|.*\| 0/1 ", shown.getvalue()), shown.getvalue()
    assert re.search(r"  OCR: 100%\|.*\| 1/1 \[[0-9:]+<00:00", shown.getvalue()), shown.getvalue()  # time left

    hits = container.retrieval.retrieve(QUESTION, PUBLIC, k=5)
    assert any(h.page == 1 and h.ocr and "運転免許証" in h.text for h in hits), [(h.page, h.ocr) for h in hits]
    assert all(h.ocr == (h.page == 1) for h in hits), [(h.page, h.ocr) for h in hits]  # pages 2-4 have text

    answer = container.answers.ask(QUESTION, STAFF)
    cited = [c for c in answer.citations if c.verified and c.page == 1]
    assert cited, (answer.answer, answer.citations)
    assert all(c.ocr for c in cited) and not any(c.ocr for c in answer.citations if c.page != 1)


@pytest.mark.parametrize("missing", ["setting", "PATH"])
def test_without_tesseract_the_message_says_why_and_nothing_else_is_lost(tmp_path, monkeypatch, missing):
    data = tmp_path / "data"
    first = make_container(data)
    assert not first.ingest.ingest([EN_MD]).failed
    first.close()
    if missing == "PATH":
        empty = tmp_path / "bin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
        container = make_container(data)
        program = "(tesseract)"
    else:
        program = str(tmp_path / "no-tesseract-here")
        container = make_container(data, ingest={"ocr_command": program})
    try:
        mixed = scanned_copy(JA_PDF, tmp_path / "mixed.pdf", {1})
        scanned = scanned_copy(JA_PDF, tmp_path / "scanned.pdf", {1, 2, 3, 4}, dpi=72)
        report = container.ingest.ingest([mixed, scanned])
        by_name = {Path(d.path).name: d for d in report.documents}

        assert by_name["mixed.pdf"].status == "ingested", by_name["mixed.pdf"].error
        skipped = [w for w in by_name["mixed.pdf"].warnings if w.startswith("OCR skipped: ")]
        assert len(skipped) == 1 and program in skipped[0] and "make ocr" in skipped[0], skipped
        assert "page 1 has no text layer (needs OCR)" in by_name["mixed.pdf"].warnings
        assert by_name["mixed.pdf"].pages == 4

        failed = by_name["scanned.pdf"]
        assert failed.status == "failed" and "no extractable text" in failed.error and program in failed.error

        sources = {v.source for v in container.registry.active()}
        assert sources == {EN_MD.name, "mixed.pdf"}
        hits = container.retrieval.retrieve("What is the limit for gifts from customers?", PUBLIC, k=3)
        assert hits[0].source == EN_MD.name
        assert not any(h.ocr for h in container.retrieval.retrieve(QUESTION, PUBLIC, k=5))
    finally:
        container.close()


def test_missing_language_data_is_named_with_its_debian_package():
    need_tesseract()
    reason = unavailable_reason(OcrConfig(languages="jpn+xyz"))
    assert reason is not None and "no language data for xyz" in reason and "tesseract-ocr-xyz" in reason


@pytest.mark.parametrize(("setting", "value"), [
    ("ocr_languages", "jpn; rm -rf /"), ("ocr_languages", "-l jpn"), ("ocr_languages", ""),
    ("ocr_dpi", 20), ("ocr_dpi", 5000), ("ocr_command", ""), ("ocr_page_size", 3),
])
def test_bad_ocr_settings_are_refused(setting, value):
    with pytest.raises(ValidationError, match=setting):
        load_settings(ingest={setting: value})


def test_tesseract_text_is_typeset_as_japanese_without_box_sides():
    raw = ("| 【先進的な 取組み 事例】 |\n(1 ) 本人 確認 書類 (原本) を 確認する。\n制定日 : 2024年4月1日\n"
           "ID card | passport (see 12:30)")
    assert ocr_text(raw) == "【先進的な取組み事例】\n（1）本人確認書類（原本）を確認する。\n制定日：2024年4月1日\n" \
        "ID card | passport (see 12:30)"


def test_a_citation_read_by_ocr_says_so_in_both_languages():
    from core.schema import Citation
    from ui.answer_view import chip_label
    from ui.i18n import t

    cited = Citation(n=1, doc_id="d", source="scan.pdf", page=3, section="", quote="本人確認書類", title="要領")
    assert "OCR" not in chip_label(cited, "ja")
    for lang in ("ja", "en"):
        assert chip_label(cited.model_copy(update={"ocr": True}), lang).endswith(" · OCR")
    assert "文字認識" in t("ocr_source", "ja") and "read from a scanned page by OCR" in t("ocr_source", "en")


def test_a_program_that_is_not_a_working_tesseract_is_named(tmp_path):
    broken = tmp_path / "tesseract"
    broken.write_text("#!/bin/sh\necho 'error while loading shared libraries' >&2\nexit 127\n")
    broken.chmod(0o755)
    reason = unavailable_reason(OcrConfig(command=str(broken)))
    assert reason is not None and f"({broken}) does not run: exit status 127" in reason and "shared libraries" in reason


def test_a_page_tesseract_cannot_finish_in_time_is_named_and_the_others_are_read(tmp_path):
    need_tesseract()
    scan = scanned_copy(JA_PDF, tmp_path / "scan.pdf", {4}, dpi=150)
    impatient = PageOcr(OcrConfig(timeout_seconds=0.001)).read(scan.read_bytes(), [4])
    assert impatient.pages == [] and impatient.warnings == ["OCR failed on page 4: Tesseract took longer than 0.001 s"]
    patient = PageOcr(OcrConfig()).read(scan.read_bytes(), [4])
    assert [p.number for p in patient.pages] == [4] and "附則" in patient.pages[0].text


def test_a_pdf_pdfium_cannot_open_is_skipped_with_a_reason():
    need_tesseract()
    result = PageOcr(OcrConfig()).read(b"%PDF-1.4 not really a PDF %%EOF", [1])
    assert result.pages == [] and len(result.warnings) == 1
    assert result.warnings[0].startswith("OCR skipped: PDFium cannot open the PDF")


def test_a_blank_page_costs_no_tesseract_run(tmp_path):
    need_tesseract()
    import shutil

    import pypdfium2

    calls = tmp_path / "calls.log"
    counting = tmp_path / "tesseract"
    counting.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {shutil.which("tesseract")} "$@"\n')
    counting.chmod(0o755)
    blank = pypdfium2.PdfDocument.new()
    blank.new_page(595, 842)
    buffer = io.BytesIO()
    blank.save(buffer)
    result = PageOcr(OcrConfig(command=str(counting))).read(buffer.getvalue(), [1])
    assert [(p.number, p.text) for p in result.pages] == [(1, "")]
    assert result.warnings == ["OCR found no text on page 1"]
    assert calls.read_text().split("\n")[:-1] == ["--list-langs"]  # asked what it can read, never given a page


def test_a_file_whose_scans_were_skipped_is_read_again_once_tesseract_is_installed(tmp_path):
    need_tesseract()
    data, mixed = tmp_path / "data", scanned_copy(JA_PDF, tmp_path / "mixed.pdf", {1})
    without = make_container(data, ingest={"ocr_command": str(tmp_path / "no-tesseract-here")})
    [first] = without.ingest.ingest([mixed]).documents
    without.close()
    assert first.status == "ingested" and any(w.startswith("OCR skipped: ") for w in first.warnings)

    container = make_container(data)
    try:
        [again] = container.ingest.ingest([mixed]).documents
        assert (again.status, again.doc_id, again.version) == ("updated", first.doc_id, 2)
        assert "page 1 had no text layer and was read by OCR" in again.warnings
        assert not any(w.startswith("OCR skipped: ") for w in again.warnings)
        assert container.ingest.ingest([mixed]).documents[0].status == "unchanged"  # nothing left to read
        hits = container.retrieval.retrieve(QUESTION, PUBLIC, k=5)
        assert any(h.page == 1 and h.ocr and h.version == 2 for h in hits), [(h.page, h.ocr, h.version) for h in hits]
    finally:
        container.close()


def test_an_old_edition_whose_scans_were_skipped_is_not_brought_back_once_tesseract_is_installed(tmp_path):
    need_tesseract()
    from ingest.service import IngestOptions
    from tests.conftest import SAMPLES

    data, mixed = tmp_path / "data", scanned_copy(JA_PDF, tmp_path / "mixed.pdf", {1})
    without = make_container(data, ingest={"ocr_command": str(tmp_path / "no-tesseract-here")})
    try:
        [first] = without.ingest.ingest([mixed]).documents
        without.ingest.ingest([SAMPLES / "editions" / "ja_account_opening_manual_v2.pdf"],
                              IngestOptions(doc_key=first.doc_id))
    finally:
        without.close()
    container = make_container(data)
    try:
        [old] = container.ingest.ingest([mixed]).documents
        assert (old.status, old.version) == ("unchanged", 1)  # only the active version is read again
        assert container.registry.active_version(first.doc_id).version == 2
    finally:
        container.close()
