"""Read what a GGUF file says about its model, without loading a single weight.

Only the header, the metadata key/value section and the tensor-info table are parsed
(the file is memory-mapped, so the tensor data is never paged in).  The format is the
one llama.cpp documents in ``docs/gguf.md`` (versions 2 and 3, little- or big-endian):

    magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
    kv_count x  (string key, u32 value_type, value)
    tensor_count x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset)
    padding to ``general.alignment`` (default 32), then the tensor data

where a string is ``u64 length`` + UTF-8 bytes and an array value is
``u32 element_type, u64 count`` + elements.  Big arrays (the tokenizer's vocabulary and
merges) are skipped, only their length is kept.

The ``gguf`` package from llama.cpp is not a dependency of this product (llama-cpp-python
does not ship it), hence this small reader.  ``write_synthetic_gguf`` writes header-only
files for tests and for planning with models that are not on the machine.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import CQAError

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 8, 9, 10, 11, 12

_SCALAR_FORMATS: dict[int, str] = {
    T_UINT8: "B",
    T_INT8: "b",
    T_UINT16: "H",
    T_INT16: "h",
    T_UINT32: "I",
    T_INT32: "i",
    T_FLOAT32: "f",
    T_BOOL: "?",
    T_UINT64: "Q",
    T_INT64: "q",
    T_FLOAT64: "d",
}

# ggml tensor types: id -> (name, elements per block, bytes per block).
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}

# ``general.file_type`` (llama_ftype) -> name, for display only.
# fmt: off
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
    38: "MXFP4_MOE",
}
# fmt: on

_SMALL_ARRAY = 4096
"""Numeric arrays up to this length are read (per-layer head counts); longer ones skipped."""
_SMALL_STRING_ARRAY = 64
_MAX_KEY_LEN = 65_536
_MAX_DIMS = 8
_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


class GgufError(CQAError):
    """The file is not a GGUF we can read (wrong magic, unsupported version, corrupt)."""


@dataclass(frozen=True)
class GgufArray:
    """A metadata array that was skipped rather than read: its element type and length."""

    element_type: int
    count: int


@dataclass(frozen=True)
class GgufInfo:
    path: str
    version: int
    tensor_count: int
    kv_count: int
    architecture: str
    name: str | None
    file_type: str | None
    """Quantization mix from ``general.file_type`` (``Q4_K_M``...), if recorded."""
    block_count: int
    """Number of transformer layers."""
    context_length: int
    """Context length the model was trained with (``<arch>.context_length``)."""
    embedding_length: int
    feed_forward_length: int | None
    head_count: int
    head_count_kv: int
    key_length: int
    """Head size of K (``<arch>.attention.key_length``, else embedding_length / head_count)."""
    value_length: int
    vocab_size: int | None
    rope_freq_base: float | None
    rope_scaling_type: str | None
    rope_scaling_factor: float | None
    rope_scaling_orig_ctx: int | None
    has_chat_template: bool
    file_size: int
    data_offset: int
    """Byte offset where tensor data starts (header + metadata + tensor infos + padding)."""
    weights_bytes: int
    """Sum of the tensors' sizes computed from their shapes and ggml types; falls back to
    ``file_size - data_offset`` when a tensor has a type this reader does not know."""
    layer_bytes: tuple[int, ...] = ()
    """Bytes of each ``blk.N.*`` layer (empty when not computable, e.g. synthetic files)."""
    input_bytes: int = 0
    """``token_embd.*``: llama.cpp always keeps the input embedding on the CPU."""
    output_bytes: int = 0
    """``output.*``, ``output_norm.*`` and other non-layer tensors (placed with the output)."""
    tensor_types: dict[str, int] = field(default_factory=dict)
    """ggml type name -> number of tensors of that type."""
    truncated: bool = False
    """Tensor data extends past the end of the file (incomplete download or assembly)."""
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    """All metadata; long arrays as :class:`GgufArray`, the chat template text omitted."""

    @property
    def head_dim(self) -> int:
        return self.key_length

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly fields (no raw metadata)."""
        keys = (
            "path",
            "version",
            "architecture",
            "name",
            "file_type",
            "block_count",
            "context_length",
            "embedding_length",
            "feed_forward_length",
            "head_count",
            "head_count_kv",
            "key_length",
            "value_length",
            "vocab_size",
            "rope_freq_base",
            "rope_scaling_type",
            "rope_scaling_factor",
            "rope_scaling_orig_ctx",
            "has_chat_template",
            "file_size",
            "data_offset",
            "weights_bytes",
            "input_bytes",
            "output_bytes",
            "tensor_count",
            "tensor_types",
            "truncated",
        )
        return {k: getattr(self, k) for k in keys}


