"""PDF text engines compared: `python -m bench.pdf_engines [--limit N] [--markdown] [--json]`.

Reads every PDF in ../shared/corpus with each engine of ``ingest.readers.pdf_engines`` (PDFium through pypdfium2,
and pypdf), in this process, one after the other: seconds per page (wall and CPU, opening included) and the text
agreement of every page: rapidfuzz's normalised Indel similarity of the two texts after the readers' own clean-up
and NFKC. A page that agrees less than ``--threshold`` is listed with the likeliest reason, found by which change
makes the two agree: only whitespace differs (line breaks and blank lines, or spaces beside CJK characters), the
same characters in another order (reading order), the first or last lines differ (running headers and footers), or
other characters (glyphs mapped to other Unicode, hyphenation, ligatures; the characters found on one side only are
shown).
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.cli import ArgumentParser, run
from core.errors import CQAError, IngestError
from core.text import CJK
from ingest.readers.cleanup import clean_lines
from ingest.readers.pdf_engines import PdfiumText, PypdfText

PROG = "python -m bench.pdf_engines"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
ENGINES = {"pypdf": PypdfText, "pdfium": PdfiumText}
_WS = re.compile(r"\s+")
_LIGATURES = re.compile("[\ufb00-\ufb06]")
_LINE_BREAKS = re.compile(r"\s*\n\s*")
_SPACE_BY_CJK = re.compile(rf"(?<=[{CJK}]) +| +(?=[{CJK}])")


@dataclass
class EngineRun:
    seconds: float
    cpu_seconds: float
    texts: list[str] = field(repr=False)
    ligatures: int
    error: str = ""


@dataclass
class PageDiff:
    file: str
    page: int
    agreement: float
    reason: str
    evidence: str


@dataclass
class FileResult:
    file: str
    pages: int
    ms_per_page: dict[str, float]
    cpu_ms_per_page: dict[str, float]
    mean_agreement: float
    min_agreement: float
    differing_pages: int
    ligatures: dict[str, int]
    errors: dict[str, str]


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", clean_lines(text))


def similarity(a: str, b: str) -> float:
    """Character-level agreement in [0, 1] (rapidfuzz's normalised Indel similarity); two empty texts agree."""
    from rapidfuzz.distance import Indel

    return 1.0 if not a and not b else Indel.normalized_similarity(a, b)


def _multiset_agreement(a: str, b: str) -> float:
    ca, cb = Counter(_WS.sub("", a)), Counter(_WS.sub("", b))
    total = sum(ca.values()) + sum(cb.values())
    return 1.0 if total == 0 else 1 - sum(((ca - cb) + (cb - ca)).values()) / total


def _without_margins(text: str, lines: int = 3) -> str:
    body = [ln for ln in text.split("\n") if ln.strip()]
    return "\n".join(body[lines:-lines]) if len(body) > 2 * lines else ""


def _whitespace_reason(a: str, b: str, threshold: float) -> tuple[str, str]:
    """Which whitespace differs: line breaks (blank lines, where lines end) or spaces beside CJK characters."""
    if similarity(_LINE_BREAKS.sub("\n", a), _LINE_BREAKS.sub("\n", b)) >= threshold:
        return "whitespace: line breaks and blank lines", "agree once line breaks are normalised"
    cjk_a, cjk_b = len(_SPACE_BY_CJK.findall(a)), len(_SPACE_BY_CJK.findall(b))
    return "whitespace: spaces beside CJK characters", f"such spaces: pypdf {cjk_a}, pdfium {cjk_b}"


def classify(a: str, b: str, threshold: float) -> tuple[str, str]:
    """The likeliest reason two texts of a page differ, and evidence for it (see the module docstring)."""
    flat_a, flat_b = _WS.sub("", a), _WS.sub("", b)
    if not flat_a or not flat_b:
        return "text on one side only", f"{len(flat_a)} vs {len(flat_b)} characters"
    if similarity(flat_a, flat_b) >= threshold:
        return _whitespace_reason(a, b, threshold)
    if _multiset_agreement(a, b) >= threshold:
        return "reading order", f"same characters ({_multiset_agreement(a, b):.3f}), order differs"
    inner_a, inner_b = _without_margins(a), _without_margins(b)
    if inner_a and inner_b and similarity(_WS.sub("", inner_a), _WS.sub("", inner_b)) >= threshold:
        return "headers/footers (first or last lines)", "agree without the first and last 3 lines"
    only_a = (Counter(flat_a) - Counter(flat_b)).most_common(6)
    only_b = (Counter(flat_b) - Counter(flat_a)).most_common(6)
    show = lambda pairs: " ".join(f"{ch!r}x{n}" for ch, n in pairs) or "-"  # noqa: E731
    return "characters differ", f"pypdf only: {show(only_a)}; pdfium only: {show(only_b)}"


def run_engine(name: str, data: bytes) -> EngineRun:
    started, cpu = time.perf_counter(), time.process_time()
    try:
        pdf = ENGINES[name](data)
        raw = pdf.page_texts(1, pdf.page_count)
    except IngestError as exc:
        return EngineRun(time.perf_counter() - started, time.process_time() - cpu, [], 0, str(exc))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    ligatures = sum(len(_LIGATURES.findall(t or "")) for t in raw)
    return EngineRun(seconds, cpu_seconds, [_normal(t or "") for t in raw], ligatures)


def compare(path: Path, threshold: float) -> tuple[FileResult, list[PageDiff]]:
    data = path.read_bytes()
    runs = {name: run_engine(name, data) for name in ENGINES}
    rel = str(path.relative_to(CORPUS))
    pages = max(len(r.texts) for r in runs.values())
    diffs: list[PageDiff] = []
    agreements: list[float] = []
    if all(len(r.texts) == pages for r in runs.values()):
        for number, (a, b) in enumerate(zip(runs["pypdf"].texts, runs["pdfium"].texts, strict=True), start=1):
            agreement = similarity(a, b)
            agreements.append(agreement)
            if agreement < threshold:
                reason, evidence = classify(a, b, threshold)
                diffs.append(PageDiff(rel, number, round(agreement, 3), reason, evidence))
    per_page = max(pages, 1)
    result = FileResult(
        file=rel,
        pages=pages,
        ms_per_page={n: round(1000 * r.seconds / per_page, 2) for n, r in runs.items()},
        cpu_ms_per_page={n: round(1000 * r.cpu_seconds / per_page, 2) for n, r in runs.items()},
        mean_agreement=round(sum(agreements) / len(agreements), 4) if agreements else 0.0,
        min_agreement=round(min(agreements), 3) if agreements else 0.0,
        differing_pages=len(diffs),
        ligatures={n: r.ligatures for n, r in runs.items()},
        errors={n: r.error for n, r in runs.items() if r.error},
    )
    return result, diffs


def _markdown(results: list[FileResult], diffs: list[PageDiff], threshold: float) -> str:
    out = ["| PDF | pages | pypdf ms/page wall (CPU) | PDFium ms/page wall (CPU) | CPU speed-up | mean agreement | min "
           f"| pages < {threshold} |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        speedup = r.cpu_ms_per_page["pypdf"] / max(r.cpu_ms_per_page["pdfium"], 1e-9)
        out.append(f"| {r.file} | {r.pages} | {r.ms_per_page['pypdf']:.1f} ({r.cpu_ms_per_page['pypdf']:.1f}) | "
                   f"{r.ms_per_page['pdfium']:.1f} ({r.cpu_ms_per_page['pdfium']:.1f}) | {speedup:.0f}x | "
                   f"{r.mean_agreement:.3f} | {r.min_agreement:.3f} | {r.differing_pages} |")
    pages = sum(r.pages for r in results)
    wall = {n: sum(r.ms_per_page[n] * r.pages for r in results) / pages for n in ENGINES}
    cpu = {n: sum(r.cpu_ms_per_page[n] * r.pages for r in results) / pages for n in ENGINES}
    mean = sum(r.mean_agreement * r.pages for r in results) / max(pages, 1)
    out.append(f"| **all {len(results)}** | **{pages}** | **{wall['pypdf']:.1f} ({cpu['pypdf']:.1f})** | "
               f"**{wall['pdfium']:.1f} ({cpu['pdfium']:.1f})** | **{cpu['pypdf'] / cpu['pdfium']:.0f}x** | "
               f"**{mean:.3f}** | | **{len(diffs)}** |")
    reasons = Counter(d.reason for d in diffs)
    out += ["", "Reasons of the differing pages: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()), ""]
    out += ["| PDF | page | agreement | reason | evidence |", "| --- | ---: | ---: | --- | --- |"]
    out += [f"| {d.file} | {d.page} | {d.agreement:.3f} | {d.reason} | {d.evidence.replace('|', '/')} |"
            for d in diffs]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG)
    parser.add_argument("--limit", type=int, help="at most N PDFs")
    parser.add_argument("--threshold", type=float, default=0.95, help="pages that agree less are listed")
    parser.add_argument("--markdown", action="store_true", help="the tables for docs/benchmarks.md")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not CORPUS.exists():
        raise CQAError(f"the shared corpus is not at {CORPUS}")
    files = sorted(CORPUS.rglob("*.pdf"))[: args.limit or None]
    warm_up = min(files, key=lambda f: f.stat().st_size)  # untimed: one-time imports and pypdf's CJK CMaps
    for name in ENGINES:
        run_engine(name, warm_up.read_bytes())
    results, diffs = [], []
    for path in files:
        result, page_diffs = compare(path, args.threshold)
        results.append(result)
        diffs += page_diffs
    if args.json:
        print(json.dumps({"files": [asdict(r) for r in results], "differing": [asdict(d) for d in diffs]},
                         ensure_ascii=False))
    elif args.markdown:
        print(_markdown(results, diffs, args.threshold))
    else:
        for r in results:
            print(f"{r.file}: {r.pages} pages, ms/page {r.ms_per_page} (CPU {r.cpu_ms_per_page}), agreement mean "
                  f"{r.mean_agreement} min {r.min_agreement}, {r.differing_pages} pages < {args.threshold}"
                  + (f", errors {r.errors}" if r.errors else ""))
        for d in diffs:
            print(f"  {d.file} p{d.page}: {d.agreement} {d.reason}: {d.evidence}")
    return 0


if __name__ == "__main__":
    run(PROG, main)
