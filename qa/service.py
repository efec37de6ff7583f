"""Answer use case: condense -> retrieve (filtered) -> refuse or generate -> verify citations.

``stream()`` yields events so the chat page can show retrieval results and tokens as they
arrive; ``ask()`` runs the same pipeline to the end (CLI, evaluation)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from core.errors import CQAError
from core.schema import Answer, ChatTurn, Hit, Requester, SearchFilter, Timings
from core.text import detect_language
from llm.chat import ChatModel, GenerationOptions, complete
from llm.presets import Sampling
from llm.slots import LLMSlots
from prompts import load_prompts
from qa.claims import asked_specific, missing_specifics
from qa.context import fit_budget, format_sources, merge_neighbours
from qa.grounding import enforce_grounding
from retrieval.service import RetrievalService, rrf_order
from settings.model import LLMSettings, RetrievalSettings

log = logging.getLogger(__name__)

_CONTEXT_MARGIN = 64
_TURN_CHARS = 500
"""How much of an earlier turn a follow-up's rewrite and search read."""
_QUEUE_TICK = 0.5
"""Seconds between looks at the queue while every model slot is busy."""


def _fuse(rankings: list[list[Hit]], limit: int) -> list[Hit]:
    """Several hit lists as one (reciprocal rank fusion); a chunk keeps its best dense score for the refusal gate."""
    best: dict[str, Hit] = {}
    for h in (h for hits in rankings for h in hits):
        if h.chunk_id not in best or (h.dense_score or 0.0) > (best[h.chunk_id].dense_score or 0.0):
            best[h.chunk_id] = h
    order = rrf_order([(1.0, [h.chunk_id for h in hits]) for hits in rankings])[:limit]
    return [best[key].model_copy(update={"score": score}) for key, score in order]


_QUESTION_END = re.compile(r"[?？か][」』\"')）)]*$")


def standalone_rewrite_ok(rewritten: str, question: str, transcript: str) -> bool:
    """Whether the model's rewrite of a follow-up can stand for it: a question (a small model sometimes answers
    instead, 「…は年間1回または2回に決まっています。」) that states no number, period, article or body the
    conversation and the follow-up do not, and still asks for the kind of specific the follow-up asks for
    (「何営業日以内に」 rewritten 「どの営業日以内に」, "every how many months?" rewritten "how often?")."""
    asked = asked_specific(question)
    return (2 <= len(rewritten) <= 400 and bool(_QUESTION_END.search(rewritten.rstrip(" 。.")))
            and not missing_specifics(rewritten, f"{transcript}\n{question}")
            and asked in (None, asked_specific(rewritten)))


def _last_question(history: list[ChatTurn]) -> str:
    return next((t.content[:_TURN_CHARS] for t in reversed(history) if t.role == "user"), "")


def best_dense_score(hits: list[Hit]) -> float:
    """What the refusal gate compares with ``retrieval.refusal_min_dense``: the best dense cosine of the passages."""
    return max((h.dense_score or 0.0 for h in hits), default=0.0)


@dataclass(frozen=True)
class RetrievedEvent:
    hits: list[Hit]
    standalone_question: str


@dataclass(frozen=True)
class QueuedEvent:
    """Every model slot is busy: the question waits, ``position`` 1 being next (sent again when it moves)."""

    position: int
    waited_ms: float


@dataclass(frozen=True)
class TokenEvent:
    text: str


@dataclass(frozen=True)
class AnswerEvent:
    answer: Answer


Event = RetrievedEvent | QueuedEvent | TokenEvent | AnswerEvent


