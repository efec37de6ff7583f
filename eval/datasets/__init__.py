"""The public labelled sets the retrieval harness measures on (read from the shared corpus, never copied into the
repository): one module per family, and :func:`load_dataset` to pick one by name."""

from __future__ import annotations

from pathlib import Path

from core.cli import UsageError
from eval.datasets.dev_pages import DEV_PAGE_SETS, load_dev_pages, shared_documents
from eval.datasets.japanese_finance_set import jfinteb_published, load_jfinteb
from eval.datasets.labelled_set import DEFAULT_CORPUS, Dataset, Query, pick, read_jsonl
from eval.datasets.obliqa import OBLIQA_PUBLISHED, load_obliqa, obliqa_titles

DATASETS = ("obliqa-dev", "obliqa-aml", "jfinteb-wikinews", "jfinteb-wikipedia", "dev-pages", "dev-pages-ja",
            "dev-pages-en")


def load_dataset(
    name: str,
    corpus: Path = DEFAULT_CORPUS,
    corpus_variant: str = "default",
    max_docs: int | None = None,
    limit: int | None = None,
) -> Dataset:
    """``max_docs`` (JFinTEB only) ingests a sample of the documents that keeps the relevant ones of
    the ``limit`` queries that will be evaluated."""
    if name.startswith("jfinteb-"):
        return load_jfinteb(name, corpus, max_docs, limit)
    if max_docs:
        raise UsageError("--max-docs applies to the JFinTEB sets only")
    if name.startswith("obliqa-"):
        return load_obliqa(name, corpus, corpus_variant)
    if name in DEV_PAGE_SETS:
        return load_dev_pages(name, corpus)
    raise UsageError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")


__all__ = [
    "DATASETS",
    "DEFAULT_CORPUS",
    "DEV_PAGE_SETS",
    "OBLIQA_PUBLISHED",
    "Dataset",
    "Query",
    "jfinteb_published",
    "load_dataset",
    "load_dev_pages",
    "load_jfinteb",
    "load_obliqa",
    "obliqa_titles",
    "pick",
    "read_jsonl",
    "shared_documents",
]
