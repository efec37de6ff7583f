"""The ``sentence-splitter`` chunker (``ingest.chunker``): llama-index's SentenceSplitter, 512 tokens with 50 of
overlap, over each document's whole text, with no sections or pages. It is the ingest benchmark's baseline
(bench/ingest.py), selectable so that the retrieval harness measures the baseline's quality through the same
ingest service as ours (``python -m eval retrieval --experiment llamaindex-chunks``)."""

from __future__ import annotations

from ingest.document import ChunkDraft, ParsedDocument

CHUNK_SIZE = 512
CHUNK_OVERLAP = 50


def sentence_splitter_chunks(doc: ParsedDocument) -> list[ChunkDraft]:
    from llama_index.core import Document  # 2 s to import: only when this chunker is chosen
    from llama_index.core.node_parser import SentenceSplitter

    text = "\n\n".join(page.text for page in doc.pages if page.text)
    nodes = SentenceSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP).get_nodes_from_documents(
        [Document(text=text)])
    return [ChunkDraft(text=n.get_content(), section="", page_start=None, page_end=None) for n in nodes]
