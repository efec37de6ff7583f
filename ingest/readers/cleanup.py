"""Text clean-up shared by every reader: odd spaces, control and zero-width characters, ligatures and
mis-mapped radicals fixed; titles made from a first line, a file name or document metadata."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from core.text import CJK

_TITLE_MAX = 120

_LIGATURES = {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
# Kangxi radicals (U+2F00..) and CJK radical supplements show up instead of ordinary kanji when a PDF's
# font maps glyphs badly ("⼀" for "一"); map just those to the ordinary character. No general NFKC:
# full-width numbering such as （１） must survive.
CHARACTER_FIXES: dict[int, str] = {ord(k): v for k, v in _LIGATURES.items()}
for _cp in list(range(0x2F00, 0x2FD6)) + list(range(0x2E80, 0x2EF4)):
    _norm = unicodedata.normalize("NFKC", chr(_cp))
    if _norm != chr(_cp):
        CHARACTER_FIXES[_cp] = _norm
for _cp in (0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF):  # soft hyphen, zero-width characters
    CHARACTER_FIXES[_cp] = ""
for _cp in list(range(0x00, 0x20)) + [0x7F]:  # control characters except tab / newline
    if _cp not in (0x09, 0x0A):
        CHARACTER_FIXES[_cp] = " " if _cp in (0x0B, 0x0C, 0x0D) else ""
for _cp in (
    0x00A0,
    0x2000,
    0x2001,
    0x2002,
    0x2003,
    0x2004,
    0x2005,
    0x2006,
    0x2007,
    0x2008,
    0x2009,
    0x200A,
    0x202F,
    0x205F,
):
    CHARACTER_FIXES[_cp] = " "  # odd spaces -> plain space (U+3000, the ideographic space, is kept)

_SPACE_RUN = re.compile(r"[ \t]{2,}|\t")
_INLINE_NL_CJK = re.compile(rf"(?<=[{CJK}])[ \t\r\n\f\v]*\n[ \t\r\n\f\v]*(?=[{CJK}])")
_ASCII_WS = re.compile(r"[ \t\r\n\f\v]+")


def clean_lines(text: str) -> str:
    """Fix extraction junk but keep line breaks: odd spaces/controls, ligatures, runs of spaces,
    trailing spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(CHARACTER_FIXES)
    lines = (_SPACE_RUN.sub(" ", line).rstrip() for line in text.split("\n"))
    return "\n".join(lines).strip("\n")


def clean_inline(text: str) -> str:
    """Whitespace of inline markup (HTML/XML): a source line break between two CJK characters is not a
    space; any other run of ASCII whitespace is one space. Ideographic spaces are kept inside."""
    text = text.translate(CHARACTER_FIXES)
    text = _INLINE_NL_CJK.sub("", text)
    text = _ASCII_WS.sub(" ", text)
    return text.strip(" \u3000")


def short_title(text: str) -> str:
    text = _ASCII_WS.sub(" ", text.replace("\u3000", " ")).strip(" #")
    if len(text) > _TITLE_MAX:
        text = text[: _TITLE_MAX - 1].rstrip() + "…"
    return text


_NUMBERED_HEADING = re.compile(
    r"^(?:\d+(?:[.．]\d+)*[.．)）]?(?:\s|$)|[IVXLC]+[.．)）]|[A-Z][.．)）]\s|[（(][0-9０-９一二三四五六七八九十ⅰ-ⅹa-z]{1,3}[)）]"
    r"|[0-9０-９]+[.．、]|第[0-9０-９一二三四五六七八九十百千]+[編章節款条項]|[Ⅰ-Ⅻ]+(?:[－\-.．]|\s|$)"
    r"|(?i:chapter|part|section|article|schedule|appendix|annex)\s+[0-9IVX]+\b)",
)


def title_line(text: str) -> str:
    """The first line as a title, unless it is a numbered heading ("1. INTRODUCTION", "第一章 総則"),
    which names a section, not the document."""
    for line in text.split("\n"):
        line = line.strip(" \u3000\t")
        if line:
            return "" if _NUMBERED_HEADING.match(line) else line
    return ""


def file_title(path: Path) -> str:
    """A title made from the file name: the last fallback ("AML_VER09.211223" -> "AML VER09.211223")."""
    return short_title(path.stem.replace("_", " ")) or path.name



_JUNK_TITLES = {
    "untitled",
    "title",
    "document",
    "無題",
    "powerpoint プレゼンテーション",
    "slide 1",
    "スライド 1",
}


def meaningful_title(title: object) -> str:
    if not isinstance(title, str):
        return ""
    title = short_title(clean_inline(title))
    low = title.lower()
    if len(title) < 3 or low in _JUNK_TITLES:
        return ""
    if low.startswith(("microsoft word -", "microsoft powerpoint -", "microsoft excel -")):
        return ""
    if re.search(r"\.(docx?|pdf|xlsx?|pptx?|rtf|txt|indd|tmp|jtd)$", low):
        return ""
    if re.fullmatch(r"[\W\d_]+", title) or re.match(r"<?[0-9A-Fa-f]{16,}", title):
        return ""  # punctuation only, or undecoded hex bytes
    return title
