"""List-item markers: the shapes that start an item (・, （１）, ①, イ, 一, a.), a line holding nothing but a
number, and the numbering family a line starts with (to tell a run of list items from a heading)."""

from __future__ import annotations

import re

from ingest.chunking import headings_en as en
from ingest.chunking import headings_ja as ja
from ingest.chunking.heading_text import KNUM, NUM

RE_MARKER = re.compile(
    rf"^(?:[・•●○◆◇■□▪‣※＊*>|]|[-–—]\s|[（(][^\s（）()]{{1,4}}[）)]|[①-⑳㉑-㊿]|[a-zA-Zａ-ｚＡ-Ｚ][.．)）]\s"
    rf"|[0-9０-９]{{1,3}}[.．)）](?![0-9０-９])|[【〔［]|[{KNUM}]{{1,4}}[ \u3000]"
    rf"|[イロハニホヘトチリヌルヲワカヨタレソツネナラムアウエオキクケコ](?:[ \u3000]|[.．](?![0-9０-９]))"
    rf"|[０-９]{{1,3}}[ \u3000]|[0-9]{{1,3}}\u3000|第{NUM}[条章節款目編]|附[ \u3000]*則|[ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ]|#)"
)
"""The start of a new item, paragraph or heading: such a line does not continue the previous one."""
RE_MARKER_ONLY = re.compile(
    rf"^(?:[０-９]{{1,3}}|[{KNUM}]{{1,4}}|[①-⑳㉑-㊿]|[（(][0-9０-９ⅰ-ⅿa-zａ-ｚアイウエオカキクケコ]{{1,3}}[）)]"
    rf"|[イロハニホヘトチリヌルヲワカヨタレソツネナラム]|第{NUM}[条章節款目編](?:の{NUM})*)$"
)
"""A line that is only a number ("２", "一", "第一条", "（１）"): it belongs to the next text line."""
_RE_ONE_LEVEL_NUMBER = re.compile(r"^[0-9０-９]{1,3}[.．](?![0-9０-９A-Za-z])")


def marker_key(text: str) -> tuple[str, float] | None:
    """(family, depth) of the numbering a line starts with, whether or not it is a heading."""
    if ja.RE_PAREN_ROMAN.match(text):
        return ("paren-roman", 1)
    if ja.RE_PAREN_NUM.match(text):
        return ("paren", 1)
    if ja.RE_CIRCLED.match(text):
        return ("circled", 1)
    if _RE_ONE_LEVEL_NUMBER.match(text):
        return ("dotted", 1)
    m = en.match_division(text)
    if m:
        return ("en", en.DIVISION_DEPTH[m.group(1).lower()])
    return None
