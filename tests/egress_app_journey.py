"""The app journey for the egress tests: serve the app, sign in in Chromium, ask one question.

    python tests/egress_app_journey.py USER QUESTION [--server-prefix CMD] [--browser-prefix CMD]

The data dir and profile come from the environment (``CQA_DATA_DIR``, ``CQA_PROFILE``); USER must exist with
the e2e tests' password. The server is started as ``make run`` starts it (``streamlit run app.py`` on 127.0.0.1)
behind ``--server-prefix`` (a command such as ``strace ... --``, given as one shell-quoted string), and Chromium
is launched by Playwright behind ``--browser-prefix``. Run this whole script in a network namespace and both
the server and the browser are in it. Prints one JSON line: the port, every URL the page requested (HTTP and
WebSocket) and the answer text."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, PASSWORD, ask, sign_in
from tests.helpers import REPO, free_port, wait_http


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _stop(server: subprocess.Popen, prefixed: bool) -> None:
    """SIGTERM to the app itself (a tracer in front of it exits after it, with the whole trace written)."""
    targets = _children(server.pid) if prefixed else [server.pid]
    for pid in targets or [server.pid]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _browser_executable(prefix: list[str], workdir: Path) -> str:
    if not prefix:
        return CHROMIUM
    wrapper = workdir / "chromium"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.join(prefix)} {shlex.quote(CHROMIUM)} \"$@\"\n", encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("user")
    p.add_argument("question")
    p.add_argument("--server-prefix", default="")
    p.add_argument("--browser-prefix", default="")
    args = p.parse_args(argv)
    server_prefix, browser_prefix = shlex.split(args.server_prefix), shlex.split(args.browser_prefix)
    port = free_port()
    cmd = [*server_prefix, sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    requested: list[str] = []
    with tempfile.TemporaryDirectory(prefix="egress-app-") as tmp:
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w", encoding="utf-8") as log:
            server = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            try:
                wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=300, proc=server)
            except (RuntimeError, TimeoutError) as exc:
                print(f"{exc}\n{log_path.read_text(encoding='utf-8')[-4000:]}", file=sys.stderr)
                return 1
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=_browser_executable(browser_prefix, Path(tmp)), args=CHROMIUM_FLAGS
                )
                context = browser.new_context()
                context.on("request", lambda r: requested.append(r.url))
                page = context.new_page()
                page.on("websocket", lambda ws: requested.append(ws.url))
                page.set_default_timeout(120_000)
                sign_in(page, f"http://127.0.0.1:{port}", args.user, PASSWORD)
                answer = ask(page, args.question).inner_text().strip()
                time.sleep(1)  # let the page's last requests go out before the browser closes
                context.close()
                browser.close()
        finally:
            _stop(server, bool(server_prefix))
    print(json.dumps({"port": port, "requested": requested, "answer": answer}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
