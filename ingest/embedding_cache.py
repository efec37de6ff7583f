"""Never embed the same text twice: vectors keyed by (embedder, text) in SQLite."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import Column, LargeBinary, MetaData, Table, Text, select

from db import Database
from db.statements import upsert

VECTORS = Table(
    "vectors",
    MetaData(),
    Column("key", Text, primary_key=True),
    Column("vector", LargeBinary, nullable=False),
)


class EmbeddingCache:
    """The cache in ``path`` (``embeddings.sqlite3`` in the data dir, or a retrieval-quality index's dir)."""

    def __init__(self, path: Path | str, model_name: str) -> None:
        self._model = model_name
        self.path = path
        self._db = Database(path, "embedding_cache", wal=True)

    def close(self) -> None:
        """Nothing stays open between calls; kept for the callers that close what they open."""
        self._db.dispose()

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model}\0{text}".encode()).hexdigest()

    def embed(self, texts: list[str], embed: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, int]:
        """Vectors for ``texts``, computing only the missing ones; returns (vectors, computed)."""
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._db.read() as conn:
            for i in range(0, len(keys), 500):
                rows = conn.execute(select(VECTORS.c.key, VECTORS.c.vector).where(VECTORS.c.key.in_(keys[i : i + 500])))
                found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        missing = sorted({k: t for k, t in zip(keys, texts, strict=False) if k not in found}.items())
        if missing:
            vectors = embed([t for _, t in missing])
            pairs = list(zip(missing, vectors, strict=False))
            rows = [{"key": k, "vector": v.astype(np.float32).tobytes()} for (k, _), v in pairs]
            with self._db.write() as conn:
                upsert(conn, VECTORS, rows, keys=("key",))
            found.update({k: v.astype(np.float32) for (k, _), v in pairs})
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), 0
        return np.vstack([found[k] for k in keys]), len(missing)
