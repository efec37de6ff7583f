"""Which heading a line is, by its shape alone: the rules of every numbering scheme, tried in a fixed order.

The first rule whose pattern matches decides: it returns the heading, or None when the line only looks like
one (a later rule is not tried). The order matters where patterns overlap: ADGM rule numbers (3.2.(a))
before plain decimal numbering (3.2.), Ⅱ－２ before 2-1. Whether a recognised heading is accepted depends on
its context (:mod:`ingest.chunking.builder`)."""

from __future__ import annotations

import re
from collections.abc import Callable

from ingest.chunking import headings_en as en
from ingest.chunking import headings_ja as ja
from ingest.chunking import headings_numbered as numbered
from ingest.chunking.heading_text import Head, norm_label

RE_MARKDOWN = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")

Match = Callable[[str], re.Match[str] | None]
Build = Callable[[str, re.Match[str]], Head | None]


def markdown(text: str, m: re.Match[str]) -> Head | None:
    """## Title (not in PDFs, where # starts ordinary lines)."""
    title = m.group(2).strip()
    return Head("md", len(m.group(1)), norm_label(title or m.group(1)))


RULES: tuple[tuple[Match, Build], ...] = (
    (ja.RE_ARTICLE.match, ja.article),
    (ja.RE_STRUCTURE.match, ja.structure),
    (ja.RE_SUPPLEMENTARY.match, ja.supplementary_or_appendix),
    (ja.RE_APPENDIX.match, ja.supplementary_or_appendix),
    (ja.RE_ROMAN.match, ja.roman),
    (en.RE_ROMAN_ASCII.match, en.roman),
    (ja.RE_PAREN_ROMAN.match, ja.paren_roman),
    (ja.RE_PAREN_NUM.match, ja.paren_number),
    (ja.RE_CIRCLED.match, ja.circled),
    (en.match_division, en.division),
    (en.RE_FATF_PART.match, en.fatf_part),
    (en.RE_ADGM.match, en.adgm_rule),
    (numbered.RE_DOTTED.match, numbered.dotted),
    (numbered.RE_HYPHENATED.match, numbered.hyphenated),
)
MARKDOWN_RULES = ((RE_MARKDOWN.match, markdown), *RULES)


def match_heading(text: str, fmt: str) -> Head | None:
    """The heading ``text`` (one stripped line of a document in format ``fmt``) has the shape of, if any."""
    for match, build in RULES if fmt == "pdf" else MARKDOWN_RULES:
        m = match(text)
        if m:
            return build(text, m)
    return None
