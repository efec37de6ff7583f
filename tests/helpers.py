"""Helpers for tests that run the product's own commands as a user would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RAGAS_DO_NOT_TRACK", "STREAMLIT_BROWSER_GATHER_USAGE_STATS")


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a user's shell would have: no offline switches set by us."""
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
    env.update({"CQA_DATA_DIR": str(data_dir), "CQA_PROFILE": "test", "PYTHONPATH": str(REPO)}, **extra)
    return env


def run_cli(module: str, *args: str, data_dir: Path, stdin: str | None = None, timeout: int = 600,
            **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=cli_env(data_dir, **extra_env), input=stdin,
        capture_output=True, text=True, timeout=timeout,
    )


def run_json(module: str, *args: str, data_dir: Path, **kw) -> tuple[int, dict | list]:
    proc = run_cli(module, *args, data_dir=data_dir, **kw)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, (lines[0] if len(lines) == 1 else lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")
