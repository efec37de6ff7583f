"""The dev sets' labels (``eval/testsets``): every figure in docs/evaluation.md and docs/retrieval.md counts a
citation or a ranked page as right when it is on a gold page, so a gold page that does not hold the reference
text, or a page that states the answer but is missing from the gold, changes the figures, not the product."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest

from eval.testset import TestCase, load_testset
from ingest.readers.registry import read_document
from tests.conftest import REPO, corpus_path

SETS = [REPO / "eval" / "testsets" / name
        for name in ("grounding_dev.jsonl", "dev_retrieval_en.jsonl", "dev_retrieval_ja.jsonl")]


def _norm(text: str) -> str:
    """Width, case and every space folded: a PDF's text layer breaks lines where the reference does not."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


@cache
def _page_texts(source: str) -> dict[int | None, str]:
    """The product's reading of a corpus file, page by page (a law text is one page-less page)."""
    doc = read_document(corpus_path(*Path(source).parts))
    return {page.number: _norm(page.text) for page in doc.pages}


def _gold_pages(case: TestCase) -> list[tuple[str, int | None]]:
    return [(gold.source, page) for gold in case.gold_sources for page in (gold.pages or [None])]


@pytest.mark.parametrize("testset", SETS, ids=lambda p: p.stem)
def test_every_reference_context_stands_on_a_gold_page(testset: Path):
    """A reference context is copied from the document: read by the product's own reader, one of the case's
    gold pages holds it (a wrong page number, or a context from another page, fails here)."""
    missing = []
    for case in load_testset(testset):
        if not case.answerable:
            continue
        for context in case.reference_contexts:
            if not any(_norm(context) in _page_texts(source).get(page, "") for source, page in _gold_pages(case)):
                missing.append((case.id, context[:60]))
    assert not missing


def test_a_passage_labelled_in_two_sets_has_the_same_gold_pages():
    """When a grounding case and a retrieval case quote the same passage, the pages that state it are gold in
    both: the retrieval set had FATF p. 69 (Recommendation 10's threshold stated again in its interpretive note)
    and the PEPs guidance p. 21 (Recommendation 12 quoted) where the grounding set had only p. 16 and p. 18, so
    answers citing those pages were counted as misses."""
    grounding = [c for c in load_testset(SETS[0]) if c.answerable]
    retrieval = [c for path in SETS[1:] for c in load_testset(path)]
    differ = []
    for g in grounding:
        mine = {_norm(c) for c in g.reference_contexts}
        for r in retrieval:
            shared = any(a in b or b in a for a in mine for b in map(_norm, r.reference_contexts))
            if shared and set(_gold_pages(r)) - set(_gold_pages(g)):
                differ.append((g.id, r.id, sorted(set(_gold_pages(r)) - set(_gold_pages(g)), key=str)))
    assert not differ


# A page that holds a reference context word for word but does not answer the case's question as asked.
JMLSG = "en/aml_regulatory/jmlsg/JMLSG-Part-"
NOT_GOLD = {
    ("g-en-008", JMLSG + "I.pdf", 43): "the question asks what FATF expects; JMLSG repeats it",
    ("ren-007", JMLSG + "I.pdf", 43): "the question asks what FATF expects; JMLSG repeats it",
    ("ren-029", JMLSG + "II.pdf", 52): "the credit unions' sector chapter, not retail banking",
}


def test_every_page_that_holds_a_reference_context_is_gold_or_said_why_not():
    """Pages that state the answer word for word elsewhere in the corpus (a recital repeating its article, one
    guidance quoting another) are gold too: an answer citing them is right. Read over every shared PDF and law text
    indexed for the dev sets, as ``python -m ingest`` reads them."""
    corpus = corpus_path()
    files = sorted(p for p in corpus.rglob("*.pdf") if "obliqa" not in p.parts)
    files += sorted(corpus_path("ja", "egov_laws_2013", "text").iterdir())
    pages = [(str(f.relative_to(corpus)), number, text)
             for f in files for number, text in _page_texts(str(f.relative_to(corpus))).items()]
    missing = []
    for case in (c for path in SETS for c in load_testset(path) if c.answerable):
        gold = set(_gold_pages(case))
        for context in map(_norm, case.reference_contexts):
            missing += [(case.id, source, number) for source, number, text in pages
                        if context in text and (source, number) not in gold and (source, None) not in gold
                        and (case.id, source, number) not in NOT_GOLD]
    assert not missing
