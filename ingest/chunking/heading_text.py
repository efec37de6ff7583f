"""What every heading rule shares: the :class:`Head` record, the number alphabets, and the tests a heading's
text must pass (short, no sentence punctuation, not the rest of a sentence)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import CJK_RE

LABEL_MAX = 60
"""Longest section label kept whole; longer ones end in …"""
KNUM = "一二三四五六七八九十百千〇零"
NUM = f"[{KNUM}0-9０-９]+"
"""A number as statutes write it: kanji, ASCII or full-width digits."""
DASH = "－\\-‐‑–—−ー"
PARTICLES = tuple("のにをはがでとへやもより、。，．・）」』")
"""Characters a Japanese line starts with when it continues a sentence."""
VERBS = {"must", "should", "shall", "may", "will", "is", "are", "was", "were", "has", "have", "can", "does"}


@dataclass
class Head:
    """A recognised heading: its numbering family and depth on the section stack, and its label."""

    family: str
    depth: float
    label: str
    body: str = ""  # the whole line when its text continues after the number (article / rule lines)
    ambiguous: bool = False  # a list marker that may be a heading (（１） ① 1.)
    empty_title: bool = False  # only a number ("Article 12", "第一章"): the next short line may be the title
    article: str = ""  # 第十条 (for 項 paths)
    number: str = ""  # 1.2.3 of a numbered heading
    caption: str = ""  # （目的）


def norm_label(text: str) -> str:
    """A section label: runs of spaces as one, 附 則 as 附則, cut to :data:`LABEL_MAX` characters."""
    text = re.sub(r"[ \t\u3000]+", " ", text).strip()
    text = re.sub(r"^附 則", "附則", text)
    if len(text) > LABEL_MAX:
        text = text[: LABEL_MAX - 1].rstrip() + "…"
    return text


def sentence_like(title: str) -> bool:
    """English words that read like a sentence rather than a heading."""
    if title.endswith("?"):
        return False
    words = title.split()
    return len(words) > 10 or any(w.lower() in VERBS for w in words)


def looks_like_title(title: str, max_len: int = LABEL_MAX, commas: bool = True) -> bool:
    """A heading's text: short, no sentence punctuation, not starting like the rest of a sentence
    (``commas=False``: a Japanese comma also disqualifies, for list-like markers such as （１） ①)."""
    if len(title) > max_len or "。" in title:
        return False
    if title.startswith(PARTICLES) or title[:1].islower():
        return False
    if not commas and re.search(r"[、，,]", title) and CJK_RE.search(title):
        return False
    if title.endswith((".", "：", ":", "、", ",", "，", ";")) and not title.endswith(("...", "…")):
        return False
    return True
