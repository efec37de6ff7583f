"""Read what a GGUF file says about its model, without loading a single weight.

The file is parsed by ``gguf.GGUFReader`` (llama.cpp's own Python package): header, metadata
key/value section and tensor-info table; the file is memory-mapped, so the tensor data is
never paged in.  Type ids and block sizes come from ``gguf.constants``
(``GGMLQuantizationType``, ``GGML_QUANT_SIZES``, ``LlamaFileType``).

``GGUFReader`` turns every element of a metadata array into its own numpy view; for a
150k-token vocabulary (tokens, merges, token types) that takes about 10 s and 1 GB of RAM
for the 0.5B dev model.  :class:`_MetadataReader` therefore changes two things only:
numeric arrays become one view each (same values), and string arrays longer than
``_SMALL_STRING_ARRAY`` keep only their length (the vocabulary is never needed here); it
also keeps the tensor table without building views of the weights (so a truncated file can
still be described) and checks every read against the end of the file.  Reading the dev
model's metadata takes about as long as a Python loop over its vocabulary's lengths
(~0.1-0.2 s).

``write_synthetic_gguf`` writes header-only files (``gguf.GGUFWriter``) for tests and for
planning with models that are not on the machine.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import (
    GGML_QUANT_SIZES,
    GGMLQuantizationType,
    GGUFEndian,
    GGUFReader,
    GGUFValueType,
    GGUFWriter,
    Keys,
    LlamaFileType,
)
from gguf.gguf_reader import ReaderField

from core.errors import CQAError

_SMALL_ARRAY = 4096
"""Numeric arrays up to this length are kept in ``metadata`` (per-layer head counts); longer
ones as :class:`GgufArray`."""
_SMALL_STRING_ARRAY = 64
"""String arrays up to this length are read; longer ones (the vocabulary) are skipped."""
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
    ``file_size - data_offset`` when a tensor has a type the ``gguf`` package does not know."""
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


