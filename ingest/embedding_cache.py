"""Never embed the same text twice: vectors keyed by (embedder, text) in SQLite."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.sqlite import ThreadLocalSQLite


class EmbeddingCache(ThreadLocalSQLite):
    SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"

    def __init__(self, path: Path, model_name: str) -> None:
        self._model = model_name
        super().__init__(path)

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model}\0{text}".encode()).hexdigest()

    def embed(self, texts: list[str], embed: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, int]:
        """Vectors for ``texts``, computing only the missing ones; returns (vectors, computed)."""
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        db = self._db()
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            rows = db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part
            ).fetchall()
            found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        missing = sorted({k: t for k, t in zip(keys, texts, strict=False) if k not in found}.items())
        if missing:
            vectors = embed([t for _, t in missing])
            with self._tx() as tx:
                tx.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                    [(k, v.astype(np.float32).tobytes()) for (k, _), v in zip(missing, vectors, strict=False)],
                )
            found.update({k: v.astype(np.float32) for (k, _), v in zip(missing, vectors, strict=False)})
        if not texts:
            return np.zeros((0, 0), dtype=np.float32), 0
        return np.vstack([found[k] for k in keys]), len(missing)
