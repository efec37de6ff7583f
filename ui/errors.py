"""Failures as the person at the keyboard sees them: one short sentence in their language; for an
unexpected failure also a reference id, with the traceback written to the server log under that id."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import streamlit as st

from core.errors import CQAError
from ui.i18n import STRINGS, t

log = logging.getLogger("cqa.ui")
P = ParamSpec("P")
R = TypeVar("R")


def error_text(exc: CQAError, lang: str) -> str:
    """The sentence for an expected failure: its message key's text in ``lang``; an error raised without a key
    (or with parameters its text does not take) says so generically and keeps the service's own words."""
    return message_text(exc.key, exc.params, str(exc), lang)


def message_text(key: str | None, params: Mapping[str, Any], message: str, lang: str) -> str:
    """:func:`error_text` of an error kept as its parts (a failed file in an ingest report, say): the message
    key, its parameters and the service's English ``message``."""
    entry = f"err_{key}" if key else None
    if entry in STRINGS:
        try:
            return t(entry, lang, **params)
        except (KeyError, IndexError, ValueError):
            log.warning("message %s does not take the parameters %s", entry, sorted(params))
    return message if lang == "en" else t("err_untranslated", lang, detail=message)


def show_error(exc: CQAError) -> None:
    from ui.state import lang

    st.error(error_text(exc, lang()))


def report_failure(where: str) -> str:
    """Log the exception being handled with a fresh reference id; show the id in a short message."""
    from ui.state import lang

    reference = secrets.token_hex(4)
    log.error("%s failed [ref %s]", where, reference, exc_info=True)
    st.error(t("page_failed", lang(), ref=reference))
    return reference


def guarded(where: str) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorate a page body or a fragment: an expected failure shows its sentence, anything else a short message
    with a reference id (traceback in the log), never the traceback on screen. Streamlit's own stop and rerun
    signals are not exceptions (BaseException) and pass through."""

    def wrap(func: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return func(*args, **kwargs)
            except CQAError as exc:
                log.info("%s: %s", where, exc)
                show_error(exc)
            except Exception:
                report_failure(where)
            return None

        return run

    return wrap
