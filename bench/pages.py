"""How fast the app answers clicks: `python -m bench.pages [--rounds 5] [--json]`.

Starts the app as `make run` does (streamlit on a free local port, a fresh data dir with the sample documents
and one user per role), drives it with Playwright in Debian's Chromium and times, on the idle app:

- sign-in: the click on サインイン until the signed-in sidebar shows;
- page switches: a click on a sidebar link until that page's title is drawn (every page of the admin, then of
  the compliance user), ``--rounds`` times.

Prints p50 / p95 per action and over all page switches (the target is p95 ≤ 1 s). The machine's load average is
printed too: the figures mean little when other jobs share the cores. Then, with the server stopped, the same
pages' script runs alone (Streamlit's AppTest in this process, as the admin): the server's share of a click,
without the browser and the websocket.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from core.cli import ArgumentParser, run

PROG = "python -m bench.pages"
REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery"
USERS = {"bench-admin": "admin", "bench-comp": "compliance"}
TITLES = {  # sidebar link -> the page's title (what "the page is drawn" waits for)
    "質問する": None, "評価": "評価", "フィードバック": "フィードバック", "文書管理": "文書管理",
    "ユーザー管理": "ユーザー管理", "監査ログ": "監査ログ", "設定": "設定", "アカウント": "アカウント",
}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(data: Path) -> dict[str, str]:
    env = {**os.environ, "CQA_DATA_DIR": str(data), "CQA_PROFILE": "dev", "PYTHONPATH": str(REPO)}
    for name, role in USERS.items():
        subprocess.run([sys.executable, "-m", "auth", "add", name, "--role", role, "--password-stdin",
                        "--no-must-change"], input=PASSWORD + "\n", env=env, cwd=REPO, check=True, text=True,
                       capture_output=True)
    subprocess.run([sys.executable, "-m", "scripts.first_run"], env=env, cwd=REPO, check=True, capture_output=True)
    return env


def _wait(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _sign_in(page, url: str, name: str) -> float:
    page.goto(url)
    page.get_by_label("ユーザー名").fill(name)
    page.get_by_label("パスワード").fill(PASSWORD)
    started = time.perf_counter()
    page.get_by_role("button", name="サインイン").click()
    page.get_by_text(f"サインイン中: {name}").wait_for()
    return time.perf_counter() - started


def _switch(page, link: str) -> float:
    """Click a sidebar link; the time until the new page's title is drawn and the script run has finished."""
    title = TITLES[link]
    started = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link, exact=True).click()
    if title:
        page.locator("h1").filter(has_text=title).first.wait_for()
    else:
        page.locator('[data-testid="stChatInput"]').wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
    return time.perf_counter() - started


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (a Japanese character takes two)."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - used)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(values), "p50_s": round(statistics.median(values), 3), "p95_s": round(p95, 3),
            "max_s": round(max(values), 3)}


def script_runs(data: Path, rounds: int) -> dict[str, list[float]]:
    """Seconds of one script run of each page (app.py with the page), as the admin, in this process."""
    os.environ.update({"CQA_DATA_DIR": str(data), "CQA_PROFILE": "dev"})
    from streamlit.testing.v1 import AppTest

    from app import PAGE_FILES
    from auth.session import SessionClock
    from auth.store import UserStore
    from settings import load_settings

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.session_state["user"] = UserStore.from_settings(load_settings()).get("bench-admin")
    at.session_state["clock"] = SessionClock(30)
    at.run()
    times: dict[str, list[float]] = {}
    for attempt in range(rounds + 1):  # the first round warms up
        for name, _ in PAGE_FILES.values():
            at.switch_page(str(REPO / "ui" / "pages" / f"{name}.py"))
            started = time.perf_counter()
            at.run()
            if attempt:
                times.setdefault(name, []).append(time.perf_counter() - started)
    return times


def measure(rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"sign-in": []}
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        env = _prepare(Path(tmp) / "data")
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
             str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(f"{url}/_stcore/health")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
                for name in USERS:
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.set_default_timeout(120_000)
                    _sign_in(page, url, name)  # warm-up: the first run loads the models and the store
                    links = [a.inner_text().strip().splitlines()[-1] for a in
                             page.locator('[data-testid="stSidebarNav"] a').all()]
                    for link in links:  # warm-up: each page once
                        _switch(page, link)
                    for _ in range(rounds):
                        for link in links:
                            times.setdefault(link, []).append(_switch(page, link))
                    context.close()
                    for _ in range(rounds):
                        context = browser.new_context(viewport={"width": 1400, "height": 1000})
                        page = context.new_page()
                        page.set_default_timeout(120_000)
                        times["sign-in"].append(_sign_in(page, url, name))
                        context.close()
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        load = os.getloadavg()
        scripts = script_runs(Path(tmp) / "data", rounds)
    switches = [v for k, vs in times.items() if k != "sign-in" for v in vs]
    return {"load_average": load, "rounds": rounds,
            "actions": {k: _summary(v) for k, v in times.items()}, "all page switches": _summary(switches),
            "script runs": {k: _summary(v) for k, v in scripts.items()},
            "all script runs": _summary([v for vs in scripts.values() for v in vs])}


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="times each page switch and sign-in is timed")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = parser.parse_args(argv)
    result = measure(args.rounds)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"load average {result['load_average'][0]:.1f}; {args.rounds} rounds after a warm-up")
    for heading, rows in (
        ("in the browser", [*result["actions"].items(), ("all switches", result["all page switches"])]),
        ("script run alone", [*result["script runs"].items(), ("all pages", result["all script runs"])]),
    ):
        print(f"\n{_pad(heading, 16)} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
        for name, s in rows:
            print(f"{_pad(name, 16)} {s['n']:>3} {s['p50_s']:>7.3f} {s['p95_s']:>7.3f} {s['max_s']:>7.3f}")
    return 0


if __name__ == "__main__":
    run(PROG, main)