class _PastEnd(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


class _MetadataReader(GGUFReader):
    """``GGUFReader`` for metadata and the tensor table only (see the module docstring)."""

    tensor_table: list[ReaderField]

    def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> np.ndarray:
        if offset + np.dtype(dtype).itemsize * int(count) > self.data.shape[0]:
            raise _PastEnd(offset)
        return super()._get(offset, dtype, count, override_order)

    def _get_field_parts(
        self, orig_offs: int, raw_type: int
    ) -> tuple[int, list[np.ndarray], list[int], list[GGUFValueType]]:
        if raw_type != GGUFValueType.ARRAY:
            return super()._get_field_parts(orig_offs, raw_type)
        raw_itype = self._get(orig_offs, np.uint32)
        alen = self._get(orig_offs + 4, np.uint64)
        itype, count, start = GGUFValueType(int(raw_itype[0])), int(alen[0]), orig_offs + 12
        nptype = self.gguf_scalar_to_np.get(itype)
        if nptype is not None:  # one view for the whole array (GGUFReader: one per element)
            values = self._get(start, nptype, count)
            return 12 + int(values.nbytes), [raw_itype, alen, values], [2], [GGUFValueType.ARRAY, itype]
        if itype == GGUFValueType.STRING and count > _SMALL_STRING_ARRAY:
            end = self._skip_strings(start, count)  # the vocabulary: keep its length only
            return end - orig_offs, [raw_itype, alen], [], [GGUFValueType.ARRAY, itype]
        return super()._get_field_parts(orig_offs, raw_type)

    def _skip_strings(self, offs: int, count: int) -> int:
        length = struct.Struct("<Q" if self.endianess == GGUFEndian.LITTLE else ">Q").unpack_from
        buf, end = memoryview(self.data), self.data.shape[0]
        for _ in range(count):
            if offs + 8 > end:
                raise _PastEnd(offs)
            offs += 8 + length(buf, offs)[0]
        if offs > end:
            raise _PastEnd(offs)
        return offs

    def _build_tensors(self, start_offs: int, fields: list[ReaderField]) -> None:
        self.tensor_table = fields  # no views of the weights: only names, shapes, types, offsets


def _tensor_nbytes(dims: list[int], ggml_type: int) -> int | None:
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        return None
    n = 1
    for d in dims:
        n *= d
    return -(-n // block) * type_size


def _type_name(ggml_type: int) -> str:
    try:
        return GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"type{ggml_type}"


def _file_type_name(file_type: int) -> str:
    try:
        return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:
        return str(file_type)


def _field_value(fld: ReaderField) -> Any:
    """A metadata field as Python values; long or nested arrays as :class:`GgufArray`."""
    if fld.types[0] != GGUFValueType.ARRAY:
        return fld.contents()
    count = int(fld.parts[4][0])  # parts: key length, key, value type, element type, count, ...
    itype = GGUFValueType(int(fld.parts[3][0]))
    if itype == GGUFValueType.ARRAY:
        return GgufArray(itype, count)
    limit = _SMALL_STRING_ARRAY if itype == GGUFValueType.STRING else _SMALL_ARRAY
    return fld.contents() if count <= limit else GgufArray(itype, count)


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


def _open(path: Path) -> _MetadataReader:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise GgufError(f"{path}: is a directory, not a GGUF file")
        if size < 24:
            raise GgufError(f"{path}: not a GGUF file (only {size} bytes)")
        return _MetadataReader(path)
    except _PastEnd as exc:
        raise GgufError(
            f"{path}: corrupt or truncated GGUF (a read at byte {exc.offset} runs past the end of the file)"
        ) from None
    except FileNotFoundError:
        raise GgufError(f"{path}: no such file") from None
    except OSError as exc:
        raise GgufError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, UnicodeDecodeError, OverflowError) as exc:
        # gguf's own messages: "GGUF magic invalid", "... version 1 which we cannot handle",
        # "Duplicate ...", "Invalid alignment ...", an unknown value type.
        raise GgufError(f"{path}: not a GGUF llama.cpp can read ({exc})") from None


def read_gguf_info(path: str | Path) -> GgufInfo:
    """Parse the header, metadata and tensor infos of ``path`` (never the weights)."""
    path = Path(path)
    reader = _open(path)
    file_size = int(reader.data.shape[0])
    fields = reader.fields
    version = int(fields["GGUF.version"].contents())
    tensor_count = int(fields["GGUF.tensor_count"].contents())
    kv_count = int(fields["GGUF.kv_count"].contents())
    metadata: dict[str, Any] = {}
    has_chat_template = False
    for key, fld in fields.items():
        if key.startswith("GGUF."):
            continue
        if key == Keys.Tokenizer.CHAT_TEMPLATE and fld.types == [GGUFValueType.STRING]:
            has_chat_template = True
            continue
        metadata[key] = _field_value(fld)

    layer_bytes: dict[int, int] = {}
    input_bytes = output_bytes = 0
    tensor_types: dict[str, int] = {}
    computed_total = 0
    all_known = True
    data_end = 0
    for ti in reader.tensor_table:
        _, _, _, dims, raw_type, raw_offset = ti.parts
        ggml_type = int(raw_type[0])
        type_name = _type_name(ggml_type)
        tensor_types[type_name] = tensor_types.get(type_name, 0) + 1
        nbytes = _tensor_nbytes([int(d) for d in dims], ggml_type)
        if nbytes is None:
            all_known = False
            continue
        computed_total += nbytes
        data_end = max(data_end, int(raw_offset[0]) + nbytes)
        match = _LAYER_RE.match(ti.name)
        if match:
            il = int(match.group(1))
            layer_bytes[il] = layer_bytes.get(il, 0) + nbytes
        elif ti.name.startswith("token_embd"):
            input_bytes += nbytes
        else:
            output_bytes += nbytes

    data_offset = int(reader.data_offset)
    arch = metadata.get(Keys.General.ARCHITECTURE)
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

    tokens = metadata.get(Keys.Tokenizer.LIST)
    if isinstance(tokens, GgufArray):
        vocab_size: int | None = tokens.count
    elif isinstance(tokens, list):
        vocab_size = len(tokens)
    else:
        vocab_size = _as_int(arch_key("vocab_size"))

    scaling_type = arch_key("rope.scaling.type")
    file_type = _as_int(metadata.get(Keys.General.FILE_TYPE))
    if tensor_count and all_known:
        weights_bytes = computed_total
        layers = tuple(layer_bytes.pop(i, 0) for i in range(block_count))
        output_bytes += sum(layer_bytes.values())  # extra blocks (e.g. MTP heads)
    else:
        weights_bytes = max(file_size - data_offset, 0)
        layers = ()
        input_bytes = output_bytes = 0
    name = metadata.get(Keys.General.NAME)
    return GgufInfo(
        path=str(path),
        version=version,
        tensor_count=tensor_count,
        kv_count=kv_count,
        architecture=arch,
        name=name if isinstance(name, str) else None,
        file_type=_file_type_name(file_type) if file_type is not None else None,
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


def _value_type(value: Any) -> GGUFValueType:
    """The GGUF type llama.cpp's converters use for a Python value (counts are UINT32)."""
    if isinstance(value, bool):
        return GGUFValueType.BOOL
    if isinstance(value, int):
        if 0 <= value < 2**32:
            return GGUFValueType.UINT32
        if -(2**31) <= value < 0:
            return GGUFValueType.INT32
        return GGUFValueType.UINT64 if value >= 0 else GGUFValueType.INT64
    if isinstance(value, float):
        return GGUFValueType.FLOAT32
    if isinstance(value, str):
        return GGUFValueType.STRING
    if isinstance(value, (list, tuple)):
        return GGUFValueType.ARRAY
    raise TypeError(f"cannot store {type(value).__name__} in GGUF metadata")


def _element_type(items: list[Any]) -> GGUFValueType:
    types = {_value_type(v) for v in items}
    if types == {GGUFValueType.UINT32, GGUFValueType.INT32}:
        types = {GGUFValueType.INT32}
    if len(types) != 1:
        raise TypeError("GGUF arrays must hold values of one type")
    return types.pop()


def write_synthetic_gguf(path: str | Path, metadata: dict[str, Any]) -> Path:
    """Write a valid little-endian GGUF v3 file with ``metadata`` and no tensors.

    Python types map to GGUF types as: bool -> BOOL, int -> UINT32 (INT32 if negative,
    64-bit if it does not fit), float -> FLOAT32, str -> STRING, list -> ARRAY (not empty).
    Such a file carries a model's shape (layers, heads, context) but no weights, so its
    ``weights_bytes`` is 0: pass the real size to ``llm.capacity.estimate_vram`` /
    ``check_model`` as ``weights_bytes`` to plan for a model that is not on this machine.
    """
    path = Path(path)
    arch = metadata.get(Keys.General.ARCHITECTURE, "")
    writer = GGUFWriter(path, arch=arch if isinstance(arch, str) else "")
    for key, value in metadata.items():
        if key == Keys.General.ARCHITECTURE and value == writer.arch:
            continue
        vtype = _value_type(value)
        if vtype == GGUFValueType.ARRAY:
            items = list(value)
            if not items:
                raise TypeError(f"GGUF arrays cannot be empty ({key!r})")
            writer.add_key_value(key, items, vtype, sub_type=_element_type(items))
        else:
            writer.add_key_value(key, value, vtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path
