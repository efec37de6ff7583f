"""Every page for every role, run by Streamlit's AppTest through app.py on the real services: in Japanese no
English sentence is left in the interface, and a page whose service fails shows a short message with a
reference id (the traceback is in the log under that id), never the traceback."""

from __future__ import annotations

import logging
import re

import pytest
from streamlit.testing.v1 import AppTest

from auth.roles import allowed_pages
from auth.session import SessionClock
from tests.helpers import REPO

APP = str(REPO / "app.py")
PASSWORD = "correct-horse-battery"
PAGE_FILE = {"chat": "chat", "evaluate": "evaluation", "feedback": "feedback", "ingest": "documents",
             "users": "users", "audit": "audit", "settings": "settings", "account": "account"}

# Product names, file formats and codes that stay as they are in the Japanese interface.
ALLOWED = {"Compliance Q&A", "Q&A", "PDF", "CSV", "HTML", "JSONL", "Excel", "ID", "English", "OCR", "SSO", "Asia/Tokyo",
           "make ocr"}
WORD = re.compile(r"^[(\"'「]?[A-Za-z][a-z'-]*[a-z][)\"'」,.:;!?]*$")


def english_runs(text: str) -> list[str]:
    """Runs of two or more consecutive English words (codes with digits, dots or underscores break a run)."""
    for allowed in ALLOWED:
        text = text.replace(allowed, " ")
    runs, current = [], []
    for token in text.split():
        if WORD.match(token):
            current.append(token)
            continue
        if len(current) >= 2:
            runs.append(" ".join(current))
        current = []
    if len(current) >= 2:
        runs.append(" ".join(current))
    return runs


def interface_text(at: AppTest, data: tuple[str, ...] = ()) -> list[str]:
    """What the page itself says: titles, texts, messages, widget labels, placeholders, table headers (not the
    cells: those are data, such as a document's own title; nor the element kinds in ``data``)."""
    texts: list[str] = []
    for kind in ("title", "header", "subheader", "caption", "info", "warning", "error", "success", "markdown"):
        if kind not in data:
            texts += [e.value for e in at.get(kind)]
    for kind in ("button", "text_input", "text_area", "selectbox", "multiselect", "checkbox", "number_input",
                 "date_input", "radio", "toggle", "download_button", "file_uploader", "expander", "tab"):
        for element in at.get(kind):
            proto = getattr(element, "proto", None)
            for field in ("label", "placeholder", "help"):
                value = getattr(proto, field, "") if proto is not None else getattr(element, field, "")
                if isinstance(value, str):
                    texts.append(value)
    for kind in ("dataframe", "table"):
        for element in at.get(kind):
            texts += [str(c) for c in element.value.columns]
    return texts


@pytest.fixture
def signed_in(samples_container):
    """An AppTest of app.py with a session signed in as a new user of ``role``."""
    import ui.state

    users = samples_container.users
    users.add_user("first-admin", PASSWORD, ["admin"])  # past the first-run setup
    samples_container.close()
    ui.state.container.clear()

    def make(name: str, role: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=300)
        account = users.get(name) or users.add_user(name, PASSWORD, [role])
        at.session_state["user"] = account
        at.session_state["clock"] = SessionClock(30)
        return at

    yield make
    ui.state.eval_jobs.clear()
    ui.state.container.clear()


def test_english_runs_finds_sentences_and_passes_codes():
    assert english_runs("Sign-in failed: wrong user name") == ["Sign-in failed: wrong user name"]
    assert english_runs("hit_at_k と faithfulness は PDF の指標") == []
    assert english_runs("閲覧グループ: board, branch") == ["board, branch"]  # a run is a run: the caller decides


