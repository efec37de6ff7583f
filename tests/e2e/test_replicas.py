"""Two replicas of the app behind HAProxy (deploy/haproxy-app.cfg, the operations guide's file) on loopback, in
Chromium: a person signs in and asks a question, the replica serving them is killed (SIGKILL, as a crashed host),
and a reload lands on the other replica with the person still signed in and the conversation there to reopen
(issue 19 item 4; docs/operations.md, "App replicas behind a reverse proxy").

The state (users, web sessions, conversations, audit trail, registry) is shared through one real PostgreSQL
database (``database.url``), and the replicas share the session-signing secret (a copy of one
``session-secret.key``, as a deployment copies it to every host): so the signed ``cqa_session`` cookie still holds
on the other replica and the person does **not** sign in again.

The vector store is not shared here: production runs replicas on a Qdrant server (``store.backend = "qdrant"``),
which this machine cannot reach. Each replica gets its own copy of the embedded store, made from one ingest
before the replicas start (``EdgeStore.copy_to``, as the evaluation worker's snapshot is made); the copies stand
in for the shared Qdrant server. Ingesting while the replicas run needs that server: an ingest here would reach
one replica's copy only.

The replica serving the browser is the one its sticky cookie (``SRV``) names; HAProxy's stats page (a frontend the
test adds, not in the deploy file) shows every connection of the browser, the websocket too, went there. Skipped
when haproxy (`make balancer`) or PostgreSQL (`make postgres`) is not installed.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import time
import urllib.request
from contextlib import ExitStack

import pytest
from playwright.sync_api import expect

from auth.web_sessions import COOKIE, SECRET_FILE, load_secret
from bench.llm_cluster import haproxy_path, stop_process
from tests.conftest import EN_MD, JA_PDF, make_container
from tests.e2e.conftest import PASSWORD, app_server, ask, sign_in
from tests.helpers import EVERYTHING, REPO, free_port, run_cli, wait_http

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(haproxy_path() is None, reason="haproxy is not installed: run `make balancer`"),
]

HAPROXY_CFG = REPO / "deploy" / "haproxy-app.cfg"
REPLICAS = ("app1", "app2")
"""The server lines of deploy/haproxy-app.cfg, whose names are also the values of its sticky cookie."""
STICKY = "SRV"
QUESTION = "口座開設時の本人確認書類は？"
SECOND = "What gifts may staff accept?"


def _sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def _answers(page):
    return page.locator('[data-testid="stChatMessage"]').filter(
        has=page.locator('[data-testid="stChatMessageAvatarAssistant"]'))


def _answer_text(message) -> str:
    return message.locator('[data-testid="stMarkdownContainer"]').first.inner_text().strip()


def _idle(page) -> None:
    """Wait for the script run to end: a click while a run rebuilds the sidebar may hit a button being replaced."""
    expect(page.locator('[data-testid="stStatusWidgetRunningIcon"]')).to_have_count(0, timeout=60_000)


def _sessions(stats_url: str) -> dict[str, dict[str, int]]:
    """Per replica, HAProxy's current (``scur``) and total (``stot``) connections, from its stats page."""
    with urllib.request.urlopen(stats_url, timeout=10) as response:
        rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
        return {r["svname"]: {"scur": int(r["scur"]), "stot": int(r["stot"])} for r in rows
                if r["pxname"] == "app_replicas" and r["svname"] in REPLICAS}


