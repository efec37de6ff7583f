"""Decimal numbering both languages use: 1.2.3 Title, １．タイトル, and 2-1 / ２－１ Title.

A numbered line is a heading when its text reads like a title; with more than one level and a sentence after
the number it is a numbered paragraph (the number is its section, the line its text)."""

from __future__ import annotations

import re

from core.text import CJK_RE, is_cjk
from ingest.chunking.heading_text import DASH, Head, looks_like_title, norm_label

RE_DOTTED = re.compile(r"^([0-9０-９]{1,3}(?:[.．][0-9０-９]{1,3})*)([.．]?)(.*)$")
RE_HYPHENATED = re.compile(rf"^([0-9０-９]{{1,2}}(?:[{DASH}][0-9０-９]{{1,3}})+)[ \u3000]+(.+)$")


def dotted(text: str, m: re.Match[str]) -> Head | None:
    """1.2.3 Title (a heading), 1.2.3 A sentence … (a numbered paragraph), １．タイトル (ambiguous: one level)."""
    number, dot, rest = m.group(1), m.group(2), m.group(3)
    levels = len(re.findall("[.．]", number)) + 1
    if rest and rest[0] not in " \t\u3000":
        if not dot or not is_cjk(rest[0]) or rest[0] in "０１２３４５６７８９％":
            return None
    if levels == 1 and not dot:
        return None
    title = rest.strip(" \t\u3000")
    if title and len(title) < 3 and not CJK_RE.search(title):
        return None  # "6.3.1 R": a rule reference in a margin note
    if not title:
        return Head("dotted", levels, norm_label(text), empty_title=True) if levels > 1 else None
    number = number.replace("．", ".")
    if looks_like_title(title) and not title.endswith("."):
        return Head("dotted", levels, norm_label(text), ambiguous=levels == 1, number=number)
    if levels > 1 and (title[0].isupper() or is_cjk(title[0]) or title[0] in "(（“\"'‘"):
        return Head("dotted", levels, number, body=text, number=number)
    return None


def hyphenated(text: str, m: re.Match[str]) -> Head | None:
    """2-1 Title, ２－１－３ タイトル: one level per dash."""
    if not looks_like_title(m.group(2)):
        return None
    return Head("hyphen", 1 + len(re.findall(f"[{DASH}]", m.group(1))), norm_label(text))
