"""A Qdrant server or cluster through qdrant-client: same payloads, filters and fusion as
the embedded store. ``location=":memory:"`` or ``path=...`` (qdrant-client local mode)
stands in for a server in tests."""

from __future__ import annotations

from datetime import date

import numpy as np

from core.schema import SearchFilter
from retrieval.store.base import (
    DENSE,
    INTEGER_FIELDS,
    K_DOC_ID,
    K_INDEX,
    K_STATUS,
    K_TO,
    K_VERSION,
    KEYWORD_FIELDS,
    NO_END,
    SPARSE,
    Condition,
    ScoredPayload,
    SparseVec,
    StoredPoint,
    chunk_payload,
    date_key,
    filter_conditions,
    point_id,
)
from settings.model import StoreSettings


def _filter(m, conds: list[Condition]):
    must = []
    for c in conds:
        if c.kind == "eq":
            must.append(m.FieldCondition(key=c.key, match=m.MatchValue(value=c.values[0])))
        elif c.kind == "any":
            must.append(m.FieldCondition(key=c.key, match=m.MatchAny(any=list(c.values))))
        else:
            must.append(m.FieldCondition(key=c.key, range=m.Range(gte=c.gte, lt=c.lt)))
    return m.Filter(must=must) if must else None


class QdrantStore:
    def __init__(self, settings: StoreSettings, dim: int, client=None) -> None:
        from qdrant_client import QdrantClient, models  # 4 s to import: only for the server backend

        self._m = models
        self.collection = settings.collection
        self._client = client or QdrantClient(
            url=settings.qdrant_url,
            api_key=settings.qdrant_api_key.get_secret_value() or None,
            timeout=30,
        )
        if not self._client.collection_exists(self.collection):
            self._client.create_collection(
                self.collection,
                vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                shard_number=settings.shard_number,
                replication_factor=settings.replication_factor,
            )
            for key in KEYWORD_FIELDS:
                self._client.create_payload_index(self.collection, key, models.PayloadSchemaType.KEYWORD)
            for key in INTEGER_FIELDS:
                self._client.create_payload_index(self.collection, key, models.PayloadSchemaType.INTEGER)

    def upsert(self, points: list[StoredPoint]) -> None:
        m = self._m
        batch = [
            m.PointStruct(
                id=point_id(p.chunk.chunk_id),
                vector={
                    DENSE: p.dense.astype(np.float32).tolist(),
                    SPARSE: m.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                },
                payload=chunk_payload(p.chunk),
            )
            for p in points
        ]
        for i in range(0, len(batch), 256):
            self._client.upsert(self.collection, batch[i : i + 256], wait=True)

    def hybrid_search(
        self,
        dense: np.ndarray,
        sparse: SparseVec | None,
        flt: SearchFilter,
        limit: int,
        candidates: int,
        fusion: str = "rrf",
        rrf_k: int = 60,
    ) -> list[ScoredPayload]:
        m = self._m
        qfilter = _filter(m, filter_conditions(flt))
        prefetch = [
            m.Prefetch(
                query=np.asarray(dense, dtype=np.float32).tolist(), using=DENSE, limit=candidates, filter=qfilter
            )
        ]
        if sparse is not None and sparse.indices:
            prefetch.append(
                m.Prefetch(
                    query=m.SparseVector(indices=sparse.indices, values=sparse.values),
                    using=SPARSE,
                    limit=candidates,
                    filter=qfilter,
                )
            )
        query = m.RrfQuery(rrf=m.Rrf(k=rrf_k)) if fusion == "rrf" else m.FusionQuery(fusion=m.Fusion.DBSF)
        result = self._client.query_points(
            self.collection,
            prefetch=prefetch,
            query=query,
            query_filter=qfilter,
            limit=limit,
            with_payload=True,
            with_vectors=[DENSE],
        )
        return _scored(result.points)

    def leg_search(self, leg: str, vector, flt: SearchFilter, limit: int) -> list[ScoredPayload]:
        m = self._m
        if leg == SPARSE:
            query = m.SparseVector(indices=vector.indices, values=vector.values)
        else:
            query = np.asarray(vector, dtype=np.float32).tolist()
        result = self._client.query_points(
            self.collection, query=query, using=leg, query_filter=_filter(m, filter_conditions(flt)), limit=limit,
            with_payload=True, with_vectors=[DENSE],
        )
        return _scored(result.points)

    def _doc_filter(self, doc_id: str, version: int | None):
        conds = [Condition("eq", K_DOC_ID, (doc_id,))]
        if version is not None:
            conds.append(Condition("eq", K_VERSION, (version,)))
        return _filter(self._m, conds)

    def set_status(self, doc_id: str, version: int, status: str, effective_to: date | None = None) -> None:
        payload: dict = {K_STATUS: status}
        if effective_to is not None or status == "active":
            payload[K_TO] = date_key(effective_to, NO_END)
        self._client.set_payload(self.collection, payload, points=self._doc_filter(doc_id, version), wait=True)

    def delete_document(self, doc_id: str, version: int | None = None) -> None:
        self._client.delete(
            self.collection, points_selector=self._m.FilterSelector(filter=self._doc_filter(doc_id, version)), wait=True
        )

    def chunks_by_index(self, doc_id: str, version: int, indexes: list[int], flt: SearchFilter) -> list[dict]:
        conds = [
            *filter_conditions(flt),
            Condition("eq", K_DOC_ID, (doc_id,)),
            Condition("eq", K_VERSION, (version,)),
            Condition("any", K_INDEX, tuple(indexes)),
        ]
        records, _ = self._client.scroll(
            self.collection, scroll_filter=_filter(self._m, conds), limit=len(indexes) + 1, with_payload=True
        )
        return sorted((r.payload or {} for r in records), key=lambda p: p[K_INDEX])

    def count(self, flt: SearchFilter | None = None) -> int:
        qfilter = _filter(self._m, filter_conditions(flt)) if flt is not None else None
        return self._client.count(self.collection, count_filter=qfilter, exact=True).count

    def close(self) -> None:
        self._client.close()


def _scored(points) -> list[ScoredPayload]:
    return [
        ScoredPayload(p.payload or {}, p.score, (p.vector or {}).get(DENSE) if isinstance(p.vector, dict) else None)
        for p in points
    ]
