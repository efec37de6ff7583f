"""Prompts are files: ``prompts/<lang>/<name>.md``, loaded by name, versioned by hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROMPT_DIR = Path(__file__).parent
NAMES = ("system", "user", "refusal", "condense", "no_citation")
LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class PromptSet:
    language: str
    system: str
    user: str
    refusal: str
    condense: str
    no_citation: str
    version: str
    """sha256 prefix over every prompt file of every language: recorded with each answer."""


@cache
def prompt_set_version() -> str:
    digest = hashlib.sha256()
    for lang in LANGUAGES:
        for name in NAMES:
            digest.update(f"{lang}/{name}\0".encode())
            digest.update((PROMPT_DIR / lang / f"{name}.md").read_bytes())
    return digest.hexdigest()[:12]


@cache
def load_prompts(language: str) -> PromptSet:
    lang = language if language in LANGUAGES else "en"
    texts = {name: (PROMPT_DIR / lang / f"{name}.md").read_text(encoding="utf-8").strip() for name in NAMES}
    return PromptSet(language=lang, version=prompt_set_version(), **texts)
