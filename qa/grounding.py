"""Grounding enforced: what the model wrote becomes an answer only as far as the cited sources support it.

Unsupported sentences are removed and listed apart; when the model abstains ("the documents do not state it"), or
no supported claim remains, the result is a refusal with its reason (``core.schema.RefusalReason``). A question that
asks for a specific (何年, いくら, how many, which article) is answered only by a supported claim that states one:
"the guideline requires prompt reporting" is what the documents say, not an answer to "within how many days"."""

from __future__ import annotations

from dataclasses import dataclass

from core.schema import Citation, Hit, RefusalReason
from qa.citations import Verification, verify_answer
from qa.claims import states_asked_specific


@dataclass(frozen=True)
class GroundedAnswer:
    text: str
    citations: list[Citation]
    """Verified citations only."""
    removed: list[str]
    """Sentences taken out of the answer: no cited source supports them."""
    refusal_reason: RefusalReason | None
    check: Verification


def enforce_grounding(
    text: str, sources: list[Hit], refusal: str, question: str = "", typed: str = ""
) -> GroundedAnswer:
    """``question``: what the model answered (a follow-up's rewrite); ``typed``: the question as the user typed it,
    whose explicit ask (何営業日) a rewrite may have lost."""
    stem = refusal.rstrip("。.")
    abstained = not text or stem in text
    written = text.replace(stem, "").strip() if abstained else text
    check = verify_answer(written, sources, question)
    removed = [s.text for s in check.sentences if not s.verified]
    cited = [c for c in check.citations if c.verified]
    if abstained or (check.claims and not states_asked_specific([question, typed], [c.text for c in check.claims])):
        said = check.supported_text(written).strip(" 。.\n")  # what the documents do say, after the refusal
        return GroundedAnswer(refusal + ("\n\n" + said if check.claims else ""), cited, removed, "not_stated", check)
    if not check.claims:
        return GroundedAnswer(refusal, [], removed, "only_unsupported", check)
    return GroundedAnswer(check.supported_text(text), cited, removed, None, check)
