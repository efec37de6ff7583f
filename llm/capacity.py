"""Will this GGUF, loaded the way a preset says, fit in GPU memory (or RAM)?

``estimate_vram`` models what llama.cpp allocates when it loads a model:

* **Weights** - placed layer by layer the way llama.cpp does it: with ``n_gpu_layers``
  covering all ``n_layer + 1`` slots, layer ``il`` goes to the first GPU whose cumulative
  ``tensor_split`` share exceeds ``il / (n_layer + 1)``; the output head (``output.weight``,
  the last slot) goes with it.  So a 64-layer model on ``(0.5, 0.5)`` gets 33 layers on
  GPU 0 and 31 layers plus the output head on GPU 1.  The input embedding
  (``token_embd``) always stays in host RAM.  When the GGUF has no tensor table (a
  synthetic header) or ``weights_bytes`` overrides its size, the weights are spread
  evenly over the layers.
* **KV cache** - ``n_layer x kv_ctx x n_kv_heads x (key_length + value_length) x bytes per
  element``, on the GPU of each layer; ``kv_ctx`` is ``n_ctx`` rounded up to 256 (llama.cpp
  pads the cache).  Bytes per element: f32 4, f16/bf16 2, q8_0 34/32, q5_1 24/32,
  q5_0 22/32, q4_1 20/32, q4_0 and iq4_nl 18/32.
* **Compute buffers** (per device; ``n_ub`` = micro-batch, 512 in llama-cpp-python) -
  activations ``4 B x n_ub x (3 n_ff + 4 n_embd)`` plus the larger of the attention phase
  and the output phase (llama.cpp's graph allocator reuses memory between them): attention
  = KQ mask ``n_ub x kv_ctx x 2 B`` with flash attention, or mask ``x 4 B`` plus the full
  score matrix ``n_ub x kv_ctx x n_heads x 4 B`` without it (which is why long contexts
  need flash attention); output = logits ``n_ub x n_vocab x 4 B`` on the device holding
  the output head.  On a GPU with flash attention over a quantized cache add one layer's
  K and V converted to f16 (``2 x kv_ctx x n_kv_heads x head_dim x 2 B``, CUDA pool).
  For the dev model on CPU this gives 334 MiB where llama.cpp reports 302 MiB.
* **Runtime overhead** - 0.5 GiB per GPU (CUDA context, cuBLAS workspace, memory pools),
  0.25 GiB for a CPU-only process.
* **Margin** - 1 GiB per device by default (fragmentation, driver reservation, other
  processes such as a display server).

A device fits when ``weights + KV + compute + runtime + margin <= capacity``.  For GPU
presets the capacity is ``preset.gpu_vram_gib`` per GPU; for CPU presets (``gpus == 0`` or
``n_gpu_layers == 0``) the estimate is host RAM (the weights are memory-mapped and count in
full) against this machine's physical memory.  The estimate is deliberately a little
conservative; llama.cpp's own log lines (``CUDA0 model buffer size``, ``KV self size``,
``CUDA0 compute buffer size``) are the ground truth for a real load.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from core.cli import EXIT_USAGE, ArgumentParser, UsageError, exit_code
from llm.gguf_info import GgufInfo, read_gguf_info
from llm.presets import ModelPreset, get_preset

GIB = 1024**3
GB = 1000**3

KV_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl")
"""The cache types llama.cpp accepts for K and V (``type_k`` / ``type_v``)."""


def _bytes_per_element(kind: str) -> float:
    elements_per_block, bytes_per_block = GGML_QUANT_SIZES[GGMLQuantizationType[kind.upper()]]
    return bytes_per_block / elements_per_block


KV_BYTES_PER_ELEMENT: dict[str, float] = {kind: _bytes_per_element(kind) for kind in KV_CACHE_TYPES}
_UNQUANTIZED_KV = {"f32", "f16", "bf16"}

DEFAULT_N_UBATCH = 512
KV_PAD = 256
GPU_RUNTIME_BYTES = 0.5 * GIB
CPU_RUNTIME_BYTES = 0.25 * GIB
DEFAULT_MARGIN_GIB = 1.0

@dataclass(frozen=True)
class DeviceBudget:
    """Memory one device (a GPU, or host RAM for CPU presets) needs, in bytes."""

    device: str
    layers: int
    has_output: bool
    weights_bytes: float
    kv_bytes: float
    compute_bytes: float
    runtime_bytes: float
    margin_bytes: float
    capacity_bytes: float

    @property
    def needed_bytes(self) -> float:
        """Everything except the margin."""
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.runtime_bytes

    @property
    def fits(self) -> bool:
        return self.needed_bytes + self.margin_bytes <= self.capacity_bytes

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["needed_bytes"] = self.needed_bytes
        data["fits"] = self.fits
        return data


@dataclass(frozen=True)
class VramEstimate:
    mode: str
    """``gpu`` (per-GPU budgets) or ``cpu`` (one host-RAM budget)."""
    n_ctx: int
    kv_ctx: int
    kv_cache_type: str
    flash_attn: bool
    n_ubatch: int
    weights_bytes: float
    kv_bytes: float
    compute_bytes: float
    """Sum of all devices' compute buffers."""
    devices: tuple[DeviceBudget, ...]
    host_bytes: float
    """Host RAM besides the process itself: for GPU presets the input embedding plus any
    layers (and their KV) left on the CPU; for CPU presets the whole budget."""

    @property
    def fits(self) -> bool:
        return all(d.fits for d in self.devices)

    @property
    def worst(self) -> DeviceBudget:
        """The device with the least headroom."""
        return min(self.devices, key=lambda d: d.capacity_bytes - d.needed_bytes - d.margin_bytes)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["devices"] = [d.to_dict() for d in self.devices]
        data["fits"] = self.fits
        return data


