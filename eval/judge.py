"""The LLM judge: RAGAS 0.4 collections metrics on our own local chat model and embedder.

RAGAS' collections metrics (``ragas.metrics.collections``) accept only an
``InstructorBaseRagasLLM`` and a ``BaseRagasEmbedding`` (checked in their constructor) and
call exactly two things on them:

- ``await llm.agenerate(prompt: str, response_model: type[BaseModel]) -> BaseModel``: the
  metric renders its prompt to one string and expects a validated pydantic instance back;
- ``await embeddings.aembed_text(text)`` / ``aembed_texts(texts)`` -> list of floats
  (answer relevancy only).

``LocalJudgeLLM`` implements the first on ``llm.chat.ChatModel`` with
``GenerationOptions(json_schema=response_model.model_json_schema())``, so llama.cpp
grammar-constrains the output to the schema; the text is then validated with the pydantic
model and any failure (truncated at ``max_tokens``, prompt too long for the judge's
context, invalid value) raises ``JudgeFailure``, which the runner counts as a failure of
that metric for that sample. No OpenAI client, instructor client or network call is
involved: ``ragas.llms.llm_factory`` is never called.

Japanese questions are scored with Japanese prompts: RAGAS' ``BasePrompt.adapt()`` (the
collections prompts support it) translates each prompt's examples and instruction once with
the judge itself; the result is cached as JSON in ``<data_dir>/eval/prompts/<metric>-ja.json``
and reused until RAGAS' English prompt or the judge model changes. A prompt whose
translation fails (small judges often return the wrong number of strings) falls back to our
fixed Japanese instruction (``eval/judge_prompts_ja.py``); the cache records which happened.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError
from ragas import __version__ as RAGAS_VERSION
from ragas.embeddings.base import BaseRagasEmbedding
from ragas.llms.base import InstructorBaseRagasLLM
from ragas.metrics.collections import (
    AnswerRelevancy,
    ContextPrecision,
    ContextRecall,
    FactualCorrectness,
    Faithfulness,
)
from ragas.prompt.metrics.base_prompt import BasePrompt

from core.errors import CQAError, ModelUnavailable
from eval.judge_presets import JUDGE_PRESETS, judge_llm_preset, judge_sampling
from eval.judge_prompts_ja import LANGUAGE_RULE, fixed_instruction
from eval.metrics import Score
from llm.chat import ChatModel, GenerationOptions, complete
from llm.factory import build_chat_model
from llm.presets import Sampling, get_preset

__all__ = ["JUDGE_PRESETS", "Judge", "JudgeFailure", "LocalEmbeddings", "LocalJudgeLLM", "judge_llm_preset",
           "load_judge_chat"]

JA_PROMPT_MODES = ("adapt", "fixed", "english")
RAGAS_LANGUAGE = {"ja": "japanese"}
PROMPT_ATTRS = {
    "faithfulness": ("statement_generator_prompt", "nli_statement_prompt"),
    "answer_relevancy": ("prompt",),
    "context_precision": ("prompt",),
    "context_recall": ("prompt",),
    "factual_correctness": ("prompt", "nli_prompt"),
}
_OUTPUT_ALLOWANCE = 320
"""Tokens reserved for the question, answer or statements when sizing the judge's contexts."""
_TEMPLATE_MARGIN = 48



