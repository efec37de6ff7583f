"""A stored run's answers checked again by the current verifier, without the model: a change to the claim checks
measured on the sentences the model actually wrote (``python -m eval verifier rescore RUN``), and, with
``--testset FILE``, against the test set's labels as they are now (a gold page added after the run).

The model's sentences are rebuilt from the stored decisions, one per line (so a list's items stay items), with the
markers recorded for them (a sentence the verifier attributed to a source carries that marker), after the refusal
sentence when the model abstained."""

from __future__ import annotations

from core.schema import Answer
from eval.metrics import Aggregate, aggregate, sample_metrics
from eval.run_store import RunStore
from eval.testset import TestCase
from prompts import load_prompts
from qa.grounding import enforce_grounding

METRICS = ("grounded_answer", "refusal_recall", "refusal_precision", "false_refusal", "removed_claims")


def model_text(answer: Answer, refusal: str) -> str:
    written = "\n".join(s.text + "".join(f"[{m}]" for m in s.markers) for s in answer.sentences)
    return f"{refusal} {written}".strip() if answer.refusal_reason == "not_stated" else written


def recheck(case: TestCase, answer: Answer) -> Answer:
    """``answer`` as the current verifier would have left it."""
    if answer.refusal_reason == "no_relevant_passage":
        return answer  # the model was not asked
    refusal = load_prompts(answer.language).refusal
    grounded = enforce_grounding(model_text(answer, refusal), answer.contexts, refusal,
                                 answer.standalone_question or case.question, answer.question or case.question)
    return answer.model_copy(update={
        "answer": grounded.text, "citations": grounded.citations, "refused": grounded.refusal_reason is not None,
        "refusal_reason": grounded.refusal_reason, "sentences": grounded.check.sentences,
        "removed_claims": grounded.removed, "unsupported_sentences": len(grounded.removed),
    })


def rescore(
    store: RunStore, run_id: str, k: int = 5, labels: dict[str, TestCase] | None = None
) -> tuple[Aggregate, Aggregate, list[str]]:
    """(metrics as stored, metrics after re-checking, ids whose refusal or grounded score changed). ``labels``:
    cases by id whose labels replace those stored with the run."""
    before, after, changed = [], [], []
    for record in store.samples(store.get(run_id).run_id):
        if not record.get("answer"):
            continue
        stored, answer = TestCase.model_validate(record["case"]), Answer.model_validate(record["answer"])
        case = (labels or {}).get(stored.id, stored)
        again = recheck(case, answer)
        scores = [sample_metrics(c, a, k, METRICS) for c, a in ((stored, answer), (case, again))]
        for out, s in zip((before, after), scores, strict=True):
            out.append({"metrics": {n: score.to_dict() for n, score in s.items()}})
        if again.refused != answer.refused:
            changed.append(f"{case.id}: {'refused' if answer.refused else 'answered'} -> "
                           f"{'refused' if again.refused else 'answered'}")
        elif scores[0]["grounded_answer"].value != scores[1]["grounded_answer"].value:
            changed.append(f"{case.id}: grounded {scores[0]['grounded_answer'].value} -> "
                           f"{scores[1]['grounded_answer'].value}")
    return aggregate(before, METRICS), aggregate(after, METRICS), changed