def uploader_in_japanese(at: AppTest) -> bool:
    """Streamlit's own uploader texts ("Upload", "100MB per file") are put in Japanese by ui/uploader.py's script
    (AppTest does not draw them): every page with an uploader must carry it, in Japanese."""
    scripts = [h.proto.body for h in at.get("html") if "cqaUploaderLang" in h.proto.body]
    return not at.get("file_uploader") or any('cqaUploaderLang = "ja"' in s and "アップロード" in s for s in scripts)


def chat_data(at: AppTest) -> list[str]:
    """What the chat shows that is data, not interface: the documents' titles, file names and sections, the answer
    and its quotes (longest first, so a title goes before the short title of a chip)."""
    import ui.state
    from ui.answer_view import short_title
    from ui.markup import answer_markdown, as_text

    data = []
    for v in ui.state.container().registry.all_versions():
        data += [v.title, as_text(v.title), short_title(v.title), v.source, as_text(v.source)]
    for turn in at.session_state["chat"]:
        answer = turn.get("answer")
        data += [turn["content"], *turn["content"].splitlines()]
        if answer is not None:
            data += [answer_markdown(answer.answer), *answer_markdown(answer.answer).splitlines()]
            for c in answer.citations:
                data += [c.quote, c.section, as_text(c.section), c.title, short_title(c.title)]
    return sorted({d.strip() for d in data if d and d.strip()}, key=len, reverse=True)


def chat_runs(at: AppTest) -> list[str]:
    """The chat's English runs once the data is taken out, chips included."""
    texts = interface_text(at) + [o for chip in at.get("button_group") for o in chip.options]
    data = chat_data(at)
    found = []
    for text in texts:
        for item in data:
            text = text.replace(item, " ")
        found += english_runs(text)
    return found


def chat_leaks(at: AppTest) -> list[str]:
    """The empty chat (examples, the documents answers draw on), then an answer with its first source open."""
    found = chat_runs(at)
    at.chat_input[0].set_value("口座開設時の本人確認書類は？").run()
    assert not at.exception, at.exception
    chips = at.get("button_group")
    assert chips and [m for m in at.chat_message if m.name == "assistant"], "no answer with citations"
    chips[0].set_value(chips[0].options[0]).run()
    assert not at.exception, at.exception
    return found + chat_runs(at)


@pytest.mark.parametrize("role", ["staff", "compliance", "admin"])
def test_every_page_of_every_role_speaks_only_japanese(signed_in, role):
    at = signed_in(f"{role}-ja", role)
    at.run()
    assert not at.exception, at.exception
    leaks: dict[str, list[str]] = {}
    for key in allowed_pages(at.session_state["user"]):
        at.switch_page(str(REPO / "ui" / "pages" / f"{PAGE_FILE[key]}.py")).run()
        assert not at.exception, (key, at.exception)
        if key == "chat":  # empty, then with an answer, its citations and the cited page
            found = chat_leaks(at)
        else:
            found = [run for text in interface_text(at) for run in english_runs(text)]
        if not uploader_in_japanese(at):
            found.append("Streamlit's file uploader texts")
        if found:
            leaks[key] = found
    assert not leaks, f"English in the Japanese interface: {leaks}"


def test_signed_in_user_sees_the_account_page_and_changes_the_password(signed_in):
    at = signed_in("staff-pw", "staff")
    at.run()
    at.switch_page(str(REPO / "ui" / "pages" / "account.py")).run()

    def field(label: str):
        return next(i for i in at.text_input if i.label == label)

    def change(new: str) -> None:
        field("現在のパスワード").input(PASSWORD)
        field("新しいパスワード").input(new)
        field("パスワード（確認）").input(new)
        next(b for b in at.button if b.label == "パスワードを変更").click().run()
        assert not at.exception, at.exception

    change("short")
    assert at.error and "文字以上" in at.error[0].value, [e.value for e in at.error]  # the policy, in Japanese
    assert field("新しいパスワード").value == "short"  # the form keeps what was typed
    change("a-much-longer-passphrase")
    assert "パスワードを変更しました。" in [s.value for s in at.success]


