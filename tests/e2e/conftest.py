"""Browser end-to-end fixtures: the app started as the README's `make run` starts it, on a
temp data dir and a free port, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.conftest import SAMPLES
from tests.helpers import REPO, cli_env, free_port, run_cli, wait_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-dev-shm-usage",
]
PASSWORD = "correct-horse-battery"
USERS = {
    "admin1": ("admin", ""),
    "comp1": ("compliance", ""),
    "staff1": ("staff", "branch"),
    "board1": ("staff", "board"),
}


@pytest.fixture(scope="session")
def output_dir() -> Path:
    path = REPO / "test-output" / "e2e"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, output_dir) -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (.ci/run installs it with apt)")
    data = tmp_path_factory.mktemp("e2e") / "data"
    for name, (role, groups) in USERS.items():
        args = ["add", name, "--role", role, "--password-stdin", "--no-must-change"]
        if groups:
            args += ["--groups", groups]
        proc = run_cli("auth", *args, data_dir=data, stdin=PASSWORD + "\n")
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("scripts.first_run", data_dir=data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    secret = tmp_path_factory.mktemp("restricted") / "board_minutes.md"
    secret.write_text(
        "# 取締役会議事メモ\n\n役員賞与の支給基準は、取締役会で別途定める極秘の基準による。\n", encoding="utf-8"
    )
    proc = run_cli("ingest", str(secret), "--access", "board", data_dir=data)
    assert proc.returncode == 0, proc.stderr
    with app_server(data, output_dir / "server.log") as server:
        server.wait_ready()
        yield server.url


class AppServer:
    """One app process started by :func:`app_server`: its URL, and a way to crash it."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process, self.port, self.log_path = process, port, log_path
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 600) -> None:
        try:
            wait_http(f"{self.url}/_stcore/health", timeout=timeout, proc=self.process)
        except (RuntimeError, TimeoutError) as exc:
            log = self.log_path.read_text(encoding="utf-8")[-4000:]
            pytest.fail(f"{exc}; server log ({self.log_path}):\n{log}")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the app and the `make` that started it (a group that is gone already is no error)."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Gone at once, as a crashed host would be (SIGKILL, no goodbye to its browsers)."""
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@contextmanager
def app_server(data: Path, log_path: Path, **env: str) -> Iterator[AppServer]:
    """The app as the README's `make run` starts it, on ``data`` and a free port, on the dev profile with short
    answers (``env`` adds settings); not yet ready when this returns (:meth:`AppServer.wait_ready`, so several
    start at once); stopped at the end."""
    port = free_port()
    full_env = cli_env(data, CQA_PROFILE="dev", CQA_LLM__MAX_ANSWER_TOKENS="80", **env)
    with open(log_path, "w", encoding="utf-8") as log:  # a file, not a pipe nobody reads: never blocks the server
        process = subprocess.Popen(
            ["make", "run", f"PORT={port}"], cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AppServer(process, port, log_path)
    try:
        yield server
    finally:
        server.signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(120_000)
    yield pg
    context.close()


def sign_in(page, app_url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(app_url)
    page.get_by_label("ユーザー名").fill(name)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="サインイン").click()
    page.get_by_text(f"サインイン中: {name}").wait_for()


def upload(page, files: list[Path]) -> None:
    """Drop files on the page's uploader and wait for their chips: the upload has started and the form's
    submit button is disabled until it is done, so a click right after cannot submit without them."""
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files([str(f) for f in files])
    expect(page.locator('[data-testid="stFileChip"]')).to_have_count(len(files), timeout=60_000)


def ask(page, question: str):
    """Ask in the chat box; return the new assistant message once its answer is complete
    (a finished answer carries its feedback widget)."""
    before = page.locator('[data-testid="stFeedback"]').count()
    box = page.locator('[data-testid="stChatInputTextArea"]')
    box.fill(question)
    box.press("Enter")
    page.locator('[data-testid="stChatMessageAvatarAssistant"]').nth(before).wait_for()
    page.locator('[data-testid="stFeedback"]').nth(before).wait_for(timeout=300_000)
    return page.locator('[data-testid="stChatMessage"]').filter(
        has=page.locator('[data-testid="stChatMessageAvatarAssistant"]')
    ).nth(before)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (typed to filter, then clicked)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    for attempt in range(10):  # a script rerun (after an upload, say) may rebuild the box while it is open
        box.click()
        box.fill(option)
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 9:
                raise
            page.keyboard.press("Escape")
    page.wait_for_function(
        "([label, option]) => document.querySelector(`input[aria-label='${label}']`)?.value === option",
        arg=[label, option],
    )


__all__ = ["SAMPLES", "ask", "choose", "sign_in"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "page" in item.funcargs:
        target = REPO / "test-output" / "e2e" / f"FAILED-{item.name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            item.funcargs["page"].screenshot(path=str(target), full_page=True)
        except Exception as exc:  # the page may already be gone; the report still stands
            report.sections.append(("screenshot", f"could not save screenshot: {exc}"))
