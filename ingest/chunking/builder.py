"""The walk over a document's lines that gives every line its section: headings accepted or refused in their
context and kept on a stack of ``(family, depth)`` entries, and the lines of a section joined into paragraphs
(:class:`Unit`; PDF line breaks inside a sentence disappear)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from core.text import CJK_RE, CLOSERS, KANA_RE, display_width, is_cjk
from ingest.chunking.heading_text import PARTICLES, Head, looks_like_title, norm_label, sentence_like
from ingest.chunking.headings import match_heading
from ingest.chunking.headings_ja import RE_CAPTION_LINE, RE_PARAGRAPH_NUMBER
from ingest.chunking.lines import RE_DOT_LEADER, Line, prepare_lines
from ingest.chunking.markers import RE_MARKER, marker_key
from ingest.document import ParsedDocument

TERMINATORS = "。．！？!?"
RE_LINE_END = re.compile(rf"[{TERMINATORS}.][{re.escape(CLOSERS)}]*$")
RE_DANGLING = re.compile(r"(?:[,，、;；]|\b(?:of|and|or|the|to|in|under|see|by|with|for|a|an|at|on))$")
"""A line that ends like this continues on the next line."""
RE_CAPITALS_TITLE = re.compile(r"^[A-Z][A-Z0-9,&'’()/–-]*(?: [A-Z0-9,&'’()/–-]+)+$")
"""A title set in Latin capitals, several words ("CUSTOMER DUE DILIGENCE AND RECORD-KEEPING")."""


def ends_unit(text: str) -> bool:
    """Whether the line ends a sentence (a terminator, maybe followed by closing brackets)."""
    return bool(RE_LINE_END.search(text))


def joiner(current: str, text: str) -> str:
    """What goes between a paragraph and the next line joined to it: nothing in Japanese, else a space."""
    last = current[-1:]
    first = text[:1]
    if is_cjk(last) or is_cjk(first):
        return ""
    if last == "-" and len(current) > 1 and current[-2].isalpha() and first.islower():
        return ""  # a word hyphenated at the line end: keep the hyphen, drop the break
    return " "


@dataclass
class Unit:
    """A paragraph: joined lines, with the page where each line starts."""

    text: str = ""
    starts: list[int] = field(default_factory=list)
    pages: list[int | None] = field(default_factory=list)
    para: str | None = None

    def add(self, text: str, page: int | None, joiner: str) -> None:
        if self.text:
            self.text += joiner
        self.starts.append(len(self.text))
        self.pages.append(page)
        self.text += text

    def page_at(self, offset: int) -> int | None:
        return self.pages[max(0, bisect.bisect_right(self.starts, offset) - 1)]


@dataclass
class Section:
    """The paragraphs under one heading path (and the article they belong to, for 項 paths)."""

    path: tuple[str, ...]
    article: str = ""
    caption: str = ""
    units: list[Unit] = field(default_factory=list)
    open_unit: bool = False


class SectionBuilder:
    """One document's walk: :meth:`build` returns its sections, each with its path and paragraphs."""

    def __init__(self, doc: ParsedDocument) -> None:
        self.fmt = doc.format
        self.joinable = doc.format in ("pdf", "text", "markdown")
        self.lines = prepare_lines(doc)
        for ln in self.lines:
            if ln.kind == "body":
                ln.head = match_heading(ln.text, self.fmt)
        self._drop_title_heading(doc.title)
        self.full_width = self._full_width() if doc.format == "pdf" else None
        self.listy = self._list_runs()
        if doc.format != "pdf":
            self._toc_neighbours()
        ja = sum(1 for ln in self.lines[:400] if KANA_RE.search(ln.text))
        self.toc_label = "目次" if ja >= 3 else "Contents"
        self.sections: list[Section] = []
        self.stack: list[Head] = []
        self._in_toc = False
        self.section = self._new_section(())

    # context ---------------------------------------------------------------------

    def _drop_title_heading(self, title: str) -> None:
        """A single level-1 Markdown heading at the top is the document's title, not a section: the
        caller prepends the title anyway."""
        heads = [ln for ln in self.lines if ln.head is not None and ln.head.family == "md"]
        ones = [ln for ln in heads if ln.head.depth == 1]
        if len(ones) == 1 and heads[0] is ones[0] and title:
            label, wanted = ones[0].head.label, norm_label(title)
            if not (label == wanted or label in wanted or wanted in label):
                return
            ones[0].head = None
            ones[0].kind = "skip"  # the line is the title: not a section, not body text

    def _full_width(self) -> int | None:
        body = (display_width(ln.text) for ln in self.lines if ln.kind == "body")
        widths = sorted(w for w in body if w >= 20)
        if len(widths) < 20:
            return None
        return widths[int(len(widths) * 0.9)]

    def _wide(self, text: str) -> bool:
        return self.full_width is not None and display_width(text) >= 0.85 * self.full_width

    def _neighbour(self, i: int, step: int, skip_blank: bool = True) -> Line | None:
        j = i + step
        while 0 <= j < len(self.lines):
            ln = self.lines[j]
            if ln.kind in ("skip", "pagebreak") or (skip_blank and ln.kind == "blank"):
                j += step
                continue
            return ln
        return None

    def _list_runs(self) -> set[int]:
        """Indexes of ambiguous heading candidates that are really items of a list: the previous or next
        text line starts with a marker of the same kind."""
        keys: list[tuple[str, float] | None] = []
        for ln in self.lines:
            key = None
            if ln.kind == "body":
                key = marker_key(ln.text)
            keys.append(key)
        result = set()
        text_idx = [i for i, ln in enumerate(self.lines) if ln.kind in ("body", "toc", "code")]
        for pos, i in enumerate(text_idx):
            head = self.lines[i].head
            if head is None or not (head.ambiguous or head.family == "en"):
                continue
            key = keys[i]
            prev_key = keys[text_idx[pos - 1]] if pos > 0 else None
            next_key = keys[text_idx[pos + 1]] if pos + 1 < len(text_idx) else None
            if key is not None and (key == prev_key or key == next_key):
                result.add(i)
        return result

    def _toc_neighbours(self) -> None:
        """Non-PDF tables of contents: a heading-like line between TOC lines (or a TOC line and a heading)
        is a TOC entry too (e-Gov: "第七章の三　株主", "附則")."""
        for i, ln in enumerate(self.lines):
            if ln.kind != "body" or ln.head is None:
                continue
            prev = self._neighbour(i, -1)
            nxt = self._neighbour(i, 1)
            if (
                prev is not None
                and prev.kind == "toc"
                and nxt is not None
                and (nxt.kind == "toc" or nxt.head is not None)
            ):
                ln.kind = "toc"
                ln.head = None

    def _long(self, text: str) -> bool:
        """Running text rather than a heading or a margin note."""
        if self.full_width is None:
            return display_width(text) >= 60
        return display_width(text) >= 0.6 * self.full_width

    def _accept(self, i: int, head: Head) -> bool:
        if head.family == "md":
            return True
        ln = self.lines[i]
        prev = self._neighbour(i, -1, skip_blank=False)
        same_page = prev is not None and prev.page == ln.page
        if (
            self.fmt == "pdf"
            and prev is not None
            and prev.kind == "body"
            and prev.head is None
            and not ends_unit(prev.text)
            and not (head.family == "dotted" and RE_CAPITALS_TITLE.match(prev.text))  # "12. Politically exposed
            # persons" under a group title ("ADDITIONAL MEASURES FOR SPECIFIC CUSTOMERS AND ACTIVITIES"): not wrapped
            and (
                self._wide(prev.text)
                or RE_DANGLING.search(prev.text)
                or (same_page and head.family in ("en", "dotted") and self._long(prev.text))
            )
        ):
            return False  # the line continues a wrapped sentence
        nxt = self._neighbour(i, 1, skip_blank=False)
        next_continues = (
            self.fmt == "pdf"
            and nxt is not None
            and nxt.kind == "body"
            and nxt.head is None
            and not RE_MARKER.match(nxt.text)
        )
        continues = next_continues and self._wide(ln.text)
        if (
            head.family == "dotted"
            and head.number
            and not head.body
            and not head.ambiguous
            and next_continues
        ):
            title = ln.text[len(head.number) :].strip(" .．\t\u3000")
            if continues or len(title.split()) >= 6 or (self._long(ln.text) and sentence_like(title)):
                # "1.39 Senior management of … must appoint an" wrapped: a numbered paragraph, not a title
                head.label, head.body = head.number, ln.text
        if head.ambiguous:
            if any(h.article for h in self.stack) or (
                head.family != "dotted" and any(h.body for h in self.stack)
            ):
                return False  # （１） ① inside an article or a numbered rule are its items
            if i in self.listy:
                return False
            if continues:
                return False  # a wrapped list item
        return True

    # building --------------------------------------------------------------------

    def _new_section(self, path: tuple[str, ...], article: str = "", caption: str = "") -> Section:
        section = Section(path=path, article=article, caption=caption)
        self.sections.append(section)
        return section

    def _current_path(self) -> tuple[str, ...]:
        return tuple(h.label for h in self.stack)

    def _push(self, head: Head) -> None:
        stack = self.stack
        if (
            head.family == "jp"
            and 1 <= head.depth <= 3
            and stack
            and stack[-1].family == "jp"
            and stack[-1].depth == 0
            and not self.section.units
        ):
            stack.pop()  # an empty 附則 line followed by 第一章: a TOC remnant
        same = [k for k, h in enumerate(stack) if h.family == head.family]
        if same:
            shallower = [k for k in same if stack[k].depth < head.depth]
            cut = shallower[-1] + 1 if shallower else same[0]
            del stack[cut:]
        stack.append(head)
        top = head if head.article else None
        self.section = self._new_section(
            self._current_path(), article=top.article if top else "", caption=top.caption if top else ""
        )

    def _add_text(self, text: str, page: int | None, new_unit: bool = False) -> None:
        section = self.section
        unit = section.units[-1] if section.units and section.open_unit else None
        if unit is not None and not new_unit and self.joinable and self._joins(unit.text, text):
            unit.add(text, page, joiner(unit.text, text))
        else:
            unit = Unit()
            para = RE_PARAGRAPH_NUMBER.match(text) if section.article else None
            if para and para.group(1) not in ("1", "１"):
                unit.para = para.group(1)
            elif section.units:
                unit.para = section.units[-1].para
            unit.add(text, page, "")
            section.units.append(unit)
            section.open_unit = True

    def _joins(self, current: str, text: str) -> bool:
        m = RE_MARKER.match(text)
        if m and not text.startswith(tuple(CLOSERS)) and not text[m.end() :].startswith(PARTICLES):
            return False  # a new item (but "（１）において…" continues the sentence)
        if ends_unit(current):
            return text[:1] in CLOSERS or text[:1].islower()
        return True

    def _close_unit(self) -> None:
        self.section.open_unit = False

    def build(self) -> list[Section]:
        lines = self.lines
        n = len(lines)
        pending_caption: Line | None = None
        i = 0
        while i < n:
            ln = lines[i]
            if ln.kind in ("skip",):
                i += 1
                continue
            if ln.kind in ("blank",):
                self._close_unit()
                i += 1
                continue
            if ln.kind == "pagebreak":
                i += 1
                continue
            if ln.kind == "toc":
                if not self._in_toc:
                    self._in_toc = True
                    self.section = self._new_section((self.toc_label,))
                self._add_text(RE_DOT_LEADER.sub("", ln.text).strip() or ln.text, ln.page, new_unit=True)
                i += 1
                continue
            if self._in_toc:
                self._in_toc = False
                self.section = self._new_section(self._current_path(), *self._article_of_stack())
            if ln.kind == "code":
                self._add_text(ln.text, ln.page, new_unit=True)
                i += 1
                continue
            head = ln.head
            if head is None and RE_CAPTION_LINE.match(ln.text):
                nxt = self._neighbour(i, 1)
                if nxt is not None and nxt.head is not None and nxt.head.article:
                    pending_caption = ln
                    i += 1
                    continue
            if head is not None and self._accept(i, head):
                i = self._heading(i, head, pending_caption)
                pending_caption = None
                continue
            if pending_caption is not None:  # the article after it was not accepted: keep its text
                self._add_text(pending_caption.text, pending_caption.page, new_unit=True)
                pending_caption = None
            self._add_text(ln.text, ln.page)
            i += 1
        return [s for s in self.sections if s.units]

    def _article_of_stack(self) -> tuple[str, str]:
        if self.stack and self.stack[-1].article:
            return self.stack[-1].article, self.stack[-1].caption
        return "", ""

    def _heading(self, i: int, head: Head, caption_line: Line | None) -> int:
        """Push an accepted heading; returns the index of the next line to process."""
        lines = self.lines
        nxt_i = i + 1
        if head.article and caption_line is not None and not head.caption:
            caption = norm_label(caption_line.text.replace("(", "（").replace(")", "）"))
            head.caption = caption
            head.label = head.article + caption
        elif not head.article and head.empty_title:
            # "Article 12" / "CHAPTER II" / "第一章" alone: the next short line is its title
            j = i + 1
            if j < len(lines) and lines[j].kind == "body" and lines[j].head is None:
                t = lines[j].text
                limit = 40 if CJK_RE.search(t) else 80
                if (
                    len(t) <= limit
                    and not ends_unit(t)
                    and not RE_MARKER.match(t)
                    and looks_like_title(t, 80)
                ):
                    head.label = norm_label(head.label + " " + t)
                    nxt_i = j + 1
        elif self.fmt == "pdf" and not head.ambiguous and not head.body and self._wide(lines[i].text):
            # a long heading wrapped onto a second, short line
            j = i + 1
            if j < len(lines) and lines[j].kind == "body" and lines[j].head is None:
                t = lines[j].text
                after = self._neighbour(j, 1, skip_blank=False)
                if (
                    self.full_width
                    and display_width(t) <= 0.6 * self.full_width
                    and "。" not in t
                    and not RE_MARKER.match(t)
                    and (after is None or after.kind != "body" or after.head is not None)
                ):
                    head.label = norm_label(head.label + t)
                    nxt_i = j + 1
        self._push(head)
        if head.body:
            self._add_text(head.body, lines[i].page, new_unit=True)
        return nxt_i
