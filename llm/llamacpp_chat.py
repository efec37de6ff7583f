"""In-process llama.cpp: one model per process, requests served first come, first served."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llm.chat import GenerationOptions, Message, strip_thinking, with_no_think
from llm.presets import ModelPreset
from settings.model import LLMSettings


class FifoLock:
    """A lock granted in arrival order, so no Streamlit session starves another."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()

    @contextmanager
    def hold(self) -> Iterator[None]:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            self._cond.wait_for(lambda: self._queue[0] is ticket)
        try:
            yield
        finally:
            with self._cond:
                self._queue.popleft()
                self._cond.notify_all()

    @property
    def waiting(self) -> int:
        return max(0, len(self._queue) - 1)


def llama_kwargs(preset: ModelPreset, llm: LLMSettings) -> dict:
    """llama_cpp.Llama keyword arguments for a preset (also used by `llm check`)."""
    kwargs: dict = {
        "n_ctx": llm.n_ctx or preset.n_ctx,
        "n_gpu_layers": preset.n_gpu_layers,
        "seed": llm.seed,
        "verbose": False,
    }
    threads = llm.n_threads or os.cpu_count() or 1
    kwargs["n_threads"] = kwargs["n_threads_batch"] = threads
    if preset.tensor_split:
        kwargs["tensor_split"] = list(preset.tensor_split)
    if preset.flash_attn:
        kwargs["flash_attn"] = True
    if preset.kv_cache_type:
        # ggml's type ids (q8_0 -> 8), as llama.cpp numbers them; gguf takes 0.5 s to import, only needed here
        from gguf import GGMLQuantizationType

        kwargs["type_k"] = kwargs["type_v"] = int(GGMLQuantizationType[preset.kv_cache_type.upper()])
    if preset.rope_scaling == "yarn":
        import llama_cpp  # the native library: not loaded by the HTTP backend

        kwargs["rope_scaling_type"] = llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN
        kwargs["rope_freq_scale"] = preset.rope_freq_scale
        kwargs["yarn_orig_ctx"] = preset.yarn_orig_ctx
    return kwargs


class LlamaCppChat:
    def __init__(self, model_path: Path, preset: ModelPreset, llm: LLMSettings) -> None:
        import llama_cpp  # the native library: not loaded by the HTTP backend

        self.name = f"{preset.name}:{model_path.name}"
        self.model_path = model_path
        self.preset = preset
        self._llama = llama_cpp.Llama(model_path=str(model_path), **llama_kwargs(preset, llm))
        self.n_ctx = self._llama.n_ctx()
        self._lock = FifoLock()

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        if self.preset.no_think:
            messages = with_no_think(messages)
        kwargs: dict = {
            "max_tokens": options.max_tokens,
            "temperature": options.sampling.temperature,
            "top_p": options.sampling.top_p,
            "top_k": options.sampling.top_k,
            "repeat_penalty": options.sampling.repeat_penalty,
        }
        if options.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": options.json_schema}
        with self._lock.hold():
            chunks = self._llama.create_chat_completion(messages=messages, stream=True, **kwargs)
            try:
                yield from strip_thinking(_deltas(chunks, options))
            finally:
                chunks.close()


def _deltas(chunks, options: GenerationOptions) -> Iterator[str]:
    for chunk in chunks:
        if options.cancel is not None and options.cancel.is_set():
            return
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            yield piece
