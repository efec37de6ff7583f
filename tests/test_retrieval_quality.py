"""Retrieval-quality harness: the ObliQA hit rule and the metrics on hand-made data, and a quick
end-to-end run on a JFinTEB sample (ingest, retrieve, score) through ``main_retrieval``."""

from __future__ import annotations

import json

import pytest

from eval.passages import chunk_hits_passage, coverage, normalise_text, words
from eval.retrieval_quality import (
    main_retrieval,
    parse_overrides,
    pick,
    recall_within_words,
    score_docs,
    score_passages,
)
from tests.conftest import corpus_path
from wiring import Container

PASSAGE = (
    "A Relevant Person must establish and maintain effective policies, procedures, systems and controls "
    "to prevent opportunities for money laundering, and must keep the records required by this Rulebook "
    "for at least six years from the date on which the business relationship with the customer ended."
)


# -- the ObliQA hit rule ----------------------------------------------------------------------------------


def test_passage_contained_after_whitespace_normalisation_is_a_hit():
    body = PASSAGE.replace(" must ", "\tmust\n  ", 1).replace("Rule", "\u200eRule")
    chunk = "8.1.1 Records\n" + body + "\n8.1.2 Next"
    assert chunk_hits_passage(chunk, PASSAGE)
    assert normalise_text("A\u200e  b\tC\n") == "a b c"


def test_chunk_holding_most_of_a_split_passage_is_a_hit_and_a_small_piece_is_not():
    tokens = PASSAGE.split(" ")
    head = " ".join(tokens[: int(len(tokens) * 0.6)])  # 60% of the passage, then an unrelated rule
    assert chunk_hits_passage(head + ". Rule 9.2 applies to Authorised Persons only.", PASSAGE)
    small = " ".join(tokens[:12])  # about a quarter of the passage
    assert not chunk_hits_passage(small + " and something else entirely about fees and levies.", PASSAGE)


def test_chunk_inside_a_longer_passage_is_a_hit():
    long_passage = " ".join(f"{PASSAGE} Paragraph {i} adds detail number {i}." for i in range(4))
    inside = " ".join(long_passage.split(" ")[40:90])
    assert chunk_hits_passage(inside, long_passage)
    # Half inside, half foreign text: not 80% contained, and far from 50% of the long passage.
    half = " ".join(long_passage.split(" ")[40:65]) + " " + " ".join(f"foreign{i} word{i}" for i in range(13))
    assert not chunk_hits_passage(half, long_passage)


def test_unrelated_or_empty_texts_are_not_hits():
    assert not chunk_hits_passage("Fees are payable annually to the Regulator by each Authorised Person.", PASSAGE)
    assert not chunk_hits_passage(PASSAGE, "")
    assert not chunk_hits_passage("", PASSAGE)


def test_shared_words_out_of_order_do_not_count_as_coverage():
    passage = words("the customer must provide the records to the relevant person")
    shuffled = list(reversed(passage))
    assert coverage(passage, shuffled) == 0.0
    assert coverage(passage, passage) == 1.0
    assert coverage(words("short title"), words("a short title here")) == 1.0


# -- metrics ----------------------------------------------------------------------------------------------


def test_document_metrics():
    m = score_docs(["a", "b", "c"], ["b"], 10)
    assert m["recall@1"] == 0.0 and m["recall@5"] == 1.0 and m["mrr@10"] == 0.5
    assert m["ndcg@10"] == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert score_docs([], ["b"], 10)["ndcg@10"] == 0.0


def test_passage_metrics_count_each_gold_passage_once():
    # Two gold passages: chunk 1 hits passage 0, chunk 2 hits passage 0 again, chunk 4 hits passage 1.
    m = score_passages([set(), {0}, {0}, set(), {1}], n_gold=2, k=10)
    assert m["recall@1"] == 0.0 and m["any@1"] == 0.0
    assert m["recall@5"] == 1.0 and m["any@5"] == 1.0
    assert m["mrr@10"] == 0.5
    assert m["map@10"] == pytest.approx((1 / 2 + 2 / 5) / 2)
    ideal = 1 + 1 / 1.5849625
    assert m["ndcg@10"] == pytest.approx((1 / 1.5849625 + 1 / 2.5849625) / ideal, rel=1e-6)


