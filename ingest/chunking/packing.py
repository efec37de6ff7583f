"""A section's paragraphs cut into sentences (core.text's splitter; one longer than the budget is cut at
clause boundaries, else hard by tokens) and packed into chunks of at most ``max_tokens`` tokens, with the last
sentences of a chunk (up to a token limit) repeated at the start of the next."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from core.text import is_cjk, sentence_spans
from ingest.chunking.builder import Section
from ingest.chunking.heading_text import norm_label
from ingest.document import ChunkDraft

RE_CLAUSE = re.compile(r"[、，；;：]|[,:](?=\s)")


@dataclass
class Sentence:
    """A sentence of a section with its token count and the pages it spans."""

    text: str
    tokens: int
    page_start: int | None
    page_end: int | None
    unit: int
    sep: str  # separator before it inside its unit ("" or " ")
    para: str | None


class TokenCounter:
    """Tokens as the embedder counts them, less what it adds to any text (special tokens)."""

    def __init__(self, count_tokens: Callable[[str], int], max_tokens: int) -> None:
        self.count = count_tokens
        try:
            self.base = max(0, int(count_tokens("")))
        except Exception:  # noqa: BLE001 - a tokenizer that refuses empty input
            self.base = 0
        self.max_tokens = max_tokens
        self.budget = max(1, max_tokens - self.base)
        try:
            self.sep = max(0, int(count_tokens("\n")) - self.base)
        except Exception:  # noqa: BLE001
            self.sep = 0

    def tokens(self, text: str) -> int:
        return max(0, self.count(text) - self.base)

    def split_long(self, text: str) -> list[tuple[str, int]]:
        """A sentence longer than the budget: cut at clause boundaries (、 , ;), else hard by tokens."""
        pieces: list[str] = []
        last = 0
        for m in RE_CLAUSE.finditer(text):
            pieces.append(text[last : m.end()])
            last = m.end()
        pieces.append(text[last:])
        out: list[tuple[str, int]] = []
        cur, cur_tok = "", 0
        for piece in (p for p in pieces if p):
            tok = self.tokens(piece)
            if tok > self.budget:
                if cur:
                    out.append((cur, cur_tok))
                    cur, cur_tok = "", 0
                out.extend(self._hard_split(piece))
                continue
            if cur and cur_tok + tok > self.budget:
                out.append((cur, cur_tok))
                cur, cur_tok = "", 0
            cur += piece
            cur_tok = self.tokens(cur) if cur_tok else tok
        if cur:
            out.append((cur, cur_tok))
        return [(t.strip(), k) for t, k in out if t.strip()]

    def _hard_split(self, text: str) -> list[tuple[str, int]]:
        out = []
        while text:
            tok = self.tokens(text)
            if tok <= self.budget:
                out.append((text, tok))
                break
            lo, hi = 1, len(text) - 1
            while lo < hi:  # longest prefix within the budget
                mid = (lo + hi + 1) // 2
                if self.tokens(text[:mid]) <= self.budget:
                    lo = mid
                else:
                    hi = mid - 1
            cut = lo
            space = text.rfind(" ", 0, cut)
            if space > cut // 2:
                cut = space + 1
            piece = text[:cut]
            out.append((piece, self.tokens(piece)))
            text = text[cut:]
        return out


def section_sentences(section: Section, counter: TokenCounter) -> list[Sentence]:
    out: list[Sentence] = []
    for u, unit in enumerate(section.units):
        text = unit.text
        prev_end = None
        for s, e in sentence_spans(text):
            raw = text[s:e]
            lead = len(raw) - len(raw.lstrip())
            s += lead
            body = text[s:e].rstrip()
            if not body:
                continue
            gap = text[prev_end:s] if prev_end is not None else ""
            sep = " " if any(c.isspace() for c in gap) else ""
            prev_end = s + len(body)
            tokens = counter.tokens(body)
            if tokens <= counter.budget:
                out.append(
                    Sentence(
                        body, tokens, unit.page_at(s), unit.page_at(s + len(body) - 1), u, sep, unit.para
                    )
                )
                continue
            offset = s
            for k, (piece, ptok) in enumerate(counter.split_long(body)):
                found = text.find(piece, offset)
                ps = found if found >= 0 else offset
                offset = ps + len(piece) if found >= 0 else offset
                out.append(
                    Sentence(
                        piece, ptok, unit.page_at(ps), unit.page_at(max(ps, ps + len(piece) - 1)), u,
                        sep if k == 0 else ("" if is_cjk(piece[:1]) else " "), unit.para,
                    )
                )  # fmt: skip
    return out


def render_with_pages(sentences: list[Sentence]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The sentences as one text, and where each page starts in it (offset, page) when they span pages: a
    sentence's offset opens its first page."""
    parts: list[str] = []
    marks: list[tuple[int, int]] = []
    at = 0
    for k, s in enumerate(sentences):
        if k:
            parts.append("\n" if s.unit != sentences[k - 1].unit else s.sep)
            at += len(parts[-1])
        if s.page_start is not None and (not marks or marks[-1][1] != s.page_start):
            marks.append((at, s.page_start))
        parts.append(s.text)
        at += len(s.text)
    joined = "".join(parts)
    lead = len(joined) - len(joined.lstrip())
    marks = [(max(0, offset - lead), page) for offset, page in marks]
    return joined.strip(), tuple(marks) if len(marks) > 1 else ()


def section_path(section: Section, first: Sentence) -> str:
    path = list(section.path)
    if section.article and path and path[-1].startswith(section.article):
        para = f"第{first.para}項" if first.para else ""
        path[-1] = norm_label(section.article + para + section.caption)
    return " > ".join(path)


def pack_section(section: Section, counter: TokenCounter, overlap: int,
                 overlap_max_tokens: int | None = None) -> list[ChunkDraft]:
    sentences = section_sentences(section, counter)
    chunks: list[ChunkDraft] = []
    sep = counter.sep

    def cost(items: list[Sentence]) -> int:
        return sum(x.tokens for x in items) + sep * max(0, len(items) - 1)

    carry: list[Sentence] = []  # overlap from the previous chunk
    qi, n = 0, len(sentences)
    while qi < n:
        head = list(carry)
        while head and cost(head) + sep + sentences[qi].tokens > counter.budget:
            head.pop(0)
        fresh = [sentences[qi]]
        qi += 1
        total = cost(head + fresh)
        while qi < n and total + sep + sentences[qi].tokens <= counter.budget:
            fresh.append(sentences[qi])
            total += sep + sentences[qi].tokens
            qi += 1
        while True:  # the sum of sentence counts is an estimate: check the real text
            items = head + fresh
            text, marks = render_with_pages(items)
            if (len(fresh) == 1 and not head) or counter.count(text) <= counter.max_tokens:
                break
            if len(fresh) > 1:
                fresh.pop()
                qi -= 1
            else:
                head.pop(0)
        pages = [p for x in items for p in (x.page_start, x.page_end) if p is not None]
        chunks.append(
            ChunkDraft(
                text=text,
                section=section_path(section, fresh[0]),
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
                page_marks=marks,
            )
        )
        carry = items[-overlap:] if overlap > 0 else []
        while carry and overlap_max_tokens is not None and cost(carry) > overlap_max_tokens:
            carry.pop(0)  # a long sentence is not embedded twice
    return chunks
