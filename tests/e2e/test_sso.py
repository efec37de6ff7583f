"""Single sign-on for real: npm's certified oidc-provider started on 127.0.0.1 as the bank's IdP,
the app started with an [auth] secrets block pointing at it, both driven in Chromium.

The IdP sends its groups in the ID token's ``groups`` claim (as Entra ID, ADFS or Keycloak send AD/LDAP
groups); the site file maps them to app roles and access groups. Also here: after a session times out,
no page link of the signed-out role stays in the sidebar (password sign-in on the same server)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from audit.log import AUDIT_DB_NAME, AuditLog
from auth.store import USERS_DB_NAME, UserStore
from tests.helpers import EVERYTHING, REPO, cli_env, free_port, run_cli, wait_http

pytestmark = pytest.mark.e2e

OIDC_DIR = Path(os.environ.get("CQA_OIDC_DIR") or Path.home() / ".cache" / "cqa-oidc")
PASSWORD = "correct-horse-battery"
TIMEOUT_MINUTES = 0.5
SSO_BUTTON = "シングルサインオンでサインイン"
IDP_USERS = {
    "alice": {"password": "alice-at-the-idp", "name": "Alice Sato",
              "groups": ["CQA-Staff", "CQA-Compliance", "CQA-Board"]},
    "mallory": {"password": "mallory-at-the-idp", "name": "Mallory", "groups": ["Sales"]},
}
SITE = f"""
[security]
session_timeout_minutes = {TIMEOUT_MINUTES}
oidc_provider = "testidp"
oidc_username_claim = "preferred_username"
oidc_groups_claim = "groups"

[security.oidc_group_map.CQA-Staff]
roles = ["staff"]

[security.oidc_group_map.CQA-Compliance]
roles = ["compliance"]
groups = ["compliance"]

