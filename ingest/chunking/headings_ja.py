"""Japanese heading rules: statute structure (第X編/章/節/款/目, 第X条 with its （見出し）, 附則, 別表/様式) and
the numbering of Japanese guidelines (Ⅱ－２, and the list-like （３） （ⅴ） ① that are headings only when their
context says so).

Each rule takes the line and its regex match and returns a :class:`Head`, or None when the line has the
shape but is not a heading (a reference such as 第三条第一項, running text after the number)."""

from __future__ import annotations

import re

from core.text import HIRAGANA
from ingest.chunking.heading_text import DASH, LABEL_MAX, NUM, Head, looks_like_title, norm_label

RE_ARTICLE = re.compile(rf"^(第 ?{NUM} ?条(?:の{NUM})*)(.*)$")  # "第 ８ 条": PDF spacing
RE_STRUCTURE = re.compile(rf"^第 ?({NUM}) ?(編|章|節|款|目)((?:の{NUM})*)(.*)$")
RE_CAPTION = re.compile(r"^[（(]([^（）()。、，]{1,30})[）)]")
RE_CAPTION_LINE = re.compile(r"^[（(][^（）()。、，0-9０-９ⅰ-ⅿ]{1,30}[）)]$")
"""An article's caption on a line of its own, before the article: （目的）"""
RE_SUPPLEMENTARY = re.compile(r"^附[ \u3000]*則(?=$|[ \u3000（(抄])(.*)$")
RE_APPENDIX = re.compile(rf"^(別表|別紙|別記|様式)(第{NUM})?(?=$|[ \u3000（(])(.*)$")
RE_ROMAN = re.compile(rf"^([ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ]{{1,3}})((?:[{DASH}][0-9０-９]{{1,3}})*)[.．]?[ \u3000]*(.*)$")
RE_PAREN_NUM = re.compile(r"^[（(]([0-9０-９]{1,3})[）)][ \u3000]*(.*)$")
RE_PAREN_ROMAN = re.compile(r"^[（(]([ⅰⅱⅲⅳⅴⅵⅶⅷⅸⅹⅺⅻ]{1,3}|[ivx]{1,5})[）)][ \u3000]*(.*)$")
RE_CIRCLED = re.compile(r"^([①-⑳㉑-㉟㊱-㊿])[ \u3000]*(.*)$")
RE_EGOV_TOC = re.compile(rf"^第{NUM}[編章節款目](?:の{NUM})*[ \u3000].*（第{NUM}条[^）]*）$")
"""An e-Gov table-of-contents line: 第一章　総則（第一条―第三条）"""
RE_PARAGRAPH_NUMBER = re.compile(r"^([０-９]{1,3}|[0-9]{1,3}(?=\u3000))[ \u3000]")
"""The 項 number that starts a paragraph of an article: ２　…"""
STRUCTURE_DEPTH = {"編": 1, "章": 2, "節": 3, "款": 4, "目": 5}
ARTICLE_DEPTH = 6


def article(text: str, m: re.Match[str]) -> Head | None:
    """第十条（目的）…: the article number and its caption; the line's text is the article's first paragraph."""
    number, rest = m.group(1).replace(" ", ""), m.group(2)
    caption = ""
    stripped = rest.lstrip(" \u3000")
    if rest and stripped == rest and not rest.startswith(("（", "(")):
        return None  # 第三条第一項, 第三条の規定, …: a reference, not an article
    cm = RE_CAPTION.match(stripped)
    if cm and (len(stripped) == cm.end() or stripped[cm.end()] in " \u3000"):
        caption = "（" + cm.group(1) + "）"
        stripped = stripped[cm.end() :].lstrip(" \u3000")
    elif rest and rest == stripped:
        return None  # 第三条（第二項を除く。）…
    return Head(
        "jp",
        ARTICLE_DEPTH,
        number + caption,
        body=text if stripped else "",
        article=number,
        caption=caption,
    )


def structure(text: str, m: re.Match[str]) -> Head | None:
    """第一章　総則, 第二節の二 …"""
    title = m.group(4).strip(" \u3000")
    attached = m.group(4)[:1] not in " \u3000"
    if title and (not looks_like_title(title) or (attached and re.match(f"[{HIRAGANA}第]", title))):
        return None
    if len(text) > LABEL_MAX or RE_EGOV_TOC.match(text):
        return None
    label = norm_label(f"第{m.group(1)}{m.group(2)}{m.group(3)} {title}")
    return Head("jp", STRUCTURE_DEPTH[m.group(2)], label, empty_title=not title)


def supplementary_or_appendix(text: str, m: re.Match[str]) -> Head | None:
    """附則 (抄), 別表第一, 様式第二: top-level parts of a statute."""
    if len(text) > LABEL_MAX or "。" in text:
        return None
    return Head("jp", 0, norm_label(text))


def roman(text: str, m: re.Match[str]) -> Head | None:
    """Ⅱ, Ⅱ－２, Ⅱ－２－１ (the FSA guidelines' numbering): one level per dash."""
    title = m.group(3)
    if title and (re.match(f"[（(0-9０-９{DASH}]", title) or not looks_like_title(title)):
        return None
    depth = 1 + len(re.findall(f"[{DASH}]", m.group(2)))
    return Head("roman", depth, norm_label(text), empty_title=not title)


def _list_marker(family: str, text: str, title: str) -> Head | None:
    if not title or not looks_like_title(title, 40, commas=False):
        return None
    return Head(family, 1, norm_label(text), ambiguous=True)


def paren_roman(text: str, m: re.Match[str]) -> Head | None:
    """（ⅴ） Title: maybe a heading, maybe a list item (decided in context)."""
    return _list_marker("paren-roman", text, m.group(2))


def paren_number(text: str, m: re.Match[str]) -> Head | None:
    """（３） Title: maybe a heading, maybe a list item (decided in context)."""
    return _list_marker("paren", text, m.group(2))


def circled(text: str, m: re.Match[str]) -> Head | None:
    """① Title: maybe a heading, maybe a list item (decided in context)."""
    return _list_marker("circled", text, m.group(2))
