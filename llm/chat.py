"""The chat-model interface the services use (backends implement it; ``llm.factory`` picks one)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from llm.presets import Sampling

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
