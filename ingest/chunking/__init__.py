"""Structure-aware chunking of a :class:`ParsedDocument` for Japanese and English regulatory text.

The chunker walks the document's lines once:

1. clean-up (``lines``): page-number lines, running headers/footers and table-of-contents pages are recognised;
2. headings are recognised by shape (``headings``: Markdown; ``headings_ja``: 第X編/章/節/款/目, 第X条, 附則,
   Ⅱ－２, （３）, （ⅴ）, ①; ``headings_en``: Article/Chapter/Part/Section/Recommendation/Rule N, ADGM rule
   numbers; ``headings_numbered``: 1.2.3, 2-1) and accepted in context (``builder``), kept on a stack of
   ``(family, depth)`` entries, which gives every line its section path;
3. the lines of a section are joined into paragraphs (``builder``; PDF line breaks inside a sentence
   disappear), paragraphs are split into sentences (``core.text``), and sentences are packed into chunks of at
   most ``max_tokens`` tokens with ``overlap_sentences`` sentences of overlap (``packing``). A chunk never
   spans two sections.

A heading is recognised by its shape *and* its context: numbered headings must be short and must not read
like running text, markers such as （１） or ① inside a statute article are items (``markers``), a run of
same-kind markers with nothing between them is a list, and a line that continues a wrapped PDF line is not a
heading.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.chunking.builder import SectionBuilder
from ingest.chunking.packing import TokenCounter, pack_section
from ingest.document import ChunkDraft, ParsedDocument

__all__ = ["chunk_document"]


def chunk_document(
    doc: ParsedDocument,
    count_tokens: Callable[[str], int],
    max_tokens: int = 220,
    overlap_sentences: int = 1,
    overlap_max_tokens: int | None = None,
) -> list[ChunkDraft]:
    """Split a parsed document into chunks that follow its structure.

    Each chunk holds whole sentences of one section (a sentence longer than ``max_tokens`` is cut at
    clause boundaries, or hard by tokens), at most ``max_tokens`` tokens as counted by ``count_tokens``,
    repeats the last ``overlap_sentences`` sentences of the previous chunk of the same section (as many of them as
    fit ``overlap_max_tokens``, when given), and carries
    its section path and the PDF pages its text spans.
    """
    counter = TokenCounter(count_tokens, max_tokens)
    sections = SectionBuilder(doc).build()
    chunks: list[ChunkDraft] = []
    for section in sections:
        chunks.extend(pack_section(section, counter, max(0, overlap_sentences), overlap_max_tokens))
    return chunks
