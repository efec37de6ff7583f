"""What a stored version was read and chunked with, so that an upgrade reaches files that did not change.

A file whose content is already stored is skipped on re-ingest; but when a new release reads or chunks the same
file differently (new headings, page starts in chunks, a reader fix) or an admin changes the chunk settings, its
stored chunks are those of the old reading. Each version records ``reading_stamp`` (the registry's ``reading``
column); re-ingesting a file whose active version has another stamp reads it again as a new version of the same
document, with its dates, access and title kept.
"""

from __future__ import annotations

import hashlib
import json

from settings.model import IngestSettings

READING_VERSION = 1
"""Raise it when a reader or the chunker makes other chunks of the same file. ``tests/test_reading.py`` records
what this version makes of a set of files and fails when that changes while the number stays the same."""

CHUNK_SETTINGS = ("chunker", "chunk_tokens", "chunk_overlap_sentences", "chunk_overlap_max_tokens",
                  "embed_title_prefix", "embed_section")
"""The ingest settings that change a file's chunks or the text embedded for them."""


def reading_stamp(settings: IngestSettings) -> str:
    """``<READING_VERSION>:<hash of the chunk settings>``, e.g. ``1:3f9a0c2e``."""
    chosen = {name: getattr(settings, name) for name in CHUNK_SETTINGS}
    digest = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:8]
    return f"{READING_VERSION}:{digest}"
