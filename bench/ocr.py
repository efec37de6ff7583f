"""OCR quality and speed on real pages: `python -m bench.ocr [--pdf PATH] [--pages 1,5-9] [--dpi N] [--psm N]
[--languages L] [--json]`.

Every page of a PDF with a text layer (default: the FSA AML/CFT guideline, 35 pages, from ../shared/corpus) is
rendered and read by the ingest's OCR (ingest/ocr.py) as if it were scanned, and compared with its text layer:
character accuracy = 1 - normalised edit distance (Levenshtein distance / length of the longer text) after NFKC
and with all whitespace removed. Prints each page's accuracy and seconds, and over all pages the accuracy
weighted by characters, the median and the slowest page (the pages on stderr, the result on stdout).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import unicodedata
from pathlib import Path

from bench.ingest import CORPUS
from core.cli import ArgumentParser, UsageError, run
from core.errors import CQAError
from ingest.ocr import OcrConfig, PageOcr, unavailable_reason

PROG = "python -m bench.ocr"
DEFAULT_PDF = CORPUS / "ja" / "fsa_amlcft" / "211122_amlcft_guidelines.pdf"
_WHITESPACE = re.compile(r"\s+")


def comparable(text: str) -> str:
    """Text as the accuracy compares it: NFKC, no whitespace."""
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text))


def accuracy(reference: str, ocr: str) -> tuple[float, int]:
    """(1 - normalised edit distance, edit distance) of two comparable texts."""
    from rapidfuzz.distance import Levenshtein

    distance = Levenshtein.distance(reference, ocr)
    return 1.0 - distance / max(len(reference), len(ocr), 1), distance


def _mostly_leaders(text: str) -> bool:
    """A page whose text layer is mostly dot leaders (a table of contents: 2,874 of the FSA guideline's page 2's
    3,601 characters are "."), which OCR reads as fewer or other dots: reported apart from the body text."""
    return sum(text.count(c) for c in ".・…‥") > len(text) / 2


def _weighted(rows: list[dict]) -> float:
    """Accuracy over ``rows`` weighted by their characters: 1 - all edits / all characters."""
    return round(1 - sum(r["edits"] for r in rows) / max(sum(r["chars"] for r in rows), 1), 4)


def _page_numbers(spec: str, count: int) -> list[int]:
    numbers: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        first, _, last = part.partition("-")
        if not (first.isdigit() and (not last or last.isdigit())):
            raise UsageError(f"--pages: {part!r} is not a page or a range such as 5-9")
        numbers.extend(range(int(first), int(last or first) + 1))
    if any(not 1 <= n <= count for n in numbers):
        raise UsageError(f"--pages: the PDF has pages 1-{count}")
    return numbers


def measure(pdf: Path, pages: str, config: OcrConfig) -> dict:
    import pypdfium2

    reason = unavailable_reason(config)
    if reason is not None:
        raise CQAError(f"OCR cannot run here: {reason}")
    document = pypdfium2.PdfDocument(pdf)
    try:
        numbers = _page_numbers(pages, len(document)) if pages else list(range(1, len(document) + 1))
        ocr = PageOcr(config)
        rows = []
        for number in numbers:
            page = document[number - 1]
            textpage = page.get_textpage()
            reference = comparable(textpage.get_text_bounded())
            textpage.close()
            page.close()
            read = ocr.read_page(document, number)
            score, distance = accuracy(reference, comparable(read.text))
            rows.append({"page": number, "chars": len(reference), "edits": distance, "accuracy": round(score, 4),
                         "seconds": round(read.seconds, 2), "leaders": _mostly_leaders(reference)})
            print(f"page {number:3}: {len(reference):5} chars, accuracy {score:.4f}, {read.seconds:5.1f} s",
                  file=sys.stderr, flush=True)
    finally:
        document.close()
    seconds = [r["seconds"] for r in rows]
    body = [r for r in rows if not r["leaders"]]
    return {
        "pdf": pdf.name,
        "config": {"dpi": config.dpi, "psm": config.page_segmentation, "languages": config.languages,
                   "threads": config.threads},
        "pages": len(rows),
        "accuracy": _weighted(rows),
        "body_accuracy": _weighted(body),
        "leader_pages": [r["page"] for r in rows if r["leaders"]],
        "median_page_accuracy": round(statistics.median(r["accuracy"] for r in rows), 4),
        "pages_below_0_95": [r["page"] for r in rows if r["accuracy"] < 0.95],
        "seconds_per_page": round(sum(seconds) / len(seconds), 2),
        "slowest_page_seconds": max(seconds),
        "rows": rows,
    }


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog=PROG, description="OCR accuracy against the text layer, and seconds per page.")
    p.add_argument("--pdf", type=Path, default=DEFAULT_PDF, help="a PDF with a text layer (default: %(default)s)")
    p.add_argument("--pages", default="", help="pages to read, such as 1,5-9 (default: all)")
    p.add_argument("--dpi", type=int, default=OcrConfig.dpi)
    p.add_argument("--psm", type=int, default=OcrConfig.page_segmentation, help="Tesseract's page segmentation")
    p.add_argument("--languages", default=OcrConfig.languages)
    p.add_argument("--threads", type=int, default=OcrConfig.threads, help="Tesseract's OpenMP threads")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not args.pdf.is_file():
        raise CQAError(f"no PDF at {args.pdf} (the shared corpus is at {CORPUS})")
    result = measure(args.pdf, args.pages,
                     OcrConfig(dpi=args.dpi, page_segmentation=args.psm, languages=args.languages,
                               threads=args.threads))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(f"{result['pdf']} ({result['config']}): {result['pages']} pages, accuracy {result['accuracy']:.4f}, "
              f"body text {result['body_accuracy']:.4f} (without the dot-leader pages {result['leader_pages']}) "
              f"(median page {result['median_page_accuracy']:.4f}; below 0.95: {result['pages_below_0_95']}), "
              f"{result['seconds_per_page']:.1f} s per page (slowest {result['slowest_page_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    run(PROG, main)
