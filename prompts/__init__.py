"""Prompts are files: ``prompts/<lang>/<name>.md``, loaded by name, versioned by hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROMPT_DIR = Path(__file__).parent
NAMES = ("system", "system_compact", "citation_rule", "user", "refusal", "condense", "no_citation")
LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class PromptSet:
    language: str
    system: str
    system_compact: str
    citation_rule: str
    user: str
    refusal: str
    condense: str
    no_citation: str
    version: str
    """sha256 prefix over every prompt file of every language: recorded with each answer."""

    def system_prompt(self, style: str) -> str:
        """``full``: every rule (refusal wording, [n] citation markers) for capable models;
        ``compact``: grounding and injection rules only, for small models that answer worse
        with more rules (they are refused structurally and cited by verification instead)."""
        return f"{self.system}\n{self.citation_rule}" if style == "full" else self.system_compact


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
