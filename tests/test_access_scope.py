"""Access scope fails closed: no search, answer, draft or evaluation can be made without a scope, and the
scope a CLI gets without --user is public documents only (the evaluation path included)."""

from __future__ import annotations

import inspect
import json

import pytest

from core.schema import UNRESTRICTED, SearchFilter
from qa.service import AnswerService, Requester
from tests.conftest import JA_PDF
from tests.helpers import run_json


def test_a_search_filter_or_requester_without_a_scope_cannot_be_made():
    with pytest.raises(TypeError):
        SearchFilter()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        SearchFilter(access_groups=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Requester()  # type: ignore[call-arg]
    assert SearchFilter(access_groups=()).access_groups == () and repr(UNRESTRICTED) == "UNRESTRICTED"


def test_every_service_call_that_returns_document_text_requires_a_scope():
    from eval.drafts import draft_questions
    from eval.jobs import EvalJobs
    from eval.report import export_csv, export_html, readable_samples
    from ingest.service import IngestService
    from ingest.viewer import SourceViewer
    from retrieval.service import RetrievalService
    from retrieval.store.base import VectorStore

    calls = [(RetrievalService.retrieve, "flt"), (RetrievalService.neighbours, "flt"),
             (AnswerService.ask, "requester"), (AnswerService.stream, "requester"), (draft_questions, "flt"),
             (VectorStore.hybrid_search, "flt"), (VectorStore.leg_search, "flt"),
             (VectorStore.chunks_by_index, "flt"), (IngestService.page_pdf, "flt"),
             (SourceViewer.page_image, "flt"), (SourceViewer.pdf_path, "flt"), (SourceViewer.section, "flt"),
             (SourceViewer.documents, "flt"), (SourceViewer.readable, "flt"),
             (EvalJobs.samples, "reader"), (EvalJobs.report, "reader"), (EvalJobs.export, "reader"),
             (export_csv, "reader"), (export_html, "reader"), (readable_samples, "reader")]
    for function, name in calls:
        parameter = inspect.signature(function).parameters[name]
        assert parameter.default is inspect.Parameter.empty, f"{function.__qualname__}({name}=...) has a default"


def test_an_evaluation_run_without_a_user_sees_public_documents_only(tmp_path):
    data = tmp_path / "data"
    secret = tmp_path / "board_pay.md"
    secret.write_text("# 役員報酬規程\n\n役員賞与の支給基準は、極秘の基準表Zによる。\n", encoding="utf-8")
    assert run_json("ingest", str(JA_PDF), "--json", data_dir=data)[0] == 0
    assert run_json("ingest", str(secret), "--access", "board", "--json", data_dir=data)[0] == 0
    testset = tmp_path / "cases.jsonl"
    testset.write_text(json.dumps({"id": "q1", "question": "役員賞与の支給基準は？", "answerable": False},
                                  ensure_ascii=False) + "\n", encoding="utf-8")
    code, out = run_json("eval", "run", str(testset), "--metrics", "hit_at_k,refusal_accuracy", "--json",
                         data_dir=data)
    assert code == 0, out
    from eval.run_store import RunStore, store_path
    from settings import load_settings

    store = RunStore(store_path(load_settings(data_dir=data).data_dir))
    run = store.get(out["run_id"])
    assert run.config["requester"] == {"name": "cli", "groups": []}
    [sample] = store.samples(out["run_id"])
    assert "極秘" not in json.dumps(sample, ensure_ascii=False)
