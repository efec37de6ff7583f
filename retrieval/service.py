"""Retrieval use case: hybrid dense + BM25 search fused inside Qdrant, optional rerank,
neighbour expansion. Every search carries a SearchFilter applied by the store."""

from __future__ import annotations

from functools import cached_property

import numpy as np

from core.schema import Hit, SearchFilter
from retrieval.embedding import Embedder
from retrieval.sparse import SparseEncoder
from retrieval.store.base import (
    DENSE,
    K_CHUNK_ID,
    SPARSE,
    ScoredPayload,
    SparseVec,
    VectorStore,
    hit_from_payload,
)
from settings.model import RetrievalSettings


class RetrievalService:
    def __init__(
        self, settings: RetrievalSettings, embedder: Embedder, sparse: SparseEncoder, store: VectorStore
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.sparse = sparse
        self.store = store

    def retrieve(self, query: str, flt: SearchFilter, k: int | None = None) -> list[Hit]:
        k = k or self.settings.top_k
        dense = self.embedder.embed_queries([query])[0]
        sparse = self.sparse.embed_query(query)
        pool = max(k, self.settings.candidates if self.settings.reranker_path else k)
        results = self._search(dense, sparse, flt, pool)
        hits = [hit_from_payload(r.payload, r.score, _cosine(dense, r.dense_vector)) for r in results]
        if self.settings.reranker_path and hits:
            hits = self._rerank(query, hits)
        return hits[:k]

    def _search(self, dense: np.ndarray, sparse: SparseVec | None, flt: SearchFilter, limit: int):
        """Both legs with equal weights (or DBSF): one query fused inside Qdrant. Otherwise each leg's
        candidates from Qdrant under the same filter, fused as ``sum(w / (rrf_k + rank))`` here,
        because qdrant-edge's weighted RRF does not follow that formula (docs/retrieval.md)."""
        s = self.settings
        has_sparse = sparse is not None and bool(sparse.indices)
        if s.dense_weight > 0 and s.sparse_weight > 0 and (s.fusion == "dbsf" or s.dense_weight == s.sparse_weight):
            return self.store.hybrid_search(dense, sparse, flt, limit, s.candidates, s.fusion, s.rrf_k)
        legs = []
        if s.dense_weight > 0:
            legs.append((s.dense_weight, self.store.leg_search(DENSE, dense, flt, s.candidates)))
        if s.sparse_weight > 0 and has_sparse:
            legs.append((s.sparse_weight, self.store.leg_search(SPARSE, sparse, flt, s.candidates)))
        return weighted_rrf(legs, s.rrf_k, limit)

    def neighbours(self, hit: Hit, flt: SearchFilter, radius: int = 1) -> list[Hit]:
        """Adjacent chunks of the same section and version, under the same store filter."""
        indexes = [hit.chunk_index + d for d in range(-radius, radius + 1) if d and hit.chunk_index + d >= 0]
        payloads = self.store.chunks_by_index(hit.doc_id, hit.version, indexes, flt)
        return [hit_from_payload(p, hit.score) for p in payloads if p.get("section") == hit.section]

    @cached_property
    def _cross_encoder(self):
        from sentence_transformers import CrossEncoder  # torch: seconds to import, only with a reranker

        return CrossEncoder(str(self.settings.reranker_path), device="cpu", local_files_only=True)

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        scores = self._cross_encoder.predict([(query, h.text) for h in hits])
        order = np.argsort(-np.asarray(scores))
        return [hits[i].model_copy(update={"score": float(scores[i])}) for i in order]


def rrf_order(rankings: list[tuple[float, list[str]]], rrf_k: int = 60) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion of ranked key lists (ranks from 1): ``(key, score)`` best first, equal scores
    ordered by key so that the result does not depend on the order in which ties arrived."""
    scores: dict[str, float] = {}
    for weight, keys in rankings:
        for rank, key in enumerate(keys, 1):
            scores[key] = scores.get(key, 0.0) + weight / (rrf_k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def weighted_rrf(legs: list[tuple[float, list[ScoredPayload]]], rrf_k: int, limit: int) -> list[ScoredPayload]:
    """The legs' results fused by :func:`rrf_order`, keyed by chunk id. Within a leg, equal scores (the same text
    in two documents) are ranked by chunk id too, so a ranking does not depend on how a store returns ties."""
    first: dict[str, ScoredPayload] = {}
    ranked = []
    for weight, results in legs:
        ordered = sorted(results, key=lambda r: (-r.score, r.payload[K_CHUNK_ID]))
        for r in ordered:
            first.setdefault(r.payload[K_CHUNK_ID], r)
        ranked.append((weight, [r.payload[K_CHUNK_ID] for r in ordered]))
    return [ScoredPayload(first[key].payload, score, first[key].dense_vector)
            for key, score in rrf_order(ranked, rrf_k)[:limit]]


def _cosine(query: np.ndarray, vector: list[float] | None) -> float | None:
    if vector is None:
        return None
    v = np.asarray(vector, dtype=np.float32)
    denom = float(np.linalg.norm(v) * np.linalg.norm(query)) or 1.0
    return float(np.dot(query, v) / denom)
