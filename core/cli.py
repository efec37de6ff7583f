"""The one command-line helper every ``python -m`` entry point uses: argparse (standard library) with one-line
errors and fixed exit codes.

A command is ``main(argv) -> int`` that parses with :class:`ArgumentParser` and raises on failure; :func:`run`
is the process boundary. An expected failure prints one line ``PROG: error: MESSAGE`` on stderr, never a
traceback. Exit codes: 0 ok, 1 failure, 2 bad usage (``--help`` names the options), 130 interrupted."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sqlite3
import sys
from collections.abc import Callable
from datetime import date
from typing import NoReturn

import core.offline  # noqa: F401  (sets the offline switches before anything loads)
from core.errors import CQAError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXPECTED_ERRORS = (CQAError, ValueError, KeyError, OSError, sqlite3.Error)
"""Failures a command reports as one line; anything else is a bug and keeps its traceback."""


class UsageError(CQAError):
    """Bad command-line usage (exit code 2); ``prog`` names the (sub)command when the parser raised it."""

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing usage and exiting (subparsers inherit it)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, prog=self.prog)


def one_line(text: object) -> str:
    """An error as one line: whitespace collapsed; a ``KeyError``'s message without the quotes ``str`` adds."""
    if isinstance(text, KeyError) and len(text.args) == 1 and isinstance(text.args[0], str):
        text = text.args[0]
    return " ".join(str(text).split()) or type(text).__name__


def exit_code(prog: str, main: Callable[[list[str]], int], argv: list[str], *, failure: int = EXIT_FAILURE) -> int:
    """``main(argv)``'s exit code; an expected failure prints one line on stderr and gives ``failure``
    (a usage error gives 2)."""
    try:
        return main(argv)
    except UsageError as exc:
        print(f"{exc.prog or prog}: error: {one_line(exc)} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    except EXPECTED_ERRORS as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return failure
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # --help and --version exit from inside argparse
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or EXIT_OK
        raise


def run(prog: str, main: Callable[[list[str]], int], argv: list[str] | None = None) -> NoReturn:
    """The process boundary of ``python -m ...``: run ``main`` on the command line's arguments and exit."""
    sys.exit(exit_code(prog, main, sys.argv[1:] if argv is None else argv))


def print_json(obj) -> None:
    """One JSON line on stdout (pydantic models as their JSON form; non-ASCII kept as written)."""
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    print(json.dumps(obj, ensure_ascii=False))


def iso_day(text: str) -> date:
    """argparse ``type`` for a YYYY-MM-DD day."""
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
