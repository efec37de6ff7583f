"""Ranking measures through ir-measures, and the one percentile helper for latencies.

The standard measures are trec_eval's own code (ir-measures over pytrec_eval-terrier), with binary
relevance; our metric names map to them as:

    hit@k     Success@k   1 if a relevant item is in the top k
    mrr@k     RR@k        1 / rank of the first relevant item within the top k, else 0 (``mrr``: no cutoff)
    recall@k  R@k         relevant items in the top k / all relevant items
    ndcg@k    nDCG@k      sum of 1 / log2(rank + 1) over relevant ranks <= k, over the same for min(R, k) items
    ap@k      AP@k        sum of precision at each relevant rank <= k, over R (all relevant items)

What is ours is how a ranking and its relevant items are formed before a measure sees it (each caller's
docstring): documents are ranked by their best chunk, pages and law articles by their first chunk
(``eval.page_retrieval``), contexts by the gold-matching rule (``eval.metrics``); ObliQA passages are
found once (``eval.retrieval_metrics.score_passages``, where map@k and recall over passages differ from
the standard and say how).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import ir_measures
import numpy as np

_MEASURES = {
    "hit": ir_measures.Success,
    "mrr": ir_measures.RR,
    "recall": ir_measures.R,
    "ndcg": ir_measures.nDCG,
    "ap": ir_measures.AP,
}


def measure(name: str):
    """The ir-measures measure for one of our names (``recall@5``, ``mrr@10``, ``mrr``...)."""
    base, _, cutoff = name.partition("@")
    if base not in _MEASURES:
        raise ValueError(f"unknown ranking measure {name!r} (known: {', '.join(_MEASURES)})")
    return _MEASURES[base] @ int(cutoff) if cutoff else _MEASURES[base]


def score_rankings(
    rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, Iterable[str]], names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per query id, each named measure of its ranking (best first, distinct items) against its relevant
    items. A query without a ranking, or with no relevant item at all, scores 0 (trec_eval leaves it out)."""
    by_measure = {measure(n): n for n in names}
    run: dict[str, dict[str, float]] = {}
    for qid, items in rankings.items():
        if len(set(items)) != len(items):
            raise ValueError(f"ranking of {qid!r} repeats an item")
        if items:
            run[qid] = {item: float(len(items) - i) for i, item in enumerate(items)}  # no ties: the order is the rank
    qrels = {qid: dict.fromkeys(rel, 1) for qid, rel in relevant.items()}
    qrels = {qid: rel for qid, rel in qrels.items() if rel}
    out = {qid: dict.fromkeys(names, 0.0) for qid in rankings}
    if run and qrels:
        for m in ir_measures.iter_calc(list(by_measure), qrels, run):
            out[m.query_id][by_measure[m.measure]] = float(m.value)
    return out


def score_ranking(ranking: Sequence[str], relevant: Iterable[str], names: Sequence[str]) -> dict[str, float]:
    """:func:`score_rankings` for one query."""
    return score_rankings({"q": ranking}, {"q": relevant}, names)["q"]


def percentile(values: Iterable[float], q: float, empty: float | None = None) -> float | None:
    """The ``q``-th percentile, linear between closest ranks (numpy's default, ``statistics.quantiles``'
    inclusive method); ``empty`` when there are no values."""
    data = np.fromiter(values, dtype=float)
    return float(np.percentile(data, q)) if data.size else empty
