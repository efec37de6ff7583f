"""Picks and builds the configured chat-model backend; the services see only ``llm.chat``'s interface."""

from __future__ import annotations

from pathlib import Path

from core.errors import ModelUnavailable
from llm.chat import ChatModel
from llm.http_chat import HttpChat
from llm.llamacpp_chat import LlamaCppChat
from llm.model_files import assemble_packaged
from llm.presets import ModelPreset, Sampling, get_preset
from settings import Settings


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
    if settings.llm.model_path:
        return Path(settings.llm.model_path)
    if preset.packaged is None:
        raise ModelUnavailable(f"preset {preset.name!r} has no packaged model: set CQA_LLM__MODEL_PATH to its GGUF")
    return assemble_packaged(preset.packaged, settings.model_dir)


def build_chat_model(settings: Settings, preset_name: str | None = None) -> ChatModel:
    """The configured backend: in-process llama.cpp or an OpenAI-compatible server."""
    preset = get_preset(preset_name or settings.llm.preset)
    match settings.llm.backend:
        case "llamacpp":
            return LlamaCppChat(resolve_model_path(settings, preset), preset, settings.llm)
        case "http":
            return HttpChat(settings.llm, preset)
    raise ValueError(f"unknown LLM backend {settings.llm.backend!r}")
