"""The chat-model interface the services use, and the factory that picks a backend."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llm.presets import ModelPreset, Sampling, get_preset
from settings import Settings

Message = dict[str, str]


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int
    sampling: Sampling
    json_schema: dict | None = None
    cancel: threading.Event | None = None


class ChatModel(Protocol):
    name: str
    n_ctx: int

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        """Yield the answer's text pieces as they are generated."""
        ...

    def count_tokens(self, text: str) -> int: ...


def complete(model: ChatModel, messages: list[Message], options: GenerationOptions) -> str:
    return "".join(model.stream(messages, options))


def with_no_think(messages: list[Message]) -> list[Message]:
    """Qwen3's soft switch: ``/no_think`` in the last user turn selects non-thinking mode."""
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m["role"] == "user":
            m["content"] = m["content"].rstrip() + " /no_think"
            break
    return out


def strip_thinking(pieces: Iterable[str]) -> Iterator[str]:
    """Drop ``<think>…</think>`` blocks from a token stream (Qwen3 may emit an empty one)."""
    buffer = ""
    in_think = False
    for piece in pieces:
        buffer += piece
        while True:
            if in_think:
                end = buffer.find("</think>")
                if end < 0:
                    buffer = buffer[-len("</think>") :]
                    break
                buffer = buffer[end + len("</think>") :].lstrip()
                in_think = False
            else:
                start = buffer.find("<think>")
                if start >= 0:
                    if start:
                        yield buffer[:start]
                    buffer = buffer[start + len("<think>") :]
                    in_think = True
                    continue
                keep = _partial_tag_suffix(buffer)
                if len(buffer) > keep:
                    yield buffer[: len(buffer) - keep]
                    buffer = buffer[len(buffer) - keep :]
                break
    if buffer and not in_think:
        yield buffer


def _partial_tag_suffix(text: str) -> int:
    """Length of a suffix of ``text`` that could be the start of ``<think>``."""
    tag = "<think>"
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


def effective_sampling(preset: ModelPreset, settings: Settings) -> Sampling:
    base = preset.sampling
    llm = settings.llm
    return Sampling(
        temperature=base.temperature if llm.temperature is None else llm.temperature,
        top_p=base.top_p if llm.top_p is None else llm.top_p,
        top_k=base.top_k if llm.top_k is None else llm.top_k,
        repeat_penalty=base.repeat_penalty,
    )


def resolve_model_path(settings: Settings, preset: ModelPreset) -> Path:
    from llm.model_files import assemble_packaged

    if settings.llm.model_path:
        return Path(settings.llm.model_path)
    if preset.packaged is None:
        from core.errors import ModelUnavailable

        raise ModelUnavailable(f"preset {preset.name!r} has no packaged model: set CQA_LLM__MODEL_PATH to its GGUF")
    return assemble_packaged(preset.packaged, settings.model_dir)


def build_chat_model(settings: Settings, preset_name: str | None = None) -> ChatModel:
    """The configured backend: in-process llama.cpp or an OpenAI-compatible server."""
    preset = get_preset(preset_name or settings.llm.preset)
    match settings.llm.backend:
        case "llamacpp":
            from llm.llamacpp_chat import LlamaCppChat

            return LlamaCppChat(resolve_model_path(settings, preset), preset, settings.llm)
        case "http":
            from llm.http_chat import HttpChat

            return HttpChat(settings.llm, preset)
    raise ValueError(f"unknown LLM backend {settings.llm.backend!r}")
