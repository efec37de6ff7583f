"""GGUF header reading and the GPU-memory check (`python -m llm check`).

The dev model is read for real; Qwen3-32B is represented by a header-only GGUF with its
published shape (its 19.8 GB of weights are passed as ``weights_bytes``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core.errors import ModelUnavailable
from llm.capacity import GIB, check_model, estimate_vram, kv_cache_bytes, main_check
from llm.gguf_info import GgufError, read_gguf_info, write_synthetic_gguf
from llm.presets import DEV_QWEN_05B, get_preset

DEV = "dev-qwen2.5-0.5b"
PROD = "qwen3-32b-2x4090-128k"
QWEN3_32B_Q4_K_M_BYTES = 19.8e9
FALLBACK_DEV_GGUF = Path("/tmp/pk/qwen05.gguf")

QWEN3_32B = {
    "general.architecture": "qwen3",
    "general.name": "Qwen3 32B (header only)",
    "general.file_type": 15,
    "qwen3.block_count": 64,
    "qwen3.context_length": 40960,
    "qwen3.embedding_length": 5120,
    "qwen3.feed_forward_length": 25600,
    "qwen3.attention.head_count": 64,
    "qwen3.attention.head_count_kv": 8,
    "qwen3.attention.key_length": 128,
    "qwen3.attention.value_length": 128,
    "qwen3.rope.freq_base": 1000000.0,
    "qwen3.vocab_size": 151936,
    "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
}


@pytest.fixture(scope="module")
def dev_gguf() -> Path:
    """The packaged dev GGUF, assembled into the model cache as the product does."""
    from llm.model_files import assemble_packaged
    from settings import load_settings

    try:
        return assemble_packaged(DEV_QWEN_05B, load_settings().model_dir)
    except ModelUnavailable as exc:
        if FALLBACK_DEV_GGUF.is_file():
            return FALLBACK_DEV_GGUF
        pytest.skip(f"dev GGUF not available ({exc}) and no copy at {FALLBACK_DEV_GGUF}")


@pytest.fixture(scope="module")
def qwen3_32b(tmp_path_factory) -> Path:
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "qwen3-32b.gguf", QWEN3_32B)


def run_check(capsys, *argv: str) -> tuple[int, str, str]:
    code = main_check(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- reading ---------------------------------------------------------------------------


def test_reads_the_dev_models_header(dev_gguf):
    info = read_gguf_info(dev_gguf)
    assert info.architecture == "qwen2"
    assert info.block_count == 24
    assert info.head_count_kv == 2
    assert info.head_count == 14
    assert info.key_length == info.value_length == 64
    assert info.context_length == 32768
    assert info.embedding_length == 896
    assert info.vocab_size == 151936
    assert info.file_type == "Q4_K_M"
    assert info.has_chat_template
    assert info.rope_scaling_type is None
    assert not info.truncated
    assert info.file_size == DEV_QWEN_05B.size
    # Sizes computed from the tensor table account for every byte after the header.
    assert info.weights_bytes == info.file_size - info.data_offset
    assert len(info.layer_bytes) == 24
    assert sum(info.layer_bytes) + info.input_bytes + info.output_bytes == info.weights_bytes
    assert sum(info.tensor_types.values()) == info.tensor_count == 291


def test_synthetic_header_round_trips(qwen3_32b):
    info = read_gguf_info(qwen3_32b)
    assert (info.architecture, info.block_count, info.context_length) == ("qwen3", 64, 40960)
    assert (info.head_count, info.head_count_kv, info.key_length, info.value_length) == (64, 8, 128, 128)
    assert info.version == 3 and info.tensor_count == 0 and info.weights_bytes == 0
    assert info.has_chat_template and info.vocab_size == 151936 and info.file_type == "Q4_K_M"


def test_head_size_defaults_and_per_layer_arrays(tmp_path):
    path = write_synthetic_gguf(
        tmp_path / "m.gguf",
        {
            "general.architecture": "llama",
            "llama.block_count": 4,
            "llama.embedding_length": 4096,
            "llama.attention.head_count": 32,
            "llama.attention.head_count_kv": [8, 8, 4, 8],
            "llama.context_length": 8192,
            "tokenizer.ggml.tokens": [f"t{i}" for i in range(100)],
        },
    )
    info = read_gguf_info(path)
    assert info.key_length == info.value_length == 128  # 4096 / 32
    assert info.head_count_kv == 8  # per-layer values: the largest
    assert info.vocab_size == 100
    assert not info.has_chat_template


def test_metadata_reader_agrees_with_gguf_reader(tmp_path):
    """Our GGUFReader subclass reads what the stock one reads; long arrays keep their length."""
    from gguf import GGUFReader

    from llm.gguf_info import GgufArray

    metadata = {
        "general.architecture": "llama",
        "general.name": "agreement",
        "general.file_type": 7,
        "llama.block_count": 2,
        "llama.embedding_length": 64,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": [4, 2],
        "llama.rope.freq_base": 10000.0,
        "llama.big": 2**40,
        "llama.negative": -3,
        "llama.flag": True,
        "tokenizer.ggml.tokens": [f"tok{i}" for i in range(300)],
        "tokenizer.ggml.scores": [float(i) for i in range(5000)],
        "tokenizer.ggml.token_type": [1] * 10,
        "tokenizer.chat_template": "{{ messages }}",
    }
    path = write_synthetic_gguf(tmp_path / "m.gguf", metadata)
    stock = {k: f.contents() for k, f in GGUFReader(path).fields.items() if not k.startswith("GGUF.")}
    info = read_gguf_info(path)
    assert info.metadata.keys() == stock.keys() - {"tokenizer.chat_template"} and info.has_chat_template
    for key, value in info.metadata.items():
        if isinstance(value, GgufArray):
            assert value.count == len(stock[key]), key
        else:
            assert value == stock[key], key
    assert info.metadata["tokenizer.ggml.tokens"] == GgufArray(8, 300)  # STRING
    assert info.metadata["tokenizer.ggml.scores"] == GgufArray(6, 5000)  # FLOAT32
    assert info.metadata["llama.attention.head_count_kv"] == [4, 2] and info.head_count_kv == 4
    assert (info.vocab_size, info.file_type, info.rope_freq_base) == (300, "Q8_0", 10000.0)


def test_tensor_table_sizes_match_gguf_reader(tmp_path):
    """Layer / input / output bytes come from the tensor table, sized as GGUFReader sizes them."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

    path = tmp_path / "t.gguf"
    writer = GGUFWriter(path, arch="llama")
    for key, value in (("llama.block_count", 2), ("llama.embedding_length", 64), ("llama.attention.head_count", 4)):
        writer.add_uint32(key, value)
    writer.add_tensor("token_embd.weight", np.zeros((10, 64), dtype=np.float16))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    q8_rows = np.zeros((64, 2 * 34), dtype=np.uint8)  # 64 rows of two Q8_0 blocks (32 values in 34 bytes)
    writer.add_tensor("blk.1.attn_q.weight", q8_rows, raw_dtype=GGMLQuantizationType.Q8_0)
    writer.add_tensor("output.weight", np.zeros((10, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    sizes = {t.name: t.n_bytes for t in GGUFReader(path).tensors}
    info = read_gguf_info(path)
    assert info.layer_bytes == (sizes["blk.0.attn_q.weight"], sizes["blk.1.attn_q.weight"]) == (64 * 64 * 4, 64 * 68)
    assert (info.input_bytes, info.output_bytes) == (sizes["token_embd.weight"], sizes["output.weight"])
    assert info.weights_bytes == sum(sizes.values())
    assert info.tensor_types == {"F16": 1, "F32": 2, "Q8_0": 1} and not info.truncated

    path.write_bytes(path.read_bytes()[: info.data_offset + 100])  # an incomplete download
    cut = read_gguf_info(path)
    assert cut.truncated and cut.weights_bytes == info.weights_bytes


@pytest.mark.parametrize(
    "content",
    [b"", b"GGUF", b"not a gguf at all, just text" * 10, b"GGUF\x01\x00\x00\x00" + b"\0" * 40],
)
def test_unreadable_files_raise_a_readable_error(tmp_path, content):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GgufError):
        read_gguf_info(path)


def test_truncated_metadata_is_an_error(tmp_path, qwen3_32b):
    path = tmp_path / "cut.gguf"
    path.write_bytes(qwen3_32b.read_bytes()[:200])
    with pytest.raises(GgufError, match="truncated"):
        read_gguf_info(path)


# --- estimating ------------------------------------------------------------------------


def test_qwen3_32b_kv_cache_at_128k(qwen3_32b):
    info = read_gguf_info(qwen3_32b)
    assert kv_cache_bytes(info, 131072, "f16") == 32 * GIB
    assert kv_cache_bytes(info, 131072, "q8_0") == 17 * GIB
    assert kv_cache_bytes(info, 131072, "q4_0") == 9 * GIB
    with pytest.raises(ValueError, match="unknown KV cache type"):
        kv_cache_bytes(info, 131072, "q3_k")


def test_production_preset_fits_two_4090s_with_q8_0_cache(qwen3_32b):
    info = read_gguf_info(qwen3_32b)
    est = estimate_vram(info, get_preset(PROD), weights_bytes=QWEN3_32B_Q4_K_M_BYTES)
    assert est.mode == "gpu" and est.kv_cache_type == "q8_0" and est.n_ctx == 131072
    assert est.kv_bytes == pytest.approx(17 * GIB)
    assert est.weights_bytes == QWEN3_32B_Q4_K_M_BYTES
    # llama.cpp's split of 64 layers + output head over (0.5, 0.5).
    assert [(d.device, d.layers, d.has_output) for d in est.devices] == [
        ("cuda0", 33, False),
        ("cuda1", 31, True),
    ]
    assert sum(d.weights_bytes for d in est.devices) == pytest.approx(QWEN3_32B_Q4_K_M_BYTES)
    assert sum(d.kv_bytes for d in est.devices) == pytest.approx(est.kv_bytes)
    for dev in est.devices:
        assert dev.capacity_bytes == 24 * GIB
        assert 17 * GIB < dev.needed_bytes + dev.margin_bytes < 22 * GIB
    assert est.fits


def test_production_preset_with_f16_cache_does_not_fit(qwen3_32b):
    info = read_gguf_info(qwen3_32b)
    est = estimate_vram(info, get_preset(PROD), weights_bytes=QWEN3_32B_Q4_K_M_BYTES, kv_cache_type="f16")
    assert est.kv_bytes == 32 * GIB
    assert not est.fits
    report = check_model(qwen3_32b, PROD, weights_bytes=QWEN3_32B_Q4_K_M_BYTES, kv_cache_type="f16")
    assert report.exit_code == 1
    assert any(p.startswith("does not fit") for p in report.problems)


def test_production_check_report(qwen3_32b):
    report = check_model(qwen3_32b, PROD, weights_bytes=QWEN3_32B_Q4_K_M_BYTES)
    assert report.ok, report.problems
    # The preset pins yarn_orig_ctx 32768 on purpose although the GGUF says 40960: a note only.
    assert any("yarn_orig_ctx 32768" in n and "40960" in n for n in report.notes)
    assert any("131072" in n and "yarn" in n for n in report.notes)


def test_one_4090_cannot_hold_the_production_preset(qwen3_32b):
    one_gpu = dataclasses.replace(get_preset(PROD), gpus=1, tensor_split=None)
    est = estimate_vram(read_gguf_info(qwen3_32b), one_gpu, weights_bytes=QWEN3_32B_Q4_K_M_BYTES)
    assert len(est.devices) == 1 and est.devices[0].layers == 64 and not est.fits


def test_dev_preset_fits_in_ram(dev_gguf):
    report = check_model(dev_gguf, DEV, system_ram_bytes=8 * GIB)
    assert report.ok, report.problems
    est = report.estimate
    assert est.mode == "cpu" and len(est.devices) == 1
    assert est.kv_bytes == 24 * 4096 * 2 * (64 + 64) * 2  # f16, 4096 tokens
    assert est.devices[0].needed_bytes < 2 * GIB


def test_problems_are_reported(dev_gguf):
    mismatch = check_model(dev_gguf, PROD)
    assert any("architecture mismatch" in p for p in mismatch.problems)
    too_long = check_model(dev_gguf, DEV, n_ctx=65536, system_ram_bytes=64 * GIB)
    assert any("exceeds the model's trained context 32768" in p for p in too_long.problems)
    quant_no_fa = check_model(dev_gguf, DEV, kv_cache_type="q8_0", system_ram_bytes=8 * GIB)
    assert any("needs flash_attn" in p for p in quant_no_fa.problems)
    no_ram = check_model(dev_gguf, DEV, system_ram_bytes=1 * GIB)
    assert any(p.startswith("does not fit: cpu") for p in no_ram.problems)


def test_architecture_is_the_gguf_metadata_against_the_presets_declared_one(tmp_path, dev_gguf):
    """Not guessed from names: a qwen3 GGUF in a file named like the dev model is refused by the dev preset."""
    assert read_gguf_info(dev_gguf).architecture == get_preset(DEV).architecture == "qwen2"
    misnamed = write_synthetic_gguf(tmp_path / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", QWEN3_32B)
    report = check_model(misnamed, DEV, weights_bytes=0.4e9, system_ram_bytes=64 * GIB)
    assert report.problems == [
        "architecture mismatch: preset dev-qwen2.5-0.5b is for qwen2 models, this GGUF is qwen3"
    ]
    renamed = {k.replace("qwen3.", "llama."): v for k, v in QWEN3_32B.items()} | {"general.architecture": "llama"}
    llama = write_synthetic_gguf(tmp_path / "qwen3-32b.gguf", renamed)
    report = check_model(llama, PROD, weights_bytes=QWEN3_32B_Q4_K_M_BYTES)
    assert report.problems == ["architecture mismatch: preset qwen3-32b-2x4090-128k is for qwen3 models, "
                               "this GGUF is llama"]


def test_header_only_gguf_needs_a_weights_size(qwen3_32b):
    report = check_model(qwen3_32b, PROD)
    assert any("no tensors" in p for p in report.problems)


# --- command line ----------------------------------------------------------------------


def test_cli_dev_model_fits(capsys, dev_gguf):
    code, out, err = run_check(capsys, str(dev_gguf), "--preset", DEV)
    assert code == 0, out + err
    for text in ("qwen2", "KV heads", "2 (of 14", "trained context", "32768", "Verdict: FITS"):
        assert text in out


def test_cli_production_preset(capsys, qwen3_32b):
    code, out, _ = run_check(capsys, str(qwen3_32b), "--preset", PROD, "--weights-gb", "19.8")
    assert code == 0, out
    assert "17.00 GiB (q8_0 x 131072 tokens)" in out and "cuda1" in out and "Verdict: FITS" in out

    code, out, _ = run_check(
        capsys, str(qwen3_32b), "--preset", PROD, "--weights-gb", "19.8", "--kv-type", "f16"
    )
    assert code == 1 and "TOO BIG" in out and "Verdict: REFUSE" in out


def test_cli_one_24gb_gpu_is_refused(capsys, qwen3_32b):
    argv = [str(qwen3_32b), "--preset", PROD, "--weights-gb", "19.8", "--gpus", "1", "--vram-gib", "24"]
    code, out, _ = run_check(capsys, *argv)
    assert code == 1
    assert "does not fit: cuda0" in out


def test_cli_json(capsys, qwen3_32b):
    code, out, _ = run_check(capsys, str(qwen3_32b), "--preset", PROD, "--weights-gb", "19.8", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["verdict"] == "fits" and data["model"]["block_count"] == 64
    assert data["estimate"]["kv_bytes"] == 17 * GIB
    assert [d["device"] for d in data["estimate"]["devices"]] == ["cuda0", "cuda1"]


@pytest.mark.parametrize(
    "argv",
    [
        ["GARBAGE", "--preset", DEV],
        ["MISSING", "--preset", DEV],
        ["SYNTH", "--preset", "no-such-preset"],
        ["SYNTH"],
        ["SYNTH", "--preset", PROD, "--ctx", "many"],
        ["SYNTH", "--preset", PROD, "--ctx", "0"],
    ],
)
def test_cli_usage_and_file_errors_exit_2(capsys, tmp_path, qwen3_32b, argv):
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(bytes(range(256)) * 64)
    paths = {"GARBAGE": str(garbage), "MISSING": str(tmp_path / "nope.gguf"), "SYNTH": str(qwen3_32b)}
    code, out, err = run_check(capsys, *[paths.get(a, a) for a in argv])
    assert code == 2
    assert out == ""
    assert err.startswith("python -m llm check: error: ") and err.count("\n") == 1 and "Traceback" not in err
