"""Faster embedding must not change what is indexed.

``fixtures/vectors_before.npz`` holds what the ingest wrote before the embedding threads (commit d1163b9: one BLAS
pool of two threads, slices of 32 texts): the texts, dense vectors and BM25 sparse vectors of the 19 chunks of the
Japanese sample manual and the first 19 of the Basel CDD paper (``en/aml_regulatory/basel/Basel-CDD-Banks.pdf``),
both real PDFs ingested whole. The texts are stored, so only the sample manual's test reads a PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.schema import UNRESTRICTED, SearchFilter
from retrieval.embedding import UseEmbedder
from retrieval.sparse import SparseEncoder
from retrieval.store.base import DENSE, SPARSE
from settings import load_settings
from tests.conftest import EN_MD, JA_PDF, make_container

REFERENCE = Path(__file__).parent / "fixtures" / "vectors_before.npz"
# Float rounding only: the largest difference measured on the 1,085 chunks of the bench's English set was 3.3e-7.
ATOL = 2e-6


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def embedder() -> UseEmbedder:
    return UseEmbedder(load_settings().embedding)


def _texts(reference: dict[str, np.ndarray], key: str) -> list[str]:
    return [str(t) for t in reference[key]]


def test_dense_vectors_are_the_ones_ingested_before(reference, embedder) -> None:
    vectors = embedder.embed_passages(_texts(reference, "embed_texts"))
    assert vectors.shape == reference["dense"].shape == (38, 512)
    np.testing.assert_allclose(vectors, reference["dense"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_and_slices_change_no_vector(reference, embedder, threads: int) -> None:
    """Each text alone against all of them in one call (slices on several threads, in order); a call with
    fewer texts than threads too."""
    texts = _texts(reference, "embed_texts")
    alone = np.vstack([embedder.embed_passages([t], threads=threads) for t in texts])
    np.testing.assert_allclose(alone, reference["dense"], atol=ATOL, rtol=0)
    np.testing.assert_allclose(embedder.embed_passages(texts, threads=threads), alone, atol=ATOL, rtol=0)
    np.testing.assert_allclose(embedder.embed_passages(texts[:2], threads=threads), alone[:2], atol=ATOL, rtol=0)
    assert embedder.embed_passages([], threads=threads).shape == (0, 512)


def test_sparse_vectors_are_the_ones_ingested_before(reference) -> None:
    encoder = SparseEncoder("sudachi")
    offsets = reference["sparse_offsets"]
    for i, text in enumerate(_texts(reference, "sparse_texts")):
        vector = encoder.embed_document(text)
        assert vector.indices == reference["sparse_indices"][offsets[i] : offsets[i + 1]].tolist()
        np.testing.assert_allclose(vector.values, reference["sparse_values"][offsets[i] : offsets[i + 1]], rtol=1e-6)


def test_a_first_ingest_stores_each_chunk_with_its_vector_from_before(reference, container) -> None:
    """The sample manual read, chunked, embedded and stored by the pipeline: the same chunks, and the store
    holds each one with the vector it had before (found by that vector, with it)."""
    report = container.ingest.ingest([JA_PDF])
    assert [d.status for d in report.documents] == ["ingested"]
    mine = [i for i, source in enumerate(reference["sources"]) if source == JA_PDF.name]
    assert report.documents[0].chunks == len(mine) == 19
    everything = SearchFilter(access_groups=UNRESTRICTED)
    for i in mine:
        [hit] = container.store.leg_search(DENSE, reference["dense"][i], everything, limit=1)
        assert str(reference["embed_texts"][i]).endswith(hit.payload["text"])
        np.testing.assert_allclose(hit.dense_vector, reference["dense"][i], atol=ATOL, rtol=0)


def test_the_dense_embedding_can_read_the_section_heading_alone_while_bm25_keeps_the_whole_path(tmp_path) -> None:
    """``ingest.embed_section = "heading"``: a chunk of "2. Customer Identification > 2.1 Acceptable documents" is
    embedded as title, "2.1 Acceptable documents" and its text (its stored vector is that text's vector), and BM25
    still indexes the parent heading's words, so the chunk is found by them on the sparse leg."""

    everything = SearchFilter(access_groups=UNRESTRICTED)
    found = {}
    for section_mode in ("path", "heading"):
        container = make_container(tmp_path / section_mode, ingest={"embed_section": section_mode})
        try:
            container.ingest.ingest([EN_MD])
            [chunk] = [p for p in container.store.chunks_by_index(*_first_version(container), list(range(40)),
                                                                  everything)
                       if p["section"] == "2. Customer Identification > 2.1 Acceptable documents"][:1]
            seen = "2.1 Acceptable documents" if section_mode == "heading" else chunk["section"]
            expected = container.embedder.embed_passages([f"{chunk['title']}\n{seen}\n{chunk['text']}"])[0]
            [hit] = container.store.leg_search(DENSE, expected, everything, limit=1)
            assert hit.payload["chunk_id"] == chunk["chunk_id"]
            np.testing.assert_allclose(hit.dense_vector, expected, atol=ATOL, rtol=0)
            query = container.ingest.sparse.embed_query("Customer Identification")
            found[section_mode] = {h.payload["chunk_id"] for h in container.store.leg_search(SPARSE, query, everything,
                                                                                             limit=40)}
            assert chunk["chunk_id"] in found[section_mode]
        finally:
            container.close()
    assert found["path"] == found["heading"]  # BM25 reads the same text either way


def _first_version(container) -> tuple[str, int]:
    [version] = container.registry.active()
    return version.doc_id, version.version