class _Cursor:
    """Bounds-checked sequential reads over a memory-mapped buffer."""

    def __init__(self, buf: mmap.mmap | bytes, endian: str, path: Path) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0
        self.endian = endian
        self.path = path

    def _need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise GgufError(
                f"{self.path}: corrupt or truncated GGUF ({what} at byte {self.pos} runs past "
                f"the end of the file)"
            )

    def unpack(self, fmt: str, what: str) -> Any:
        size = struct.calcsize(self.endian + fmt)
        self._need(size, what)
        value = struct.unpack_from(self.endian + fmt, self.buf, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else value

    def u32(self, what: str) -> int:
        return self.unpack("I", what)

    def u64(self, what: str) -> int:
        return self.unpack("Q", what)

    def string(self, what: str, max_len: int | None = None) -> str:
        n = self.u64(f"{what} length")
        if max_len is not None and n > max_len:
            raise GgufError(f"{self.path}: corrupt GGUF ({what} claims {n} bytes)")
        self._need(n, what)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self, what: str) -> None:
        n = self.u64(f"{what} length")
        self._need(n, what)
        self.pos += n

    def value(self, vtype: int, key: str, depth: int = 0) -> Any:
        if vtype in _SCALAR_FORMATS:
            return self.unpack(_SCALAR_FORMATS[vtype], key)
        if vtype == T_STRING:
            return self.string(key)
        if vtype == T_ARRAY:
            if depth > 4:
                raise GgufError(f"{self.path}: corrupt GGUF (arrays nested too deep at {key!r})")
            etype = self.u32(f"{key} element type")
            count = self.u64(f"{key} count")
            return self._array(etype, count, key, depth)
        raise GgufError(f"{self.path}: corrupt GGUF (unknown value type {vtype} for {key!r})")

    def _array(self, etype: int, count: int, key: str, depth: int) -> Any:
        if etype in _SCALAR_FORMATS:
            fmt = _SCALAR_FORMATS[etype]
            size = struct.calcsize(fmt)
            self._need(count * size, f"{key} array")
            if count <= _SMALL_ARRAY:
                values = struct.unpack_from(f"{self.endian}{count}{fmt}", self.buf, self.pos)
                self.pos += count * size
                return list(values)
            self.pos += count * size
            return GgufArray(etype, count)
        if etype == T_STRING:
            if count <= _SMALL_STRING_ARRAY:
                return [self.string(key) for _ in range(count)]
            # Each u64 length needs at least 8 bytes: reject absurd counts before looping.
            self._need(count * 8, f"{key} array")
            for _ in range(count):
                self.skip_string(key)
            return GgufArray(etype, count)
        if etype == T_ARRAY:
            self._need(count * 12, f"{key} array")
            for _ in range(count):
                self.value(T_ARRAY, key, depth + 1)
            return GgufArray(etype, count)
        raise GgufError(f"{self.path}: corrupt GGUF (unknown array type {etype} for {key!r})")


