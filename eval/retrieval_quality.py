"""Retrieval quality on public labelled sets, through the product's own ingest and retrieval.

``python -m eval retrieval --dataset NAME [--limit N] [--k 10] [--json] [--set KEY=VALUE ...]``
(also ``python -m eval.retrieval_quality ...``).

Datasets (read from the shared corpus, never copied into the repository):

- ``jfinteb-wikinews`` / ``jfinteb-wikipedia``: JFinTEB validation queries; each document of
  ``docs.jsonl`` is written to ``<docid>.txt`` and ingested like any text file. Scored per
  *document*: the ranked chunks are collapsed to their documents (first occurrence wins).
- ``obliqa-dev``: all ObliQA dev questions against the 40 ADGM rulebooks (``regulatory_documents_txt``).
- ``obliqa-aml``: the dev questions whose gold passages are all in DocumentID 1 (the AML rulebook),
  against that one document (``--corpus all``: against all 40 documents).

ObliQA is scored per *chunk*: a retrieved chunk hits a gold passage by :func:`chunk_hits_passage`.
Recall@k is the fraction of a question's gold passages hit within the top k chunks (averaged over
questions); ``any@k`` is the fraction of questions with at least one gold passage hit in the top k.

The corpus is ingested once per configuration into ``<data_dir>/eval/retrieval/<corpus>-<hash>``
(the hash covers every setting and source file that changes the index) and reused afterwards.
Query-time settings (fusion, rrf_k, candidates, query prefix, reranker) never force a rebuild.

The parts: ``eval/datasets/`` (one module per set family), ``eval/retrieval_index.py`` (the index cache),
``eval/retrieval_experiments.py``, ``eval/retrieval_metrics.py`` and ``eval/retrieval_report.py``; this module runs
the queries and holds the command line.

Experiments measure candidate product changes before anyone makes them: ``--mode dense|sparse`` (one leg),
``--rrf-weights D,S`` (= ``--set retrieval.dense_weight=D --set retrieval.sparse_weight=S``),
``--experiment latin-surface`` (Sudachi terms that keep Latin-script words as written),
``--experiment llamaindex-chunks`` (the ingest benchmark baseline's chunking, to compare retrieval quality).
Results and the rules above: docs/retrieval.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from core.cli import ArgumentParser, UsageError, run
from core.schema import UNRESTRICTED, SearchFilter
from eval.datasets import (
    DATASETS,
    DEFAULT_CORPUS,
    DEV_PAGE_SETS,
    OBLIQA_PUBLISHED,
    Dataset,
    Query,
    load_dataset,
    pick,
    shared_documents,
)
from eval.measures import percentile
from eval.page_retrieval import Bm25Floor, floor_units, load_units, ranked_units, save_units, score_units
from eval.passages import chunk_hits_passage, words
from eval.retrieval_experiments import EXPERIMENTS, LatinSurfaceSparse
from eval.retrieval_index import INDEX_FORMAT, FlushAtEnd, Index, index_fingerprint, open_index, parse_overrides
from eval.retrieval_metrics import KS, WORD_BUDGETS, recall_within_words, score_docs, score_passages
from eval.retrieval_report import format_report
from ingest.chunking import chunk_document
from retrieval.service import RetrievalService

MODES = ("hybrid", "dense", "sparse")
PASSAGE_DEPTH = 40

# Targets set by the issue; published figures are read from the corpus (JFinTEB) or quoted (ObliQA).
TARGETS = {
    "obliqa-aml": ("recall@10", 0.85),
    "obliqa-dev": ("recall@10", 0.80),
    "jfinteb-wikinews": ("ndcg@10", 0.90),
    "jfinteb-wikipedia": ("ndcg@10", 0.96),
    "dev-pages": ("page_hit@1", 0.85),
    "dev-pages-ja": ("page_hit@1", 0.85),
    "dev-pages-en": ("page_hit@1", 0.85),
}


def retrieval_service(container, mode: str, rrf_weights: tuple[float, float] | None = None):
    """The product's RetrievalService with its fusion weights set for one leg (``dense`` /
    ``sparse``) or for the given ``rrf_weights``; the configured one otherwise."""
    weights = {"dense": (1.0, 0.0), "sparse": (0.0, 1.0)}.get(mode, rrf_weights)
    if weights is None:
        return container.retrieval
    settings = container.settings.retrieval.model_copy(update={"dense_weight": weights[0], "sparse_weight": weights[1]})
    return RetrievalService(settings, container.embedder, container.sparse, container.store)


def evaluate(
    dataset: Dataset,
    overrides: dict | None = None,
    k: int = 10,
    limit: int | None = None,
    mode: str = "hybrid",
    data_dir: Path | None = None,
    rebuild: bool = False,
    depth: int | None = None,
    rrf_weights: tuple[float, float] | None = None,
    experiments: tuple[str, ...] = (),
    reuse_stale: bool = False,
    rankings: bool = False,
    *,
    make_container,
) -> dict:
    """``rankings``: also return each query's ranked chunk ids (to compare with the CLI's)."""
    overrides = overrides or {}
    index = open_index(dataset, overrides, data_dir=data_dir, rebuild=rebuild, experiments=experiments,
                       reuse_stale=reuse_stale, make_container=make_container)
    container = index.container
    try:
        settings = container.settings
        service = retrieval_service(container, mode, rrf_weights)
        flt = SearchFilter(access_groups=UNRESTRICTED)  # a benchmark corpus, all public
        queries = pick(dataset.queries, limit)
        # Documents hold several chunks: fetch deeper, then keep each document's best chunk. Passages: deep
        # enough for the word budgets.
        if depth is None:
            depth = max(4 * k, settings.retrieval.candidates) if dataset.level != "passage" else max(k, PASSAGE_DEPTH)
        service.retrieve(queries[0].text if queries else "warm-up", flt, depth)  # load models, warm caches
        latencies: list[float] = []
        per_query: list[dict[str, float]] = []
        token_cache: dict[str, list[str]] = {}
        source_paths = {v.doc_id: v.source_path for v in container.registry.active()}
        chunk_ids: dict[str, list[str]] = {}
        for query in queries:
            started = time.perf_counter()
            hits = service.retrieve(query.text, flt, depth)
            latencies.append((time.perf_counter() - started) * 1000)
            chunk_ids[query.qid] = [h.chunk_id for h in hits]
            if dataset.level == "page":
                per_query.append(score_units(ranked_units(hits, source_paths), query.gold_units))
            elif dataset.level == "doc":
                ranked: list[str] = []
                for h in hits:
                    doc = Path(h.source).stem
                    if doc not in ranked:
                        ranked.append(doc)
                per_query.append(score_docs(ranked, query.relevant_docs, k))
            else:
                hit_sets, lengths = [], []
                for h in hits:
                    key = h.chunk_id or h.text
                    if key not in token_cache:
                        token_cache[key] = words(h.text)
                    toks = token_cache[key]
                    hit_sets.append({i for i, g in enumerate(query.gold) if chunk_hits_passage(h.text, g, toks)})
                    lengths.append(len(toks))
                per_query.append(score_passages(hit_sets[:k], len(query.gold), k)
                                 | recall_within_words(hit_sets, lengths, len(query.gold)))
        metrics = {
            name: round(sum(q[name] for q in per_query) / len(per_query), 4) for name in (per_query or [{}])[0]
        }
        target_metric, target = TARGETS[dataset.name]
        extra: dict = {"rankings": chunk_ids} if rankings else {}
        if dataset.level == "page":
            extra["floor"] = _page_floor(container, index.path, queries, per_query)
        return extra | {
            "dataset": dataset.name,
            "corpus": dataset.corpus_label,
            "level": dataset.level,
            "mode": mode,
            "queries": len(queries),
            "queries_total": len(dataset.queries),
            "k": k,
            "depth": depth,
            "metrics": metrics,
            "latency_ms": {
                "p50": round(percentile(latencies, 50, empty=0.0), 2),
                "p95": round(percentile(latencies, 95, empty=0.0), 2),
                "mean": round(sum(latencies) / max(len(latencies), 1), 2),
                "load_avg": round(os.getloadavg()[0], 2),
            },
            "target": {"metric": target_metric, "value": target, "met": metrics.get(target_metric, 0) >= target},
            "published": dataset.published,
            "settings": {
                "embedding.backend": settings.embedding.backend,
                "embedder": container.embedder.name,
                "retrieval.fusion": settings.retrieval.fusion,
                "retrieval.rrf_k": settings.retrieval.rrf_k,
                "retrieval.weights (dense, sparse)": [service.settings.dense_weight, service.settings.sparse_weight],
                "experiments": list(experiments),
                "retrieval.candidates": settings.retrieval.candidates,
                "retrieval.sparse_tokenizer": settings.retrieval.sparse_tokenizer,
                "retrieval.reranker_path": str(settings.retrieval.reranker_path or "") or None,
                "ingest.chunk_tokens": settings.ingest.chunk_tokens,
                "ingest.chunk_overlap_sentences": settings.ingest.chunk_overlap_sentences,
                "ingest.embed_title_prefix": settings.ingest.embed_title_prefix,
                "ingest.chunk_overlap_max_tokens": settings.ingest.chunk_overlap_max_tokens,
                "ingest.embed_section": settings.ingest.embed_section,
                "overrides": overrides,
            },
            "index": {
                "path": str(index.path),
                "reused": index.reused,
                "built_by_older_code": bool(index.info.get("stale")),
                "files": index.info.get("files"),
                "failed": len(index.info.get("failed", [])),
                "chunks": index.info.get("chunks"),
                "ingest_seconds": index.info.get("ingest_seconds"),
            },
            "notes": dataset.notes,
        }
    finally:
        container.close()


def _page_floor(container, index_path: Path, queries: list[Query], ours: list[dict]) -> dict:
    """Plain BM25 over whole pages / sections of the same documents, on the same queries, in this process;
    with the questions where ours and the floor differ at rank 1."""
    cached = index_path / "floor_units.json"
    if cached.is_file():
        units = load_units(cached)
    else:
        settings = container.settings.ingest

        def sections(doc):
            return chunk_document(doc, container.embedder.count_tokens, settings.chunk_tokens, 0)

        units = floor_units([v.source_path for v in container.registry.active()], settings.max_file_mb << 20, sections)
        save_units(units, cached)
    floor = Bm25Floor(units, container.sparse.terms)
    per_query = [score_units(floor.search(q.text, 10), q.gold_units) for q in queries]
    metrics = {name: round(sum(q[name] for q in per_query) / len(per_query), 4) for name in per_query[0]}
    return {
        "system": "BM25 (bm25s) over whole pages and law articles, Sudachi terms",
        "units": len(units),
        "metrics": metrics,
        "ours_only_at_1": [q.qid for q, a, b in zip(queries, ours, per_query, strict=True)
                           if a["page_hit@1"] > b["page_hit@1"]],
        "floor_only_at_1": [q.qid for q, a, b in zip(queries, ours, per_query, strict=True)
                            if a["page_hit@1"] < b["page_hit@1"]],
    }


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m eval retrieval", description="Measure retrieval quality on a labelled set.")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--limit", type=int, help="evaluate N queries spread evenly over the set")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a setting, e.g. retrieval.fusion=dbsf (repeatable)")
    p.add_argument("--mode", choices=MODES, default="hybrid",
                   help="hybrid: the RetrievalService as configured; dense / sparse: one leg only")
    p.add_argument("--rrf-weights", metavar="DENSE,SPARSE",
                   help="experiment: client-side weighted RRF of the two legs in hybrid mode, e.g. 1,2")
    p.add_argument("--experiment", action="append", default=[], choices=sorted(EXPERIMENTS),
                   help="measure a candidate code change (see EXPERIMENTS); part of the index key")
    p.add_argument("--corpus", choices=("default", "all"), default="default",
                   help="obliqa-aml: 'all' searches all 40 documents instead of the AML rulebook only")
    p.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS, help="the shared corpus folder")
    p.add_argument("--data-dir", type=Path, help="where eval/retrieval/ caches live (default: settings data_dir)")
    p.add_argument("--max-docs", type=int,
                   help="JFinTEB: ingest only the relevant documents plus others up to N (quick, easier)")
    p.add_argument("--reuse-stale", action="store_true",
                   help="reuse an index built with the same settings by older ingest code instead of rebuilding")
    p.add_argument("--rebuild", action="store_true", help="ingest again even when a cached index matches")
    p.add_argument("--depth", type=int,
                   help="chunks fetched per query (default: max(k, 40); max(4k, candidates) for document sets)")
    return p


def main_retrieval(argv: list[str], make_container) -> int:
    """``python -m eval retrieval``; ``make_container``: the composition root's ``Container``."""
    args = _parser().parse_args(argv)
    if args.k < 1 or (args.limit is not None and args.limit < 1):
        raise UsageError("--k and --limit must be positive")
    overrides = parse_overrides(args.overrides)
    weights = None
    if args.rrf_weights:
        try:
            weights = tuple(float(w) for w in args.rrf_weights.split(","))
        except ValueError:
            weights = ()
        if len(weights) != 2 or min(weights) < 0 or args.mode != "hybrid":
            raise UsageError("--rrf-weights needs two non-negative numbers DENSE,SPARSE and --mode hybrid")
    dataset = load_dataset(args.dataset, args.corpus_dir, args.corpus, args.max_docs, args.limit)
    result = evaluate(
        dataset, overrides, k=args.k, limit=args.limit, mode=args.mode, data_dir=args.data_dir,
        rebuild=args.rebuild, depth=args.depth, rrf_weights=weights, experiments=tuple(args.experiment),
        reuse_stale=args.reuse_stale, make_container=make_container,
    )
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(format_report(result))
    return 0


__all__ = [
    "DATASETS",
    "DEFAULT_CORPUS",
    "DEV_PAGE_SETS",
    "EXPERIMENTS",
    "INDEX_FORMAT",
    "KS",
    "MODES",
    "OBLIQA_PUBLISHED",
    "PASSAGE_DEPTH",
    "TARGETS",
    "WORD_BUDGETS",
    "Dataset",
    "FlushAtEnd",
    "Index",
    "LatinSurfaceSparse",
    "Query",
    "evaluate",
    "format_report",
    "index_fingerprint",
    "load_dataset",
    "main_retrieval",
    "open_index",
    "parse_overrides",
    "pick",
    "recall_within_words",
    "retrieval_service",
    "score_docs",
    "score_passages",
    "shared_documents",
]


if __name__ == "__main__":  # python -m eval.retrieval_quality: the same as python -m eval retrieval
    from eval.__main__ import main

    run("python -m eval retrieval", lambda argv: main(["retrieval", *argv]))
