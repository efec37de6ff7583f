"""The ranking measures (ir-measures) and the percentile helper, pinned on a small example computed by hand.

Ranking d1 d2 d3 d4 d5; relevant d2, d4 and d9 (never retrieved), so R = 3:
relevant ranks 2 and 4.
"""

from __future__ import annotations

import math

import pytest

from eval.measures import percentile, score_ranking, score_rankings
from eval.retrieval_quality import score_passages

RANKING = ["d1", "d2", "d3", "d4", "d5"]
RELEVANT = ["d2", "d4", "d9"]


def test_standard_measures_on_a_hand_made_ranking():
    names = ["hit@1", "hit@2", "mrr@1", "mrr@10", "mrr", "recall@2", "recall@5", "ndcg@5", "ap@5"]
    m = score_ranking(RANKING, RELEVANT, names)
    assert list(m) == names
    assert (m["hit@1"], m["hit@2"]) == (0.0, 1.0)
    assert (m["mrr@1"], m["mrr@10"], m["mrr"]) == (0.0, 0.5, 0.5)  # first relevant at rank 2
    assert m["recall@2"] == pytest.approx(1 / 3) and m["recall@5"] == pytest.approx(2 / 3)
    # DCG: ranks 2 and 4 -> 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068; ideal: 3 relevant in the top 5 ->
    # 1 + 1/log2(3) + 1/log2(4) = 1 + 0.63093 + 0.5.
    assert m["ndcg@5"] == pytest.approx(1.0616063 / 2.1309298, abs=1e-7)
    assert m["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5))
    # Precision at the relevant ranks: 1/2 and 2/4, summed over R = 3 (d9 counts though never retrieved).
    assert m["ap@5"] == pytest.approx((1 / 2 + 2 / 4) / 3)


def test_queries_without_a_ranking_or_relevant_items_score_zero_and_rankings_must_be_distinct():
    got = score_rankings({"a": RANKING, "b": [], "c": ["d1"]}, {"a": RELEVANT, "b": ["d1"], "c": []},
                         ["mrr@10", "recall@5"])
    assert got["a"] == {"mrr@10": 0.5, "recall@5": pytest.approx(2 / 3)}
    assert got["b"] == got["c"] == {"mrr@10": 0.0, "recall@5": 0.0}
    with pytest.raises(ValueError, match="repeats"):
        score_ranking(["d1", "d1"], ["d1"], ["mrr"])
    with pytest.raises(ValueError, match="unknown ranking measure"):
        score_ranking(RANKING, RELEVANT, ["precision@5"])


def test_passages_are_found_once_and_map_divides_by_min_r_k():
    """Chunk 1 finds passages 0 and 1, chunk 2 finds passage 0 again; 3 gold passages, k = 2."""
    m = score_passages([{0, 1}, {0}], n_gold=3, k=2)
    assert m["recall@1"] == pytest.approx(2 / 3)  # one chunk, two passages: ours, not R@1 of any ranking
    assert m["any@1"] == 1.0 and m["mrr@2"] == 1.0
    assert m["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))  # chunk 2 found nothing new
    assert m["map@2"] == 0.5  # precision 1/1 over min(R, k) = 2, where trec_eval's AP@2 is 1/3


def test_percentile_is_linear_between_closest_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)  # position 0.95 x 3 = 2.85 between 3 and 4
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None and percentile([], 50, empty=0.0) == 0.0