def _run_sync(coro):
    """Run a ragas coroutine to completion from synchronous code, also when the calling thread
    already runs an event loop (Playwright's sync API and some notebook hosts do)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class JudgeFailure(CQAError):
    """The judge produced no usable verdict for one call (counted, never scored as 0)."""


# --- the LLM and embeddings adapters --------------------------------------------------------


@dataclass
class JudgeCall:
    step: str
    ok: bool
    output: dict | None
    error: str | None
    prompt_tokens: int
    ms: float

    def to_dict(self) -> dict:
        return asdict(self)


class LocalJudgeLLM(InstructorBaseRagasLLM):
    """RAGAS' structured-output LLM interface on our ``ChatModel`` (grammar-constrained)."""

    def __init__(
        self, chat: ChatModel, max_tokens: int, sampling: Sampling, cancel: threading.Event | None = None
    ) -> None:
        self.chat = chat
        self.max_tokens = max_tokens
        self.sampling = sampling
        self.cancel = cancel
        self.calls: list[JudgeCall] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.chat.name

    @contextmanager
    def budget(self, max_tokens: int | None) -> Iterator[None]:
        """Temporarily allow ``max_tokens`` (None: whatever the context leaves)."""
        saved = self.max_tokens
        self.max_tokens = max_tokens if max_tokens is not None else self.chat.n_ctx
        try:
            yield
        finally:
            self.max_tokens = saved

    def generate(self, prompt: str, response_model: type[BaseModel]) -> BaseModel:
        step = response_model.__name__
        started = time.perf_counter()
        prompt_tokens = self.chat.count_tokens(prompt)
        room = self.chat.n_ctx - prompt_tokens - _TEMPLATE_MARGIN
        max_tokens = min(self.max_tokens, room)
        if max_tokens < 32:
            raise self._fail(
                step, f"prompt of {prompt_tokens} tokens does not fit the judge's {self.chat.n_ctx}-token context",
                prompt_tokens, started,
            )
        options = GenerationOptions(
            max_tokens=max_tokens,
            sampling=self.sampling,
            json_schema=response_model.model_json_schema(),
            cancel=self.cancel,
        )
        with self._lock:
            text = complete(self.chat, [{"role": "user", "content": prompt}], options)
        if self.cancel is not None and self.cancel.is_set():
            raise self._fail(step, "cancelled", prompt_tokens, started)
        try:
            result = response_model.model_validate_json(text)
        except ValidationError as exc:
            cut = self.chat.count_tokens(text) >= max_tokens - 1
            first = exc.errors()[0]["msg"] if exc.errors() else str(exc)
            why = f"output cut at max_tokens={max_tokens}" if cut else f"output did not validate ({first})"
            raise self._fail(step, f"{step}: {why}", prompt_tokens, started, raw=text) from None
        self.calls.append(
            JudgeCall(step, True, result.model_dump(mode="json"), None, prompt_tokens, _ms(started))
        )
        return result

    async def agenerate(self, prompt: str, response_model: type[BaseModel]) -> BaseModel:
        # llama.cpp serves one request at a time anyway: no point in a worker thread.
        return self.generate(prompt, response_model)

    def _fail(self, step: str, message: str, prompt_tokens: int, started: float, raw: str | None = None):
        output = {"raw": raw[:2000]} if raw is not None else None
        self.calls.append(JudgeCall(step, False, output, message, prompt_tokens, _ms(started)))
        return JudgeFailure(message)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


class LocalEmbeddings(BaseRagasEmbedding):
    """RAGAS' modern embeddings interface on our ``Embedder`` (query embeddings, normalised)."""

    def __init__(self, embedder) -> None:
        super().__init__(cache=None)
        self.embedder = embedder

    def embed_text(self, text: str, **kwargs) -> list[float]:
        return self.embed_texts([text])[0]

    async def aembed_text(self, text: str, **kwargs) -> list[float]:
        return self.embed_text(text)

    def embed_texts(self, texts: list[str], **kwargs) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.embedder.embed_queries(list(texts))]

    async def aembed_texts(self, texts: list[str], **kwargs) -> list[list[float]]:
        return self.embed_texts(texts)


# --- metrics ------------------------------------------------------------------------------


def _make_metric(name: str, llm: LocalJudgeLLM, embeddings: LocalEmbeddings):
    match name:
        case "faithfulness":
            return Faithfulness(llm=llm)
        case "answer_relevancy":
            # strictness=1: with greedy decoding more generations are identical copies
            return AnswerRelevancy(llm=llm, embeddings=embeddings, strictness=1)
        case "context_precision":
            return ContextPrecision(llm=llm)
        case "context_recall":
            return ContextRecall(llm=llm)
        case "factual_correctness":
            return FactualCorrectness(llm=llm, mode="f1")
    raise ValueError(f"{name!r} is not a judge metric")


def _check_local(metric) -> None:
    """Nothing but our adapters may reach the metric (no OpenAI/instructor client)."""
    if not isinstance(metric.llm, LocalJudgeLLM):
        raise CQAError(f"{metric.name}: judge LLM is {type(metric.llm).__name__}, not the local judge")
    embeddings = getattr(metric, "embeddings", None)
    if embeddings is not None and not isinstance(embeddings, LocalEmbeddings):
        raise CQAError(f"{metric.name}: embeddings are {type(embeddings).__name__}, not the local embedder")


# --- Japanese prompts ---------------------------------------------------------------------


def _examples_dump(examples) -> list:
    return [[i.model_dump(mode="json"), o.model_dump(mode="json")] for i, o in examples]


def _examples_load(prompt, data: list) -> list:
    return [(prompt.input_model.model_validate(i), prompt.output_model.model_validate(o)) for i, o in data]


def _all_examples(prompt) -> dict | None:
    return prompt.__dict__.get("_all_examples", getattr(type(prompt), "_all_examples", None))


