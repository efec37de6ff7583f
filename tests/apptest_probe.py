"""Render the app with Streamlit's AppTest and ask one question (used under egress_probe)."""

from streamlit.testing.v1 import AppTest

app = AppTest.from_file("app.py", default_timeout=300)
app.run()
assert not app.exception, app.exception
app.chat_input[0].set_value("口座開設時の本人確認書類は？").run()
assert not app.exception, app.exception
