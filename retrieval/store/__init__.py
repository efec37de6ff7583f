"""Vector stores: the embedded Qdrant engine (default) or a Qdrant server, one interface."""

from __future__ import annotations

from pathlib import Path

from retrieval.store.base import VectorStore
from retrieval.store.edge_store import EdgeStore
from retrieval.store.qdrant_store import QdrantStore
from settings.model import StoreSettings


def build_store(settings: StoreSettings, store_dir: Path, dim: int, wait_seconds: float = 0.0) -> VectorStore:
    match settings.backend:
        case "edge":
            return EdgeStore(store_dir, dim, wait_seconds=wait_seconds)
        case "qdrant":
            return QdrantStore(settings, dim)
    raise ValueError(f"unknown store backend {settings.backend!r}")
