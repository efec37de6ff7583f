"""The project's own staff questions (eval/testsets/dev_retrieval_*.jsonl) against every shared PDF and the e-Gov
law texts, scored per page."""

from __future__ import annotations

from pathlib import Path

from eval.datasets.labelled_set import REPO, Dataset, Query
from eval.page_retrieval import load_cases

DEV_PAGE_SETS = {
    "dev-pages": ("dev_retrieval_ja.jsonl", "dev_retrieval_en.jsonl"),
    "dev-pages-ja": ("dev_retrieval_ja.jsonl",),
    "dev-pages-en": ("dev_retrieval_en.jsonl",),
}


def shared_documents(corpus: Path) -> list[Path]:
    """Every shared PDF and the e-Gov law texts: the staff questions' documents and their distractors."""
    pdfs = sorted(p for p in corpus.rglob("*.pdf") if "obliqa" not in p.parts)
    return [*pdfs, corpus / "ja" / "egov_laws_2013" / "text"]


def load_dev_pages(name: str, corpus: Path, testsets: tuple[Path, ...] = ()) -> Dataset:
    if not testsets:
        testsets = tuple(REPO / "eval" / "testsets" / f for f in DEV_PAGE_SETS[name])
    if not (corpus / "ja" / "fsa_amlcft").is_dir():
        raise FileNotFoundError(f"the shared corpus is needed at {corpus}")
    cases = load_cases(testsets)
    queries = [Query(c.id, c.question, gold_units=c.gold_sources) for c in cases]
    return Dataset(
        name=name,
        corpus_id="shared-docs",
        corpus_label="every shared PDF and the 18 e-Gov law texts",
        level="page",
        queries=queries,
        files=lambda workdir: shared_documents(corpus),
        published=[],
        notes=[f"questions: {', '.join(p.name for p in testsets)}; floor: BM25 over whole pages / law articles"],
    )

