"""What a reader may see of a stored evaluation sample: a run answers within its own scope, and whoever opens
its report later may have fewer groups. Text from documents outside the reader's scope is withheld, together
with everything derived from it (the answer, its sentences, the judge's verdicts); scores stay."""

from __future__ import annotations

import copy

from core.schema import WITHHELD, SearchFilter, Unrestricted


def _covers(reader: SearchFilter, run_groups: list[str] | None) -> bool:
    """Whether the reader may read everything the run could: its groups include the run's."""
    if isinstance(reader.access_groups, Unrestricted):
        return True
    return run_groups is not None and set(run_groups) <= set(reader.access_groups)


def _readable(context: dict, reader: SearchFilter, covers_run: bool) -> bool:
    access = context.get("access")
    if access:
        return reader.can_read(access)
    return covers_run  # a context stored before hits carried their groups: only the run's own scope reads it


def withhold(record: dict, reader: SearchFilter, run_groups: list[str] | None) -> dict:
    """``record`` as ``reader`` may see it (the record itself when nothing is withheld).

    ``run_groups`` is the scope the run answered with (its requester's groups; None when not recorded)."""
    answer = record.get("answer") or {}
    covers_run = _covers(reader, run_groups)
    hidden = [c for c in answer.get("contexts", []) if not _readable(c, reader, covers_run)]
    if not hidden:
        return record
    hidden_docs = {c.get("doc_id") for c in hidden}
    out = copy.deepcopy(record)
    answer = out["answer"]
    answer["answer"] = WITHHELD
    answer["sentences"], answer["removed_claims"] = [], []
    for context in answer.get("contexts", []):
        if not _readable(context, reader, covers_run):
            context.update(text="", source=WITHHELD, title="", section="", withheld=True)
    for citation in answer.get("citations", []):
        if citation.get("doc_id") in hidden_docs:
            citation.update(quote="", source=WITHHELD, title="", section="")
    for score in (out.get("metrics") or {}).values():
        score.pop("details", None)  # judge verdicts restate the contexts
    out["withheld_contexts"] = len(hidden)
    return out
