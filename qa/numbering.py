"""An answer as a reader sees it: citations numbered [1], [2], … in the order the answer first cites them.

The answer service numbers a citation by its place in the list of sources the model was given, so an answer
that cites only the third source starts at [3], and one that cites the first and the fourth skips. Readers get
consecutive numbers from 1; every marker in the text is rewritten with them, a marker that names no verified
citation is dropped, and a sentence the verifier attributed to a source it did not mark gets that marker. The
stored answer keeps the service's numbers (the audit trail and evaluation refer to them)."""

from __future__ import annotations

import re

from core.schema import Answer
from qa.citations import MARKER

_NUMBER = re.compile(r"\d{1,2}")


def renumbering(answer: Answer) -> dict[int, int]:
    """The reader's number of each citation, by the service's number."""
    return _renumbering(answer, _mark_attributed(answer))


def _renumbering(answer: Answer, text: str) -> dict[int, int]:
    cited = {c.n for c in answer.citations}
    order: list[int] = []
    for match in MARKER.finditer(text):
        for n in (int(x) for x in _NUMBER.findall(match.group(0))):
            if n in cited and n not in order:
                order.append(n)
    order += [c.n for c in answer.citations if c.n not in order]
    return {old: i for i, old in enumerate(order, start=1)}


def consecutive(answer: Answer) -> Answer:
    """``answer`` with its citations renumbered 1..n and its text's markers rewritten to match."""
    text = _mark_attributed(answer)
    new = _renumbering(answer, text)

    def rewrite(match: re.Match) -> str:
        numbers = list(dict.fromkeys(new[int(x)] for x in _NUMBER.findall(match.group(0)) if int(x) in new))
        return "".join(f"[{n}]" for n in numbers)

    citations = sorted((c.model_copy(update={"n": new[c.n]}) for c in answer.citations), key=lambda c: c.n)
    return answer.model_copy(update={"answer": MARKER.sub(rewrite, text).strip(), "citations": citations})


def _mark_attributed(answer: Answer) -> str:
    """The answer text with a marker after each kept sentence that the verifier attributed to a source the
    model did not mark (service numbering)."""
    text = answer.answer
    cited = {c.n for c in answer.citations}
    for sentence in answer.sentences:
        numbers = [n for n in sentence.markers if n in cited]
        if not sentence.verified or not numbers or not sentence.text:
            continue
        at = text.find(sentence.text)
        if at < 0:
            continue
        end = at + len(sentence.text)
        if MARKER.match(text, end):
            continue  # the model marked it
        marks = "".join(f"[{n}]" for n in numbers)
        text = text[:end] + marks + text[end:]
    return text
