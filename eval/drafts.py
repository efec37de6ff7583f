"""Draft test questions from ingested chunks with the local LLM, for a person to review.

Each draft comes from one chunk: the LLM writes a question that chunk answers and the
answer (JSON-schema constrained, so it always parses), and the gold source and pages are
the chunk's own metadata, never the model's. Drafts carry the tag ``draft``;
``save_reviewed`` writes the ones a reviewer kept into a JSONL test set."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from core.schema import SearchFilter
from core.text import detect_language
from eval.metrics import file_name
from eval.testset import GoldSource, TestCase, load_testset, write_jsonl
from llm.chat import GenerationOptions, complete
from llm.presets import Sampling

MIN_CHUNK_CHARS = 80


class DraftOutput(BaseModel):
    question: str = Field(..., description="a question a bank employee might ask that the excerpt answers")
    reference_answer: str = Field(..., description="the answer, using only the excerpt")


_PROMPTS = {
    "ja": (
        "あなたは銀行のコンプライアンス研修の問題作成者です。次の社内規程の抜粋だけで答えられる、"
        "営業店の職員が実際にしそうな質問を1つ作り、抜粋だけに基づく模範解答を2文以内で書いてください。"
        "質問と解答は日本語で書き、JSON で返してください。\n\n抜粋（{source} p.{pages}）:\n{text}"
    ),
    "en": (
        "You write test questions for a bank's compliance assistant. Write one question a branch "
        "employee might really ask that the excerpt below answers, and a short answer (at most two "
        "sentences) using only the excerpt. Reply in English, as JSON.\n\nExcerpt ({source} p.{pages}):\n{text}"
    ),
}


def _chunks(container, flt: SearchFilter, doc_ids: list[str] | None) -> list[dict]:
    """Payloads of the active chunks of the active documents (optionally only ``doc_ids``) within ``flt``."""
    payloads: list[dict] = []
    for version in container.registry.active():
        if doc_ids and version.doc_id not in doc_ids:
            continue
        indexes = list(range(version.chunks))
        for start in range(0, len(indexes), 64):
            payloads += container.store.chunks_by_index(
                version.doc_id, version.version, indexes[start : start + 64], flt
            )
    return payloads


def _spread(items: list, n: int) -> list:
    """``n`` items spread evenly over the list (all of them when there are fewer)."""
    if n >= len(items):
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def draft_questions(
    container,
    flt: SearchFilter,
    n: int = 10,
    doc_ids: list[str] | None = None,
    chat=None,
    max_tokens: int = 320,
    progress: Callable[[int, int], None] | None = None,
    skipped: list[str] | None = None,
) -> list[TestCase]:
    """Up to ``n`` draft test cases from chunks spread over the part of the corpus the drafter may read
    (``flt``: their access scope), written by the answering model by default. A chunk whose draft does not
    validate (output cut at ``max_tokens``) or is empty is skipped, and why is appended to ``skipped``."""
    chat = chat or container.answers.llm
    candidates = [p for p in _chunks(container, flt, doc_ids) if len(p.get("text", "").strip()) >= MIN_CHUNK_CHARS]
    chosen = _spread(candidates, n)
    options = GenerationOptions(
        max_tokens=max_tokens,
        sampling=Sampling(temperature=0.0, top_p=1.0, top_k=1, repeat_penalty=1.1),
        json_schema=DraftOutput.model_json_schema(),
    )
    drafts: list[TestCase] = []
    for i, payload in enumerate(chosen, start=1):
        text = payload["text"].strip()
        lang = payload.get("lang") or detect_language(text)
        lang = lang if lang in _PROMPTS else "en"
        start, end = payload.get("page_start"), payload.get("page_end")
        pages = list(range(start, (end or start) + 1)) if start is not None else []
        source = file_name(payload.get("source", ""))
        prompt = _PROMPTS[lang].format(
            source=source, pages=",".join(map(str, pages)) or "-", text=text[:2400]
        )
        chunk_ref = f"{source} chunk {payload.get('chunk_index')}"
        try:
            out = DraftOutput.model_validate_json(complete(chat, [{"role": "user", "content": prompt}], options))
        except ValidationError as exc:
            if skipped is not None:
                skipped.append(f"{chunk_ref}: output did not validate ({exc.errors()[0]['msg']})")
            if progress:
                progress(i, len(chosen))
            continue
        if not (out.question.strip() and out.reference_answer.strip()) and skipped is not None:
            skipped.append(f"{chunk_ref}: empty question or answer")
        if out.question.strip() and out.reference_answer.strip():
            drafts.append(
                TestCase(
                    id=f"draft-{payload['doc_id'][:8]}-{payload.get('chunk_index', i)}",
                    question=out.question.strip(),
                    reference_answer=out.reference_answer.strip(),
                    reference_contexts=[text],
                    gold_sources=[GoldSource(source=source, pages=pages)],
                    answerable=True,
                    tags=["draft", lang],
                )
            )
        if progress:
            progress(i, len(chosen))
    return drafts


def save_reviewed(drafts: list[TestCase], path: str | Path) -> int:
    """Add reviewed drafts to a JSONL test set (created when missing): the ``draft`` tag
    becomes ``reviewed``; a case whose id is already in the file replaces it. Returns the
    number of cases in the file."""
    path = Path(path)
    existing = load_testset(path) if path.is_file() and path.stat().st_size else []
    reviewed = []
    for case in drafts:
        tags = [t for t in case.tags if t != "draft"]
        if "reviewed" not in tags:
            tags.append("reviewed")
        reviewed.append(case.model_copy(update={"tags": tags}))
    by_id = {c.id: c for c in reviewed}
    merged = [by_id.pop(c.id, c) for c in existing] + list(by_id.values())
    write_jsonl(merged, path)
    return len(merged)


def case_from_feedback(feedback: dict, reference_answer: str | None) -> TestCase:
    """A test case from one answer's feedback row (``qa.feedback.FeedbackStore.recent``): its question, the
    reviewer's reference answer (none: the question should be refused) and the cited pages as gold sources.
    Its id is the feedback's, so saving it again replaces it."""
    pages: dict[str, set[int]] = {}
    for citation in json.loads(feedback.get("citations") or "[]"):
        pages.setdefault(citation["source"], set()).update([citation["page"]] if citation.get("page") else [])
    return TestCase(
        id=f"feedback-{feedback['id']}",
        question=feedback["question"],
        reference_answer=(reference_answer or "").strip() or None,
        gold_sources=[GoldSource(source=source, pages=sorted(p)) for source, p in pages.items()],
        answerable=bool((reference_answer or "").strip()),
        tags=["feedback", "positive" if feedback.get("positive") else "negative"],
    )
