"""Nothing leaves the machine: ingest, ask and app start make no outbound connection
attempts, with the offline switches set by the product itself (not by the environment)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import EN_MD
from tests.helpers import REPO, cli_env, free_port, wait_http


def probe(log: Path, data_dir: Path, *module_args: str, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tests/egress_probe.py", str(log), "-m", *module_args], cwd=REPO,
        env=cli_env(data_dir), capture_output=True, text=True, timeout=timeout,
    )


def attempts(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_ingest_and_ask_make_no_outbound_connection_attempts(tmp_path):
    log, data = tmp_path / "egress.log", tmp_path / "data"
    ingest = probe(log, data, "ingest", str(EN_MD), "--json")
    assert ingest.returncode == 0, ingest.stderr
    ask = probe(log, data, "qa", "What is the limit for gifts?", "--json")
    assert ask.returncode == 0, ask.stderr
    assert attempts(log) == []


def test_app_start_and_a_page_render_make_no_outbound_connection_attempts(tmp_path):
    log, data, port = tmp_path / "egress.log", tmp_path / "data", free_port()
    server = subprocess.Popen(
        [sys.executable, "tests/egress_probe.py", str(log), "-m", "streamlit", "run", "app.py",
         "--server.port", str(port), "--server.headless", "true"],
        cwd=REPO, env=cli_env(data), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc=server)
        wait_http(f"http://127.0.0.1:{port}/", proc=server)
    finally:
        server.terminate()
        server.wait(timeout=30)
    render = subprocess.run(
        [sys.executable, "tests/egress_probe.py", str(log), "-m", "tests.apptest_probe"], cwd=REPO,
        env=cli_env(data), capture_output=True, text=True, timeout=600,
    )
    assert render.returncode == 0, render.stdout + render.stderr
    assert attempts(log) == []