def _tensor_nbytes(dims: tuple[int, ...], ggml_type: int) -> int | None:
    spec = GGML_TYPES.get(ggml_type)
    if spec is None:
        return None
    _, block, type_size = spec
    n = 1
    for d in dims:
        n *= d
    return -(-n // block) * type_size


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return max(value)  # per-layer values (e.g. head_count_kv): the largest one
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def read_gguf_info(path: str | Path) -> GgufInfo:
    """Parse the header, metadata and tensor infos of ``path`` (never the weights)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            if size < 24:
                raise GgufError(f"{path}: not a GGUF file (only {size} bytes)")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf, path, size)
    except GgufError:
        raise
    except IsADirectoryError:
        raise GgufError(f"{path}: is a directory, not a GGUF file") from None
    except FileNotFoundError:
        raise GgufError(f"{path}: no such file") from None
    except OSError as exc:
        raise GgufError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _parse(buf: mmap.mmap, path: Path, file_size: int) -> GgufInfo:
    if buf[:4] != GGUF_MAGIC:
        raise GgufError(f"{path}: not a GGUF file (magic {bytes(buf[:4])!r}, expected b'GGUF')")
    (version_le,) = struct.unpack_from("<I", buf, 4)
    (version_be,) = struct.unpack_from(">I", buf, 4)
    if version_le in (2, 3):
        endian, version = "<", version_le
    elif version_be in (2, 3):
        endian, version = ">", version_be
    elif version_le == 1:
        raise GgufError(f"{path}: GGUF version 1 is obsolete; re-convert the model")
    else:
        raise GgufError(f"{path}: unsupported GGUF version {version_le}")

    cur = _Cursor(buf, endian, path)
    cur.pos = 8
    tensor_count = cur.u64("tensor count")
    kv_count = cur.u64("metadata count")
    # Every KV needs >= 13 bytes and every tensor info >= 24: cheap sanity before looping.
    if kv_count * 13 + tensor_count * 24 > file_size:
        raise GgufError(
            f"{path}: corrupt GGUF header ({kv_count} metadata keys, {tensor_count} tensors "
            f"in a {file_size}-byte file)"
        )

    metadata: dict[str, Any] = {}
    has_chat_template = False
    for _ in range(kv_count):
        key = cur.string("metadata key", max_len=_MAX_KEY_LEN)
        vtype = cur.u32(f"type of {key!r}")
        if key == "tokenizer.chat_template" and vtype == T_STRING:
            cur.skip_string(key)
            has_chat_template = True
            continue
        metadata[key] = cur.value(vtype, key)

    alignment = _as_int(metadata.get("general.alignment")) or DEFAULT_ALIGNMENT
    if alignment <= 0 or alignment & (alignment - 1):
        raise GgufError(f"{path}: corrupt GGUF (general.alignment {alignment})")

    layer_bytes: dict[int, int] = {}
    input_bytes = output_bytes = 0
    tensor_types: dict[str, int] = {}
    computed_total = 0
    all_known = True
    data_end = 0
    for i in range(tensor_count):
        name = cur.string(f"name of tensor {i}", max_len=_MAX_KEY_LEN)
        n_dims = cur.u32(f"dims of {name!r}")
        if n_dims > _MAX_DIMS:
            raise GgufError(f"{path}: corrupt GGUF (tensor {name!r} has {n_dims} dimensions)")
        dims = tuple(cur.u64(f"shape of {name!r}") for _ in range(n_dims))
        ggml_type = cur.u32(f"type of {name!r}")
        offset = cur.u64(f"offset of {name!r}")
        type_name = GGML_TYPES.get(ggml_type, (f"type{ggml_type}",))[0]
        tensor_types[type_name] = tensor_types.get(type_name, 0) + 1
        nbytes = _tensor_nbytes(dims, ggml_type)
        if nbytes is None:
            all_known = False
            continue
        computed_total += nbytes
        data_end = max(data_end, offset + nbytes)
        match = _LAYER_RE.match(name)
        if match:
            il = int(match.group(1))
            layer_bytes[il] = layer_bytes.get(il, 0) + nbytes
        elif name.startswith("token_embd"):
            input_bytes += nbytes
        else:
            output_bytes += nbytes

    data_offset = -(-cur.pos // alignment) * alignment
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise GgufError(f"{path}: GGUF has no general.architecture; not a llama.cpp model")

    def arch_key(suffix: str) -> Any:
        return metadata.get(f"{arch}.{suffix}")

    def required_int(suffix: str) -> int:
        value = _as_int(arch_key(suffix))
        if value is None or value <= 0:
            raise GgufError(f"{path}: GGUF lacks {arch}.{suffix}; not a model llama.cpp can run")
        return value

    block_count = required_int("block_count")
    embedding_length = required_int("embedding_length")
    head_count = required_int("attention.head_count")
    head_count_kv = _as_int(arch_key("attention.head_count_kv")) or head_count
    key_length = _as_int(arch_key("attention.key_length")) or embedding_length // head_count
    value_length = _as_int(arch_key("attention.value_length")) or key_length

    tokens = metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, GgufArray):
        vocab_size: int | None = tokens.count
    elif isinstance(tokens, list):
        vocab_size = len(tokens)
    else:
        vocab_size = _as_int(arch_key("vocab_size"))

    scaling_type = arch_key("rope.scaling.type")
    file_type = _as_int(metadata.get("general.file_type"))
    if tensor_count and all_known:
        weights_bytes = computed_total
        layers = tuple(layer_bytes.pop(i, 0) for i in range(block_count))
        output_bytes += sum(layer_bytes.values())  # extra blocks (e.g. MTP heads)
    else:
        weights_bytes = max(file_size - data_offset, 0)
        layers = ()
        input_bytes = output_bytes = 0
    name = metadata.get("general.name")
    return GgufInfo(
        path=str(path),
        version=version,
        tensor_count=tensor_count,
        kv_count=kv_count,
        architecture=arch,
        name=name if isinstance(name, str) else None,
        file_type=FILE_TYPES.get(file_type, str(file_type)) if file_type is not None else None,
        block_count=block_count,
        context_length=_as_int(arch_key("context_length")) or 0,
        embedding_length=embedding_length,
        feed_forward_length=_as_int(arch_key("feed_forward_length")),
        head_count=head_count,
        head_count_kv=head_count_kv,
        key_length=key_length,
        value_length=value_length,
        vocab_size=vocab_size,
        rope_freq_base=_as_float(arch_key("rope.freq_base")),
        rope_scaling_type=scaling_type if isinstance(scaling_type, str) else None,
        rope_scaling_factor=_as_float(arch_key("rope.scaling.factor")),
        rope_scaling_orig_ctx=_as_int(arch_key("rope.scaling.original_context_length")),
        has_chat_template=has_chat_template,
        file_size=file_size,
        data_offset=data_offset,
        weights_bytes=weights_bytes,
        layer_bytes=layers,
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        tensor_types=tensor_types,
        truncated=tensor_count > 0 and all_known and data_offset + data_end > file_size,
        metadata=metadata,
    )


# --- writing (tests and planning) ------------------------------------------------------


def _encode_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _value_type(value: Any) -> int:
    if isinstance(value, bool):
        return T_BOOL
    if isinstance(value, int):
        if 0 <= value < 2**32:
            return T_UINT32
        if -(2**31) <= value < 0:
            return T_INT32
        return T_UINT64 if value >= 0 else T_INT64
    if isinstance(value, float):
        return T_FLOAT32
    if isinstance(value, str):
        return T_STRING
    if isinstance(value, (list, tuple)):
        return T_ARRAY
    raise TypeError(f"cannot store {type(value).__name__} in GGUF metadata")


def _encode_value(vtype: int, value: Any) -> bytes:
    if vtype in _SCALAR_FORMATS:
        return struct.pack("<" + _SCALAR_FORMATS[vtype], value)
    if vtype == T_STRING:
        return _encode_string(value)
    items = list(value)
    etypes = {_value_type(v) for v in items} or {T_INT32}
    if etypes == {T_UINT32, T_INT32}:
        etypes = {T_INT32}
    if len(etypes) != 1:
        raise TypeError("GGUF arrays must hold values of one type")
    etype = etypes.pop()
    body = b"".join(_encode_value(etype, v) for v in items)
    return struct.pack("<IQ", etype, len(items)) + body


def write_synthetic_gguf(path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write a valid little-endian GGUF v3 file with ``metadata`` and no tensors.

    Python types map to GGUF types as: bool -> BOOL, int -> UINT32 (INT32 if negative,
    64-bit if it does not fit), float -> FLOAT32, str -> STRING, list -> ARRAY.  Such a file
    carries a model's shape (layers, heads, context) but no weights, so its
    ``weights_bytes`` is 0: pass the real size to ``llm.capacity.estimate_vram`` /
    ``check_model`` as ``weights_bytes`` to plan for a model that is not on this machine.
    """
    path = Path(path)
    out = bytearray(GGUF_MAGIC)
    out += struct.pack("<IQQ", 3, 0, len(metadata))
    for key, value in metadata.items():
        vtype = _value_type(value)
        out += _encode_string(key) + struct.pack("<I", vtype) + _encode_value(vtype, value)
    out += b"\0" * (-len(out) % DEFAULT_ALIGNMENT)
    path.write_bytes(bytes(out))
    return path
