"""Per-query retrieval metrics of the harness: documents (JFinTEB) and gold passages (ObliQA), the standard
measures from ``eval.measures`` and the passage-level ones of our own (recall over passages, map@k, recall within
a word budget)."""

from __future__ import annotations

from eval.measures import score_ranking

KS = (1, 5, 10)

WORD_BUDGETS = (1000, 2000)
"""ObliQA: recall within the first chunks that fit this many words, i.e. at an equal amount of text handed
to the LLM (chunkers with larger chunks fill the top k with more text)."""


def score_docs(ranked_docs: list[str], relevant: list[str], k: int) -> dict[str, float]:
    """Document-level metrics for one query: R@c, RR@k and nDCG@k (``eval.measures``) over the documents in
    the order of their best chunk."""
    names = [f"recall@{cut}" for cut in sorted({*KS, k})] + [f"mrr@{k}", f"ndcg@{k}"]
    return score_ranking(ranked_docs, relevant, names)


def score_passages(hit_sets: list[set[int]], n_gold: int, k: int) -> dict[str, float]:
    """Chunk-level metrics for one question: ``hit_sets[i]`` holds the gold passages chunk i hits.

    A passage is found once: chunk i counts as relevant when it hits a gold passage that no earlier chunk
    hit, and then stands for that passage in the ranking the standard measures see (``eval.measures``,
    R = ``n_gold``): any@c is Success@c, mrr@k RR@k, ndcg@k nDCG@k. Ours, not standard:
    recall@c counts gold passages hit within the top c chunks over ``n_gold`` (one chunk may hit several,
    so it is not R@c of any ranking); map@k divides the summed precision by min(R, k) where trec_eval's
    AP@k divides by R, so map@k = AP@k x R / min(R, k) (the same value while R <= k)."""
    ranking, seen = [], set()
    for i, hits in enumerate(hit_sets):
        new = hits - seen
        ranking.append(f"p{min(new)}" if new else f"chunk{i}")
        seen |= hits
    cuts = sorted({*KS, k})
    names = [f"hit@{cut}" for cut in cuts] + [f"mrr@{k}", f"ndcg@{k}", f"ap@{k}"]
    std = score_ranking(ranking, [f"p{i}" for i in range(n_gold)], names)
    out: dict[str, float] = {}
    for cut in cuts:
        found = set().union(*hit_sets[:cut]) if hit_sets[:cut] else set()
        out[f"recall@{cut}"] = len(found) / n_gold
        out[f"any@{cut}"] = std[f"hit@{cut}"]
    out[f"mrr@{k}"] = std[f"mrr@{k}"]
    out[f"ndcg@{k}"] = std[f"ndcg@{k}"]
    ap = std[f"ap@{k}"]
    out[f"map@{k}"] = ap if n_gold <= k else ap * n_gold / k
    return out


def recall_within_words(hit_sets: list[set[int]], lengths: list[int], n_gold: int) -> dict[str, float]:
    """Gold passages hit by the top chunks that fit each of ``WORD_BUDGETS`` (the first chunk always counts)."""
    out: dict[str, float] = {}
    for budget in WORD_BUDGETS:
        found: set[int] = set()
        used = 0
        for i, (hits, length) in enumerate(zip(hit_sets, lengths, strict=True)):
            used += length
            if i and used > budget:
                break
            found |= hits
        out[f"recall@{budget}w"] = len(found) / n_gold
    return out

