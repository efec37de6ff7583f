"""Per-file ingest errors and evaluation score reasons in the user's language (issue 17, item 4): every bad-input
class a reader refuses carries a message key whose Japanese sentence renders (the English ``str()`` stays for the
command line and the logs); every reason a metric or the judge writes is matched to a key; the catalogue has both
languages with the same parameters; and the documents page says a failed file's error in Japanese."""

from __future__ import annotations

import io
import json
import re
import string
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.errors import IngestError
from ingest.ocr import OcrConfig, PageOcr
from ingest.readers import read_document
from ingest.readers.sniffing import _KIND_CODES, _MAGIC
from tests.hostile_corpus import PNG, _docx, docx_entity_bomb, docx_zip_bomb
from tests.test_app_pages import english_runs, signed_in  # noqa: F401 (a fixture)
from tests.test_readers import make_pdf
from ui.errors import error_text
from ui.i18n import STRINGS, reason_text

REPO = Path(__file__).resolve().parents[1]
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
LAW = '<?xml version="1.0" encoding="UTF-8"?><Law><LawBody><LawTitle>{title}</LawTitle>{body}</LawBody></Law>'


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _japanese_without(text: str, params: dict) -> str:
    """``text`` with the parameters' values taken out (a file's own name or a library's words are data)."""
    for value in params.values():
        text = text.replace(str(value), " ")
    return text


PREFIXES = ("err_ingest_", "reason_", "uploader_", "eval_compare_col_", "eval_change_", "eval_draft_col_")


@pytest.mark.parametrize("key", sorted(k for k in STRINGS if k.startswith(PREFIXES)))
def test_each_sentence_is_in_japanese_and_english_with_the_same_parameters(key):
    ja, en = STRINGS[key]["ja"], STRINGS[key]["en"]
    assert _fields(ja) == _fields(en), key
    sample = {name: "" for name in _fields(ja)}
    assert (JAPANESE.search(ja) or ja == en == "ID") and not english_runs(ja.format(**sample)), ja
    assert not JAPANESE.search(en), en