def prompt_source_hash(prompt) -> str:
    """Fingerprint of RAGAS' English prompt: a new RAGAS version invalidates the cache."""
    data = {"instruction": prompt.instruction, "examples": _examples_dump(prompt.examples)}
    extra = _all_examples(prompt)
    if extra:
        data["all"] = {"|".join(k): _examples_dump(v) for k, v in sorted(extra.items())}
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


def _serialise(prompt) -> dict:
    data = {"instruction": prompt.instruction, "examples": _examples_dump(prompt.examples)}
    extra = prompt.__dict__.get("_all_examples")
    if extra:
        data["all_examples"] = {"|".join(k): _examples_dump(v) for k, v in extra.items()}
    return data


def _restore(default, data: dict, language: str):
    prompt = copy.deepcopy(default)
    prompt.instruction = data["instruction"]
    prompt.examples = _examples_load(prompt, data["examples"])
    if "all_examples" in data:
        prompt._all_examples = {tuple(k.split("|")): _examples_load(prompt, v) for k, v in data["all_examples"].items()}
    prompt.language = language
    return prompt


def _with_rule(prompt, instruction: str, language: str):
    prompt = copy.deepcopy(prompt)
    prompt.instruction = instruction if LANGUAGE_RULE in instruction else f"{instruction}\n{LANGUAGE_RULE}"
    prompt.language = language
    return prompt


class PromptLocaliser:
    """Japanese versions of a metric's prompts: adapted once with the judge and cached."""

    def __init__(self, cache_dir: Path, llm: LocalJudgeLLM, mode: str, log: Callable[[str], None] | None = None):
        if mode not in JA_PROMPT_MODES:
            raise ValueError(f"unknown Japanese prompt mode {mode!r} (use {', '.join(JA_PROMPT_MODES)})")
        self.cache_dir = cache_dir
        self.llm = llm
        self.mode = mode
        self.log = log or (lambda message: None)

    def path(self, metric: str, lang: str) -> Path:
        return self.cache_dir / f"{metric}-{lang}.json"

    def localise(self, metric_name: str, metric, lang: str) -> dict:
        """Swap the metric's prompts for ``lang`` ones; returns what was done (for the config)."""
        if lang == "en" or self.mode == "english" or lang not in RAGAS_LANGUAGE:
            return {"mode": "english"}
        language = RAGAS_LANGUAGE[lang]
        attrs = PROMPT_ATTRS[metric_name]
        defaults = {a: getattr(metric, a) for a in attrs}
        source = {a: prompt_source_hash(p) for a, p in defaults.items()}
        if self.mode == "fixed":
            for a, p in defaults.items():
                setattr(metric, a, _with_rule(p, fixed_instruction(f"{metric_name}.{a}"), language))
            return {"mode": "fixed"}
        path = self.path(metric_name, lang)
        data = self._load(path, source)
        if data is None:
            data = self._adapt(metric_name, defaults, source, language)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            tmp.replace(path)
        modes = {}
        for a, p in defaults.items():
            entry = data["prompts"][a]
            modes[a] = entry["mode"]
            if entry["mode"] == "adapted":
                setattr(metric, a, _with_rule(_restore(p, entry, language), entry["instruction"], language))
            else:
                setattr(metric, a, _with_rule(p, fixed_instruction(f"{metric_name}.{a}"), language))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return {"mode": "adapt", "prompts": modes, "file": path.name, "sha256": digest, "adapted_by": data["judge"]}

    def _load(self, path: Path, source: dict) -> dict | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if data.get("source") != source or data.get("judge") != self.llm.name:
            self.log(f"{path.name}: made by another judge or RAGAS version; adapting again")
            return None
        return data

    def _adapt(self, metric_name: str, defaults: dict, source: dict, language: str) -> dict:
        prompts = {}
        for attr, prompt in defaults.items():
            self.log(f"adapting the {metric_name} prompt {attr!r} to {language} with the judge (cached afterwards)")
            try:
                with self.llm.budget(None):
                    adapted = _run_sync(prompt.adapt(language, self.llm, adapt_instruction=True))
                prompts[attr] = {"mode": "adapted", **_serialise(adapted)}
            except (JudgeFailure, ValueError) as exc:
                self.log(f"{metric_name}.{attr}: adaptation failed ({exc}); using the fixed Japanese instruction")
                prompts[attr] = {"mode": "fixed", "error": str(exc)[:300]}
        return {
            "metric": metric_name,
            "language": language,
            "judge": self.llm.name,
            "ragas": RAGAS_VERSION,
            "source": source,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "prompts": prompts,
        }


# --- the judge ----------------------------------------------------------------------------


