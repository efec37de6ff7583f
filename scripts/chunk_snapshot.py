"""Chunker output of real corpus documents, to show a change of ``ingest/chunking`` leaves it byte-identical.

``python -m scripts.chunk_snapshot OUT.jsonl`` writes one JSON line per chunk (document, token counter, index,
text, section, first and last page) for e-Gov statutes (text and Shift_JIS HTML), the APPI e-Gov XML, the FSA
AML/CFT guideline PDF, the FATF and Basel PDFs, ObliQA rulebook texts and JSDA/JPX PDFs and HTML, each chunked with
two token counters. Run it before and after a change and compare with ``cmp``. The parsed documents are kept in
``--parsed`` (made on the first run), so a change of the readers in between does not show up as a chunker change.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

from core.cli import ArgumentParser, run
from core.errors import CQAError

PROG = "python -m scripts.chunk_snapshot"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
NAMED = (
    "ja/egov_laws_2013/text/犯罪による収益の移転防止に関する法律.txt",
    "ja/egov_laws_2013/text/銀行法.txt",
    "ja/fsa_amlcft/211122_amlcft_guidelines.pdf",
    "ja/appi_ppc/appi-law/content.xml",
    "en/aml_regulatory/fatf/FATF-40-Recommendations.pdf",
    "en/aml_regulatory/basel/Basel-ML-TF-Risk-Management.pdf",
)
FIRST_TWO = (("ja/egov_laws_2013/html", "*"), ("en/obliqa/regulatory_documents_txt", "*.txt"),
             ("ja/fsa_jsda_samples", "**/*.pdf"), ("ja/fsa_jsda_samples", "**/*.htm*"))
_WORD_OR_MARK = re.compile(r"\w+|[^\w\s]")
COUNTERS = (("len", len, 220, 1), ("words", lambda t: len(_WORD_OR_MARK.findall(t)), 120, 2))


def documents() -> list[str]:
    """The named documents, then the first two files of each folder in :data:`FIRST_TWO`."""
    found = [p for folder, pattern in FIRST_TWO for p in sorted(CORPUS.glob(f"{folder}/{pattern}"))[:2]]
    return [*NAMED, *(str(p.relative_to(CORPUS)) for p in found)]


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG)
    parser.add_argument("out", type=Path, help="the JSON-lines file to write")
    parser.add_argument("--parsed", type=Path, default=Path("/tmp/chunk_snapshot_documents.pickle"),
                        help="where the parsed documents are kept between runs")
    args = parser.parse_args(argv)
    if not CORPUS.exists():
        raise CQAError(f"the shared corpus is not at {CORPUS}")
    from ingest.chunking import chunk_document
    from ingest.readers import read_document

    if not args.parsed.exists():
        args.parsed.write_bytes(pickle.dumps({rel: read_document(CORPUS / rel) for rel in documents()}))
    parsed = pickle.loads(args.parsed.read_bytes())  # a file this command wrote
    lines = 0
    with args.out.open("w", encoding="utf-8") as out:
        for rel, doc in parsed.items():
            for name, count, max_tokens, overlap in COUNTERS:
                for i, c in enumerate(chunk_document(doc, count, max_tokens=max_tokens, overlap_sentences=overlap)):
                    row = [rel, name, i, c.text, c.section, c.page_start, c.page_end]
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    lines += 1
    print(f"{lines} chunks of {len(parsed)} documents written to {args.out}")
    return 0


if __name__ == "__main__":
    run(PROG, main)
