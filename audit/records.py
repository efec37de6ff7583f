"""What the audit trail records about an answer (one place, used by every caller)."""

from __future__ import annotations

from core.schema import Answer


def answer_record(answer: Answer, index_version: str) -> tuple[str, dict]:
    """(action, detail) for an answer: ``refuse`` or ``answer`` with sources, versions, timings."""
    detail = {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.answer,
        "refused": answer.refused,
        "citations": [
            {"n": c.n, "doc_id": c.doc_id, "version": c.version, "source": c.source, "page": c.page,
             "section": c.section, "verified": c.verified}
            for c in answer.citations
        ],
        "contexts": [{"doc_id": h.doc_id, "version": h.version, "chunk_id": h.chunk_id} for h in answer.contexts],
        "unsupported_sentences": answer.unsupported_sentences,
        "model": answer.model,
        "prompt_version": answer.prompt_version,
        "index_version": index_version,
        "timings": answer.timings.model_dump(),
    }
    return ("refuse" if answer.refused else "answer"), detail