class Judge:
    """One loaded judge model for a run, its RAGAS metrics per language, and scoring."""

    def __init__(
        self,
        chat: ChatModel,
        embedder,
        preset: str,
        max_tokens: int,
        prompt_dir: Path,
        ja_prompts: str = "adapt",
        shared: bool = False,
        cancel: threading.Event | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.preset = preset
        self.shared = shared
        self.llm = LocalJudgeLLM(chat, max_tokens, judge_sampling(preset), cancel)
        self.embeddings = LocalEmbeddings(embedder)
        self.localiser = PromptLocaliser(prompt_dir, self.llm, ja_prompts, log)
        self._metrics: dict[tuple[str, str], object] = {}
        self.prompt_info: dict[str, dict] = {}

    @property
    def name(self) -> str:
        return self.llm.name

    def metric(self, name: str, lang: str):
        key = (name, lang)
        if key not in self._metrics:
            metric = _make_metric(name, self.llm, self.embeddings)
            _check_local(metric)
            self.prompt_info[f"{name}-{lang}"] = self.localiser.localise(name, metric, lang)
            self._metrics[key] = metric
        return self._metrics[key]

    def prepare(self, names: list[str], languages: set[str]) -> dict[str, dict]:
        """Build (and localise) every metric the run needs up front: fail fast, full config."""
        for lang in sorted(languages):
            for name in names:
                self.metric(name, lang)
        return dict(self.prompt_info)

    def context_budget(self, names: list[str], lang: str) -> int:
        """Tokens of retrieved context that leave room for each prompt's own text."""
        template = 0
        for name in names:
            metric = self.metric(name, lang)
            for attr in PROMPT_ATTRS[name]:
                prompt: BasePrompt = getattr(metric, attr)
                text = prompt.instruction + prompt._generate_examples()
                text += json.dumps(prompt.output_model.model_json_schema())
                template = max(template, self.llm.chat.count_tokens(text))
        room = self.llm.chat.n_ctx - self.llm.max_tokens - template - _OUTPUT_ALLOWANCE - _TEMPLATE_MARGIN
        return max(128, room)

    def score(self, name: str, lang: str, **inputs) -> Score:
        metric = self.metric(name, lang)
        start = len(self.llm.calls)
        try:
            result = _run_sync(metric.ascore(**inputs))
            value = float(result.value)
        except JudgeFailure as exc:
            return Score.failed(f"judge: {exc}", details=self._trace(start))
        except Exception as exc:  # a metric's own error is a failure of this sample, not of the run
            return Score.failed(f"{type(exc).__name__}: {exc}"[:300], details=self._trace(start))
        details = self._trace(start)
        empty = [c for c in details if c["step"] == "NLIStatementOutput" and c["ok"]
                 and not (c["output"] or {}).get("statements")]
        if empty:
            # RAGAS scores an empty verdict list as 0 (factual correctness) or NaN: either way
            # the judge gave no verdict on statements that exist, which is a judge failure.
            return Score.failed("judge: returned no verdicts for the statements", details=details)
        if value < -1e-6 or value > 1.0 + 1e-6:
            details.append({"raw_value": value, "note": "clipped to [0, 1]"})
        return Score.ok(value, details=details)

    def _trace(self, start: int) -> list[dict]:
        return [c.to_dict() for c in self.llm.calls[start:]]


def load_judge_chat(container, preset: str, model_path: Path | None = None) -> tuple[ChatModel, bool]:
    """The judge's chat model, and whether it is the answering model's instance (shared).

    Same preset as the answering model (and no other file given): the already loaded
    instance is reused. Otherwise the judge is loaded once, from its packaged parts or
    ``model_path``; the answering model's path and context overrides do not apply to it.
    With the ``http`` backend a judge of another preset still talks to the configured
    server, which serves whatever model it was started with."""
    settings = container.settings
    if preset == settings.llm.preset and model_path is None:
        return container.answers.llm, True
    spec = get_preset(preset)
    if spec.packaged is None and model_path is None and settings.llm.backend == "llamacpp":
        raise ModelUnavailable(
            f"judge preset {preset!r} has no packaged model: give its GGUF with --judge-model-path "
            "(or CQA_EVAL_JUDGE_MODEL_PATH)",
            key="judge_unavailable", params={"preset": preset},
        )
    llm_settings = settings.llm.model_copy(update={"model_path": model_path, "n_ctx": None, "preset": preset})
    judge_settings = settings.model_copy(update={"llm": llm_settings})
    try:
        return build_chat_model(judge_settings, preset), False
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"judge preset {preset!r} is not available: {exc}", key="judge_unavailable",
                               params={"preset": preset}) from None

