"""OpenAI-compatible HTTP backend: llama-cpp-python's server or llama.cpp's own server."""

from __future__ import annotations

from collections.abc import Iterator

from llm.chat import GenerationOptions, Message, strip_thinking, with_no_think
from llm.presets import ModelPreset
from settings.model import LLMSettings

_CHARS_PER_TOKEN = 1.6
"""Conservative estimate when no local tokenizer is at hand (Japanese ~1-2 chars/token)."""


class HttpChat:
    def __init__(self, llm: LLMSettings, preset: ModelPreset) -> None:
        from openai import OpenAI

        self.name = f"{preset.name}@{llm.http_url}"
        self.preset = preset
        self.n_ctx = llm.n_ctx or preset.n_ctx
        self._model = llm.http_model
        self._client = OpenAI(
            base_url=llm.http_url,
            api_key=llm.http_api_key.get_secret_value() or "not-needed",
            max_retries=1,
            timeout=600,
        )
        self._tokenizer = None
        if llm.model_path:
            import llama_cpp

            self._tokenizer = llama_cpp.Llama(model_path=str(llm.model_path), vocab_only=True, verbose=False)

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer.tokenize(text.encode("utf-8"), add_bos=False))
        return int(len(text) / _CHARS_PER_TOKEN) + 1

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        if self.preset.no_think:
            messages = with_no_think(messages)
        extra: dict = {"top_k": options.sampling.top_k, "repeat_penalty": options.sampling.repeat_penalty}
        kwargs: dict = {}
        if options.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": options.json_schema}
        response = self._client.chat.completions.create(
            model=self._model,
            messages=messages,
            stream=True,
            max_tokens=options.max_tokens,
            temperature=options.sampling.temperature,
            top_p=options.sampling.top_p,
            extra_body=extra,
            **kwargs,
        )
        try:
            yield from strip_thinking(self._deltas(response, options))
        finally:
            response.close()

    @staticmethod
    def _deltas(response, options: GenerationOptions) -> Iterator[str]:
        for chunk in response:
            if options.cancel is not None and options.cancel.is_set():
                return
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
