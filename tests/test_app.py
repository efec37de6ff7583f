"""The app's pages run by Streamlit's AppTest on the real services: sign-in gate, chat
with citation chips, and role checks that hold even when a page is opened directly."""

from __future__ import annotations

import csv as csv_mod
import io
import json

import pytest
from streamlit.testing.v1 import AppTest

from auth.session import SessionClock
from core.schema import SearchFilter
from tests.helpers import EVERYTHING, REPO

APP = str(REPO / "app.py")
PASSWORD = "correct-horse-battery"


@pytest.fixture
def app_for(samples_container):
    """An AppTest whose session is signed in as a user with the given role."""
    import ui.state

    users = samples_container.users
    users.add_user("admin1", PASSWORD, ["admin"])
    samples_container.close()
    ui.state.container.clear()

    def make(name: str | None, role: str = "staff", groups=()):
        at = AppTest.from_file(APP, default_timeout=300)
        if name:
            account = users.get(name) or users.add_user(name, PASSWORD, [role], list(groups))
            at.session_state["user"] = account
            at.session_state["clock"] = SessionClock(30)
        return at

    yield make
    ui.state.eval_jobs.clear()
    ui.state.container.clear()


def test_signed_out_users_see_only_the_sign_in_form(app_for):
    at = app_for(None)
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["サインイン"] or any(b.label == "サインイン" for b in at.button)
    assert not at.chat_input


def test_chat_page_answers_with_citation_chips(app_for):
    at = app_for("staff1")
    at.run()
    assert not at.exception
    at.chat_input[0].set_value("口座開設時の本人確認書類は？").run()
    assert not at.exception, at.exception
    assistant = [m for m in at.chat_message if m.name == "assistant"]
    assert assistant and " ".join(md.value for md in assistant[-1].markdown).strip()
    assert at.get("button_group"), "no citation chips under the answer"


def test_documents_page_refuses_staff_even_when_opened_directly(app_for):
    at = AppTest.from_file(str(REPO / "ui" / "pages" / "documents.py"), default_timeout=120)
    staff = app_for("staff2")
    at.session_state["user"] = staff.session_state["user"]
    at.run()
    assert at.error and "権限" in at.error[0].value
    assert not at.get("file_uploader")