FAILING = {  # page -> (what to break on the real services, the attribute)
    "documents": ("registry", "all_versions"),
    "users": ("users", "list_users"),
    "audit": ("audit", "check_head"),
    "feedback": ("feedback", "recent"),
}


@pytest.mark.parametrize("page", sorted(FAILING))
def test_a_failing_page_shows_a_reference_not_a_traceback(signed_in, page, caplog, monkeypatch):
    import ui.state

    at = signed_in("admin-fail", "admin")
    at.run()
    part, method = FAILING[page]

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(getattr(ui.state.container(), part), method, broken)
    with caplog.at_level(logging.ERROR, logger="cqa.ui"):
        at.switch_page(str(REPO / "ui" / "pages" / f"{page}.py")).run()
    assert not at.exception, at.exception
    shown = " ".join(e.value for e in at.error)
    assert "disk on fire" not in shown and "Traceback" not in shown
    reference = re.search(r"参照番号 ([0-9a-f]{8})", shown)
    assert reference, shown
    logged = [r for r in caplog.records if reference.group(1) in r.getMessage()]
    assert logged and "disk on fire" in str(logged[0].exc_info[1])


def test_the_evaluation_page_with_a_run_that_has_no_results_yet(signed_in, monkeypatch):
    """The 評価 page opened while a run has just started (no question done): no StopIteration, a message."""
    import ui.state

    jobs = ui.state.eval_jobs()
    monkeypatch.setattr(jobs, "samples", lambda run_id, reader: [])
    at = signed_in("comp-empty", "compliance")
    at.run()
    at.switch_page(str(REPO / "ui" / "pages" / "evaluation.py")).run()
    assert not at.exception, at.exception
    if jobs.list_runs():
        assert "この実行にはまだ結果がありません。" in [i.value for i in at.info]


def test_an_expected_failure_is_said_in_the_users_language(signed_in):
    """A service error with a message key: its Japanese sentence, no reference id, no English."""
    at = signed_in("admin-users", "admin")
    at.run()
    at.switch_page(str(REPO / "ui" / "pages" / "users.py")).run()
    at.text_input[0].input("bad name!")
    at.text_input[2].input("correct-horse-battery-staple")
    next(b for b in at.button if b.label == "追加").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["ユーザー名は英数字と「. _ @ -」で 1〜64 文字にしてください。"]
    assert at.text_input[0].value == "bad name!"  # kept for correction


def test_feedback_on_an_answer_becomes_a_test_case_in_one_step(signed_in, samples_container):
    """A rated answer on the フィードバック page: saved as a test case with its question, the reviewer's reference
    answer and the cited page as gold source; an answer citing a document the reviewer may not read is not
    listed."""
    import json

    import ui.state
    from qa.feedback import Feedback

    at = signed_in("comp-fb", "compliance")
    services = ui.state.container()
    public = next(v for v in services.registry.all_versions() if v.status == "active" and "*" in v.access)
    cite = {"n": 1, "doc_id": public.doc_id, "source": public.source, "page": 2, "section": "", "quote": "q"}
    services.record_feedback(Feedback(user="staff1", question="本人確認書類は？", answer="運転免許証です。[1]",
                                      positive=True, comment="", citations=[cite], prompt_version="v2",
                                      model="dev"))
    secret = {**cite, "doc_id": "no-such-document"}  # gone, or outside the reader's groups: withheld
    services.record_feedback(Feedback(user="board1", question="役員賞与の基準は？", answer="極秘の基準。[1]",
                                      positive=False, comment="", citations=[secret], prompt_version="v2",
                                      model="dev"))
    at.run()
    at.switch_page(str(REPO / "ui" / "pages" / "feedback.py")).run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["質問"]) == ["本人確認書類は？"]
    assert any("1 件" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "テストケースとして保存").click().run()
    assert not at.exception, at.exception
    assert "from-feedback.jsonl" in at.success[0].value
    saved = services.settings.data_dir / "eval" / "uploads" / "from-feedback.jsonl"
    saved = saved if saved.exists() else next(services.settings.data_dir.rglob("from-feedback.jsonl"))
    (case,) = [json.loads(line) for line in saved.read_text(encoding="utf-8").splitlines()]
    assert case["question"] == "本人確認書類は？" and case["reference_answer"] == "運転免許証です。[1]"
    assert case["gold_sources"] == [{"source": public.source, "pages": [2], "sections": []}]
    assert "feedback" in case["tags"] and "reviewed" in case["tags"]


