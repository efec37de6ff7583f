"""Plain text and Markdown: decoded, cleaned, titled by the first Markdown heading or the first line."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import IngestError
from ingest.document import Page, ParsedDocument
from ingest.readers.cleanup import clean_lines, file_title, short_title, title_line
from ingest.readers.decoding import decode_text

_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")


def read_plain_text(data: bytes, path: Path, markdown: bool) -> ParsedDocument:
    text, warnings = decode_text(data)
    text = clean_lines(text)
    if not text.strip(" \t\n\u3000"):
        raise IngestError("empty file", key="ingest_empty")
    title = ""
    if markdown:
        in_fence = False
        for line in text.split("\n"):
            if line.lstrip().startswith(("```", "~~~")):
                in_fence = not in_fence
                continue
            m = None if in_fence else _MD_HEADING.match(line)
            if m:
                title = short_title(m.group(2))
                break
    title = title or short_title(title_line(text)) or file_title(path)
    return ParsedDocument(
        format="markdown" if markdown else "text", title=title, pages=[Page(None, text)], warnings=warnings
    )
