"""The next file is read while the current one is embedded: progress stays in file order, a duplicate or unchanged
file is not read, a bad file fails alone."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from ingest.read_ahead import ReadAhead
from ingest.service import IngestService
from tests.conftest import EN_MD, JA_PDF, SAMPLES, make_container

V2 = SAMPLES / "editions" / "ja_account_opening_manual_v2.pdf"


def _reads(monkeypatch) -> list[tuple[str, str]]:
    """(file name, thread name) of every file the service reads."""
    reads = []
    read = IngestService._read

    def recorded(self, path, stage):
        reads.append((path.name, threading.current_thread().name))
        return read(self, path, stage)

    monkeypatch.setattr(IngestService, "_read", recorded)
    return reads


def test_the_next_file_is_read_while_the_one_before_is_embedded_and_progress_stays_in_order(
        container, tmp_path, monkeypatch):
    files = [shutil.copy(f, tmp_path / f.name) for f in (JA_PDF, EN_MD, V2)]
    reads = _reads(monkeypatch)
    second_read = threading.Event()
    read = IngestService._read

    def reading(self, path, stage):
        if path.name == EN_MD.name:
            second_read.set()
        return read(self, path, stage)

    store_version = IngestService._store_version

    def storing(self, draft, drafts, stage):
        if draft.source == JA_PDF.name:  # the first file is not stored before the second one's reading has begun
            assert second_read.wait(60), "the second file was not read while the first was being embedded"
        return store_version(self, draft, drafts, stage)

    monkeypatch.setattr(IngestService, "_read", reading)
    monkeypatch.setattr(IngestService, "_store_version", storing)
    events = []
    report = container.ingest.ingest([Path(f) for f in files], progress=lambda p: events.append((p.file_index,
                                                                                                p.stage)))
    assert [d.status for d in report.documents] == ["ingested"] * 3
    assert [name for name, _ in reads] == [JA_PDF.name, EN_MD.name, V2.name]
    assert all(thread.startswith("read-ahead") for _, thread in reads)
    order = [i for i, _ in events]
    assert order == sorted(order)  # each file's progress whole, and in the files' order
    for i in range(3):
        stages = [s for j, s in events if j == i]
        assert stages[0] == "reading" and stages[-1] == "done" and "chunking" in stages and "embedding" in stages


def test_a_duplicate_in_the_batch_and_a_file_already_stored_are_not_read(container, tmp_path, monkeypatch):
    container.ingest.ingest([EN_MD])
    copy = shutil.copy(JA_PDF, tmp_path / "copy of the manual.pdf")
    reads = _reads(monkeypatch)
    report = container.ingest.ingest([JA_PDF, EN_MD, Path(copy)])
    assert [d.status for d in report.documents] == ["ingested", "unchanged", "unchanged"]
    assert [name for name, _ in reads] == [JA_PDF.name]


def test_a_bad_file_read_ahead_fails_alone(container, tmp_path):
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(JA_PDF.read_bytes()[:4000])
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    report = container.ingest.ingest([truncated, JA_PDF, empty, EN_MD])
    assert [d.status for d in report.documents] == ["failed", "ingested", "failed", "ingested"]
    assert all(d.error for d in report.documents if d.status == "failed")


def test_read_ahead_hands_back_results_and_errors_in_the_callers_order():
    seen = []

    def read(index, stage):
        stage("reading")
        seen.append((index, threading.current_thread().name))
        if index == 1:
            raise ValueError("bad file")
        return index * 10

    events = []
    with ReadAhead(read) as ahead:
        ahead.start(0)
        ahead.start(1)
        ahead.start(2)
        assert ahead.take(0, lambda *a: events.append((0, a))) == 0
        with pytest.raises(ValueError, match="bad file"):
            ahead.take(1, lambda *a: events.append((1, a)))
        ahead.drop(2)
        assert ahead.take(3, lambda *a: events.append((3, a))) == 30  # not started: read on this thread
    assert events == [(0, ("reading",)), (1, ("reading",)), (3, ("reading",))]
    assert seen[-1] == (3, threading.current_thread().name)


def test_a_container_ingests_after_a_read_ahead_failure(tmp_path):
    """Nothing of a batch's read-ahead outlives it: the next batch reads afresh."""
    c = make_container(tmp_path / "data")
    try:
        missing = tmp_path / "gone.pdf"
        report = c.ingest.ingest([JA_PDF, missing])
        assert [d.status for d in report.documents] == ["ingested", "failed"]
        assert [d.status for d in c.ingest.ingest([EN_MD]).documents] == ["ingested"]
    finally:
        c.close()