@dataclass(frozen=True)
class CheckReport:
    info: GgufInfo
    preset: ModelPreset
    estimate: VramEstimate
    problems: list[str] = field(default_factory=list)
    """Reasons to refuse this model/preset combination."""
    notes: list[str] = field(default_factory=list)
    """Informational findings that do not block loading."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        p = self.preset
        return {
            "model": self.info.summary(),
            "preset": {
                "name": p.name,
                "n_ctx": p.n_ctx,
                "n_gpu_layers": p.n_gpu_layers,
                "tensor_split": list(p.tensor_split) if p.tensor_split else None,
                "flash_attn": p.flash_attn,
                "kv_cache_type": p.kv_cache_type,
                "rope_scaling": p.rope_scaling,
                "rope_freq_scale": p.rope_freq_scale,
                "yarn_orig_ctx": p.yarn_orig_ctx,
                "gpus": p.gpus,
                "gpu_vram_gib": p.gpu_vram_gib,
            },
            "estimate": self.estimate.to_dict(),
            "problems": list(self.problems),
            "notes": list(self.notes),
            "verdict": "fits" if self.ok else "refuse",
        }


def kv_bytes_per_element(kv_cache_type: str | None) -> float:
    kind = (kv_cache_type or "f16").lower()
    try:
        return KV_BYTES_PER_ELEMENT[kind]
    except KeyError:
        known = ", ".join(KV_BYTES_PER_ELEMENT)
        raise ValueError(f"unknown KV cache type {kv_cache_type!r} (known: {known})") from None


def kv_cache_bytes(info: GgufInfo, n_ctx: int, kv_cache_type: str | None = None) -> float:
    """Whole-model KV cache size at ``n_ctx`` tokens (padded like llama.cpp pads it)."""
    kv_ctx = _pad(n_ctx)
    per_layer = kv_ctx * info.head_count_kv * (info.key_length + info.value_length)
    return info.block_count * per_layer * kv_bytes_per_element(kv_cache_type)


def _pad(n_ctx: int) -> int:
    return -(-n_ctx // KV_PAD) * KV_PAD


def _physical_ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _split_points(preset: ModelPreset, gpus: int) -> list[float]:
    split = list(preset.tensor_split or ())
    if len(split) != gpus or sum(split) <= 0:
        split = [1.0] * gpus
    total = sum(split)
    points, acc = [], 0.0
    for share in split:
        acc += share
        points.append(acc / total)
    return points


def _layer_devices(n_layer: int, n_gpu_layers: int, gpus: int, points: list[float]) -> list[int]:
    """Device of each of the ``n_layer + 1`` slots (last = output head); -1 means CPU.

    Mirrors ``llama_model::load_tensors``: the last ``n_gpu_layers`` slots are offloaded
    and spread with ``upper_bound(splits, (il - i_gpu_start) / act_gpu_layers)``.
    """
    n_gpu = n_layer + 1 if n_gpu_layers < 0 else n_gpu_layers
    i_gpu_start = max(n_layer + 1 - n_gpu, 0)
    act = min(n_gpu, n_layer + 1)
    devices = []
    for il in range(n_layer + 1):
        if gpus == 0 or il < i_gpu_start or il - i_gpu_start >= act:
            devices.append(-1)
            continue
        frac = (il - i_gpu_start) / act
        gpu = next((g for g, p in enumerate(points) if p > frac), gpus - 1)
        devices.append(gpu)
    return devices


def _compute_bytes(
    info: GgufInfo,
    kv_ctx: int,
    n_ubatch: int,
    flash_attn: bool,
    kv_type: str,
    on_gpu: bool,
    has_output: bool,
) -> float:
    """Graph buffer + CUDA pool scratch of one device (see the module docstring).

    llama.cpp's graph allocator reuses memory: the attention temporaries are dead by the
    time the logits are computed, so the graph buffer holds the larger of the two phases.
    The f16 copy of K/V for flash attention over a quantized cache comes from the CUDA
    memory pool, outside the graph buffer, so it adds.
    """
    n_embd = info.embedding_length
    n_ff = info.feed_forward_length or 4 * n_embd
    activations = 4.0 * n_ubatch * (3 * n_ff + 4 * n_embd)
    mask = n_ubatch * kv_ctx * (2 if flash_attn else 4)
    scores = 0.0 if flash_attn else 4.0 * n_ubatch * kv_ctx * info.head_count
    logits = 4.0 * n_ubatch * (info.vocab_size or 0) if has_output else 0.0
    graph = activations + max(mask + scores, logits)
    scratch = 0.0
    if flash_attn and on_gpu and kv_type not in _UNQUANTIZED_KV:
        scratch = 2.0 * kv_ctx * info.head_count_kv * max(info.key_length, info.value_length) * 2
    return graph + scratch


def estimate_vram(
    info: GgufInfo,
    preset: ModelPreset,
    n_ctx: int | None = None,
    weights_bytes: float | None = None,
    *,
    kv_cache_type: str | None = None,
    n_ubatch: int = DEFAULT_N_UBATCH,
    margin_gib: float = DEFAULT_MARGIN_GIB,
    system_ram_bytes: float | None = None,
) -> VramEstimate:
    """Estimate the memory ``preset`` needs for the model described by ``info``.

    ``n_ctx`` overrides the preset's context; ``kv_cache_type`` its KV cache type
    (``f16``, ``q8_0``, ``q4_0``...; None = the preset's, which defaults to f16).
    ``weights_bytes`` overrides the weights size read from the GGUF - use it with a
    header-only GGUF (see ``llm.gguf_info.write_synthetic_gguf``) to plan for a model that
    is not on this machine, e.g. ``weights_bytes=19.8e9`` for Qwen3-32B Q4_K_M.
    ``system_ram_bytes`` overrides the detected physical RAM (CPU presets only).
    """
    n_ctx = preset.n_ctx if n_ctx is None else n_ctx
    if n_ctx <= 0:
        raise ValueError(f"context size must be positive, got {n_ctx}")
    if n_ubatch <= 0:
        raise ValueError(f"n_ubatch must be positive, got {n_ubatch}")
    kv_type = (kv_cache_type or preset.kv_cache_type or "f16").lower()
    bpe = kv_bytes_per_element(kv_type)
    kv_ctx = _pad(n_ctx)
    n_layer = info.block_count

    # Weights per layer slot: use the GGUF's own breakdown when it has one.
    total_weights = float(info.weights_bytes if weights_bytes is None else weights_bytes)
    if info.layer_bytes and len(info.layer_bytes) == n_layer and info.weights_bytes > 0:
        scale = total_weights / info.weights_bytes
        layer_w = [b * scale for b in info.layer_bytes]
        output_w = info.output_bytes * scale
        input_w = info.input_bytes * scale
    else:
        layer_w = [total_weights / n_layer] * n_layer
        output_w = input_w = 0.0
    kv_layer = kv_ctx * info.head_count_kv * (info.key_length + info.value_length) * bpe
    kv_total = kv_layer * n_layer

    gpus = preset.gpus if preset.n_gpu_layers != 0 else 0
    margin = margin_gib * GIB
    if gpus <= 0:
        capacity = float(system_ram_bytes if system_ram_bytes is not None else _physical_ram())
        compute = _compute_bytes(info, kv_ctx, n_ubatch, preset.flash_attn, kv_type, False, True)
        ram_device = DeviceBudget(
            device="cpu",
            layers=n_layer,
            has_output=True,
            weights_bytes=total_weights,
            kv_bytes=kv_total,
            compute_bytes=compute,
            runtime_bytes=CPU_RUNTIME_BYTES,
            margin_bytes=margin,
            capacity_bytes=capacity,
        )
        return VramEstimate(
            mode="cpu",
            n_ctx=n_ctx,
            kv_ctx=kv_ctx,
            kv_cache_type=kv_type,
            flash_attn=preset.flash_attn,
            n_ubatch=n_ubatch,
            weights_bytes=total_weights,
            kv_bytes=kv_total,
            compute_bytes=compute,
            devices=(ram_device,),
            host_bytes=ram_device.needed_bytes,
        )

    slots = _layer_devices(n_layer, preset.n_gpu_layers, gpus, _split_points(preset, gpus))
    capacity = preset.gpu_vram_gib * GIB
    budgets = []
    for g in range(gpus):
        layers = [il for il in range(n_layer) if slots[il] == g]
        has_output = slots[n_layer] == g
        used = bool(layers) or has_output
        budgets.append(
            DeviceBudget(
                device=f"cuda{g}",
                layers=len(layers),
                has_output=has_output,
                weights_bytes=sum(layer_w[il] for il in layers) + (output_w if has_output else 0.0),
                kv_bytes=kv_layer * len(layers),
                compute_bytes=(
                    _compute_bytes(info, kv_ctx, n_ubatch, preset.flash_attn, kv_type, True, has_output)
                    if used
                    else 0.0
                ),
                runtime_bytes=GPU_RUNTIME_BYTES if used else 0.0,
                margin_bytes=margin,
                capacity_bytes=capacity,
            )
        )
    cpu_layers = [il for il in range(n_layer) if slots[il] == -1]
    host = input_w + sum(layer_w[il] for il in cpu_layers) + kv_layer * len(cpu_layers)
    if slots[n_layer] == -1:
        host += output_w
    return VramEstimate(
        mode="gpu",
        n_ctx=n_ctx,
        kv_ctx=kv_ctx,
        kv_cache_type=kv_type,
        flash_attn=preset.flash_attn,
        n_ubatch=n_ubatch,
        weights_bytes=total_weights,
        kv_bytes=kv_total,
        compute_bytes=sum(b.compute_bytes for b in budgets),
        devices=tuple(budgets),
        host_bytes=host,
    )


def _with_overrides(
    preset: ModelPreset, kv_cache_type: str | None, gpus: int | None, gpu_vram_gib: float | None
) -> ModelPreset:
    changes: dict[str, Any] = {}
    if kv_cache_type is not None:
        changes["kv_cache_type"] = kv_cache_type.lower()
    if gpus is not None and gpus != preset.gpus:
        if gpus < 0:
            raise ValueError(f"gpus must be >= 0, got {gpus}")
        changes["gpus"] = gpus
        split = preset.tensor_split
        if split is not None and len(split) != gpus:
            changes["tensor_split"] = tuple([1.0 / gpus] * gpus) if gpus else None
        if gpus and preset.n_gpu_layers == 0:
            changes["n_gpu_layers"] = -1
    if gpu_vram_gib is not None:
        if gpu_vram_gib <= 0:
            raise ValueError(f"GPU memory must be positive, got {gpu_vram_gib}")
        changes["gpu_vram_gib"] = gpu_vram_gib
    return dataclasses.replace(preset, **changes) if changes else preset


def check_model(
    path: str | Path,
    preset_name: str,
    n_ctx: int | None = None,
    weights_bytes: float | None = None,
    *,
    kv_cache_type: str | None = None,
    gpus: int | None = None,
    gpu_vram_gib: float | None = None,
    margin_gib: float = DEFAULT_MARGIN_GIB,
    system_ram_bytes: float | None = None,
) -> CheckReport:
    """Read ``path``'s header and check it against preset ``preset_name``.

    ``kv_cache_type``, ``gpus`` and ``gpu_vram_gib`` override the preset ("what if"
    questions: f16 cache, one GPU, a 48 GB card); ``weights_bytes`` overrides the GGUF's
    weights size (for header-only files).  Raises ``GgufError`` for an unreadable file,
    ``KeyError`` for an unknown preset and ``ValueError`` for bad overrides.
    """
    info = read_gguf_info(path)
    preset = _with_overrides(get_preset(preset_name), kv_cache_type, gpus, gpu_vram_gib)
    estimate = estimate_vram(
        info, preset, n_ctx, weights_bytes, margin_gib=margin_gib, system_ram_bytes=system_ram_bytes
    )
    given_weights = weights_bytes is not None
    context_problems, context_notes = _context_findings(info, preset, estimate.n_ctx)
    problems = [
        *_architecture_problems(info, preset),
        *context_problems,
        *_loading_problems(preset, estimate),
        *_file_problems(info, given_weights),
        *_fit_problems(estimate),
    ]
    notes = [*context_notes, *_file_notes(info, preset, estimate, given_weights)]
    return CheckReport(info=info, preset=preset, estimate=estimate, problems=problems, notes=notes)


def _architecture_problems(info: GgufInfo, preset: ModelPreset) -> list[str]:
    """The GGUF's ``general.architecture`` (its metadata) against the one the preset is for."""
    if info.architecture == preset.architecture:
        return []
    return [
        f"architecture mismatch: preset {preset.name} is for {preset.architecture} models, "
        f"this GGUF is {info.architecture}"
    ]


@dataclass(frozen=True)
class _RopeScaling:
    """How far RoPE scaling stretches the context: by the preset's settings or the GGUF's own metadata."""

    by_preset: bool
    by_gguf: bool
    factor: float | None
    base_ctx: int

    @classmethod
    def of(cls, info: GgufInfo, preset: ModelPreset) -> _RopeScaling:
        freq_scaled = preset.rope_freq_scale is not None and 0 < preset.rope_freq_scale < 1
        by_gguf = bool(info.rope_scaling_type and info.rope_scaling_type != "none")
        if freq_scaled:
            factor: float | None = 1 / preset.rope_freq_scale
        elif by_gguf and info.rope_scaling_factor:
            factor = info.rope_scaling_factor
        else:
            factor = None
        return cls(
            by_preset=bool(preset.rope_scaling and preset.rope_scaling != "none") or freq_scaled,
            by_gguf=by_gguf,
            factor=factor,
            base_ctx=preset.yarn_orig_ctx or info.rope_scaling_orig_ctx or info.context_length,
        )

    def covered(self) -> str:
        return f"{self.base_ctx} x {self.factor:g} = {int(self.base_ctx * self.factor)}" if self.factor else ""


def _context_findings(info: GgufInfo, preset: ModelPreset, n_ctx: int) -> tuple[list[str], list[str]]:
    """Problems and notes about a context past the trained one, and about the RoPE settings."""
    trained = info.context_length
    rope = _RopeScaling.of(info, preset)
    problems: list[str] = []
    notes: list[str] = []
    if trained and n_ctx > trained:
        if not (rope.by_preset or rope.by_gguf):
            problems.append(
                f"n_ctx {n_ctx} exceeds the model's trained context {trained} and neither the "
                "preset nor the GGUF configures RoPE scaling (YaRN): output past "
                f"{trained} tokens would be garbage"
            )
        elif rope.factor and rope.base_ctx and n_ctx > rope.base_ctx * rope.factor:
            problems.append(f"n_ctx {n_ctx} exceeds what RoPE scaling covers ({rope.covered()} tokens)")
        else:
            covered = f" ({rope.covered()})" if rope.factor else ""
            notes.append(
                f"n_ctx {n_ctx} is beyond the trained context {trained}; relies on "
                f"{preset.rope_scaling or info.rope_scaling_type} RoPE scaling{covered}"
            )
    if preset.yarn_orig_ctx and trained and preset.yarn_orig_ctx != trained:
        notes.append(
            f"preset sets yarn_orig_ctx {preset.yarn_orig_ctx} while the GGUF's trained context "
            f"is {trained}; informational - the preset pins the YaRN base explicitly on purpose"
        )
    if rope.by_gguf and rope.by_preset:
        notes.append(
            f"the GGUF already carries rope scaling ({info.rope_scaling_type}, factor "
            f"{info.rope_scaling_factor}); the preset's settings override it"
        )
    return problems, notes


def _loading_problems(preset: ModelPreset, estimate: VramEstimate) -> list[str]:
    """Load options llama.cpp refuses: a quantized cache without flash attention, a split for other GPUs."""
    problems = []
    if estimate.kv_cache_type not in _UNQUANTIZED_KV and not preset.flash_attn:
        problems.append(
            f"KV cache type {estimate.kv_cache_type} needs flash_attn: llama.cpp refuses a "
            "quantized V cache without flash attention"
        )
    if preset.gpus and preset.tensor_split and len(preset.tensor_split) != preset.gpus:
        problems.append(
            f"tensor_split has {len(preset.tensor_split)} entries but the preset has {preset.gpus} GPUs"
        )
    return problems


def _file_problems(info: GgufInfo, given_weights: bool) -> list[str]:
    """A file that cannot be loaded as it is: truncated, or a header without tensors and no weights size."""
    problems = []
    if info.truncated:
        problems.append(
            f"the file is truncated: its tensor data needs {info.data_offset + info.weights_bytes} "
            f"bytes, the file has {info.file_size} (incomplete download or assembly)"
        )
    if not given_weights and info.tensor_count == 0:
        problems.append(
            "the GGUF has no tensors (header only): pass the real weights size (--weights-gb) to plan with it"
        )
    return problems


def _fit_problems(estimate: VramEstimate) -> list[str]:
    what = "RAM" if estimate.mode == "cpu" else "GPU memory"
    return [
        f"does not fit: {dev.device} needs {dev.needed_bytes / GIB:.1f} GiB + "
        f"{dev.margin_bytes / GIB:.1f} GiB margin of {dev.capacity_bytes / GIB:.1f} GiB {what}"
        for dev in estimate.devices
        if not dev.fits
    ]


def _file_notes(info: GgufInfo, preset: ModelPreset, estimate: VramEstimate, given_weights: bool) -> list[str]:
    """Where the weights size came from, a missing chat template, a file other than the one the preset ships."""
    notes = []
    if given_weights or not info.layer_bytes:
        src = "given" if given_weights else "read from the file"
        how = "scaled to the GGUF's per-layer sizes" if info.layer_bytes else "spread evenly over the layers"
        notes.append(f"weights size {estimate.weights_bytes / GB:.2f} GB {src}, {how}")
    if not info.has_chat_template:
        notes.append("the GGUF has no chat template; the chat format must be configured")
    packaged = preset.packaged
    if packaged is not None and packaged.size and info.file_size != packaged.size and not given_weights:
        notes.append(
            f"file size {info.file_size} differs from the preset's packaged model "
            f"({packaged.size} bytes): a different file than the preset ships"
        )
    return notes


# --- command line -----------------------------------------------------------------------

CHECK_PROG = "python -m llm check"


def add_check_arguments(p: ArgumentParser) -> None:
    """The options of ``python -m llm check`` (also shown by ``python -m llm --help``)."""
    p.add_argument("model", help="GGUF file")
    p.add_argument("--preset", required=True, help="model preset name (llm/presets.py)")
    p.add_argument("--ctx", type=int, help="context size (default: the preset's n_ctx)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--kv-type", choices=sorted(KV_BYTES_PER_ELEMENT), help="override KV type")
    p.add_argument("--gpus", type=int, help="override the number of GPUs")
    p.add_argument("--vram-gib", type=float, help="override the memory per GPU (GiB)")
    p.add_argument(
        "--weights-gb",
        type=float,
        help="override the weights size in GB (1e9 bytes), for header-only GGUFs",
    )
    p.add_argument("--margin-gib", type=float, default=DEFAULT_MARGIN_GIB, help="headroom per device")


CHECK_DESCRIPTION = "Check that a GGUF model fits a preset's GPUs (or RAM) before loading it."
CHECK_EPILOG = "Exit status: 0 fits, 1 refused (does not fit or incompatible), 2 usage/file error."


def _gib(x: float) -> str:
    return f"{x / GIB:.2f}"


def format_report(report: CheckReport) -> str:
    info, preset, est = report.info, report.preset, report.estimate
    lines = []
    title = ", ".join(x for x in (info.name, info.file_type, f"GGUF v{info.version}") if x)
    lines.append(f"Model    {info.path}  ({title})")
    if est.mode == "gpu":
        hw = f"{preset.gpus} x {preset.gpu_vram_gib:g} GiB GPU"
    else:
        hw = "CPU"
    lines.append(
        f"Preset   {preset.name}  (n_ctx {est.n_ctx}, KV {est.kv_cache_type}, "
        f"flash-attn {'on' if est.flash_attn else 'off'}, {hw})"
    )
    lines.append("")
    kv_note = f"{est.kv_cache_type} x {est.kv_ctx} tokens"
    rows = [
        ("architecture", info.architecture),
        ("layers", str(info.block_count)),
        ("KV heads", f"{info.head_count_kv} (of {info.head_count} attention heads)"),
        (
            "head size",
            str(info.key_length)
            if info.key_length == info.value_length
            else f"K {info.key_length} / V {info.value_length}",
        ),
        ("trained context", str(info.context_length)),
        ("weights", f"{est.weights_bytes / GB:.2f} GB ({_gib(est.weights_bytes)} GiB)"),
        ("KV cache", f"{_gib(est.kv_bytes)} GiB ({kv_note})"),
        ("compute buffers", f"{_gib(est.compute_bytes)} GiB (total, n_ubatch {est.n_ubatch})"),
    ]
    if est.mode == "gpu":
        rows.append(("host RAM", f"{_gib(est.host_bytes)} GiB (input embedding, CPU layers)"))
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    header = ("device", "layers", "weights", "KV", "compute", "runtime", "margin", "total", "of", "")
    table = [header]
    for d in est.devices:
        layers = f"{d.layers}+out" if d.has_output and est.mode == "gpu" else str(d.layers)
        table.append(
            (
                d.device,
                layers,
                _gib(d.weights_bytes),
                _gib(d.kv_bytes),
                _gib(d.compute_bytes),
                _gib(d.runtime_bytes),
                _gib(d.margin_bytes),
                _gib(d.needed_bytes + d.margin_bytes),
                _gib(d.capacity_bytes),
                "ok" if d.fits else "TOO BIG",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    unit = "GiB per GPU" if est.mode == "gpu" else "GiB of host RAM"
    lines.append(f"  Memory budget ({unit}):")
    for row in table:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1])]
        cells += [row[i].rjust(widths[i]) for i in range(2, len(row) - 1)]
        cells.append(row[-1])
        lines.append("    " + "  ".join(cells).rstrip())
    if report.notes:
        lines.append("")
        lines.append("Notes:")
        lines += [f"  - {n}" for n in report.notes]
    if report.problems:
        lines.append("")
        lines.append("Problems:")
        lines += [f"  - {p}" for p in report.problems]
    lines.append("")
    if report.ok:
        lines.append(f"Verdict: FITS - worst headroom {_headroom(est)} GiB on {est.worst.device}")
    else:
        lines.append("Verdict: REFUSE - this model/preset combination must not be loaded")
    return "\n".join(lines)


