"""Ingestion throughput: `python -m bench.ingest [--set en|ja|long|both] [--limit N] [--new-edition] [--runs N]
[--json]`.

Runs our pipeline (content-sniffing readers, structure-aware chunking, cached batched
embedding, embedded Qdrant) and, in the same process, a plain llama-index baseline
(SimpleDirectoryReader with its file readers + SentenceSplitter + the same embedder and
store) over the same PDFs from ../shared/corpus; prints pages/s, chunks/s, the peak growth
of resident memory (this process and its workers), the CPU time of each side (the work done,
whatever the load) and the ratio. A second run of ours over the same files shows the re-ingest
cost. ``--new-edition`` then ingests a next edition of every file (the same PDF without its
middle page) as admins do when a regulator republishes: ours makes version 2 and embeds only
the chunks whose text changed; the baseline, which has no versions and no cache, runs its whole
pipeline again. ``--runs N`` repeats the measurement N times in this process; every run reports
the load average (1 minute) before and after it, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import core.offline  # noqa: F401  (the offline switches, before the libraries below load)

# isort: split
import pypdf
from llama_index.core import SimpleDirectoryReader
from llama_index.core.node_parser import SentenceSplitter

from bench.memory import PeakRss
from core.cli import ArgumentParser, run
from core.errors import CQAError
from core.schema import Chunk
from retrieval.embedding import build_embedder
from retrieval.sparse import SparseEncoder
from retrieval.store.base import StoredPoint
from retrieval.store.edge_store import EdgeStore
from settings import load_settings
from wiring import Container

PROG = "python -m bench.ingest"
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


@dataclass(frozen=True)
class Measured:
    seconds: float
    cpu_seconds: float
    """CPU time of this process (every thread) during the call: the work done, whatever the load."""
    peak_mib: float


def _measure(fn) -> tuple[Any, Measured]:
    sampler = PeakRss()
    sampler.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = fn()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return result, Measured(seconds, cpu, sampler.stop())


def _figures(pages: int, chunks: int, m: Measured) -> dict:
    return {"pages": pages, "chunks": chunks, "seconds": round(m.seconds, 2), "cpu_seconds": round(m.cpu_seconds, 2),
            "peak_mib": round(m.peak_mib, 1), "pages_per_s": round(pages / m.seconds, 2),
            "chunks_per_s": round(chunks / m.seconds, 2)}


def _report_figures(report, m: Measured) -> dict:
    figures = _figures(sum(d.pages for d in report.documents), sum(d.chunks for d in report.documents), m)
    return figures | {"embedded": sum(d.embedded for d in report.documents),
                      "failed": [d.path for d in report.documents if d.status == "failed"]}


def new_editions(files: list[Path], folder: Path) -> list[Path]:
    """Each PDF's next edition: the same file (metadata, name) without its middle page (a one-page PDF
    is kept as it is, and so reported unchanged)."""
    folder.mkdir(parents=True)
    editions = []
    for file in files:
        reader = pypdf.PdfReader(file)
        if reader.is_encrypted:
            reader.decrypt("")
        writer = pypdf.PdfWriter(clone_from=reader)
        if len(writer.pages) > 1:
            writer.remove_page(len(writer.pages) // 2)
        writer.write(folder / file.name)
        editions.append(folder / file.name)
    return editions


def _library_copy(files: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    copies = []
    for i, file in enumerate(files):
        copy = folder / f"{i:03d}" / file.name
        copy.parent.mkdir()
        shutil.copyfile(file, copy)
        copies.append(copy)
    return copies


def ours(files: list[Path], data_dir: Path, editions: list[Path] | None = None) -> dict:
    container = Container(load_settings(data_dir=data_dir))
    # outside the timed part, as for the baseline: open the store and registry, load the model and Sudachi's
    # dictionary (this container has its own instances)
    container.ingest.sparse.embed_document("warm-up")
    container.embedder.embed_passages(["warm-up"])
    report, measured = _measure(lambda: container.ingest.ingest(files))
    again, again_measured = _measure(lambda: container.ingest.ingest(files))
    result = _report_figures(report, measured) | {
        "reingest_seconds": round(again_measured.seconds, 2),
        "reingest_unchanged": sum(d.status == "unchanged" for d in again.documents)}
    if editions:
        # as an admin re-loads a republished rulebook: the next edition replaces the file at its path
        # (a new edition is recognised by its path, not its title)
        for edition_file, file in zip(editions, files, strict=True):
            shutil.copyfile(edition_file, file)
        edition, edition_measured = _measure(lambda: container.ingest.ingest(files))
        result["new_edition"] = _report_figures(edition, edition_measured) | {
            "updated": sum(d.status == "updated" for d in edition.documents)}
    container.close()
    return result


def baseline(files: list[Path], store_dir: Path, embedder, sparse) -> dict:
    """llama-index's plain path with our embedder and store, no structure, no cache."""
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

    (pages, chunks), measured = _measure(run)
    store.close()
    return _figures(pages, chunks, measured)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of 1 or more, not {text!r}")
    return int(text)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def measure_set(name: str, files: list[Path], new_edition: bool, embedder, sparse, warm_up: bool) -> dict:
    """One run over one set: the baseline, then ours (and both on the next editions), in fresh folders."""
    load_start = _load()
    with tempfile.TemporaryDirectory() as tmp:
        editions = new_editions(files, Path(tmp) / "editions") if new_edition else None
        files = _library_copy(files, Path(tmp) / "library")  # ours overwrites them with the new editions
        if warm_up:
            # untimed, for both sides: one-time costs of this process (Sudachi's dictionary, pypdf's and PDFium's
            # CJK CMaps, modules imported on first use) would otherwise fall on the first timed run
            baseline(files[:1], Path(tmp) / "warm-up", embedder, sparse)
            ours(files[:1], Path(tmp) / "warm-up-ours")
        base = baseline(files, Path(tmp) / "baseline", embedder, sparse)
        mine = ours(files, Path(tmp) / "ours", editions)
        result = {"files": len(files), "ours": mine, "baseline": base,
                  "throughput_ratio_pages": round(mine["pages_per_s"] / base["pages_per_s"], 2)}
        if editions:
            base_edition = baseline(editions, Path(tmp) / "baseline-editions", embedder, sparse)
            result["baseline_new_edition"] = base_edition
            result["new_edition_ratio_pages"] = round(
                mine["new_edition"]["pages_per_s"] / base_edition["pages_per_s"], 2)
    return result | {"load_average": [load_start, _load()]}


