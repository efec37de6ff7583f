"""Helpers for tests that run the product's own commands as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.localhost import free_port, wait_http
from core.schema import UNRESTRICTED, SearchFilter

EVERYTHING = SearchFilter(access_groups=UNRESTRICTED)
"""Tests read what they stored, whoever may read it."""

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


__all__ = ["EVERYTHING", "REPO", "cli_env", "free_port", "run_cli", "run_json", "wait_http"]


def draw_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A real PDF (reportlab, a CID font for Japanese) with one line of text per item and a page number."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for number, lines in enumerate(pages, start=1):
        c.setFont("HeiseiMin-W3", 10.5)
        for k, line in enumerate(lines):
            c.drawString(50, 800 - 16 * k, line)
        c.drawString(290, 40, f"- {number} -")
        c.showPage()
    c.save()
    return path