def _cookies(page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


def test_a_killed_replica_hands_the_person_to_the_other_with_the_conversation(
    browser, postgres_url, tmp_path, output_dir
):
    started = time.monotonic()
    seed = tmp_path / "seed"
    for name, role in (("admin1", "admin"), ("staff1", "staff")):  # with no admin the app asks to create one
        proc = run_cli("auth", "add", name, "--role", role, "--password-stdin", "--no-must-change",
                       data_dir=seed, stdin=PASSWORD + "\n", CQA_DATABASE__URL=postgres_url)
        assert proc.returncode == 0, proc.stderr
    load_secret(seed / SECRET_FILE)  # one signing secret, copied to every replica below
    state = make_container(seed, database={"url": postgres_url})
    with ExitStack() as stack:
        stack.callback(state.close)
        report = state.ingest.ingest([JA_PDF, EN_MD])  # the one ingest, before the replicas start
        assert not report.failed, report
        replicas = {}
        for name in REPLICAS:
            data = tmp_path / name
            shutil.copytree(seed, data, ignore=shutil.ignore_patterns("store", "store.owner.lock"))
            state.store.copy_to(data / "store")  # stands in for the shared Qdrant server (module docstring)
            replicas[name] = stack.enter_context(app_server(
                data, output_dir / f"replica-{name}.log", CQA_DATABASE__URL=postgres_url,
                CQA_SECURITY__CLIENT_ADDRESS_HEADER="X-Forwarded-For",
            ))
        for replica in replicas.values():  # both start at once, then both must answer their health check
            replica.wait_ready()

        bind, stats_bind = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        stats_cfg = tmp_path / "stats.cfg"  # the test's window on HAProxy: added to the deploy file, not in it
        stats_cfg.write_text(f"frontend stats\n    bind {stats_bind}\n    stats enable\n    stats uri /stats\n",
                             encoding="utf-8")
        stats = f"http://{stats_bind}/stats;csv"
        env = {**os.environ, "APP_BIND": bind}
        env.update({f"APP_REPLICA{i}": f"127.0.0.1:{replicas[name].port}" for i, name in enumerate(REPLICAS, 1)})
        log = stack.enter_context(open(output_dir / "haproxy-app.log", "wb"))
        balancer = subprocess.Popen([haproxy_path(), "-db", "-f", str(HAPROXY_CFG), "-f", str(stats_cfg)], env=env,
                                    cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(stop_process, balancer)
        url = f"http://{bind}"
        wait_http(f"{url}/_stcore/health", timeout=30, proc=balancer)
        before = _sessions(stats)  # that health request went to one of them
        setup_s = time.monotonic() - started

        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        stack.callback(context.close)
        page = context.new_page()
        page.set_default_timeout(120_000)

        sign_in(page, url, "staff1")
        first = _cookies(page).get(STICKY)
        assert first in REPLICAS, f"no sticky cookie from the balancer: {_cookies(page)}"
        other = next(name for name in REPLICAS if name != first)
        answer = ask(page, QUESTION)  # over the websocket of the replica the cookie names
        shown = _answer_text(answer)
        assert shown, "the replica gave an empty answer"
        page.wait_for_url(re.compile(r"\?c=[0-9a-f]{16}$"))
        conversation = page.url.rsplit("=", 1)[1]
        assert [c.id for c in state.conversations.conversations("staff1")] == [conversation]  # in PostgreSQL
        assert _cookies(page)[STICKY] == first
        sessions = _sessions(stats)  # every connection of the browser went to the one replica, the websocket too
        assert sessions[first]["scur"] >= 1 and sessions[other]["stot"] == before[other]["stot"], (before, sessions)
        session_cookie = _cookies(page)[COOKIE]
        page.screenshot(path=str(output_dir / "20-replica-before-kill.png"), full_page=True)

        replicas[first].kill()
        page.reload()
        # Still signed in on the other replica: the signed session cookie holds (same secret, sessions in
        # PostgreSQL); no sign-in form.
        signed_in = page.get_by_text("サインイン中: staff1")
        form = page.get_by_role("button", name="サインイン", exact=True)
        signed_in.or_(form).first.wait_for()
        assert form.count() == 0, "asked to sign in again: the session cookie did not hold on the other replica"
        signed_in.wait_for()
        assert _cookies(page)[STICKY] == other, "the balancer did not move the browser to the live replica"
        assert _cookies(page)[COOKIE] == session_cookie  # the same session, resumed
        assert replicas[other].process.poll() is None and replicas[first].process.poll() is not None
        # The reload reopened the conversation its address names, from PostgreSQL, on the other replica.
        expect(page.locator('[data-testid="stChatMessage"]').first.get_by_text(QUESTION)).to_be_visible()
        page.locator('[data-testid="stFeedback"]').first.wait_for()
        assert _answer_text(_answers(page).first) == shown

        # It is listed there too, and reopens from the list after a new chat.
        _idle(page)
        _sidebar(page).get_by_role("button", name="新しい会話").click()
        expect(page.locator('[data-testid="stChatMessage"]')).to_have_count(0, timeout=30_000)
        _idle(page)
        _sidebar(page).get_by_role("button", name=QUESTION).click()
        page.wait_for_url(re.compile(rf"\?c={conversation}$"))
        page.locator('[data-testid="stFeedback"]').first.wait_for()
        assert _answer_text(_answers(page).first) == shown

        # The other replica answers from its copy of the store and adds to the same conversation.
        ask(page, SECOND)
        page.screenshot(path=str(output_dir / "21-replica-after-kill.png"), full_page=True)
        assert [c.id for c in state.conversations.conversations("staff1")] == [conversation]
        assert len(state.conversations.messages(conversation, "staff1")) == 4
        # One audit trail for both replicas: the one sign-in (on the first), both answers (one on each).
        actions = [r.action for r in reversed(state.audit.search(user="staff1", reader=EVERYTHING))]
        assert actions.count("login") == 1 and sum(a in ("answer", "refuse") for a in actions) == 2, actions
        print(f"replicas test: setup {setup_s:.0f} s, total {time.monotonic() - started:.0f} s")

