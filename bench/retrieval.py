"""Store and retrieval speed on synthetic chunks: ``python -m bench.retrieval [--sizes 10000,100000] [--json]``.

For each size N the same synthetic chunks (512-dim unit vectors, BM25-like sparse vectors whose terms
include the real query terms, payloads with access groups, statuses and dates) go into

- the embedded store (``EdgeStore``, qdrant-edge) followed by ``optimize()`` (HNSW and payload indexes), and
- the baseline in the same process: qdrant-client local mode (``QdrantStore`` on ``QdrantClient(path=...)``),
  skipped at sizes whose projected insert time exceeds ``--local-max-seconds``;

then both answer the same hybrid (dense + sparse, RRF) queries with an access-group filter: p50/p95 in ms.
On the largest edge store it also times ``RetrievalService.retrieve()`` end to end (USE query embedding,
Sudachi BM25 query terms, fusion inside the store), close + reopen of the store, and reports peak RSS.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import shutil
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

from core.cli import ArgumentParser, UsageError, run
from core.schema import PUBLIC_GROUP, UNRESTRICTED, Chunk, SearchFilter
from eval.measures import percentile
from retrieval.embedding import UseEmbedder
from retrieval.service import RetrievalService
from retrieval.sparse import SparseEncoder
from retrieval.store.base import SparseVec, StoredPoint
from retrieval.store.edge_store import EdgeStore
from retrieval.store.qdrant_store import QdrantStore
from settings.model import EmbeddingSettings, RetrievalSettings, StoreSettings

PROG = "python -m bench.retrieval"
DIM = 512
GROUPS = tuple(f"g{i:02d}" for i in range(10))
USER_GROUPS = ("g03", "g07")
TARGETS = {"store_p95_ms_100k_filtered": 20.0, "end_to_end_p95_ms": 150.0, "reopen_s": 2.0}

QUERIES = [
    "口座開設の際に必要な本人確認書類は何ですか",
    "海外送金で送金目的を確認する必要があるのはどのような場合ですか",
    "高齢者に投資信託を勧誘する際の留意点",
    "疑わしい取引の届出はいつまでに行う必要がありますか",
    "マネー・ローンダリング対策のリスク評価の方法",
    "法人顧客の実質的支配者の確認方法",
    "預金口座の不正利用が疑われる場合の対応",
    "反社会的勢力との取引を防止するための体制",
    "個人情報の第三者提供に本人の同意が必要な場合",
    "顧客から贈答品を受け取ってもよい金額の上限",
    "What documents are required to verify identity when opening an account?",
    "When must a suspicious transaction report be filed?",
    "How should enhanced due diligence be applied to politically exposed persons?",
    "What is the limit for accepting gifts from customers?",
    "Which records must be kept for wire transfers and for how long?",
    "How often must the money laundering risk assessment be reviewed?",
    "What are the obligations of the MLRO?",
    "Can a relevant person rely on a third party for customer due diligence?",
    "What sanctions screening is required before onboarding a customer?",
    "How do we report a breach of the conduct of business rules?",
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _ms(values: list[float], q: float) -> float:
    """The q-th percentile (``eval.measures.percentile``; 0 without values), rounded to 0.01 ms."""
    return round(percentile(values, q, empty=0.0), 2)


class Synthetic:
    """Deterministic synthetic chunks; sparse terms drawn Zipf-like from a vocabulary that contains
    the real BM25 indices of :data:`QUERIES`, so the sparse leg walks realistic posting lists."""

    def __init__(self, seed: int = 7, vocab: int = 40_000) -> None:
        self.rng = np.random.default_rng(seed)
        self.encoder = SparseEncoder("sudachi")
        real = sorted({i for q in QUERIES for i in self.encoder.embed_query(q).indices})
        fake = np.unique(self.rng.integers(1, 2**31 - 1, size=vocab * 2, dtype=np.int64))
        fake = np.setdiff1d(fake, np.asarray(real, dtype=np.int64))
        self.vocab = self.rng.permutation(fake)[:vocab]
        # Query terms sit at ranks spread over the frequency curve: some common, most rare.
        positions = self.rng.choice(np.arange(20, len(self.vocab)), size=len(real), replace=False)
        self.vocab[positions] = real
        weights = 1.0 / (np.arange(len(self.vocab)) + 10.0)
        self.p = weights / weights.sum()

    def points(self, start: int, count: int):
        rng = np.random.default_rng(1000 + start)
        dense = rng.normal(size=(count, DIM)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        out = []
        for j in range(count):
            i = start + j
            n_terms = int(rng.integers(30, 90))
            idx = np.unique(rng.choice(self.vocab, size=n_terms, p=self.p))
            tf = rng.integers(1, 4, size=len(idx)).astype(np.float32)
            values = (tf * 2.2 / (tf + 1.2)).tolist()  # BM25 tf saturation, k=1.2
            roll = rng.random()
            access = (
                (PUBLIC_GROUP,)
                if roll < 0.3
                else tuple(sorted({GROUPS[int(g)] for g in rng.integers(0, len(GROUPS), size=int(rng.integers(1, 3)))}))
            )
            status = "active" if rng.random() < 0.9 else ("superseded" if rng.random() < 0.7 else "withdrawn")
            doc = f"d{i // 40:06d}"
            chunk = Chunk(
                chunk_id=f"{doc}:1:{i % 40}",
                doc_id=doc,
                version=1,
                chunk_index=i % 40,
                text=f"synthetic chunk {i} " + "本人確認書類と取引時確認の手続き。" * 12,
                embed_text="",
                section=f"第{i % 40 + 1}条",
                page_start=i % 40 + 1,
                page_end=i % 40 + 1,
                source=f"{doc}.pdf",
                title=f"Document {doc}",
                doc_type=("regulation", "guidance", "manual")[i % 3],
                status=status,
                effective_from=date(2024, 1, 1),
                effective_to=None if status == "active" else date(2024, 6, 1),
                access=access,
                lang="ja",
            )
            out.append(StoredPoint(chunk, dense[j], SparseVec(idx.astype(int).tolist(), values)))
        return out

    def query(self, i: int):
        rng = np.random.default_rng(50_000 + i)
        v = rng.normal(size=DIM).astype(np.float32)
        return v / np.linalg.norm(v), self.encoder.embed_query(QUERIES[i % len(QUERIES)])


def fill(store, synth: Synthetic, size: int, batch: int = 1000) -> float:
    started = time.perf_counter()
    for start in range(0, size, batch):
        store.upsert(synth.points(start, min(batch, size - start)))
    flush = getattr(store, "flush", None)
    if flush:
        flush()
    return time.perf_counter() - started


def time_queries(store, synth: Synthetic, flt, n: int, candidates: int = 40) -> dict:
    for i in range(5):  # warm-up
        dense, sparse = synth.query(i)
        store.hybrid_search(dense, sparse, flt, limit=10, candidates=candidates)
    times, found = [], 0
    for i in range(n):
        dense, sparse = synth.query(i)
        started = time.perf_counter()
        res = store.hybrid_search(dense, sparse, flt, limit=10, candidates=candidates)
        times.append((time.perf_counter() - started) * 1000)
        found += len(res)
    return {"p50_ms": _ms(times, 50), "p95_ms": _ms(times, 95),
            "queries": n, "mean_results": round(found / n, 1)}


def bench_edge(size: int, synth: Synthetic, workdir: Path, n_queries: int, keep: bool) -> tuple[dict, Path]:
    path = workdir / f"edge-{size}"
    store = EdgeStore(path, DIM)
    insert_s = fill(store, synth, size)
    started = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - started
    filtered = time_queries(store, synth, SearchFilter(access_groups=USER_GROUPS), n_queries)
    unfiltered = time_queries(store, synth, SearchFilter(access_groups=UNRESTRICTED), n_queries)
    visible = store.count(SearchFilter(access_groups=USER_GROUPS))
    store.close()
    out = {
        "insert_s": round(insert_s, 1),
        "optimize_s": round(optimize_s, 1),
        "filtered": filtered,
        "unfiltered": unfiltered,
        "visible_fraction": round(visible / size, 3),
        "disk_mb": round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1),
    }
    if not keep:
        shutil.rmtree(path, ignore_errors=True)
    return out, path


def bench_local(size: int, synth: Synthetic, workdir: Path, n_queries: int, max_seconds: float,
                rate: float | None) -> tuple[dict, float | None]:
    """qdrant-client local mode; ``rate`` (points/s measured at a smaller size) projects the insert time."""
    if max_seconds <= 0:
        return {"skipped": "--local-max-seconds 0"}, rate
    if rate is not None and size / rate > max_seconds:
        return {"skipped": f"projected insert time {size / rate:.0f} s > {max_seconds:.0f} s "
                           f"(measured {rate:.0f} points/s at a smaller size)"}, rate

    path = workdir / f"local-{size}"
    client = QdrantClient(path=str(path))
    with warnings.catch_warnings():  # "payload indexes have no effect in local mode": that is the point
        warnings.simplefilter("ignore", UserWarning)
        store = QdrantStore(StoreSettings(backend="qdrant", collection="bench"), DIM, client=client)
    insert_s = fill(store, synth, size)
    filtered = time_queries(store, synth, SearchFilter(access_groups=USER_GROUPS), n_queries)
    store.close()
    shutil.rmtree(path, ignore_errors=True)
    return {"insert_s": round(insert_s, 1), "filtered": filtered}, size / max(insert_s, 1e-9)


def bench_end_to_end(path: Path, n_queries: int) -> dict:
    """RetrievalService.retrieve() on the stored chunks: USE query embedding + Sudachi + fused search."""
    started = time.perf_counter()
    store = EdgeStore(path, DIM)
    reopen_s = time.perf_counter() - started
    settings = RetrievalSettings()
    embedder = UseEmbedder(EmbeddingSettings())
    service = RetrievalService(settings, embedder, SparseEncoder(settings.sparse_tokenizer), store)
    flt = SearchFilter(access_groups=USER_GROUPS)
    started = time.perf_counter()
    service.retrieve(QUERIES[0], flt, 10)
    first_s = time.perf_counter() - started  # loads USE and Sudachi, cold store caches
    queries = [QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" {i}") for i in range(n_queries)]
    times = []
    for q in queries:
        started = time.perf_counter()
        service.retrieve(q, flt, settings.top_k)
        times.append((time.perf_counter() - started) * 1000)
    # Where the time goes: each stage alone, as retrieve() runs it.
    stages: dict[str, list[float]] = {"embed_query": [], "sparse_terms": [], "store_search": []}
    for q in queries:
        t0 = time.perf_counter()
        dense = embedder.embed_queries([q])[0]
        t1 = time.perf_counter()
        sparse = service.sparse.embed_query(q)
        t2 = time.perf_counter()
        store.hybrid_search(dense, sparse, flt, limit=settings.top_k, candidates=settings.candidates,
                            fusion=settings.fusion, rrf_k=settings.rrf_k)
        t3 = time.perf_counter()
        for name, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            stages[name].append(value * 1000)
    # The same with the query embedded on one BLAS thread (UseEmbedder's default is two).
    single = RetrievalService(settings, UseEmbedder(EmbeddingSettings(), threads=1), service.sparse, store)
    single.retrieve(QUERIES[0], flt, 10)
    times_1 = []
    for q in queries:
        started = time.perf_counter()
        single.retrieve(q, flt, settings.top_k)
        times_1.append((time.perf_counter() - started) * 1000)
    # Reopen of a warm store (the OS page cache holds the files, as after an app restart).
    store.close()
    reopens = []
    for _ in range(3):
        started = time.perf_counter()
        store = EdgeStore(path, DIM)
        reopens.append(time.perf_counter() - started)
        store.close()
    return {
        "p50_ms": _ms(times, 50),
        "p95_ms": _ms(times, 95),
        "queries": n_queries,
        "first_query_s": round(first_s, 2),
        "top_k": settings.top_k,
        "candidates": settings.candidates,
        "open_after_build_s": round(reopen_s, 3),
        "reopen_s": round(max(reopens), 3),
        "reopen_s_each": [round(r, 3) for r in reopens],
        "stages_ms": {k: {"p50": _ms(v, 50), "p95": _ms(v, 95)} for k, v in stages.items()},
        "use_1_thread": {"p50_ms": _ms(times_1, 50), "p95_ms": _ms(times_1, 95)},
    }


def run_bench(sizes: list[int], n_queries: int = 200, local_max_seconds: float = 180.0,
              workdir: Path | None = None, log=print, local_queries: int = 30) -> dict:
    base = Path(tempfile.mkdtemp(prefix="cqa-bench-", dir=workdir))
    started = time.perf_counter()
    try:
        synth = Synthetic()
        result: dict = {"dim": DIM, "user_groups": list(USER_GROUPS), "sizes": {}, "targets": TARGETS,
                        "cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
        rate = None
        largest = max(sizes)
        largest_path = None
        for size in sorted(sizes):
            log(f"edge store: {size} chunks ...")
            edge, path = bench_edge(size, synth, base, n_queries, keep=size == largest)
            if size == largest:
                largest_path = path
            gc.collect()
            log(f"qdrant-client local mode: {size} chunks ...")
            local, rate = bench_local(size, synth, base, min(local_queries, n_queries), local_max_seconds, rate)
            gc.collect()
            entry = {"edge": edge, "local": local}
            if "filtered" in local:
                for q in ("p50", "p95"):
                    lq, eq = local["filtered"][f"{q}_ms"], edge["filtered"][f"{q}_ms"]
                    entry[f"local_over_edge_{q}"] = round(lq / max(eq, 1e-6), 1)
            result["sizes"][str(size)] = entry
            log(f"  {size}: {json.dumps(entry)}")
            result["peak_rss_mb_after_" + str(size)] = round(peak_rss_mb(), 0)
        log(f"end to end on the {largest}-chunk edge store ...")
        result["end_to_end"] = {"size": largest, **bench_end_to_end(largest_path, n_queries)}
        log(f"  {json.dumps(result['end_to_end'])}")
        result["peak_rss_mb"] = round(peak_rss_mb(), 0)
        result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        result["seconds"] = round(time.perf_counter() - started, 1)
        big = result["sizes"][str(largest)]["edge"]["filtered"]["p95_ms"]
        result["targets_met"] = {
            "store_p95_ms_100k_filtered": big <= TARGETS["store_p95_ms_100k_filtered"] if largest >= 100_000 else None,
            "end_to_end_p95_ms": result["end_to_end"]["p95_ms"] <= TARGETS["end_to_end_p95_ms"],
            "reopen_s": result["end_to_end"]["reopen_s"] <= TARGETS["reopen_s"],
        }
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)


def format_table(r: dict) -> str:
    lines = [
        f"hybrid (dense + sparse, RRF) queries, limit 10, candidates 40, filter: groups {', '.join(r['user_groups'])}"
        " + public, status active",
        "",
        f"{'chunks':>8} | {'edge p50':>9} {'edge p95':>9} | {'local p50':>10} {'local p95':>10} | {'p95 ratio':>9}"
        f" | {'edge insert':>11} {'optimize':>9} | {'local insert':>12}",
    ]
    for size, e in r["sizes"].items():
        edge, local = e["edge"], e["local"]
        if "filtered" in local:
            lp50, lp95 = f"{local['filtered']['p50_ms']:.2f}", f"{local['filtered']['p95_ms']:.2f}"
            ratio, lins = f"{e['local_over_edge_p95']:.1f}x", f"{local['insert_s']:.1f} s"
        else:
            lp50 = lp95 = ratio = lins = "skipped"
        lines.append(
            f"{int(size):>8} | {edge['filtered']['p50_ms']:>9.2f} {edge['filtered']['p95_ms']:>9.2f}"
            f" | {lp50:>10} {lp95:>10}"
            f" | {ratio:>9} | {edge['insert_s']:>9.1f} s {edge['optimize_s']:>7.1f} s | {lins:>12}"
        )
        if "skipped" in local:
            lines.append(f"{'':>8}   local mode skipped: {local['skipped']}")
        lines.append(f"{'':>8}   edge without access filter: p50 {edge['unfiltered']['p50_ms']:.2f} ms, "
                     f"p95 {edge['unfiltered']['p95_ms']:.2f} ms; visible fraction {edge['visible_fraction']}")
    e2e = r["end_to_end"]
    st = e2e["stages_ms"]
    lines += [
        "",
        f"end to end RetrievalService.retrieve() on {e2e['size']} chunks"
        f" (USE + Sudachi + fusion, top_k {e2e['top_k']}):"
        f" p50 {e2e['p50_ms']:.1f} ms, p95 {e2e['p95_ms']:.1f} ms (first query {e2e['first_query_s']:.2f} s)",
        "  stages p50/p95 ms: " + ", ".join(f"{k} {v['p50']:.1f}/{v['p95']:.1f}" for k, v in st.items()),
        f"  with the query embedded on 1 BLAS thread: p50 {e2e['use_1_thread']['p50_ms']:.1f} ms,"
        f" p95 {e2e['use_1_thread']['p95_ms']:.1f} ms",
        f"reopen of the {e2e['size']}-chunk store: {e2e['reopen_s']:.3f} s (worst of 3; each {e2e['reopen_s_each']})",
        f"peak RSS: {r['peak_rss_mb']:.0f} MB · total {r['seconds']:.0f} s · {r['cpus']} CPUs, load average"
        f" {r['load_avg_start'][0]} at start, {r['load_avg_end'][0]} at end (other processes skew latencies)",
        "targets: " + ", ".join(f"{k} {'met' if v else ('n/a' if v is None else 'NOT met')}"
                                for k, v in r["targets_met"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog=PROG, description="Store and retrieval speed benchmark.")
    p.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    p.add_argument("--queries", type=int, default=200, help="timed queries per measurement")
    p.add_argument("--local-queries", type=int, default=30,
                   help="timed queries for qdrant-client local mode (a full scan in Python: slow)")
    p.add_argument("--local-max-seconds", type=float, default=180.0,
                   help="skip qdrant-client local mode at a size whose projected insert time is longer (0: skip)")
    p.add_argument("--workdir", type=Path, help="where the temporary stores go (default: system temp)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
    if not sizes or min(sizes) < 100 or args.queries < 1:
        raise UsageError("--sizes must be >= 100 and --queries >= 1")
    log = (lambda m: print(m, file=__import__("sys").stderr, flush=True)) if args.json else print
    result = run_bench(sizes, args.queries, args.local_max_seconds, args.workdir, log=log,
                       local_queries=args.local_queries)
    print(json.dumps(result) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    run(PROG, main)
