"""Embedded Qdrant (qdrant-edge): the default store, one shard folder under the data dir.

One process owns the shard at a time (Qdrant's WAL lock); ownership is made explicit by
an OS file lock so a second process gets a clear message instead of a runtime error.
"""

from __future__ import annotations

import shutil
import threading
from datetime import date
from pathlib import Path

import numpy as np
import qdrant_edge as q
from filelock import FileLock, Timeout

from core.errors import CQAError
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


class StoreBusy(CQAError):
    pass


def _filter(conds: list[Condition]):
    must = []
    for c in conds:
        if c.kind == "eq":
            must.append(q.FieldCondition(c.key, match=q.MatchValue(c.values[0])))
        elif c.kind == "any":
            must.append(q.FieldCondition(c.key, match=q.MatchAny(list(c.values))))
        else:
            must.append(q.FieldCondition(c.key, range=q.RangeFloat(gte=c.gte, lt=c.lt)))
    return q.Filter(must=must) if must else None


class EdgeStore:
    def __init__(self, path: Path, dim: int, wait_seconds: float = 0.0) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(path.parent / f"{path.name}.owner.lock"))
        try:
            self._lock.acquire(timeout=wait_seconds)
        except Timeout:
            raise StoreBusy(
                f"the embedded store {path} is open in another process (the running app?). "
                "Ingest from the app's admin page, stop the app first, or use a Qdrant server "
                "(CQA_STORE__BACKEND=qdrant) for concurrent writers.",
                key="store_busy",
            ) from None
        self.path = path
        self._writing = threading.Lock()
        """Held by every write and by :meth:`copy_to`, so a copy never sees half a write."""
        config = q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine)},
            sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
        )
        shard_dir = path / "shard"
        try:
            if (shard_dir / "wal").exists() or any(shard_dir.glob("segments*")):
                self._shard = q.EdgeShard.load(str(shard_dir))
                stored = self._shard.info()
                self._check_dim(dim)
                del stored
            else:
                self._shard = q.EdgeShard.create(str(shard_dir), config)
                for key in KEYWORD_FIELDS:
                    self._shard.update(q.UpdateOperation.create_field_index(key, q.PayloadSchemaType.Keyword))
                for key in INTEGER_FIELDS:
                    self._shard.update(q.UpdateOperation.create_field_index(key, q.PayloadSchemaType.Integer))
        except Exception:
            self._lock.release()
            raise

    def _check_dim(self, dim: int) -> None:
        sample = (
            self._shard.query(q.QueryRequest(limit=1, query=None, with_vector=[DENSE], with_payload=False))
            if self.count()
            else []
        )
        if sample:
            stored = len(sample[0].vector[DENSE])
            if stored != dim:
                self.close()
                raise CQAError(
                    f"the store at {self.path} holds {stored}-dim vectors but the embedder makes "
                    f"{dim}-dim ones: re-ingest into a fresh data dir after changing the embedder"
                )

    def upsert(self, points: list[StoredPoint]) -> None:
        batch = [
            q.Point(
                point_id(p.chunk.chunk_id),
                {DENSE: p.dense.astype(np.float32).tolist(), SPARSE: q.SparseVector(p.sparse.indices, p.sparse.values)},
                chunk_payload(p.chunk),
            )
            for p in points
        ]
        if batch:
            with self._writing:
                self._shard.update(q.UpdateOperation.upsert_points(batch))

    def flush(self) -> None:
        with self._writing:
            self._shard.flush()

    def copy_to(self, target: Path) -> None:
        """Flush and copy the shard to ``target`` (a new folder): a consistent copy another process can open as
        its own store while this one keeps serving (the evaluation worker's snapshot, eval/jobs.py)."""
        with self._writing:
            self._shard.flush()
            shutil.copytree(self.path / "shard", target / "shard")

    def optimize(self) -> None:
        self._shard.optimize()

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
        qfilter = _filter(filter_conditions(flt))
        dense_list = np.asarray(dense, dtype=np.float32).tolist()
        prefetches = [q.Prefetch(limit=candidates, query=q.Query.Nearest(dense_list, using=DENSE), filter=qfilter)]
        if sparse is not None and sparse.indices:
            prefetches.append(
                q.Prefetch(
                    limit=candidates,
                    query=q.Query.Nearest(q.SparseVector(sparse.indices, sparse.values), using=SPARSE),
                    filter=qfilter,
                )
            )
        fuse = q.Fusion.Rrf(k=rrf_k) if fusion == "rrf" else q.Fusion.Dbsf()
        points = self._shard.query(
            q.QueryRequest(
                limit=limit,
                prefetches=prefetches,
                query=fuse,
                filter=qfilter,
                with_payload=True,
                with_vector=[DENSE],
            )
        )
        return [ScoredPayload(p.payload, p.score, (p.vector or {}).get(DENSE)) for p in points]

    def leg_search(self, leg: str, vector, flt: SearchFilter, limit: int) -> list[ScoredPayload]:
        if leg == SPARSE:
            query = q.Query.Nearest(q.SparseVector(vector.indices, vector.values), using=SPARSE)
        else:
            query = q.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist(), using=DENSE)
        points = self._shard.query(
            q.QueryRequest(
                limit=limit, query=query, filter=_filter(filter_conditions(flt)), with_payload=True,
                with_vector=[DENSE],
            )
        )
        return [ScoredPayload(p.payload, p.score, (p.vector or {}).get(DENSE)) for p in points]

    def _doc_filter(self, doc_id: str, version: int | None):
        conds = [Condition("eq", K_DOC_ID, (doc_id,))]
        if version is not None:
            conds.append(Condition("eq", K_VERSION, (version,)))
        return _filter(conds)

    def set_status(self, doc_id: str, version: int, status: str, effective_to: date | None = None) -> None:
        payload: dict = {K_STATUS: status}
        if effective_to is not None or status == "active":
            payload[K_TO] = date_key(effective_to, NO_END)
        with self._writing:
            self._shard.update(q.UpdateOperation.set_payload_by_filter(self._doc_filter(doc_id, version), payload))

    def delete_document(self, doc_id: str, version: int | None = None) -> None:
        with self._writing:
            self._shard.update(q.UpdateOperation.delete_points_by_filter(self._doc_filter(doc_id, version)))

    def chunks_by_index(self, doc_id: str, version: int, indexes: list[int], flt: SearchFilter) -> list[dict]:
        conds = [
            *filter_conditions(flt),
            Condition("eq", K_DOC_ID, (doc_id,)),
            Condition("eq", K_VERSION, (version,)),
            Condition("any", K_INDEX, tuple(indexes)),
        ]
        records, _ = self._shard.scroll(
            q.ScrollRequest(limit=len(indexes) + 1, filter=_filter(conds), with_payload=True)
        )
        return sorted((r.payload for r in records), key=lambda p: p[K_INDEX])

    def count(self, flt: SearchFilter | None = None) -> int:
        qfilter = _filter(filter_conditions(flt)) if flt is not None else None
        return self._shard.count(q.CountRequest(filter=qfilter, exact=True))

    def close(self) -> None:
        shard = getattr(self, "_shard", None)
        if shard is not None:
            shard.flush()
            shard.close()
            self._shard = None
        if self._lock.is_locked:
            self._lock.release()