def _print_run(name: str, r: dict) -> None:
    o, b = r["ours"], r["baseline"]
    print(f"[{name}] {r['files']} PDFs, load average {r['load_average'][0]} -> {r['load_average'][1]}")
    for side, f in (("ours    ", o), ("baseline", b)):
        print(f"  {side} {f['pages']:5} pages {f['chunks']:6} chunks {f['seconds']:8.1f} s "
              f"({f['cpu_seconds']:.1f} CPU-s) {f['pages_per_s']:6.2f} pages/s {f['chunks_per_s']:7.2f} chunks/s "
              f"peak +{f['peak_mib']} MiB RSS")
    print(f"  ratio (pages/s, ours / baseline): {r['throughput_ratio_pages']}; re-ingest of the same files "
          f"{o['reingest_seconds']} s ({o['reingest_unchanged']} unchanged)")
    if "new_edition" in o:
        e, be = o["new_edition"], r["baseline_new_edition"]
        print(f"  new edition of every file (middle page removed): ours {e['seconds']:.1f} s "
              f"({e['cpu_seconds']:.1f} CPU-s), {e['updated']} version 2, {e['embedded']} of {e['chunks']} chunks "
              f"embedded; baseline {be['seconds']:.1f} s ({be['cpu_seconds']:.1f} CPU-s); "
              f"ratio {r['new_edition_ratio_pages']}")


def _summary(runs: list[dict]) -> dict:
    summary = {"ratios": [r["throughput_ratio_pages"] for r in runs],
               "load_averages": [r["load_average"] for r in runs]}
    if "new_edition_ratio_pages" in runs[0]:
        summary["new_edition_ratios"] = [r["new_edition_ratio_pages"] for r in runs]
    return summary


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG)
    parser.add_argument("--set", choices=[*SETS, "both"], default="both", help="both: en and ja")
    parser.add_argument("--limit", type=int, help="at most N PDFs per set")
    parser.add_argument("--new-edition", action="store_true",
                        help="then ingest a next edition of every file (its middle page removed)")
    parser.add_argument("--runs", type=_count, default=1, help="measure each set N times in this process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not CORPUS.exists():
        raise CQAError(f"the shared corpus is not at {CORPUS}")

    settings = load_settings()
    embedder = build_embedder(settings.embedding)
    sparse = SparseEncoder(settings.retrieval.sparse_tokenizer)
    results = {}
    for name in (["en", "ja"] if args.set == "both" else [args.set]):
        files = _files(name, args.limit)
        runs = []
        for i in range(args.runs):
            runs.append(measure_set(name, files, args.new_edition, embedder, sparse, warm_up=i == 0))
            if not args.json:
                _print_run(name, runs[-1])
        results[name] = runs[0] | {"runs": _summary(runs)}  # the first run in full, every run's ratios
        if not args.json and args.runs > 1:
            print(f"[{name}] {args.runs} runs: " + json.dumps(results[name]["runs"]))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    run(PROG, main)
