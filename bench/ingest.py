"""Ingestion throughput: `python -m bench.ingest [--set en|ja|long|both] [--limit N] [--json]`.

Runs our pipeline (content-sniffing readers, structure-aware chunking, cached batched
embedding, embedded Qdrant) and, in the same process, a plain llama-index baseline
(SimpleDirectoryReader with its file readers + SentenceSplitter + the same embedder and
store) over the same PDFs from ../shared/corpus; prints pages/s, chunks/s, the peak growth
of resident memory (this process and its workers), and the ratio. A second run of ours
over the same files shows the re-ingest cost.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path

import core.offline  # noqa: F401

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SETS = {
    "en": ["en/aml_regulatory/fatf", "en/aml_regulatory/basel", "en/aml_regulatory/eba"],
    "ja": ["ja/fsa_amlcft", "ja/fsa_jsda_samples/jsda"],
    "long": ["en/aml_regulatory/jmlsg/JMLSG-Part-I.pdf"],  # one 216-page AES-encrypted PDF: page ranges
}


def _files(name: str, limit: int | None) -> list[Path]:
    paths = [CORPUS / entry for entry in SETS[name]]
    files = sorted(f for p in paths for f in (p.rglob("*.pdf") if p.is_dir() else [p]))
    return files[:limit] if limit else files


def _rss_mib(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # a worker that just exited
        pass
    return 0.0


class _PeakRss(threading.Thread):
    """Samples the resident memory of this process plus its worker processes (read-ahead)
    every 20 ms. Not tracemalloc: that slows pure-Python code (pypdf) and does not see workers."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.start_mib = self.peak_mib = _rss_mib()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            total = _rss_mib() + sum(_rss_mib(p.pid) for p in multiprocessing.active_children())
            self.peak_mib = max(self.peak_mib, total)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mib - self.start_mib


def _measure(fn):
    sampler = _PeakRss()
    sampler.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    return result, seconds, sampler.stop()


def ours(files: list[Path], data_dir: Path) -> dict:
    from core.container import Container
    from settings import load_settings

    container = Container(load_settings(data_dir=data_dir))
    _ = container.embedder  # load the model outside the timed part, as the baseline does
    report, seconds, peak = _measure(lambda: container.ingest.ingest(files))
    again, again_s, _ = _measure(lambda: container.ingest.ingest(files))
    container.close()
    pages = sum(d.pages for d in report.documents)
    chunks = sum(d.chunks for d in report.documents)
    failed = [d.path for d in report.documents if d.status == "failed"]
    return {"pages": pages, "chunks": chunks, "seconds": round(seconds, 2), "peak_mib": round(peak, 1),
            "pages_per_s": round(pages / seconds, 2), "chunks_per_s": round(chunks / seconds, 2),
            "failed": failed, "reingest_seconds": round(again_s, 2),
            "reingest_unchanged": sum(d.status == "unchanged" for d in again.documents)}


def baseline(files: list[Path], store_dir: Path, embedder, sparse) -> dict:
    """llama-index's plain path with our embedder and store, no structure, no cache."""
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.node_parser import SentenceSplitter

    from core.schema import Chunk
    from retrieval.store.base import StoredPoint
    from retrieval.store.edge_store import EdgeStore

    store = EdgeStore(store_dir, embedder.dim)

    def run() -> tuple[int, int]:
        docs = SimpleDirectoryReader(input_files=[str(f) for f in files]).load_data()
        nodes = SentenceSplitter(chunk_size=512, chunk_overlap=50).get_nodes_from_documents(docs)
        texts = [n.get_content() for n in nodes]
        vectors = embedder.embed_passages(texts)
        points = []
        for i, (node, text) in enumerate(zip(nodes, texts, strict=True)):
            chunk = Chunk(chunk_id=f"b:{i}", doc_id="b", version=1, chunk_index=i, text=text, embed_text=text,
                          section="", page_start=None, page_end=None, source=node.metadata.get("file_name", ""),
                          title="", doc_type="manual", status="active", effective_from=None, effective_to=None)
            points.append(StoredPoint(chunk, vectors[i], sparse.embed_document(text)))
        store.upsert(points)
        store.flush()
        return len(docs), len(nodes)

    (pages, chunks), seconds, peak = _measure(run)
    store.close()
    return {"pages": pages, "chunks": chunks, "seconds": round(seconds, 2), "peak_mib": round(peak, 1),
            "pages_per_s": round(pages / seconds, 2), "chunks_per_s": round(chunks / seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--set", choices=[*SETS, "both"], default="both", help="both: en and ja")
    parser.add_argument("--limit", type=int, help="at most N PDFs per set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not CORPUS.exists():
        print(f"error: the shared corpus is not at {CORPUS}", file=sys.stderr)
        return 1
    from retrieval.embedding import build_embedder
    from retrieval.sparse import SparseEncoder
    from settings import load_settings

    settings = load_settings()
    embedder = build_embedder(settings.embedding)
    sparse = SparseEncoder(settings.retrieval.sparse_tokenizer)
    results = {}
    for name in (["en", "ja"] if args.set == "both" else [args.set]):
        files = _files(name, args.limit)
        with tempfile.TemporaryDirectory() as tmp:
            base = baseline(files, Path(tmp) / "baseline", embedder, sparse)
            mine = ours(files, Path(tmp) / "ours")
        results[name] = {"files": len(files), "ours": mine, "baseline": base,
                         "throughput_ratio_pages": round(mine["pages_per_s"] / base["pages_per_s"], 2)}
    if args.json:
        print(json.dumps(results))
        return 0
    for name, r in results.items():
        o, b = r["ours"], r["baseline"]
        print(f"[{name}] {r['files']} PDFs")
        print(f"  ours     {o['pages']:5} pages {o['chunks']:6} chunks {o['seconds']:8.1f} s "
              f"{o['pages_per_s']:6.2f} pages/s {o['chunks_per_s']:7.2f} chunks/s peak +{o['peak_mib']} MiB RSS")
        print(f"  baseline {b['pages']:5} pages {b['chunks']:6} chunks {b['seconds']:8.1f} s "
              f"{b['pages_per_s']:6.2f} pages/s {b['chunks_per_s']:7.2f} chunks/s peak +{b['peak_mib']} MiB RSS")
        print(f"  ratio (pages/s, ours / baseline): {r['throughput_ratio_pages']}; re-ingest of the same files "
              f"{o['reingest_seconds']} s ({o['reingest_unchanged']} unchanged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