@dataclass
class AnswerService:
    retrieval: RetrievalService
    llm_factory: Callable[[], ChatModel]
    llm_settings: LLMSettings
    retrieval_settings: RetrievalSettings
    sampling: Sampling
    on_answer: Callable[[Requester, Answer], None] | None = None
    on_failure: Callable[[Requester, str, CQAError], None] | None = None
    """Called with the question when the model failed to answer it (the error is raised after)."""
    max_question_chars: int = 2000
    prompt_style: str = "full"
    _llm: ChatModel | None = field(default=None, init=False)
    _llm_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    slots: LLMSlots | None = None
    """The model's slots in this process; None: from ``llm_settings`` (servers × server_slots)."""

    def __post_init__(self) -> None:
        if self.slots is None:
            self.slots = LLMSlots.from_settings(self.llm_settings)

    @property
    def llm(self) -> ChatModel:
        with self._llm_lock:
            if self._llm is None:
                self._llm = self.llm_factory()
            return self._llm

    def ask(
        self, question: str, requester: Requester, history: list[ChatTurn] | None = None, as_of=None
    ) -> Answer:
        final = None
        for event in self.stream(question, requester, history, as_of=as_of):
            if isinstance(event, AnswerEvent):
                final = event.answer
        assert final is not None
        return final

    def stream(
        self,
        question: str,
        requester: Requester,
        history: list[ChatTurn] | None = None,
        cancel: threading.Event | None = None,
        as_of=None,
    ) -> Iterator[Event]:
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise CQAError("the question is empty", key="question_empty")
        if len(question) > self.max_question_chars:
            raise CQAError(f"the question is longer than {self.max_question_chars} characters: shorten it",
                           key="question_too_long", params={"n": self.max_question_chars})
        language = detect_language(question)
        prompts = load_prompts(language)
        rewritten = self._condense(question, history, prompts) if history else None
        standalone = rewritten or question
        flt = requester.search_filter(as_of=as_of)
        hits = self.retrieval.retrieve(standalone, flt)
        if history:
            # a rewrite can lose the question (search it as typed too) or the document the conversation is about
            # (search the typed follow-up after the previous question, which also gives 「法人の場合は？」 its topic)
            extra = dict.fromkeys([question, f"{_last_question(history)} {question}".strip()])
            extra.pop(standalone, None)
            if extra:
                hits = _fuse([hits, *(self.retrieval.retrieve(q, flt) for q in extra)], len(hits))
        retrieve_ms = (time.perf_counter() - started) * 1000
        yield RetrievedEvent(hits, standalone)

        best = best_dense_score(hits)
        base = dict(
            question=question,
            standalone_question=standalone,
            language=language,
            prompt_version=prompts.version,
            contexts=hits,
        )
        if not hits or best < self.retrieval_settings.refusal_min_dense:
            answer = Answer(
                answer=prompts.refusal,
                citations=[],
                refused=True,
                refusal_reason="no_relevant_passage",
                model="",
                timings=Timings(retrieve_ms=retrieve_ms, total_ms=(time.perf_counter() - started) * 1000),
                **base,
            )
            self._finish(requester, answer)
            yield AnswerEvent(answer)
            return

        llm = self.llm
        sources = self._assemble(hits, flt, prompts, question, llm)
        messages = [
            {"role": "system", "content": prompts.system_prompt(self.prompt_style)},
            {"role": "user", "content": prompts.user.format(sources=format_sources(sources), question=standalone)},
        ]
        options = GenerationOptions(
            max_tokens=self.llm_settings.max_answer_tokens, sampling=self.sampling, cancel=cancel
        )
        pieces: list[str] = []
        first_token_ms = None
        queued = time.perf_counter()
        ticket = None
        try:
            ticket = self.slots.join()
            yield from self._wait_for_slot(ticket, queued)
            queue_ms = (time.perf_counter() - queued) * 1000
            for piece in llm.stream(messages, options):
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - started) * 1000
                pieces.append(piece)
                yield TokenEvent(piece)
        except CQAError as exc:
            log.warning("no answer for %s: %s", requester.name, exc)
            if self.on_failure is not None:
                self.on_failure(requester, question, exc)
            raise
        finally:
            if ticket is not None:
                ticket.leave()
        text = "".join(pieces).strip()
        grounded = enforce_grounding(text, sources, prompts.refusal, standalone, question)
        answer = Answer(
            answer=grounded.text,
            citations=grounded.citations,
            refused=grounded.refusal_reason is not None,
            refusal_reason=grounded.refusal_reason,
            sentences=grounded.check.sentences,
            unsupported_sentences=len(grounded.removed),
            removed_claims=grounded.removed,
            invalid_markers=grounded.check.invalid_markers,
            model=llm.name,
            timings=Timings(
                retrieve_ms=retrieve_ms,
                queue_ms=queue_ms,
                first_token_ms=first_token_ms,
                total_ms=(time.perf_counter() - started) * 1000,
            ),
            **{**base, "contexts": sources},
        )
        self._finish(requester, answer)
        yield AnswerEvent(answer)

    @staticmethod
    def _wait_for_slot(ticket, queued: float) -> Iterator[QueuedEvent]:
        """Nothing when a slot is free; else the place in the queue, again whenever it moves."""
        shown = 0
        while not ticket.wait(0 if not shown else _QUEUE_TICK):
            position = ticket.position
            if position and position != shown:
                shown = position
                yield QueuedEvent(position, (time.perf_counter() - queued) * 1000)

    def _assemble(self, hits: list[Hit], flt: SearchFilter, prompts, question: str, llm: ChatModel) -> list[Hit]:
        if self.retrieval_settings.neighbour_expansion:
            present = {h.chunk_id for h in hits}
            expanded = []
            for h in hits:
                extra = [n for n in self.retrieval.neighbours(h, flt) if n.chunk_id not in present]
                present.update(n.chunk_id for n in extra)
                expanded.append(merge_neighbours(h, extra) if extra else h)
            hits = expanded
        fixed = sum(
            llm.count_tokens(text)
            for text in (prompts.system_prompt(self.prompt_style), prompts.user, question)
        )
        budget = llm.n_ctx - self.llm_settings.max_answer_tokens - fixed - _CONTEXT_MARGIN
        return fit_budget(hits, budget, llm.count_tokens)

    def _condense(self, question: str, history: list[ChatTurn], prompts) -> str | None:
        """The follow-up rewritten to stand alone, or None when the rewrite cannot stand for it."""
        recent = history[-4:]
        transcript = "\n".join(f"{t.role}: {t.content[:_TURN_CHARS]}" for t in recent)
        prompt = prompts.condense.format(history=transcript, question=question)
        options = GenerationOptions(max_tokens=96, sampling=Sampling(temperature=0.0, top_p=1.0, top_k=1))
        rewritten = complete(self.llm, [{"role": "user", "content": prompt}], options).strip()
        rewritten = rewritten.splitlines()[0].strip() if rewritten else ""
        return rewritten if standalone_rewrite_ok(rewritten, question, transcript) else None

    def _finish(self, requester: Requester, answer: Answer) -> None:
        if self.on_answer is not None:
            self.on_answer(requester, answer)
