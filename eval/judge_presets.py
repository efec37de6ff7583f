"""Judge names and the LLM presets they load (importable without RAGAS)."""

from __future__ import annotations

from llm.presets import Sampling, get_preset

JUDGE_PRESETS = {
    "dev": "dev-qwen2.5-0.5b",
    "judge-1.5b": "judge-1.5b",
    "production": "qwen3-32b-2x4090-128k",
}
"""Judge names -> LLM presets. ``dev`` is for plumbing only: its scores mean nothing."""


def judge_llm_preset(name: str) -> str:
    """``dev`` / ``judge-1.5b`` / ``production`` or any LLM preset name -> the LLM preset."""
    preset = JUDGE_PRESETS.get(name, name)
    try:
        get_preset(preset)
    except KeyError:
        known = ", ".join(JUDGE_PRESETS)
        raise ValueError(f"unknown judge {name!r} (judges: {known}; or an LLM preset name)") from None
    return preset


def is_meaningful(name: str) -> bool:
    """False for the dev judge (a 0.5B model cannot judge; it only exercises the plumbing)."""
    return judge_llm_preset(name) != JUDGE_PRESETS["dev"]


def judge_sampling(preset_name: str) -> Sampling:
    """Greedy decoding: the same inputs give the same verdicts."""
    return Sampling(temperature=0.0, top_p=1.0, top_k=1, repeat_penalty=get_preset(preset_name).sampling.repeat_penalty)