def _headroom(est: VramEstimate) -> str:
    w = est.worst
    return f"{(w.capacity_bytes - w.needed_bytes - w.margin_bytes) / GIB:.1f}"


def main_check(argv: list[str]) -> int:
    """``python -m llm check MODEL.gguf --preset NAME [--ctx N] [--json] ...``.

    ``argv`` are the arguments after ``check``.  Returns 0 when the model fits the preset,
    1 when it must be refused (does not fit, or another problem such as an architecture
    mismatch or a context the model cannot handle), 2 for bad usage or an unreadable file
    (one line on stderr).
    """
    if argv and argv[0] == "check" and not Path(argv[0]).exists():
        argv = argv[1:]
    return exit_code(CHECK_PROG, _check_command, argv, failure=EXIT_USAGE)


def _check_command(argv: list[str]) -> int:
    p = ArgumentParser(prog=CHECK_PROG, description=CHECK_DESCRIPTION, epilog=CHECK_EPILOG)
    add_check_arguments(p)
    args = p.parse_args(argv)
    if args.ctx is not None and args.ctx <= 0:
        raise UsageError(f"--ctx must be positive, got {args.ctx}")
    weights = args.weights_gb * GB if args.weights_gb is not None else None
    if weights is not None and weights <= 0:
        raise UsageError("--weights-gb must be positive")
    report = check_model(
        args.model,
        args.preset,
        n_ctx=args.ctx,
        weights_bytes=weights,
        kv_cache_type=args.kv_type,
        gpus=args.gpus,
        gpu_vram_gib=args.vram_gib,
        margin_gib=args.margin_gib,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return report.exit_code
