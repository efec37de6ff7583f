"""Signed browser sessions: a cookie resumes its session until it is tampered with, too old, idle or revoked."""

from __future__ import annotations

import os
import stat

import pytest

from auth.web_sessions import SECRET_FILE, WebSessions, load_secret

T0 = 1_800_000_000.0


@pytest.fixture
def sessions(tmp_path, state_target) -> WebSessions:
    return WebSessions(state_target("sessions"), load_secret(tmp_path / SECRET_FILE), idle_minutes=30,
                       max_hours=12)


def test_a_cookie_resumes_its_session_and_records_the_use(sessions):
    token = sessions.start("staff1", "password", now=T0)
    resumed = sessions.resume(token, now=T0 + 60)
    assert resumed.refusal is None and resumed.session.user == "staff1" and resumed.session.via == "password"
    # used at T0+60: still open 29 minutes later, although 30 have passed since sign-in
    again = sessions.resume(token, now=T0 + 60 + 29 * 60)
    assert again.session is not None and again.session.last_seen == T0 + 60 + 29 * 60


def test_each_page_run_finds_out_when_the_session_ended_elsewhere(sessions):
    token = sessions.start("staff1", "password", now=T0)
    session = sessions.resume(token, now=T0).session
    session = sessions.touch(session, now=T0 + 20 * 60)
    assert session is not None and sessions.touch(session, now=T0 + 45 * 60) is not None  # used at T0+20min
    other_tab = sessions.resume(token, now=T0 + 46 * 60).session
    sessions.revoke(other_tab, "logout", now=T0 + 47 * 60)
    assert sessions.touch(session, now=T0 + 48 * 60) is None
    idle = sessions.resume(sessions.start("staff1", "password", now=T0), now=T0).session
    assert sessions.touch(idle, now=T0 + 31 * 60) is None
    assert sessions.resume(token, now=T0 + 31 * 60).refusal == "revoked"


def test_idle_past_the_timeout_ends_the_session_for_good(sessions):
    token = sessions.start("staff1", "password", now=T0)
    assert sessions.resume(token, now=T0 + 30 * 60).refusal == "idle"
    assert sessions.resume(token, now=T0 + 30 * 60 + 1).refusal == "revoked"


def test_no_session_outlives_the_longest_sign_in_however_active(sessions):
    token = sessions.start("staff1", "password", now=T0)
    moment = T0
    while moment < T0 + 12 * 3600 - 600:
        moment += 600
        assert sessions.resume(token, now=moment).session is not None
    assert sessions.resume(token, now=T0 + 12 * 3600).refusal == "expired"


def test_a_tampered_or_foreign_cookie_is_refused(sessions, tmp_path):
    token = sessions.start("staff1", "password", now=T0)
    body, signature = token.rsplit(".", 1)
    flipped = body + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert sessions.resume(flipped, now=T0 + 1).refusal == "bad_signature"
    assert sessions.resume("not-a-cookie", now=T0 + 1).refusal == "bad_signature"
    other = WebSessions(tmp_path / "other.sqlite3", b"x" * 32, idle_minutes=30, max_hours=12)
    forged = other.start("admin1", "password", now=T0)
    assert sessions.resume(forged, now=T0 + 1).refusal == "bad_signature"
    assert sessions.resume(token, now=T0 + 1).session.user == "staff1"


def test_sign_out_and_a_password_change_revoke(sessions):
    first = sessions.start("staff1", "password", now=T0)
    second = sessions.start("staff1", "password", now=T0)
    other = sessions.start("comp1", "password", now=T0)
    kept = sessions.resume(second, now=T0 + 1).session
    sessions.revoke(sessions.resume(first, now=T0 + 1).session, "logout", now=T0 + 2)
    assert sessions.resume(first, now=T0 + 3).refusal == "revoked"
    sessions.start("staff1", "password", now=T0)
    assert sessions.revoke_user("staff1", "password_changed", keep=kept, now=T0 + 4) == 1
    assert sessions.resume(second, now=T0 + 5).session is not None
    assert sessions.revoke_user("staff1", "disabled", now=T0 + 6) == 1
    assert sessions.resume(second, now=T0 + 7).refusal == "revoked"
    assert sessions.resume(other, now=T0 + 7).session is not None


def test_the_secret_is_owner_only_and_kept(tmp_path):
    path = tmp_path / "data" / SECRET_FILE
    secret = load_secret(path)
    assert len(secret) == 32 and load_secret(path) == secret
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="fewer than 32 bytes"):
        load_secret(path)


def test_purge_forgets_ended_sessions(tmp_path):
    sessions = WebSessions(tmp_path / "sessions.sqlite3", b"s" * 32, idle_minutes=30, max_hours=72)
    ended = sessions.start("staff1", "password", now=T0)
    sessions.revoke(sessions.resume(ended, now=T0).session, "logout", now=T0)
    live = sessions.start("staff1", "password", now=T0 + 2 * 86400 - 60)
    assert sessions.purge(now=T0 + 2 * 86400) == 1
    assert sessions.resume(ended, now=T0 + 2 * 86400).refusal == "unknown"
    assert sessions.resume(live, now=T0 + 2 * 86400).session is not None
