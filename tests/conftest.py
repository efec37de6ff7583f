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


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (tests/postgres.py); skipped when it is not installed."""
    from tests.postgres import postgres_bin
    from tests.postgres import postgres_server as start

    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed: run `make postgres` (Debian's postgresql)")
    with start() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_backend(request) -> str | None:
    """The state stores' backend, once per backend: None for SQLite files (the default), or the URL of a new
    database on the session's PostgreSQL server, shared by every store of the test (as in a deployment)."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


@pytest.fixture
def state_target(state_backend: str | None, tmp_path: Path):
    """Where a store keeps its state, once per backend: ``state_target("users")`` is a SQLite file in
    ``tmp_path``, or the URL of the test's PostgreSQL database."""
    if state_backend is None:
        return lambda name: tmp_path / f"{name}.sqlite3"
    return lambda name: state_backend


@pytest.fixture
def state_env(state_backend: str | None, monkeypatch) -> str | None:
    """The backend as the settings see it, once per backend: ``CQA_DATABASE__URL`` set (PostgreSQL) or unset
    (SQLite) for this process's settings and for the commands the test runs (tests/helpers.cli_env)."""
    if state_backend is None:
        monkeypatch.delenv("CQA_DATABASE__URL", raising=False)
    else:
        monkeypatch.setenv("CQA_DATABASE__URL", state_backend)
    return state_backend


@pytest.fixture
def state_container(data_dir: Path, state_env: str | None):
    """The ``container`` fixture, once per backend (every store in SQLite files, or in one PostgreSQL database)."""
    c = make_container(data_dir)
    yield c
    c.close()
