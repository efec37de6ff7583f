"""Chunking speed: `python -m bench.chunking [--runs N] [--json]`.

Chunks real documents from ../shared/corpus (the FSA AML/CFT guideline PDF, an e-Gov statute, the FATF
Recommendations PDF) with ``len`` as the token counter, and in the same process times a baseline that reads the
same text once (``core.text.split_sentences`` over every page), so the printed ratio says what the structure
work costs and does not depend on the machine's speed. Each document is then chunked with its pages repeated
two and four times: the time per page should stay flat (the chunker is linear in the document's length).
Reading the files is not timed; each figure is this process's CPU time per call, the best of ``--runs`` repeats
of as many calls as take 0.2 s (the chunker runs in one thread; CPU time leaves out the waits of a machine
shared with other jobs).
"""

from __future__ import annotations

import json
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import core.offline  # noqa: F401
from core.cli import ArgumentParser, run
from core.errors import CQAError

PROG = "python -m bench.chunking"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DOCUMENTS = (
    "ja/fsa_amlcft/211122_amlcft_guidelines.pdf",
    "ja/egov_laws_2013/text/犯罪による収益の移転防止に関する法律.txt",
    "en/aml_regulatory/fatf/FATF-40-Recommendations.pdf",
)
MAX_TOKENS = 220


def best_seconds(call: Callable[[], object], runs: int) -> float:
    """CPU seconds of one call: the best of ``runs`` repeats of as many calls as take 0.2 s (timeit)."""
    timer = timeit.Timer(call, timer=time.process_time)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=runs, number=number)) / number


def measure(rel: str, runs: int) -> dict:
    from dataclasses import replace

    from core.text import split_sentences
    from ingest.chunking import chunk_document
    from ingest.readers import read_document

    doc = read_document(CORPUS / rel)
    chunks = chunk_document(doc, len, max_tokens=MAX_TOKENS)  # untimed warm-up (compiled regexes, caches)
    texts = [p.text for p in doc.pages if p.text]
    seconds = best_seconds(lambda: chunk_document(doc, len, max_tokens=MAX_TOKENS), runs)
    baseline = best_seconds(lambda: [split_sentences(t) for t in texts], runs)
    per_page = {}
    for times in (1, 2, 4):
        longer = replace(doc, pages=list(doc.pages) * times)
        per_page[times] = best_seconds(lambda d=longer: chunk_document(d, len, max_tokens=MAX_TOKENS), runs) / (
            len(doc.pages) * times
        )
    return {
        "document": rel,
        "pages": len(doc.pages),
        "chunks": len(chunks),
        "ms": round(seconds * 1000, 2),
        "baseline_ms": round(baseline * 1000, 2),
        "ratio_to_sentence_splitting": round(seconds / baseline, 1),
        "per_page_growth_x2": round(per_page[2] / per_page[1], 2),
        "per_page_growth_x4": round(per_page[4] / per_page[1], 2),
    }


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG)
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not CORPUS.exists():
        raise CQAError(f"the shared corpus is not at {CORPUS}")
    results = [measure(rel, max(1, args.runs)) for rel in DOCUMENTS]
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
        return 0
    for r in results:
        print(f"{r['document']}: {r['pages']} page(s), {r['chunks']} chunks in {r['ms']:.1f} ms "
              f"= {r['ratio_to_sentence_splitting']}x splitting its text into sentences "
              f"({r['baseline_ms']:.1f} ms); time per page with the pages repeated x2: "
              f"{r['per_page_growth_x2']}, x4: {r['per_page_growth_x4']}")
    return 0


if __name__ == "__main__":
    run(PROG, main)
