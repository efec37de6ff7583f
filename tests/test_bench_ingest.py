"""The ingest benchmark's command line (the measurement itself runs in test_ingest_lifecycle.py)."""

from __future__ import annotations

import pytest

from bench.ingest import PROG, main
from core.cli import EXIT_USAGE, exit_code


@pytest.mark.parametrize("runs", ["0", "-1", "two", "1.5"])
def test_runs_must_be_a_whole_number_of_one_or_more(runs: str, capsys) -> None:
    assert exit_code(PROG, main, ["--set", "ja", "--runs", runs]) == EXIT_USAGE
    assert "--runs: a whole number of 1 or more" in capsys.readouterr().err
