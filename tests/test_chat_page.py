"""The chat page run by Streamlit's AppTest on the real services: the empty chat's examples and documents, the
question limit said out loud, the cited PDF page shown in the app, and conversations stored and reopened."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from auth.session import SessionClock
from tests.helpers import REPO

APP = str(REPO / "app.py")
PASSWORD = "correct-horse-battery"
QUESTION = "口座開設時の本人確認書類は？"


@pytest.fixture
def chat_as(samples_container):
    """An AppTest of the chat page whose session is signed in as ``name`` (a staff user)."""
    import ui.state

    users = samples_container.users
    users.add_user("admin1", PASSWORD, ["admin"])
    samples_container.close()
    ui.state.container.clear()

    def make(name: str, groups=()):
        at = AppTest.from_file(APP, default_timeout=300)
        account = users.get(name) or users.add_user(name, PASSWORD, ["staff"], list(groups))
        at.session_state["user"] = account
        at.session_state["clock"] = SessionClock(30)
        return at

    yield make
    ui.state.container.clear()


def _texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [b.label for b in at.button]
                     + [e.label for e in at.expander])


def test_an_empty_chat_offers_examples_and_lists_the_documents_answers_draw_on(chat_as):
    at = chat_as("staff1")
    at.run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.button]
    assert QUESTION in labels and "疑わしい取引に気づいたらどうすればよいですか？" in labels
    text = _texts(at)
    assert "回答の根拠にする文書（2 件）" in text
    assert "ja_account_opening_manual.pdf" in text and "en_gifts_and_aml_manual.md" in text


def test_a_question_over_the_limit_is_refused_with_the_count_and_can_be_shortened(chat_as):
    at = chat_as("staff1")
    at.run()
    at.chat_input[0].set_value("本人確認" * 600).run()  # 2,400 characters, the limit is 2,000
    assert not at.exception, at.exception
    assert any("2,400 文字、上限 2,000 文字" in e.value for e in at.error)
    assert not [m for m in at.chat_message if m.name == "assistant"]
    send = next(b for b in at.button if b.label == "この質問を送る")
    assert send.disabled
    at.text_area(key="too_long_text").set_value(QUESTION).run()
    assert any(c.value == "14 / 2,000 文字" for c in at.caption)
    next(b for b in at.button if b.label == "この質問を送る").click().run()
    assert not at.exception, at.exception
    assert [m for m in at.chat_message if m.name == "assistant"]
    assert not at.error


def test_an_answer_shows_its_cited_page_with_the_passage_and_is_kept_as_a_conversation(chat_as, samples_container):
    at = chat_as("staff1")
    at.run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    chips = at.get("button_group")
    assert chips, "no citation chips"
    label = chips[0].options[0]
    assert label.startswith("[1] ") and " p." in label
    chips[0].set_value(label).run()
    assert not at.exception, at.exception
    images = [h.proto.body for h in at.get("html") if "data:image/png;base64," in h.proto.body]
    assert len(images) == 1, "the cited page is not shown in the app"
    assert any(m.value.startswith("**PDF ") and "/ 4 ページ" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "次のページ").click().run()
    assert not at.exception, at.exception
    assert any("引用箇所は" in c.value for c in at.caption)

    conversations = samples_container.conversations.conversations("staff1")
    assert len(conversations) == 1 and conversations[0].title == QUESTION and conversations[0].messages == 2

    later = chat_as("staff1")  # another browser session (a reload) with the address naming the conversation
    later.query_params["c"] = conversations[0].id
    later.run()
    assert not later.exception, later.exception
    users = [m for m in later.chat_message if m.name == "user"]
    assert users and users[0].markdown[0].value == QUESTION
    assert [m for m in later.chat_message if m.name == "assistant"]

    stranger = chat_as("staff9")
    stranger.query_params["c"] = conversations[0].id
    stranger.run()
    assert not stranger.exception, stranger.exception
    assert not [m for m in stranger.chat_message if m.name == "user"]
    assert any("その会話は見つかりません" in i.value for i in stranger.info)


def test_the_as_of_date_answers_from_the_versions_in_force_then(chat_as):
    """The samples are in force from the day they were ingested: asked as of 2020, nothing was in force, so the
    answer is the no-passage refusal (without the date reaching retrieval, the same question is answered)."""
    import datetime

    at = chat_as("staff1")
    at.run()
    at.toggle(key="as_of_on").set_value(True).run()
    at.date_input(key="as_of_date").set_value(datetime.date(2020, 1, 1)).run()
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception, at.exception
    assert any(c.value == "2020-01-01 時点で有効だった版から回答しました。" for c in at.caption)
    assert any("関連する記載が見つからなかった" in i.value for i in at.info)
    assert not at.get("button_group")
