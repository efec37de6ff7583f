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