def test_recall_within_a_word_budget_counts_chunks_until_the_budget_is_spent():
    """Equal text for every chunker: two 600-word chunks do not both fit 1,000 words; the first chunk
    always counts, even when it alone is over the budget."""
    assert recall_within_words([{0}, set(), {1}], [600, 500, 900], n_gold=2) == {
        "recall@1000w": 0.5, "recall@2000w": 1.0}
    assert recall_within_words([{0}, {1}], [2500, 10], n_gold=2) == {"recall@1000w": 0.5, "recall@2000w": 0.5}


def test_query_sample_and_overrides():
    assert pick(list(range(10)), 3) == [0, 3, 6]
    assert pick(list(range(4)), None) == [0, 1, 2, 3]
    assert parse_overrides(["retrieval.fusion=dbsf", "ingest.chunk_tokens=300", "embedding.model_path="]) == {
        "retrieval": {"fusion": "dbsf"},
        "ingest": {"chunk_tokens": "300"},
        "embedding": {"model_path": None},
    }
    from core.cli import UsageError

    with pytest.raises(UsageError):
        parse_overrides(["retrieval.nope=1"])
    with pytest.raises(UsageError):
        parse_overrides(["fusion=dbsf"])


def test_the_index_key_hashes_ingest_code_that_exists():
    """A file or package renamed away from INDEX_CODE would stop changes to it from rebuilding the index."""
    from eval.retrieval_index import INDEX_CODE, source_hash

    assert [rel for rel in INDEX_CODE if source_hash(rel) is None] == []
    assert "ingest/readers/" in INDEX_CODE and "ingest/chunking/" in INDEX_CODE


def test_the_llamaindex_chunks_experiment_indexes_what_the_ingest_benchmark_baseline_indexes(tmp_path):
    """One 512-token SentenceSplitter chunk list per document, no sections: the baseline's retrieval
    quality is measured on the same datasets as ours, chosen through the ingest settings, not patched in."""
    from core.schema import UNRESTRICTED, SearchFilter
    from eval.retrieval_experiments import experiment_settings
    from tests.conftest import EN_MD, make_container

    ours = make_container(tmp_path / "ours")
    baseline = make_container(tmp_path / "baseline", **experiment_settings({}, ("llamaindex-chunks",)))
    assert baseline.settings.ingest.chunker == "sentence-splitter" and ours.settings.ingest.chunker == "structure"
    [mine] = ours.ingest.ingest([EN_MD]).documents
    [theirs] = baseline.ingest.ingest([EN_MD]).documents
    hits = baseline.retrieval.retrieve("gifts", SearchFilter(access_groups=UNRESTRICTED), k=50)
    assert theirs.status == "ingested" and 0 < theirs.chunks < mine.chunks and len(hits) == theirs.chunks
    assert all(h.section == "" for h in hits)
    assert any(h.section for h in ours.retrieval.retrieve("gifts", SearchFilter(access_groups=UNRESTRICTED), k=50))
    ours.close()
    baseline.close()


# -- end to end on the shared corpus ---------------------------------------------------------------------

NDCG_FLOOR = 0.90
"""Measured 0.98 on this sample (20 queries, 200 documents: 19 relevant documents ranked first, one second); the
full validation set (199 queries, 912 documents) gives 0.92. A drop below 0.90 means several of the 20
relevant documents fell out of first place: something broke, not noise (the run is deterministic)."""


