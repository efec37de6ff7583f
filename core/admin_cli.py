"""Small helpers shared by the administration command lines (`python -m auth`, `python -m audit`): one-line
usage errors, exit codes, YYYY-MM-DD arguments and the CLI actor recorded in the audit log."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from datetime import date
from typing import NoReturn

from core.errors import CQAError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line usage discovered after parsing (exit code 2)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line on stderr and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def one_line(text: object) -> str:
    return " ".join(str(text).split()) or type(text).__name__


def iso_day(text: str) -> date:
    """argparse type for YYYY-MM-DD."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a valid date: {text!r}") from exc


def cli_actor() -> str:
    """Who runs the command, as recorded in the audit log: ``cli:<os user>[(sudo:<user>)]``."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    sudo = os.environ.get("SUDO_USER")
    return f"cli:{name}" + (f"(sudo:{sudo})" if sudo and sudo != name else "")


def run(prog: str, handler: Callable[[], int]) -> int:
    """Run a command; expected failures become one line on stderr (exit 1), never a traceback."""
    try:
        return handler()
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (CQAError, ValueError, OSError, sqlite3.Error) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
