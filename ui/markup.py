"""User and document text shown through Streamlit's Markdown: Streamlit escapes HTML; this escapes what Markdown
itself would turn into something active."""

from __future__ import annotations

import re

_ACTIVE = re.compile(r"([\[\]$\\])")


def as_text(text: str) -> str:
    """``text`` for ``st.markdown``/``st.caption`` without images the browser would fetch (``![](http://…)``),
    links, Streamlit directives (``:red[…]``) or LaTeX (``$…$``): brackets, dollars and backslashes are escaped,
    so they show as typed. Emphasis and lists still render."""
    return _ACTIVE.sub(r"\\\1", text)


_BULLET = re.compile(r"^(\s*)[・•●◦▪︎■□○◆◇](\s*)")
_CIRCLED = re.compile(r"^(\s*)([①-⑳])")
_MD_BLOCK = re.compile(r"^\s*(?:[-*+]\s|\d{1,3}[.)]\s|#{1,6}\s|>|\|)")


def answer_markdown(text: str) -> str:
    """An answer's text for ``st.markdown``, as the model laid it out: lines that start with a Japanese bullet
    (・, ●, ①…) become list items, a single line break stays a line break (Markdown would run the lines into
    one paragraph), and what :func:`as_text` escapes is escaped."""
    lines = []
    for line in as_text(text).split("\n"):
        line = _BULLET.sub(r"\1- ", line)
        line = _CIRCLED.sub(r"\1- \2 ", line) if not _MD_BLOCK.match(line) else line
        lines.append(line)
    out: list[str] = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        block, next_block = bool(_MD_BLOCK.match(line)), bool(_MD_BLOCK.match(following))
        if not line.strip() or not following.strip():
            out.append(line)
        elif block and not next_block:
            out.append(line + "\n")  # a list item's next plain line is a new paragraph, not part of the item
        else:
            out.append(line + ("" if block or next_block else "  "))
    return "\n".join(out)
