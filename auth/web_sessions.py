"""Signed-in browser sessions that survive a reload.

Signing in starts a session: a random id, kept here (as its SHA-256, so the table holds nothing a browser could
present) with the user, the time it began and the time it was last used. The browser holds the id in a cookie,
signed with a secret kept in the data directory (itsdangerous: HMAC-SHA256 over the id and the time it was
issued, so a cookie older than the longest session is refused before the table is read). A reload presents the
cookie; the session resumes only when the signature holds, the session is younger than the longest one
(``security.session_max_hours``), it was used within the idle timeout (``security.session_timeout_minutes``, as
before) and nobody revoked it. Signing out revokes it here, so a copied cookie is worthless afterwards; so do a
password change and a disabled account (:meth:`WebSessions.revoke_user`)."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Column, Float, MetaData, Table, Text, delete, insert, or_, select, update

from db import Database

COOKIE = "cqa_session"
SECRET_FILE = "session-secret.key"
_SALT = "cqa.web-session"
_TOUCH_EVERY = 15.0
"""Seconds between writes of a session's last use (every page run reads it; not every run needs a write)."""

SESSIONS = Table(
    "web_sessions",
    MetaData(),
    Column("sid_hash", Text, primary_key=True),
    Column("user", Text, nullable=False),
    Column("via", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("revoked_at", Float),
    Column("revoked_why", Text),
)

Refusal = Literal["bad_signature", "expired", "idle", "revoked", "unknown"]


@dataclass(frozen=True)
class WebSession:
    sid: str
    user: str
    via: str
    """How the user signed in: ``password`` or ``oidc``."""
    created_at: float
    last_seen: float


@dataclass(frozen=True)
class Resumed:
    """What a presented cookie gave: the session, or why not (``idle``: the idle timeout passed)."""

    session: WebSession | None
    refusal: Refusal | None = None


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("ascii")).hexdigest()


def load_secret(path: Path) -> bytes:
    """The signing secret at ``path``, created (32 random bytes, owner-only) when there is none."""
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile
            return load_secret(path)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        secret = path.read_bytes()
    if len(secret) < 32:
        raise ValueError(f"{path} holds fewer than 32 bytes: not a session secret (delete it to make a new one)")
    return secret


class WebSessions:
    def __init__(self, target: Path | str, secret: bytes, *, idle_minutes: float, max_hours: float) -> None:
        if idle_minutes <= 0 or max_hours <= 0:
            raise ValueError("idle_minutes and max_hours must be positive")
        self._db = Database(target, "sessions", file_mode=0o600)
        self._signer = URLSafeSerializer(secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})
        self.idle_seconds = idle_minutes * 60.0
        self.max_seconds = max_hours * 3600.0

    @classmethod
    def from_settings(cls, settings) -> WebSessions:
        sec = settings.security
        return cls(settings.database.target(settings.data_dir / "sessions.sqlite3"),
                   load_secret(settings.data_dir / SECRET_FILE),
                   idle_minutes=sec.session_timeout_minutes, max_hours=sec.session_max_hours)

    def start(self, user: str, via: str, now: float | None = None) -> str:
        """A new session for ``user``; the signed cookie value that resumes it."""
        moment = time.time() if now is None else now
        sid = secrets.token_urlsafe(32)
        with self._db.write() as conn:
            conn.execute(insert(SESSIONS).values(sid_hash=_hash(sid), user=user, via=via, created_at=moment,
                                                 last_seen=moment))
        return self._signer.dumps({"sid": sid, "iat": moment})

    def resume(self, token: str, now: float | None = None) -> Resumed:
        """The session a cookie value names, if it may go on (its last use is recorded)."""
        moment = time.time() if now is None else now
        try:
            claims = self._signer.loads(token)
        except BadSignature:
            return Resumed(None, "bad_signature")
        sid, issued = claims.get("sid"), claims.get("iat")
        if not isinstance(sid, str) or not isinstance(issued, int | float):
            return Resumed(None, "bad_signature")
        if moment - issued >= self.max_seconds:
            return Resumed(None, "expired")
        with self._db.write() as conn:
            row = conn.execute(select(SESSIONS).where(SESSIONS.c.sid_hash == _hash(sid))).mappings().first()
            if row is None:
                return Resumed(None, "unknown")
            if row["revoked_at"] is not None:
                return Resumed(None, "revoked")
            refusal: Refusal | None = None
            if moment - row["created_at"] >= self.max_seconds:
                refusal = "expired"
            elif moment - row["last_seen"] >= self.idle_seconds:
                refusal = "idle"
            if refusal is not None:
                self._revoke(conn, sid, refusal, moment)
                return Resumed(None, refusal)
            conn.execute(update(SESSIONS).where(SESSIONS.c.sid_hash == _hash(sid)).values(last_seen=moment))
        return Resumed(WebSession(sid, row["user"], row["via"], row["created_at"], moment))

    def touch(self, session: WebSession, now: float | None = None) -> WebSession | None:
        """``session`` after a use, or None when it ended meanwhile (revoked elsewhere: another tab signed out,
        the password changed; or idle). The use is written at most every few seconds."""
        moment = time.time() if now is None else now
        with self._db.read() as conn:
            row = conn.execute(select(SESSIONS.c.last_seen, SESSIONS.c.revoked_at, SESSIONS.c.created_at)
                               .where(SESSIONS.c.sid_hash == _hash(session.sid))).mappings().first()
        if row is None or row["revoked_at"] is not None:
            return None
        if moment - row["last_seen"] >= self.idle_seconds or moment - row["created_at"] >= self.max_seconds:
            self.revoke(session, "idle", now=moment)
            return None
        if moment - row["last_seen"] < _TOUCH_EVERY:
            return session
        with self._db.write() as conn:
            conn.execute(update(SESSIONS).where(SESSIONS.c.sid_hash == _hash(session.sid),
                                                SESSIONS.c.revoked_at.is_(None)).values(last_seen=moment))
        return WebSession(session.sid, session.user, session.via, session.created_at, moment)

    def revoke(self, session: WebSession, why: str, now: float | None = None) -> None:
        with self._db.write() as conn:
            self._revoke(conn, session.sid, why, time.time() if now is None else now)

    @staticmethod
    def _revoke(conn, sid: str, why: str, moment: float) -> None:
        conn.execute(update(SESSIONS).where(SESSIONS.c.sid_hash == _hash(sid), SESSIONS.c.revoked_at.is_(None))
                     .values(revoked_at=moment, revoked_why=why))

    def revoke_user(self, user: str, why: str, *, keep: WebSession | None = None, now: float | None = None) -> int:
        """Revoke every open session of ``user`` (but ``keep``); how many were open."""
        moment = time.time() if now is None else now
        condition = [SESSIONS.c.user == user, SESSIONS.c.revoked_at.is_(None)]
        if keep is not None:
            condition.append(SESSIONS.c.sid_hash != _hash(keep.sid))
        with self._db.write() as conn:
            result = conn.execute(update(SESSIONS).where(*condition).values(revoked_at=moment, revoked_why=why))
        return result.rowcount

    def purge(self, now: float | None = None) -> int:
        """Forget sessions that ended (revoked, or past the longest session) more than a day ago."""
        moment = time.time() if now is None else now
        cutoff = moment - 86400
        with self._db.write() as conn:
            result = conn.execute(delete(SESSIONS).where(or_(SESSIONS.c.revoked_at < cutoff,
                                                             SESSIONS.c.created_at < cutoff - self.max_seconds)))
        return result.rowcount
