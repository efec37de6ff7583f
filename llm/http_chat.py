"""OpenAI-compatible HTTP backend: llama-cpp-python's server or llama.cpp's own server, usually several of
them behind a balancer (deploy/haproxy.cfg).

A request that fails before its first word is sent once more: through the balancer that is a new request,
which goes to another server (the balancer has marked the failed one down, or redispatches on the refused
connection). One that breaks off in the middle of an answer is not repeated (the person has read half of
it): it raises ``GenerationFailed``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import openai

from core.errors import GenerationFailed
from llm.chat import GenerationOptions, Message, strip_thinking, with_no_think
from llm.presets import ModelPreset
from settings.model import LLMSettings

log = logging.getLogger(__name__)

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
            max_retries=0,  # the one retry is ours: only before the first word
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
        request = dict(
            model=self._model,
            messages=messages,
            stream=True,
            max_tokens=options.max_tokens,
            temperature=options.sampling.temperature,
            top_p=options.sampling.top_p,
            extra_body=extra,
            **kwargs,
        )
        for attempt in (1, 2):
            shown = False
            try:
                response = self._client.chat.completions.create(**request)
                try:
                    for piece in strip_thinking(self._deltas(response, options)):
                        shown = True
                        yield piece
                    return
                finally:
                    response.close()
            except (httpx.HTTPError, openai.APIError, _StreamCut) as exc:
                if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
                    raise  # the request itself is wrong (too long, bad key): another server says the same
                if shown:
                    log.warning("answer broke off at %s: %s", self.name, exc)
                    raise GenerationFailed(
                        f"the language model server stopped in the middle of the answer ({exc})",
                        key="llm_broke_off",
                    ) from exc
                if attempt == 2:
                    log.warning("no answer from %s after a retry: %s", self.name, exc)
                    raise GenerationFailed(
                        f"the language model server did not answer, twice ({exc})", key="llm_unreachable"
                    ) from exc
                log.info("retrying once, the request failed before its first word: %s", exc)

    @staticmethod
    def _deltas(response, options: GenerationOptions) -> Iterator[str]:
        """The text pieces; a stream that ends without a finish reason was cut (server gone, or interrupted)."""
        for chunk in response:
            if options.cancel is not None and options.cancel.is_set():
                return
            if not chunk.choices:
                continue
            if chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
            if chunk.choices[0].finish_reason is not None:
                return
        raise _StreamCut("the stream ended without a finish reason")


class _StreamCut(Exception):
    """The server's stream ended before the answer did."""
