"""What the audit trail records about an answer (one place, used by every caller)."""

from __future__ import annotations

from core.schema import WITHHELD, Answer, SearchFilter, Unrestricted

DOCUMENT_TEXT = ("answer", "citations")
"""What an answer record holds that came from the documents (the question is the asker's own words)."""


def record_answer(log, requester_name: str, answer: Answer, index_version: str) -> None:
    """Put an answer (or a refusal) on the audit trail (``log``: an ``audit.log.AuditLog``)."""
    action, detail = answer_record(answer, index_version)
    log.append(requester_name, action, detail)


def record_unanswered(log, requester_name: str, question: str, error) -> None:
    """Put a question the model failed to answer on the audit trail: an ``ask`` with no answer, and why
    (``error``: a ``core.errors.CQAError``; its message key says which failure)."""
    log.append(requester_name, "ask", {"question": question, "answered": False, "error": error.key or "",
                                       "message": str(error)})


def record_feedback(store, log, feedback) -> int:
    """Store a thumbs up/down (``store.add``), then put it on the audit trail; returns the stored id."""
    feedback_id = store.add(feedback)
    log.append(
        feedback.user, "feedback",
        {"id": feedback_id, "positive": feedback.positive, "comment": feedback.comment,
         "question": feedback.question},
    )
    return feedback_id


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
        "contexts": [{"doc_id": h.doc_id, "version": h.version, "chunk_id": h.chunk_id, "access": h.access}
                     for h in answer.contexts],
        "unsupported_sentences": answer.unsupported_sentences,
        "model": answer.model,
        "prompt_version": answer.prompt_version,
        "index_version": index_version,
        "timings": answer.timings.model_dump(),
    }
    return ("refuse" if answer.refused else "answer"), detail


def readable_detail(detail: dict, reader: SearchFilter) -> dict | None:
    """``detail`` as ``reader`` may see it: None when it holds document text from outside the reader's scope
    (an answer record one of whose contexts the reader may not read; one recorded before contexts carried
    their groups is readable only unrestricted)."""
    contexts = detail.get("contexts")
    if contexts is None or isinstance(reader.access_groups, Unrestricted):
        return detail
    if all(c.get("access") and reader.can_read(c["access"]) for c in contexts):
        return detail
    return None


def withheld(detail: dict) -> dict:
    """An answer record with its document text taken out."""
    return {**detail, **{k: WITHHELD for k in DOCUMENT_TEXT if k in detail}, "withheld": True}
