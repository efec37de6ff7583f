"""Shared fixtures: every test runs on the test profile with its own data dir; the packaged
models are real (assembled once into the shared model cache)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["CQA_PROFILE"] = "test"
os.environ.pop("CQA_SETTINGS_FILE", None)

import core.offline  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
CORPUS = REPO.parent / "shared" / "corpus"
JA_PDF = SAMPLES / "ja_account_opening_manual.pdf"
EN_MD = SAMPLES / "en_gifts_and_aml_manual.md"


def corpus_path(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared corpus not available at {path} (integration test; CI has it)")
    return path


def make_container(data_dir: Path, **overrides):
    from settings import load_settings
    from wiring import Container

    return Container(load_settings(data_dir=data_dir, **overrides))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("CQA_DATA_DIR", str(path))
    return path


@pytest.fixture
def container(data_dir: Path):
    c = make_container(data_dir)
    yield c
    c.close()


@pytest.fixture(scope="session")
def samples_data_dir(tmp_path_factory) -> Path:
    """A data dir with the sample documents ingested once for the whole session (copy it
    before writing to it)."""
    path = tmp_path_factory.mktemp("samples") / "data"
    c = make_container(path)
    report = c.ingest.ingest([JA_PDF, EN_MD])
    assert not report.failed, report
    c.close()
    return path


@pytest.fixture
def samples_container(samples_data_dir: Path, tmp_path: Path, monkeypatch):
    """A private copy of the ingested samples (tests may write to it)."""
    path = tmp_path / "data"
    shutil.copytree(samples_data_dir, path)
    monkeypatch.setenv("CQA_DATA_DIR", str(path))
    c = make_container(path)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def no_stray_worker_processes():
    """A worker process a test leaves behind (a read-ahead worker stuck on a queue lock that a killed
    sibling held, say) would hang the interpreter's exit, and with it CI: fail the test that left it."""
    import multiprocessing
    import time

    yield
    deadline = time.monotonic() + 15
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    stray = multiprocessing.active_children()
    for process in stray:
        process.kill()
    assert not stray, f"worker processes left running: {stray}"
