"""A labelled retrieval set as the harness uses it: the queries with their gold answers and how to lay out the
corpus they are asked against."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eval.passages import GoldPassage

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"


@dataclass
class Query:
    qid: str
    text: str
    relevant_docs: list[str] = field(default_factory=list)
    """JFinTEB: relevant document ids."""
    gold: list[GoldPassage] = field(default_factory=list)
    """ObliQA: gold passages."""
    gold_units: list = field(default_factory=list)
    """Page-level sets: the question's gold sources (eval.testset.GoldSource)."""


@dataclass
class Dataset:
    name: str
    corpus_id: str
    corpus_label: str
    level: str
    """'doc' (collapse chunks to documents) or 'passage' (score chunks against gold passages)."""
    queries: list[Query]
    files: Callable[[Path], list[Path]]
    """Writes/locates the corpus: the files and folders an admin would pass to ``python -m ingest``."""
    published: list[dict]
    notes: list[str] = field(default_factory=list)
    typed_options: Callable[[Path], dict] | None = None
    """Experiment ``typed-titles``: the ingest options an admin would have to type per file."""


def pick(queries: list, limit: int | None) -> list:
    """``limit`` queries spread evenly over the set (all when no limit), in a stable order."""
    if not limit or limit >= len(queries):
        return list(queries)
    return [queries[(i * len(queries)) // limit] for i in range(limit)]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

