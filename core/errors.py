"""Errors the product reports to users as one readable line.

The message is English (logs, command line). An error a person may see in the app also carries a
message ``key`` and its ``params``: the interface shows its own sentence for that key in the user's
language (ui/i18n.py, keys ``err_<key>``), so no service imports the interface's strings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CQAError(Exception):
    """An expected failure with a message meant for the person at the keyboard."""

    def __init__(self, message: str = "", *, key: str | None = None, params: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.key = key
        self.params: dict[str, Any] = dict(params or {})


class ModelUnavailable(CQAError):
    """A model file is missing, incomplete or has the wrong checksum."""


class IngestError(CQAError):
    """One input file could not be ingested (the run continues with the others)."""


class AccessDenied(CQAError):
    """The signed-in user may not do this."""


class GenerationFailed(CQAError):
    """The language model's server failed while answering: unreachable twice before the first word
    (``llm_unreachable``), or cut off in the middle of the answer (``llm_broke_off``)."""


class ModelBusy(CQAError):
    """Every model slot is taken and the queue of waiting questions is full (``llm_busy``)."""