def test_every_key_the_ingest_code_raises_has_its_sentence():
    """The keys written in ingest/ (literal or built from the readers' type tables) are all in the catalogue."""
    keys = set()
    for path in (REPO / "ingest").rglob("*.py"):
        keys |= set(re.findall(r'key="([a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    keys |= {f"ingest_type_{code}" for _, _, code, _ in _MAGIC}
    keys |= {f"ingest_{family}_{code}" for family in ("mismatch", "no_extension") for code in _KIND_CODES.values()}
    keys |= {"bad_file_name", "ingest_unreadable", "ingest_read_failed"}  # ingest/service.py's _failed
    assert len(keys) > 40
    assert sorted(k for k in keys if f"err_{k}" not in STRINGS) == []


def _bad_files(folder: Path) -> list[tuple[Path, str, dict]]:
    """(file, the key its error must carry, read_document's other arguments): one per class of bad input."""
    folder.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes | str) -> Path:
        path = folder / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return path

    pdf = make_pdf(folder / "good.tmp", [["本人確認の手続"]]).read_bytes()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("notes.txt", "not a Word document")
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    broken_docx = io.BytesIO()
    with zipfile.ZipFile(broken_docx, "w") as zf:
        zf.writestr("word/document.xml", "<not really")
    from tests.test_readers import encrypt_pdf

    no_ocr = PageOcr(OcrConfig(command=str(folder / "no-such-tesseract")))
    return [
        (put("hello.pdf", "hello\nworld\n"), "ingest_mismatch_text", {}),
        (put("report.txt", pdf), "ingest_mismatch_pdf", {}),
        (put("report", pdf), "ingest_no_extension_pdf", {}),
        (put("scan.pdf", PNG), "ingest_type_png", {}),
        (put("archive.docx", zipped.getvalue()), "ingest_type_zip", {}),
        (put("book.xlsx", workbook.getvalue()), "ingest_type_xlsx", {}),
        (put("junk.txt", bytes(range(256)) * 40), "ingest_type_binary", {}),
        (put("empty.txt", ""), "ingest_empty", {}),
        (put("big.txt", "本人確認\n" * 200_000), "ingest_too_large", {"max_bytes": 1024 * 1024}),
        (folder / "missing.txt", "ingest_unreadable", {}),
        (put("broken.pdf", b"%PDF-1.4\nbroken"), "ingest_pdf_truncated", {}),
        (put("junk.pdf", b"%PDF-1.7\n" + b"not a pdf body " * 50 + b"\n%%EOF\n"), "ingest_pdf_damaged", {}),
        (encrypt_pdf(put("plain.pdf", pdf), folder / "locked.pdf", user_password="s3cret"), "ingest_pdf_password",
         {}),
        (make_pdf(folder / "scanned.pdf", [[], []]), "ingest_pdf_no_text", {}),
        (make_pdf(folder / "scanned2.pdf", [[]]), "ingest_pdf_no_text_no_ocr", {"ocr": no_ocr}),
        (put("empty.docx", _docx("")), "ingest_no_text_docx", {}),
        (put("damaged.docx", broken_docx.getvalue()), "ingest_word_damaged", {}),
        (docx_entity_bomb(folder / "laughs.docx"), "ingest_word_entities", {}),
        (docx_zip_bomb(folder / "dense.docx", unpacked_mb=2), "ingest_word_packed_too_tight", {}),
        (put("other.xml", '<?xml version="1.0"?><catalog><item>x</item></catalog>'), "ingest_xml_not_egov", {}),
        (put("cut.xml", '<?xml version="1.0"?><Law><LawBody><LawTitle>法</LawTitle>'), "ingest_xml_malformed", {}),
        (put("xxe.xml", '<?xml version="1.0"?><!DOCTYPE Law [<!ENTITY x "y">]>' + LAW.format(title="&x;", body="")
             .split("?>", 1)[1]), "ingest_xml_entities", {}),
        (put("blank.xml", LAW.format(title="", body="")), "ingest_no_text_egov_xml", {}),
        (put("deep.html", "<html><body>" + "<div>" * 600 + "深い" + "</div>" * 600 + "</body></html>"),
         "ingest_html_too_deep", {}),
        (put("flood.html", "<html><body>" + "<i>x</i>" * 200_001 + "</body></html>"), "ingest_html_too_many_tags", {}),
        (put("script.html", "<html><body><script>var x = 1;</script></body></html>"), "ingest_no_text_html", {}),
    ]


def test_each_bad_input_class_is_said_in_japanese_and_its_english_message_is_kept(tmp_path):
    seen = []
    for path, key, kwargs in _bad_files(tmp_path / "bad"):
        with pytest.raises(IngestError) as caught:
            read_document(path, **kwargs)
        exc = caught.value
        assert exc.key == key, (path.name, exc.key, str(exc))
        ja, en = error_text(exc, "ja"), error_text(exc, "en")
        assert not JAPANESE.search(str(exc)), str(exc)  # the command line's and the log's words are unchanged
        assert JAPANESE.search(ja) and "詳細:" not in ja, ja  # a sentence of its own, not the generic fallback
        assert not english_runs(_japanese_without(ja, exc.params)), (path.name, ja)
        assert not JAPANESE.search(_japanese_without(en, exc.params)), en
        seen.append(key)
    assert len(seen) == len(set(seen))


def test_the_big_zip_bomb_is_said_in_japanese(tmp_path):
    with pytest.raises(IngestError) as caught:
        read_document(docx_zip_bomb(tmp_path / "bomb.docx", unpacked_mb=300))
    assert caught.value.key == "ingest_word_unpacks_too_large"
    assert error_text(caught.value, "ja").startswith("Word 文書を展開すると 3")


# -- evaluation reasons ------------------------------------------------------------------------------------------

REASONS = {  # a reason as a run stores it -> its Japanese sentence
    "no gold sources or reference passages": "正解の出典も参照文もない質問",
    "answer cites nothing": "回答に出典がない",
    "refused or unanswerable, no citations": "回答を控えたか回答できない質問のため、出典なし",
    "answerable, refused": "回答できる質問に回答を控えた",
    "unanswerable, answered": "回答できない質問に回答した",
    "unanswerable question": "回答できない質問",
    "answered": "回答した",
    "refused (no_relevant_passage)": "回答を控えた（関連する記載が見つからなかった）",
    "not_stated": "回答を控えた（資料に記載がないと判断した）",
    "refused (noncommittal)": "回答を控えた（明言しなかった）",
    "refused: no claims to check": "回答を控えたため、確かめる主張がない",
    "no verified citation on a gold page": "正解のページの検証済み出典がない",
    "no contexts retrieved": "記載が一つも検索されなかった",
    "no reference answer": "模範回答がない",
    "not scored": "採点されていない",
    "NaN": "採点結果が数値にならなかった（NaN）",
    "judge: returned no verdicts for the statements": "評価モデルが文ごとの判定を返さなかった",
    "judge: prompt of 9000 tokens does not fit the judge's 8192-token context":
        "評価モデルへの入力（9000 トークン）が文脈長 8192 トークンに収まらない",
    "judge: NLIStatementOutput: output cut at max_tokens=512":
        "評価モデルの出力が上限 512 トークンで途切れた（NLIStatementOutput）",
    "answer failed: RuntimeError: boom": "回答の作成に失敗（RuntimeError: boom）",
    "ValueError: bad input": "指標の計算でエラー（ValueError: bad input）",
}


@pytest.mark.parametrize("reason", list(REASONS))
def test_a_stored_reason_is_shown_in_japanese(reason):
    assert reason_text(reason, "ja") == REASONS[reason]
    assert not JAPANESE.search(reason_text(reason, "en"))


def test_the_metrics_reasons_all_have_a_key():
    """Every reason our own metrics write (eval/metrics.py), over answered, refused, answerable and unanswerable
    cases, is matched to a key; an unknown reason is shown as it is."""
    from core.schema import Answer, Citation, Timings
    from eval.metrics import SAMPLE_METRICS, sample_metrics
    from eval.reasons import reason_message
    from eval.testset import GoldSource, TestCase

    citation = Citation(n=1, doc_id="d", source="a.pdf", page=1, section="", quote="q", verified=True)

    def answer(**fields) -> Answer:
        return Answer(**{"answer": "a", "citations": [], "refused": False, "contexts": [], "timings": Timings(),
                         **fields})

    reasons = set()
    for answerable in (True, False):
        case = TestCase(id="x", question="q", answerable=answerable, gold_sources=[GoldSource(source="b.pdf")])
        for shown in (answer(citations=[citation]), answer(answer="", refused=True, refusal_reason="not_stated"),
                      answer()):
            for score in sample_metrics(case, shown, 5, SAMPLE_METRICS).values():
                if score.reason:
                    reasons.add(score.reason)
    assert len(reasons) > 8
    assert sorted(r for r in reasons if reason_message(r) is None) == []
    assert reason_text("a reason from a newer build", "ja") == "a reason from a newer build"


# -- the documents page ------------------------------------------------------------------------------------------


@pytest.fixture
def admin_app(samples_container):
    import ui.state

    admin = samples_container.users.add_user("admin1", "correct-horse-battery", ["admin"])
    samples_container.close()
    ui.state.container.clear()
    yield admin
    ui.state.container.clear()


def test_the_documents_page_says_each_failed_file_in_japanese(admin_app, tmp_path):
    folder = tmp_path / "server-folder"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nbroken")
    (folder / "hello.pdf").write_text("hello\nworld\n", encoding="utf-8")
    (folder / "scan.pdf").write_bytes(PNG)
    at = AppTest.from_file(str(REPO / "ui" / "pages" / "documents.py"), default_timeout=300)
    at.session_state["user"] = admin_app
    at.run()
    assert any("cqaUploaderLang = \"ja\"" in h.proto.body for h in at.get("html"))  # the uploader's own texts
    at.text_input[0].set_value(str(folder))
    at.button[0].click().run()
    assert not at.exception, at.exception
    shown = sorted(e.value for e in at.error)
    assert shown == [
        "broken.pdf: PDF が壊れているか、途中で切れています（ファイル末尾の印がありません）。",
        "hello.pdf: ファイル名の拡張子は .pdf ですが、中身はテキストです。名前を直すか、意図したファイルを"
        "アップロードしてください。",
        "scan.pdf: 対応していないファイル形式です（PNG 画像）。取り込めるのは PDF、Word（.docx）、HTML、"
        "e-Gov 法令 XML、Markdown とテキストのファイルです。",
    ], shown
    errors = set(at.table[0].value["エラー"])
    assert "PDF が壊れているか、途中で切れています（ファイル末尾の印がありません）。" in errors


# -- the evaluation page -----------------------------------------------------------------------------------------


def test_the_evaluation_page_says_reasons_and_a_comparison_in_japanese(signed_in):  # noqa: F811 (the fixture)
    """Two finished runs (our own metrics, one question): the per-question reasons, the run comparison's columns
    and the rest of the page in Japanese."""
    import ui.state
    from tests.test_app_pages import interface_text

    jobs = ui.state.eval_jobs()
    for _ in range(2):
        job = jobs.wait(jobs.start(REPO / "eval" / "testsets" / "sample.jsonl", metrics="ours", limit=1), timeout=600)
        assert job.status == "finished", job
    at = signed_in("comp-reasons", "compliance")
    at.run()
    at.switch_page(str(REPO / "ui" / "pages" / "evaluation.py")).run()
    assert not at.exception, at.exception
    leaks = [run for text in interface_text(at) for run in english_runs(text)]
    assert not leaks, leaks
    reasons = [r for table in at.table for r in table.value.get("評価モデルの理由", [])]
    assert reasons and all(JAPANESE.search(r) for r in reasons if r), reasons
    columns = [str(c) for table in at.table for c in table.value.columns]
    assert {"比較対象", "この実行", "差"} <= set(columns), columns
    specs = [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]
    times = [s["encoding"]["x"] for s in specs if s.get("encoding", {}).get("x", {}).get("type") == "temporal"]
    assert [x["title"] for x in times] == ["作成日時 (Asia/Tokyo)"], specs  # the history chart, in the site's zone