def test_a_failed_evaluation_run_is_explained_in_japanese(signed_in):
    """A run that ends on an expected failure (here a test set that does not exist): the 評価 page says why in
    Japanese, without the service's English or a traceback."""
    import ui.state

    jobs = ui.state.eval_jobs()
    job = jobs.wait(jobs.start(REPO / "eval" / "testsets" / "no-such-set.jsonl", metrics="ours"), timeout=120)
    assert job.status == "failed" and job.failure is not None
    at = signed_in("comp-failed", "compliance")
    at.run()
    at.switch_page(str(REPO / "ui" / "pages" / "evaluation.py")).run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.error]
    assert "評価の実行が失敗しました: テストセット no-such-set.jsonl が見つかりません。" in shown, shown


def test_a_running_evaluation_is_stopped_from_the_page(signed_in):
    """While a run is queued or running the 評価 page shows its state in Japanese and a stop button; the button
    stops the job in the worker (the run stays resumable)."""
    import ui.state

    jobs = ui.state.eval_jobs()
    job_id = jobs.start(REPO / "eval" / "testsets" / "sample.jsonl", metrics="ours")
    at = signed_in("comp-stop", "compliance")
    at.run()
    at.switch_page(str(REPO / "ui" / "pages" / "evaluation.py")).run()
    assert not at.exception, at.exception
    shown = [e.value for e in at.info] + [p.proto.text for p in at.get("progress")]
    assert any("評価ワーカー" in text or "実行中" in text for text in shown), shown
    stop = next(b for b in at.button if b.label == "評価を停止")
    stop.click().run()
    assert not at.exception, at.exception
    assert jobs.wait(job_id, timeout=300).status == "stopped"


def test_times_are_shown_in_the_site_zone_and_an_unknown_zone_is_refused(monkeypatch, tmp_path):
    from datetime import UTC, date, datetime

    import ui.clock
    from settings import load_settings

    monkeypatch.setenv("CQA_DATA_DIR", str(tmp_path))
    assert load_settings().ui.time_zone == "Asia/Tokyo"
    monkeypatch.setenv("CQA_UI__TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(Exception, match="unknown time zone 'Mars/Olympus_Mons'"):
        load_settings()

    from zoneinfo import ZoneInfo

    monkeypatch.setattr(ui.clock, "site_zone", lambda: ZoneInfo("Asia/Tokyo"))
    assert ui.clock.local_time(datetime(2026, 12, 2, 16, 30, tzinfo=UTC)) == "2026-12-03 01:30"
    assert ui.clock.local_time("2026-12-02T16:30:05") == "2026-12-03 01:30"  # naive text is UTC
    assert ui.clock.day_start(date(2026, 12, 3)) == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    assert ui.clock.day_start(date(2026, 12, 3), next_day=True) == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    # the 評価 page's chart: naive site-zone wall-clock times, which the browser draws as they are
    shown = ui.clock.wall_clock(["2026-12-02T16:30:05+00:00", "2026-12-02T16:30:05", datetime(2026, 12, 2, 16, 30,
                                                                                                 tzinfo=UTC)])
    assert [str(t) for t in shown] == ["2026-12-03 01:30:05", "2026-12-03 01:30:05", "2026-12-03 01:30:00"]
