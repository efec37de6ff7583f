"""What the ingest's read-ahead thread runs beside the embedding threads, and the app beside both for other sessions,
is safe to run at once: every PDFium call holds the one process-wide lock, and the production embedder's tokenizer is
not shared between threads."""

from __future__ import annotations

import ctypes
import gc
import threading

import pytest

from ingest.page_view import render_page
from ingest.pdfium_lock import PDFIUM
from ingest.readers import read_document
from tests.conftest import JA_PDF
from tests.test_ocr import need_tesseract, scanned_copy


def test_every_pdfium_call_holds_the_process_wide_lock(tmp_path, monkeypatch):
    """PDFium is not thread-safe (pypdfium2's documentation): the reader on the read-ahead thread, the OCR renderer
    and the page viewer of another session must never call it at once."""
    need_tesseract()
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    scan = scanned_copy(JA_PDF, tmp_path / "scan.pdf", {1})
    outside = []
    for name in dir(pdfium_c):
        function = getattr(pdfium_c, name)
        if isinstance(function, ctypes._CFuncPtr):  # PDFium's C functions, not its types
            def checked(*args, _name=name, _function=function):
                if not PDFIUM._is_owned():
                    outside.append(_name)
                return _function(*args)

            monkeypatch.setattr(pdfium_c, name, checked)
    assert pypdfium2.raw is pdfium_c
    from ingest.ocr import OcrConfig, PageOcr

    doc = read_document(scan, ocr=PageOcr(OcrConfig()))
    assert doc.pages[0].ocr and doc.pages[1].text
    assert render_page(JA_PDF, 1, "本人確認") is not None
    gc.collect()
    assert outside == []


def test_the_production_embedders_tokenizer_counts_while_it_encodes():
    """The chunker counts tokens on the read-ahead thread while the embedder encodes on another: a Hugging Face
    fast tokenizer shared by both fails ("Already borrowed") or encodes with the other call's truncation."""
    pytest.importorskip("sentence_transformers", reason="the production embedder's library (make setup installs it)")
    from retrieval.embedding import SentenceTransformerEmbedder
    from settings import EmbeddingSettings

    embedder = SentenceTransformerEmbedder(EmbeddingSettings(backend="sentence-transformers", batch_size=1))
    long_text = "Customer due diligence measures apply when a business relationship is established. " * 30
    expected = embedder.embed_passages([long_text])[0]  # truncated to the model's length
    errors, done = [], threading.Event()

    def count() -> None:
        try:
            while not done.is_set():
                embedder.count_tokens("A short sentence to count. " * 5)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        vectors = [embedder.embed_passages([long_text, long_text]) for _ in range(40)]
    finally:
        done.set()
        counter.join()
    assert errors == []
    assert all(abs(float(v @ expected) - 1.0) < 1e-5 for pair in vectors for v in pair)
