"""Ingestion throughput: `python -m bench.ingest [--set en|ja|long|both] [--limit N] [--new-edition] [--json]`.

Runs our pipeline (content-sniffing readers, structure-aware chunking, cached batched
embedding, embedded Qdrant) and, in the same process, a plain llama-index baseline
(SimpleDirectoryReader with its file readers + SentenceSplitter + the same embedder and
store) over the same PDFs from ../shared/corpus; prints pages/s, chunks/s, the peak growth
of resident memory (this process and its workers), and the ratio. A second run of ours
over the same files shows the re-ingest cost. ``--new-edition`` then ingests a next edition of
every file (the same PDF without its middle page) as admins do when a regulator republishes:
ours makes version 2 and embeds only the chunks whose text changed; the baseline, which has
no versions and no cache, runs its whole pipeline again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import core.offline  # noqa: F401
from bench.memory import PeakRss

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


def _measure(fn):
    sampler = PeakRss()
    sampler.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    return result, seconds, sampler.stop()


def _figures(pages: int, chunks: int, seconds: float, peak: float) -> dict:
    return {"pages": pages, "chunks": chunks, "seconds": round(seconds, 2), "peak_mib": round(peak, 1),
            "pages_per_s": round(pages / seconds, 2), "chunks_per_s": round(chunks / seconds, 2)}


def _report_figures(report, seconds: float, peak: float) -> dict:
    figures = _figures(sum(d.pages for d in report.documents), sum(d.chunks for d in report.documents),
                       seconds, peak)
    return figures | {"embedded": sum(d.embedded for d in report.documents),
                      "failed": [d.path for d in report.documents if d.status == "failed"]}


def new_editions(files: list[Path], folder: Path) -> list[Path]:
    """Each PDF's next edition: the same file (metadata, name) without its middle page (a one-page PDF
    is kept as it is, and so reported unchanged)."""
    import pypdf

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
    from settings import load_settings
    from wiring import Container

    container = Container(load_settings(data_dir=data_dir))
    # outside the timed part, as for the baseline: open the store and registry, load the model and Sudachi's
    # dictionary (this container has its own instances)
    container.ingest.sparse.embed_document("warm-up")
    container.embedder.embed_passages(["warm-up"])
    report, seconds, peak = _measure(lambda: container.ingest.ingest(files))
    again, again_s, _ = _measure(lambda: container.ingest.ingest(files))
    result = _report_figures(report, seconds, peak) | {
        "reingest_seconds": round(again_s, 2),
        "reingest_unchanged": sum(d.status == "unchanged" for d in again.documents)}
    if editions:
        # as an admin re-loads a republished rulebook: the next edition replaces the file at its path
        # (a new edition is recognised by its path, not its title)
        for edition_file, file in zip(editions, files, strict=True):
            shutil.copyfile(edition_file, file)
        edition, edition_s, edition_peak = _measure(lambda: container.ingest.ingest(files))
        result["new_edition"] = _report_figures(edition, edition_s, edition_peak) | {
            "updated": sum(d.status == "updated" for d in edition.documents)}
    container.close()
    return result


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
    return _figures(pages, chunks, seconds, peak)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--set", choices=[*SETS, "both"], default="both", help="both: en and ja")
    parser.add_argument("--limit", type=int, help="at most N PDFs per set")
    parser.add_argument("--new-edition", action="store_true",
                        help="then ingest a next edition of every file (its middle page removed)")
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
            editions = new_editions(files, Path(tmp) / "editions") if args.new_edition else None
            files = _library_copy(files, Path(tmp) / "library")  # ours overwrites them with the new editions
            # untimed: one-time costs of this process (Sudachi's dictionary, pypdf's CJK CMaps) would
            # otherwise all fall on the side that runs first
            baseline(files[:1], Path(tmp) / "warm-up", embedder, sparse)
            base = baseline(files, Path(tmp) / "baseline", embedder, sparse)
            mine = ours(files, Path(tmp) / "ours", editions)
            result = {"files": len(files), "ours": mine, "baseline": base,
                      "throughput_ratio_pages": round(mine["pages_per_s"] / base["pages_per_s"], 2)}
            if editions:
                base_edition = baseline(editions, Path(tmp) / "baseline-editions", embedder, sparse)
                result["baseline_new_edition"] = base_edition
                result["new_edition_ratio_pages"] = round(
                    mine["new_edition"]["pages_per_s"] / base_edition["pages_per_s"], 2)
        results[name] = result
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
        if "new_edition" in o:
            e, be = o["new_edition"], r["baseline_new_edition"]
            print(f"  new edition of every file (middle page removed): ours {e['seconds']:.1f} s, {e['updated']} "
                  f"version 2, {e['embedded']} of {e['chunks']} chunks embedded; baseline {be['seconds']:.1f} s; "
                  f"ratio {r['new_edition_ratio_pages']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