def test_admin_re_ingests_a_server_folder_and_deletes_a_document(app_for, tmp_path, monkeypatch):
    """Folder sync from the documents page: new files ingested, a bad one reported, the stored one read again
    after an upgrade that reads it otherwise, then a delete that needs a confirmation and lands on the audit
    trail."""
    import shutil

    import ingest.reading
    import ui.state
    from tests.conftest import EN_MD

    folder = tmp_path / "manuals"
    folder.mkdir()
    shutil.copy(EN_MD, folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nbroken")
    at = AppTest.from_file(str(REPO / "ui" / "pages" / "documents.py"), default_timeout=300)
    at.session_state["user"] = app_for("admin1").session_state["user"]
    at.run()
    at.text_input[0].set_value(str(folder))
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("broken.pdf: PDF" in e.value for e in at.error)
    assert len(at.get("progress")) == 2  # overall and the current file
    assert not [m.value for m in at.markdown if "ingestion stage" in m.value]  # no stray text (Streamlit "magic")
    services = ui.state.container()
    [manual] = [v for v in services.registry.all_versions() if v.source == EN_MD.name]
    assert manual.status == "active"

    monkeypatch.setattr(ingest.reading, "READING_VERSION", ingest.reading.READING_VERSION + 1)  # an upgrade
    at.text_input[0].set_value(str(folder))  # the form was cleared on submit
    at.button[0].click().run()
    assert not at.exception, at.exception
    [report] = [table.value for table in at.table if "置き換えた版" in table.value.columns]
    replaced = report["置き換えた版"].tolist()
    assert f"{manual.title} v1 (読み取り方式の更新で再読込)" in replaced, replaced
    manual = services.registry.active_version(manual.doc_id)
    assert manual.version == 2

    delete = next(b for b in at.button if b.label == "削除")
    assert delete.disabled  # not before the confirmation box is ticked
    assert at.selectbox[-1].value is None  # nothing is chosen for deletion at first
    at.selectbox[-1].set_value(next(o for o in at.selectbox[-1].options if manual.doc_id in o)).run()
    at.checkbox[0].check().run()
    next(b for b in at.button if b.label == "削除").click().run()
    assert not at.exception, at.exception
    assert manual.doc_id not in {v.doc_id for v in services.registry.all_versions()}
    assert any("削除しました" in s.value for s in at.success)
    # after the delete nothing is chosen or ticked: the next document is not one click from deletion
    assert at.selectbox[-1].value is None and not at.checkbox[0].value and at.checkbox[0].disabled
    assert next(b for b in at.button if b.label == "削除").disabled
    assert ("admin1", "delete") in [(r.user, r.action) for r in services.audit.search(user="admin1", reader=EVERYTHING)]


def test_evaluation_page_shows_a_finished_run_and_its_reports(app_for):
    import ui.state

    jobs = ui.state.eval_jobs()
    job = jobs.start(REPO / "eval" / "testsets" / "sample.jsonl", metrics="ours", ids=["en-004", "ja-006"])
    finished = jobs.wait(job, timeout=600)
    assert finished.status == "finished", finished.error

    at = AppTest.from_file(str(REPO / "ui" / "pages" / "evaluation.py"), default_timeout=120)
    at.session_state["user"] = app_for("auditor1", role="compliance").session_state["user"]
    at.run()
    assert not at.exception, at.exception
    assert {"hit_at_k", "refusal_accuracy"} <= set(at.table[0].value["指標"])
    assert set(at.dataframe[0].value["ID"]) == {"en-004", "ja-006"}
    assert "評価モデルの理由" in at.table[1].value.columns  # the chosen question's scores and reasons, a table
    from tests.test_app_pages import english_runs, interface_text

    shown = interface_text(at, data=("markdown", "caption"))  # the question, its answer and passages are data
    assert not [run for text in shown for run in english_runs(text)]  # a run shown, in Japanese
    assert len(at.get("download_button")) == 2

    public = SearchFilter(access_groups=())
    html = jobs.report(finished.run_id, "html", public).decode("utf-8")  # what the download buttons send
    assert "en-004" in html and "<script" not in html
    japanese = jobs.report(finished.run_id, "html", public, "ja").decode("utf-8")
    assert "質問ごとの結果" in japanese and "Questions" not in japanese and "lang='ja'" in japanese
    from ui.i18n import reason_text

    # the page's download sends the score reasons in the reader's language (stored in English, as the CSV keeps)
    translated = jobs.report(finished.run_id, "html", public, "ja",
                             reason_words=lambda reason: reason_text(reason, "ja")).decode("utf-8")
    stored = {cell for row in csv_mod.DictReader(io.StringIO(jobs.report(finished.run_id, "csv", public)
                                                             .decode("utf-8-sig")))
              for name, cell in row.items() if name.endswith("_reason") and cell}
    assert stored, "the run stored no score reasons to translate"
    for reason in stored:
        assert f"title='{reason}'" not in translated and reason_text(reason, "ja") != reason
    assert len(jobs.report(finished.run_id, "csv", public).decode("utf-8-sig").splitlines()) == 3


def test_evaluation_page_drafts_questions_for_review_and_saves_the_kept_ones(app_for, samples_container):
    at = AppTest.from_file(str(REPO / "ui" / "pages" / "evaluation.py"), default_timeout=300)
    at.session_state["user"] = app_for("auditor2", role="compliance").session_state["user"]
    at.run()
    next(n for n in at.number_input if n.label == "下書きの数").set_value(1)
    next(b for b in at.button if b.label == "文書から下書きを作成").click().run()
    assert not at.exception, at.exception
    (draft,) = at.session_state["eval_drafts"]
    assert draft.question and draft.gold_sources[0].source and "draft" in draft.tags

    next(b for b in at.button if b.label == "採用した質問を保存").click().run()
    assert not at.exception, at.exception
    assert "reviewed.jsonl" in at.success[0].value
    saved = samples_container.settings.data_dir / "eval" / "testsets" / "reviewed.jsonl"
    (case,) = [json.loads(line) for line in saved.read_text(encoding="utf-8").splitlines()]
    assert case["question"] == draft.question and "reviewed" in case["tags"] and "draft" not in case["tags"]


def test_settings_page_shows_settings_with_secrets_masked(app_for, monkeypatch):
    import ui.state

    monkeypatch.setenv("CQA_STORE__QDRANT_API_KEY", "s3cret-key-value")
    ui.state.container.clear()
    at = AppTest.from_file(str(REPO / "ui" / "pages" / "settings.py"), default_timeout=120)
    at.session_state["user"] = app_for("admin1").session_state["user"]
    at.run()
    assert not at.exception, at.exception
    shown = at.json[0].value
    assert "s3cret-key-value" not in shown and "**********" in shown and "retrieval" in shown

    staff = AppTest.from_file(str(REPO / "ui" / "pages" / "settings.py"), default_timeout=120)
    staff.session_state["user"] = app_for("staff9").session_state["user"]
    staff.run()
    assert staff.error and not staff.json