[security.oidc_group_map.CQA-Board]
groups = ["board"]
"""


@dataclass
class IdP:
    url: str
    users_file: Path
    client_id: str
    client_secret: str
    app_port: int

    def set_groups(self, user: str, groups: list[str]) -> None:
        """Change a user's groups at the IdP (as an AD admin would); seen at the next sign-in."""
        users = json.loads(self.users_file.read_text(encoding="utf-8"))
        users[user]["groups"] = groups
        self.users_file.write_text(json.dumps(users), encoding="utf-8")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def idp(tmp_path_factory, output_dir):
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed: the SSO test runs npm's oidc-provider (apt-get install npm)")
    make = subprocess.run(["make", "-s", "oidc", f"OIDC_DIR={OIDC_DIR}"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert make.returncode == 0, make.stdout + make.stderr
    assert (OIDC_DIR / "node_modules" / "oidc-provider").is_dir(), "make oidc did not install oidc-provider"
    shutil.copy(REPO / "tests" / "oidc" / "provider.mjs", OIDC_DIR / "provider.mjs")  # beside its node_modules
    users_file = tmp_path_factory.mktemp("idp") / "users.json"
    users_file.write_text(json.dumps(IDP_USERS), encoding="utf-8")
    port, app_port = free_port(), free_port()
    found = IdP(f"http://127.0.0.1:{port}", users_file, "compliance-qa", secrets.token_urlsafe(24), app_port)
    env = {**os.environ, "OIDC_PORT": str(port), "OIDC_USERS": str(users_file), "OIDC_CLIENT_ID": found.client_id,
           "OIDC_CLIENT_SECRET": found.client_secret,
           "OIDC_REDIRECT_URI": f"http://127.0.0.1:{app_port}/oauth2callback"}
    log_path = output_dir / "oidc-provider.log"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(["node", "provider.mjs"], cwd=OIDC_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        try:
            wait_http(f"{found.url}/.well-known/openid-configuration", timeout=60, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}; provider log:\n{log_path.read_text(encoding='utf-8')[-3000:]}")
        yield found
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def sso_app(idp, tmp_path_factory, output_dir):
    """The app as `make run` starts it (same streamlit command), with the site file and secrets a bank
    would install: [auth] + [auth.testidp] in a secrets file, the group mapping in the site file."""
    base = tmp_path_factory.mktemp("sso")
    data = base / "data"
    for name, role in (("admin1", "admin"), ("staff9", "staff")):
        proc = run_cli("auth", "add", name, "--role", role, "--password-stdin", "--no-must-change", data_dir=data,
                       stdin=PASSWORD + "\n")
        assert proc.returncode == 0, proc.stderr
    site = base / "site.toml"
    site.write_text(SITE, encoding="utf-8")
    secrets_file = base / "secrets.toml"
    secrets_file.write_text(f"""
[auth]
redirect_uri = "http://127.0.0.1:{idp.app_port}/oauth2callback"
cookie_secret = "{secrets.token_hex(32)}"

[auth.testidp]
client_id = "{idp.client_id}"
client_secret = "{idp.client_secret}"
server_metadata_url = "{idp.url}/.well-known/openid-configuration"
client_kwargs = {{ scope = "openid profile email groups", prompt = "login" }}
""", encoding="utf-8")
    secrets_file.chmod(0o600)
    env = cli_env(data, CQA_SETTINGS_FILE=str(site))
    log_path = output_dir / "sso-server.log"
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(idp.app_port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--secrets.files", str(secrets_file)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        try:
            wait_http(f"http://127.0.0.1:{idp.app_port}/_stcore/health", timeout=300, proc=server)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}; server log:\n{log_path.read_text(encoding='utf-8')[-3000:]}")
        yield f"http://127.0.0.1:{idp.app_port}", data
    finally:
        _stop(server)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def sso_sign_in(page, app_url: str, user: str, *, go: bool = True) -> None:
    """From the app's sign-in screen through the IdP's own sign-in form and back."""
    if go:
        page.goto(app_url)
    page.get_by_role("button", name=SSO_BUTTON).click()
    page.get_by_label("IdP user").fill(user)  # the IdP's page, not the app's
    assert page.url.startswith("http://127.0.0.1:") and "/interaction/" in page.url
    page.get_by_label("IdP password").fill(IDP_USERS[user]["password"])
    page.get_by_role("button", name="Sign in at the IdP").click()


def sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_sso_sign_in_maps_idp_groups_follows_them_and_signs_out(page, sso_app, idp, output_dir):
    app_url, data = sso_app
    sso_sign_in(page, app_url, "alice")
    page.get_by_text("サインイン中: alice").wait_for()
    page.get_by_text("閲覧グループ: board, compliance").wait_for()  # CQA-Board and CQA-Compliance at the IdP
    expect(page.get_by_role("link", name="評価")).to_be_visible()  # CQA-Compliance -> compliance role
    page.locator('[data-testid="stChatInputTextArea"]').wait_for()
    page.screenshot(path=str(output_dir / "5-sso-signed-in.png"), full_page=True)
    account = UserStore(data / USERS_DB_NAME).get("alice")
    assert (account.source, account.roles, account.groups) == ("oidc", ("compliance", "staff"), ("board", "compliance"))

    # sign-out ends the app session, Streamlit's identity cookie and the IdP session
    page.get_by_role("button", name="サインアウト").click()
    page.get_by_role("button", name="Yes, sign me out").click()  # the IdP's end-session page
    page.get_by_role("button", name=SSO_BUTTON).wait_for()
    assert "サインイン中" not in sidebar(page)
    page.reload()
    page.get_by_role("button", name=SSO_BUTTON).wait_for()
    assert "サインイン中" not in sidebar(page)

    # the IdP admin removes alice from two groups: at her next sign-in she has lost that access
    idp.set_groups("alice", ["CQA-Staff"])
    sso_sign_in(page, app_url, "alice", go=False)
    page.get_by_text("サインイン中: alice").wait_for()
    page.get_by_text("閲覧グループ: -").wait_for()
    expect(page.get_by_role("link", name="評価")).to_have_count(0)
    account = UserStore(data / USERS_DB_NAME).get("alice")
    assert (account.roles, account.groups) == (("staff",), ())
    update = AuditLog(data / AUDIT_DB_NAME).search(action="user_change", text="sso_update", reader=EVERYTHING)[0]
    assert update.detail["before"]["groups"] == ["board", "compliance"] and update.detail["groups"] == []


def test_sso_user_without_a_mapped_group_is_refused(page, sso_app):
    app_url, data = sso_app
    sso_sign_in(page, app_url, "mallory")  # a real IdP user, in no group mapped to this app
    page.get_by_text("このアカウントには、このアプリの利用権限がありません").wait_for()
    assert "サインイン中" not in sidebar(page)
    expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
    assert UserStore(data / USERS_DB_NAME).get("mallory") is None
    refused = AuditLog(data / AUDIT_DB_NAME).search(action="login_failed", reader=EVERYTHING)[0]
    assert refused.detail["reason"] == "sso_no_role" and refused.detail["idp_groups"] == ["Sales"]


def test_after_a_session_timeout_no_page_link_stays(page, sso_app, output_dir):
    app_url, _ = sso_app
    page.goto(app_url)
    page.get_by_label("ユーザー名").fill("admin1")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="サインイン", exact=True).click()
    page.get_by_text("サインイン中: admin1").wait_for()
    nav = page.locator('[data-testid="stSidebarNav"]')
    expect(nav.get_by_role("link", name="文書管理")).to_be_visible()
    time.sleep(TIMEOUT_MINUTES * 60 + 2)
    nav.get_by_role("link", name="監査ログ").click()  # the first interaction after the timeout
    page.get_by_text(re.compile("一定時間操作がなかったため")).wait_for()
    page.get_by_label("ユーザー名").wait_for()
    expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
    for name in ("質問する", "文書管理", "監査ログ", "ユーザー管理", "評価", "設定"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    expect(page.get_by_role("button", name="サインアウト")).to_have_count(0)
    assert "サインイン中" not in sidebar(page)
    page.screenshot(path=str(output_dir / "6-session-timeout.png"), full_page=True)
