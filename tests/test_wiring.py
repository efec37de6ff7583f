"""The composition root's audit hooks: an answer and a feedback reach the audit trail (audit.records)."""

from __future__ import annotations

from core.schema import Answer, Requester, Timings
from qa.feedback import Feedback
from tests.helpers import EVERYTHING


def test_feedback_is_stored_and_audited(container) -> None:
    feedback = Feedback(user="alice", question="Q?", answer="A.", positive=False, comment="wrong page",
                        citations=[], prompt_version="p1", model="m")
    feedback_id = container.record_feedback(feedback)
    assert [row["id"] for row in container.feedback.recent()] == [feedback_id]
    (record,) = container.audit.search(user="alice", action="feedback", reader=EVERYTHING)
    assert record.detail == {"id": feedback_id, "positive": False, "comment": "wrong page", "question": "Q?"}


def test_an_answer_is_audited_with_the_index_version(container) -> None:
    answer = Answer(question="Q?", answer="no answer", refused=True, citations=[], contexts=[], timings=Timings())
    container.record_answer(Requester(name="bob", groups=()), answer)
    (record,) = container.audit.search(user="bob", reader=EVERYTHING)
    assert record.action == "refuse"
    assert record.detail["index_version"] == container.registry.index_version()
