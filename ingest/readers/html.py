"""HTML pages: charset from the meta tag or detected, scripts/navigation dropped, headings as Markdown
"#" lines, table rows as "a | b" lines; tag count and nesting depth bounded."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import IngestError
from ingest.document import Page, ParsedDocument
from ingest.readers.cleanup import CHARACTER_FIXES, clean_inline, file_title, short_title, title_line
from ingest.readers.decoding import META_CHARSET, XML_ENCODING, decode_text

_HTML_DROP = {
    "script",
    "style",
    "nav",
    "noscript",
    "template",
    "head",
    "iframe",
    "svg",
    "object",
    "embed",
    "button",
    "select",
    "option",
    "textarea",
    "input",
    "map",
    "canvas",
    "audio",
    "video",
    "title",
    "meta",
    "link",
}
_HTML_BLOCK = {
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hgroup",
    "hr",
    "html",
    "legend",
    "li",
    "main",
    "menu",
    "ol",
    "p",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "ul",
}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_CELL_BLOCKS = ["div", "p", "table", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol"]


class _HtmlLines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.buf: list[str] = []

    def flush(self) -> None:
        if self.buf:
            text = clean_inline("".join(self.buf))
            self.buf = []
            if text:
                self.lines.append(text)

    def walk(self, node) -> None:  # noqa: C901 - a flat dispatch over tag kinds
        from bs4 import NavigableString, Tag
        from bs4.element import CData, Comment, Declaration, Doctype, ProcessingInstruction

        for child in node.children:
            if isinstance(child, NavigableString):
                if isinstance(child, CData) or not isinstance(
                    child, (Comment, Declaration, Doctype, ProcessingInstruction)
                ):
                    self.buf.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = (child.name or "").lower()
            if name in _HTML_DROP:
                continue
            if name == "br":
                self.flush()
            elif name in _HEADINGS:
                self.flush()
                text = clean_inline(child.get_text())
                if text:
                    self.lines.append("#" * _HEADINGS[name] + " " + text)
            elif name == "tr":
                self.flush()
                cells = child.find_all(["td", "th"], recursive=False)
                if any(c.find(_CELL_BLOCKS) is not None for c in cells):
                    for cell in cells:  # a layout table: its cells are ordinary blocks
                        self.walk(cell)
                        self.flush()
                else:
                    line = " | ".join(t for t in (clean_inline(c.get_text(" ")) for c in cells) if t)
                    if line:
                        self.lines.append(line)
            elif name == "pre":
                self.flush()
                for line in child.get_text().split("\n"):
                    line = line.translate(CHARACTER_FIXES).rstrip()
                    if line.strip():
                        self.lines.append(line)
            elif name in _HTML_BLOCK:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)


MAX_HTML_TAGS = 200_000
"""Tags an HTML page may have: BeautifulSoup holds about 1 KB per tag (1M tags: 1 GB, 33 s)."""
MAX_HTML_DEPTH = 500
"""Nesting an HTML page may have (the reader walks it recursively; real pages nest a few dozen levels)."""
_START_TAG = re.compile(r"<[A-Za-z]")


def _deeper_than(root, limit: int) -> bool:
    from bs4 import Tag

    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tag))
    return False


def read_html(data: bytes, path: Path) -> ParsedDocument:
    from bs4 import BeautifulSoup

    head = data[:8192]
    declared = None
    m = META_CHARSET.search(head) or XML_ENCODING.search(head)
    if m:
        declared = m.group(1).decode("ascii", "ignore")
    text, warnings = decode_text(data, declared)
    if not text.strip():
        raise IngestError("empty file", key="ingest_empty")
    tags = sum(1 for _ in _START_TAG.finditer(text))
    if tags > MAX_HTML_TAGS:
        raise IngestError(
            f"HTML page has {tags:,} tags, more than the limit of {MAX_HTML_TAGS:,} (the largest statute page has "
            "about 22,000): refused to keep memory bounded",
            key="ingest_html_too_many_tags", params={"tags": f"{tags:,}", "max": f"{MAX_HTML_TAGS:,}"},
        )
    try:
        soup = BeautifulSoup(text, "lxml")
    except Exception as exc:  # noqa: BLE001 - parser failure on a broken file
        raise IngestError(f"HTML could not be parsed ({type(exc).__name__})", key="ingest_html_unparsable",
                          params={"detail": type(exc).__name__}) from exc
    title = ""
    if soup.title is not None:
        title = short_title(clean_inline(soup.title.get_text()))
    if not title:
        h1 = soup.find("h1")
        if h1 is not None:
            title = short_title(clean_inline(h1.get_text()))
    collector = _HtmlLines()
    root = soup.body or soup
    if _deeper_than(root, MAX_HTML_DEPTH):
        raise IngestError(f"HTML page is nested more than {MAX_HTML_DEPTH} levels deep: refused (no real page is)",
                          key="ingest_html_too_deep", params={"max": MAX_HTML_DEPTH})
    collector.walk(root)
    collector.flush()
    lines = [ln for ln in collector.lines if ln]
    body = "\n".join(lines)
    if not body.strip():
        raise IngestError("no text found in the HTML document", key="ingest_no_text_html")
    title = title or short_title(title_line(body)) or file_title(path)
    return ParsedDocument(
        format="html", title=title, pages=[Page(None, body)], warnings=warnings, page_count=0
    )