@pytest.mark.corpus
def test_jfinteb_wikinews_sample_end_to_end(tmp_path, capsys):
    corpus_path("ja", "jfinteb", "wikinews", "docs.jsonl")
    argv = ["--dataset", "jfinteb-wikinews", "--limit", "20", "--max-docs", "200", "--json",
            "--data-dir", str(tmp_path)]
    assert main_retrieval(argv, make_container=Container) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "jfinteb-wikinews" and result["queries"] == 20 and result["k"] == 10
    assert set(result["metrics"]) >= {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"}
    assert all(0.0 <= v <= 1.0 for v in result["metrics"].values())
    assert result["latency_ms"]["p50"] > 0 and result["latency_ms"]["p95"] >= result["latency_ms"]["p50"]
    assert result["index"]["chunks"] > 200 and result["index"]["failed"] == 0 and not result["index"]["reused"]
    assert any(p["system"] == "multilingual-e5-small" and p["ndcg@10"] == 0.8425 for p in result["published"])
    assert result["metrics"]["ndcg@10"] >= NDCG_FLOOR, result["metrics"]

    # A second run with a query-time override reuses the index.
    assert main_retrieval([*argv, "--set", "retrieval.fusion=dbsf"], make_container=Container) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["index"]["reused"] and again["settings"]["retrieval.fusion"] == "dbsf"

    # The ingest benchmark baseline's chunking gets an index of its own.
    assert main_retrieval([*argv, "--experiment", "llamaindex-chunks"], make_container=Container) == 0
    baseline = json.loads(capsys.readouterr().out)
    assert not baseline["index"]["reused"] and baseline["settings"]["experiments"] == ["llamaindex-chunks"]
    assert baseline["index"]["chunks"] != result["index"]["chunks"]


# -- page-level scoring and the user's path ------------------------------------------------------------------


def test_page_units_match_gold_by_path_suffix_page_and_article():
    from eval.page_retrieval import Unit, score_units, unit_matches
    from eval.testset import GoldSource

    jsda = Unit("/corpus/ja/fsa_jsda_samples/jsda/content.pdf", 7)
    handbook = Unit("/corpus/ja/fsa_jsda_samples/jsdahandbook/content.pdf", 7)
    gold = GoldSource(source="ja/fsa_jsda_samples/jsda/content.pdf", pages=[7])
    assert unit_matches(jsda, gold) and not unit_matches(handbook, gold)  # six files are named content.pdf
    law = GoldSource(source="ja/egov_laws_2013/text/銀行法.txt", sections=["第十二条"])
    assert unit_matches(Unit("/c/ja/egov_laws_2013/text/銀行法.txt", None, "第十二条"), law)
    assert not unit_matches(Unit("/c/ja/egov_laws_2013/text/銀行法.txt", None, "第十二条の二"), law)
    assert score_units([handbook, jsda], [gold]) == {"page_hit@1": 0.0, "page_hit@5": 1.0, "page_hit@10": 1.0,
                                                     "mrr@10": 0.5}


def test_the_harness_ranks_exactly_as_python_m_ingest_and_python_m_retrieval_do(tmp_path):
    """The harness builds its index the way an admin does (one `python -m ingest FOLDER`, CLI defaults, no
    typed titles) and searches as `python -m retrieval --queries` does: the same chunks in the same order."""
    from eval.retrieval_quality import Dataset, Query, evaluate
    from eval.testset import GoldSource
    from tests.conftest import SAMPLES
    from tests.helpers import run_cli

    questions = {"q1": "口座開設時の本人確認書類は？", "q2": "What is the gift limit for staff?",
                 "q3": "現金200万円を超える取引の確認", "q4": "suspicious transaction report deadline"}
    gold = [GoldSource(source="ja_account_opening_manual.pdf", pages=[1])]
    dataset = Dataset(name="dev-pages", corpus_id="samples", corpus_label="samples", level="page",
                      queries=[Query(qid, text, gold_units=gold) for qid, text in questions.items()],
                      files=lambda workdir: [SAMPLES], published=[])
    result = evaluate(dataset, data_dir=tmp_path / "harness", rankings=True, make_container=Container)
    assert result["floor"]["units"] > 0 and 0.0 <= result["floor"]["metrics"]["page_hit@1"] <= 1.0

    data = tmp_path / "cli"
    assert run_cli("ingest", str(SAMPLES), data_dir=data).returncode == 0
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"id": q, "query": t}, ensure_ascii=False) + "\n"
                               for q, t in questions.items()), encoding="utf-8")
    proc = run_cli("retrieval", "--queries", str(queries), "--json", data_dir=data)  # the CLI's default k, 10
    assert proc.returncode == 0, proc.stderr
    cli = {row["id"]: [h["chunk_id"] for h in row["hits"]] for row in map(json.loads, proc.stdout.splitlines())}
    # the first 10 of the harness's deeper list (a store may break a tie at its candidate limit either way,
    # which moves only the last places of a 40-deep list)
    assert cli == {q: ids[:10] for q, ids in result["rankings"].items()}
    assert all(len(ids) == 10 for ids in cli.values())
