"""Drive the app with Streamlit's AppTest under egress_probe: first sign-in, a question,
and every admin page (documents, users, audit, evaluation, settings)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

import core.offline  # noqa: F401
from auth.store import UserStore
from settings import load_settings

REPO = Path(__file__).resolve().parents[1]
UserStore.from_settings(load_settings()).add_user("probe-admin", "correct-horse-battery", ["admin"])

app = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
app.run()
app.text_input[0].input("probe-admin")
app.text_input[1].input("correct-horse-battery")
app.button[0].click().run()
assert not app.exception, app.exception
app.chat_input[0].set_value("口座開設時の本人確認書類は？").run()
assert not app.exception, app.exception
for page in ("documents", "users", "audit", "evaluation", "settings"):
    app.switch_page(str(REPO / "ui" / "pages" / f"{page}.py")).run()
    assert not app.exception, (page, app.exception)
print("probe ok")
