"""What every CLI shares: offline switches, settings, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import core.offline  # noqa: F401  (sets the offline switches before anything loads)
from core.errors import CQAError


class UsageError(CQAError):
    """Bad command-line usage (exit code 2)."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit 2 itself
        raise UsageError(f"{self.prog}: {message}")


def run(main: Callable[[list[str]], int], argv: list[str] | None = None) -> None:
    """Run ``main`` and exit with its code; expected failures print one line on stderr."""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except (CQAError, ValueError, KeyError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


def print_json(obj) -> None:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    print(json.dumps(obj, ensure_ascii=False))

