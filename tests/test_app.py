"""The chat page, run by Streamlit's AppTest on the real services."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


@pytest.fixture
def app(samples_container):
    import ui.state

    ui.state.container.clear()
    at = AppTest.from_file("app.py", default_timeout=300)
    yield at
    ui.state.container.clear()


def test_chat_page_answers_with_citation_chips(app, samples_container):
    samples_container.close()
    app.run()
    assert not app.exception
    app.chat_input[0].set_value("口座開設時の本人確認書類は？").run()
    assert not app.exception, app.exception
    messages = [m for m in app.chat_message if m.name == "assistant"]
    assert messages, "no assistant message"
    text = " ".join(md.value for md in messages[-1].markdown)
    assert text.strip()
    pills = app.get("button_group")
    assert pills, "no citation chips"
