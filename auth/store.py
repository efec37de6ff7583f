"""Users, argon2 password hashes and sign-in with lockout, on SQLite.

The hash never leaves this module: :class:`User` carries no hash. Every call opens its own
connection, so one store can be shared between threads (Streamlit sessions) and processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import CQAError
from core.sqlite import immediate_transaction

USERS_DB_NAME = "users.sqlite3"
ROLES: frozenset[str] = frozenset({"staff", "compliance", "admin"})
NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")  # '@': an IdP's user name may be a UPN
GROUP_RE = re.compile(r"[\w.\-]{1,64}")  # \w is Unicode: Japanese group names are fine
MAX_PASSWORD_LEN = 1024

GENERIC_AUTH_FAILURE = "Sign-in failed: wrong user name or password."
SSO_REFUSED = "Your single sign-on account has no access to this app. Ask an administrator."
PASSWORD_SOURCE, OIDC_SOURCE = "password", "oidc"
FAILED_NAME_KEEP = timedelta(days=30)
"""How long the failure count of a name that is not an account is kept after its last failure."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    pw_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    last_login_at TEXT,
    source TEXT NOT NULL DEFAULT 'password'
);
CREATE TABLE IF NOT EXISTS failed_names (
    name_key TEXT NOT NULL PRIMARY KEY,
    failed_attempts INTEGER NOT NULL,
    locked_until TEXT,
    updated_at TEXT NOT NULL
);
"""
_COLUMNS = (
    "name, roles, groups_json, disabled, created_at, failed_attempts, locked_until,"
    " must_change_password, last_login_at, source"
)


class AuthError(CQAError):
    """Sign-in refused. The message never says whether the user name exists.

    ``reason`` (for the audit log, not for the screen): ``bad_credentials``, ``locked``,
    ``disabled``, ``must_change_password``, ``rate_limited``, or for single sign-on
    ``sso_no_role``, ``sso_bad_name`` and ``sso_password_account``.
    """

    def __init__(self, message: str, reason: str = "bad_credentials") -> None:
        super().__init__(message)
        self.reason = reason


class UserError(CQAError):
    """A user-management request is invalid (unknown user, bad name, weak password...)."""


class PasswordPolicyError(UserError):
    """The new password does not meet the password policy."""


@dataclass(frozen=True)
class User:
    """A user as the rest of the app sees it (no password hash)."""

    name: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    disabled: bool
    created_at: datetime
    failed_attempts: int = 0
    locked_until: datetime | None = None
    must_change_password: bool = False
    last_login_at: datetime | None = None
    source: str = PASSWORD_SOURCE
    """``password`` (signs in with a password here) or ``oidc`` (only through single sign-on)."""

    def is_locked(self, now: datetime | None = None) -> bool:
        return self.locked_until is not None and self.locked_until > _utc(now)

    def has_role(self, role: str) -> bool:
        return role in self.roles


# --------------------------------------------------------------------------- helpers


def _utc(now: datetime | None = None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _ts(value: datetime) -> str:
    return _utc(value).isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UserError(
            "invalid user name: use 1-64 characters from letters, digits, '.', '_', '@' and '-'"
        )
    return name


def normalize_roles(roles: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(roles, str):
        roles = roles.split(",")
    cleaned = {r.strip().lower() for r in roles if r and r.strip()}
    unknown = cleaned - ROLES
    if unknown:
        raise UserError(
            f"unknown role(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(ROLES))})"
        )
    if not cleaned:
        raise UserError("a user needs at least one role")
    return tuple(sorted(cleaned))


def normalize_groups(groups: Iterable[str] | str | None) -> tuple[str, ...]:
    if groups is None:
        return ()
    if isinstance(groups, str):
        groups = groups.split(",")
    cleaned = {g.strip() for g in groups if g and g.strip()}
    bad = sorted(g for g in cleaned if not GROUP_RE.fullmatch(g))
    if bad:
        raise UserError(
            f"invalid access group(s): {', '.join(bad)} (letters, digits, '.', '_', '-'; up to 64)"
        )
    return tuple(sorted(cleaned))


def _name_key(name: str) -> str:
    """Key of a name's failure count when it is not an account (case-insensitive, as names are)."""
    text = "cqa-failed-name\0" + name[:MAX_PASSWORD_LEN].lower()
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


# --------------------------------------------------------------------------- the store


class UserStore:
    """Users in ``db_path`` (normally ``data_dir / "users.sqlite3"``)."""

    def __init__(
        self,
        db_path: Path | str,
        *,
        min_password_length: int = 10,
        max_failed_attempts: int = 5,
        lockout_minutes: float = 15,
        hasher: PasswordHasher | None = None,
        busy_timeout: float = 30.0,
    ) -> None:
        if min_password_length < 1 or max_failed_attempts < 1 or lockout_minutes <= 0:
            raise ValueError("password length, attempts and lockout minutes must be positive")
        self.db_path = Path(db_path)
        self.min_password_length = min_password_length
        self.max_failed_attempts = max_failed_attempts
        self.lockout = timedelta(minutes=lockout_minutes)
        self._hasher = hasher or PasswordHasher()
        self._busy_timeout = busy_timeout
        self._dummy_hash: str | None = None
        self._init()

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> UserStore:
        return cls(Path(settings.data_dir) / USERS_DB_NAME, **kwargs)

    # ----------------------------------------------------------------- sqlite

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=self._busy_timeout, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn, immediate_transaction(conn):
            yield conn

    def _init(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.db_path.exists()
        with self._connection() as conn:
            if created:
                os.chmod(self.db_path, 0o600)  # password hashes: owner only
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
            if "source" not in columns:  # a users file from before single sign-on accounts
                conn.execute("ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'password'")

    @staticmethod
    def _user(row: tuple) -> User:
        name, roles, groups, disabled, created, failed, locked, must_change, last_login, source = row
        return User(
            name=name,
            roles=tuple(json.loads(roles)),
            groups=tuple(json.loads(groups)),
            disabled=bool(disabled),
            created_at=_parse(created) or datetime.min.replace(tzinfo=UTC),
            failed_attempts=int(failed),
            locked_until=_parse(locked),
            must_change_password=bool(must_change),
            last_login_at=_parse(last_login),
            source=source,
        )

    def _get_in(self, conn: sqlite3.Connection, name: str) -> User:
        row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UserError(f"no such user: {name}")
        return self._user(row)

    @staticmethod
    def _enabled_admins(conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute("SELECT name, roles FROM users WHERE disabled = 0").fetchall()
        return [name for name, roles in rows if "admin" in json.loads(roles)]

    def _keep_an_admin(self, conn: sqlite3.Connection, name: str, action: str) -> None:
        admins = self._enabled_admins(conn)
        if [a.lower() for a in admins] == [name.lower()]:
            raise UserError(f"cannot {action} {name}: it is the last enabled admin")

    # ----------------------------------------------------------------- passwords

    def check_password_policy(self, password: str, name: str | None = None) -> None:
        if not isinstance(password, str):
            raise PasswordPolicyError("the password must be text")
        if len(password) < self.min_password_length:
            raise PasswordPolicyError(
                f"the password must have at least {self.min_password_length} characters"
            )
        if len(password) > MAX_PASSWORD_LEN:
            raise PasswordPolicyError(f"the password must have at most {MAX_PASSWORD_LEN} characters")
        if not password.strip():
            raise PasswordPolicyError("the password must not be only spaces")
        lowered, user = password.lower(), (name or "").lower()
        if user and (lowered == user or (len(user) >= 4 and user in lowered)):
            raise PasswordPolicyError("the password must not contain the user name")

    def _hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def _verify(self, pw_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(pw_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _burn_time(self, password: str) -> None:
        """Spend as long as a real verification, so timing does not reveal unknown users."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._verify(self._dummy_hash, password)

    # ----------------------------------------------------------------- management

    def add_user(
        self,
        name: str,
        password: str,
        roles: Iterable[str] | str,
        groups: Iterable[str] | str | None = (),
        *,
        must_change_password: bool = False,
    ) -> User:
        validate_name(name)
        roles_t, groups_t = normalize_roles(roles), normalize_groups(groups)
        self.check_password_policy(password, name)
        pw_hash = self._hash(password)
        now = _ts(_utc())
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"user {name} already exists")
            conn.execute(
                "INSERT INTO users (name, pw_hash, roles, groups_json, created_at, updated_at,"
                " password_changed_at, must_change_password) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, pw_hash, json.dumps(roles_t), json.dumps(groups_t, ensure_ascii=False),
                 now, now, now, int(must_change_password)),
            )
            conn.execute("DELETE FROM failed_names WHERE name_key = ?", (_name_key(name),))
            return self._get_in(conn, name)

    def create_initial_admin(self, name: str, password: str, groups: Iterable[str] | str = ()) -> User:
        """First-run setup: add an admin only if no admin exists yet (atomic)."""
        validate_name(name)
        groups_t = normalize_groups(groups)
        self.check_password_policy(password, name)
        pw_hash = self._hash(password)
        now = _ts(_utc())
        with self._write() as conn:
            if self._has_admin_in(conn):
                raise UserError("an admin already exists")
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"user {name} already exists")
            conn.execute(
                "INSERT INTO users (name, pw_hash, roles, groups_json, created_at, updated_at,"
                " password_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, pw_hash, json.dumps(["admin"]), json.dumps(groups_t, ensure_ascii=False),
                 now, now, now),
            )
            conn.execute("DELETE FROM failed_names WHERE name_key = ?", (_name_key(name),))
            return self._get_in(conn, name)

    def set_password(self, name: str, password: str, *, must_change_password: bool = False) -> User:
        """Set a new password (admin reset); also clears failed attempts and any lockout."""
        with self._connection() as conn:
            user = self._get_in(conn, name)
        if user.source != PASSWORD_SOURCE:
            raise UserError(f"{user.name} signs in through single sign-on and has no password here")
        self.check_password_policy(password, user.name)
        pw_hash = self._hash(password)
        now = _ts(_utc())
        with self._write() as conn:
            self._get_in(conn, name)
            conn.execute(
                "UPDATE users SET pw_hash = ?, password_changed_at = ?, updated_at = ?,"
                " failed_attempts = 0, locked_until = NULL, must_change_password = ? WHERE name = ?",
                (pw_hash, now, now, int(must_change_password), name),
            )
            return self._get_in(conn, name)

    def change_password(self, name: str, old_password: str, new_password: str) -> User:
        """The user's own change: checks the old password (with lockout) first."""
        if old_password == new_password:
            raise PasswordPolicyError("the new password must differ from the old one")
        user = self.get(name)
        if user is not None and user.source != PASSWORD_SOURCE:
            raise UserError(f"{user.name} signs in through single sign-on and has no password here")
        self.check_password_policy(new_password, name)
        self.authenticate(name, old_password, allow_must_change=True)
        return self.set_password(name, new_password, must_change_password=False)

    def _update(self, name: str, sql: str, args: tuple, guard: str | None = None) -> User:
        with self._write() as conn:
            user = self._get_in(conn, name)
            if guard:
                self._keep_an_admin(conn, user.name, guard)
            conn.execute(f"UPDATE users SET {sql}, updated_at = ? WHERE name = ?",
                         (*args, _ts(_utc()), name))
            return self._get_in(conn, name)

    def disable(self, name: str) -> User:
        return self._update(name, "disabled = 1", (), guard="disable")

    def enable(self, name: str) -> User:
        return self._update(name, "disabled = 0", ())

    def unlock(self, name: str) -> User:
        return self._update(name, "failed_attempts = 0, locked_until = NULL", ())

    def set_roles(self, name: str, roles: Iterable[str] | str) -> User:
        roles_t = normalize_roles(roles)
        guard = None if "admin" in roles_t else "remove the admin role from"
        return self._update(name, "roles = ?", (json.dumps(roles_t),), guard=guard)

    def set_groups(self, name: str, groups: Iterable[str] | str | None) -> User:
        groups_t = normalize_groups(groups)
        return self._update(name, "groups_json = ?", (json.dumps(groups_t, ensure_ascii=False),))

    def delete(self, name: str) -> None:
        with self._write() as conn:
            user = self._get_in(conn, name)
            self._keep_an_admin(conn, user.name, "delete")
            conn.execute("DELETE FROM users WHERE name = ?", (name,))

    # ----------------------------------------------------------------- queries

    def get(self, name: str) -> User | None:
        """The user (user names are case-insensitive), or None."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            return None
        with self._connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._user(row)

    def list_users(self) -> list[User]:
        with self._connection() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()
        return [self._user(r) for r in rows]

    @staticmethod
    def _has_admin_in(conn: sqlite3.Connection) -> bool:
        rows = conn.execute("SELECT roles FROM users").fetchall()
        return any("admin" in json.loads(roles) for (roles,) in rows)

    def has_admin(self) -> bool:
        """True when any admin exists, even a disabled or locked one.

        Use it to decide whether to offer first-run setup: counting only enabled admins would
        let anyone create an admin after the real ones were disabled.
        """
        with self._connection() as conn:
            return self._has_admin_in(conn)

    # ----------------------------------------------------------------- sign-in

    def authenticate(
        self, name: str, password: str, now: datetime | None = None, *, allow_must_change: bool = True
    ) -> User:
        """Check a sign-in and return the user.

        The answer never tells whether the name is an account: an unknown name (or one that
        cannot be a name) costs one password verification, like a known one; its failures are
        counted under a hash of the name and lock it exactly as an account is locked, with the
        same message. ``failed_attempts`` counts consecutive failures; reaching
        ``max_failed_attempts`` locks for ``lockout_minutes``; a locked name is refused (after
        the same verification cost) whatever the password. A disabled account says so only after
        the right password. Success resets the counter and re-hashes the password when the argon2
        parameters changed. Single sign-on accounts have no usable password here.
        ``must_change_password`` is reported on the returned user: the caller must then ask for a
        new password before anything else (pass ``allow_must_change=False`` to refuse).
        """
        moment = _utc(now)
        password = password if isinstance(password, str) else ""
        if len(password) > MAX_PASSWORD_LEN:
            password = password[: MAX_PASSWORD_LEN + 1]  # still wrong, but cheap to hash
        row = None
        if isinstance(name, str) and NAME_RE.fullmatch(name):
            with self._connection() as conn:
                row = conn.execute(
                    f"SELECT pw_hash, {_COLUMNS} FROM users WHERE name = ?", (name,)
                ).fetchone()
        if row is None:
            self._burn_time(password)
            self._refuse(self._record_name_failure(str(name), moment), moment)
        pw_hash, user = row[0], self._user(row[1:])
        if user.is_locked(moment):
            self._burn_time(password)
            self._refuse(user.locked_until, moment)

        verified = self._verify(pw_hash, password)
        if not verified or user.source != PASSWORD_SOURCE:
            self._refuse(self._record_failure(user.name, moment), moment)

        new_hash = self._hash(password) if self._needs_rehash(pw_hash) else None
        with self._write() as conn:
            current = self._get_in(conn, user.name)
            if current.is_locked(moment):  # concurrent failures locked it meanwhile
                raise AuthError(self._locked_message(current.locked_until, moment), "locked")
            if current.disabled:
                raise AuthError("This account is disabled. Ask an administrator.", "disabled")
            if current.must_change_password and not allow_must_change:
                raise AuthError("You must change your password before signing in.", "must_change_password")
            conn.execute(
                "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_login_at = ?"
                " WHERE name = ?",
                (_ts(moment), user.name),
            )
            if new_hash is not None:  # only if nobody changed the password meanwhile
                conn.execute(
                    "UPDATE users SET pw_hash = ? WHERE name = ? AND pw_hash = ?",
                    (new_hash, user.name, pw_hash),
                )
            return self._get_in(conn, user.name)

    def _refuse(self, locked_until: datetime | None, moment: datetime) -> None:
        """Raise the one answer a failed sign-in gets: locked (until when) or generic."""
        if locked_until is not None and locked_until > moment:
            raise AuthError(self._locked_message(locked_until, moment), "locked")
        raise AuthError(GENERIC_AUTH_FAILURE)

    def record_failed_sign_in(self, name: str, now: datetime | None = None) -> datetime | None:
        """Count a refused sign-in for ``name`` (an account or not), as a wrong password would;
        return the lock expiry when the name is locked. Single sign-on refusals use it."""
        moment = _utc(now)
        user = self.get(name)
        if user is None:
            return self._record_name_failure(str(name), moment)
        if user.is_locked(moment):
            return user.locked_until
        return self._record_failure(user.name, moment)

    def is_name_locked(self, name: str, now: datetime | None = None) -> datetime | None:
        """The lock expiry of ``name`` (an account or not) when it is locked now, else None."""
        moment = _utc(now)
        user = self.get(name)
        if user is not None:
            return user.locked_until if user.is_locked(moment) else None
        with self._connection() as conn:
            row = conn.execute(
                "SELECT locked_until FROM failed_names WHERE name_key = ?", (_name_key(str(name)),)
            ).fetchone()
        until = _parse(row[0]) if row else None
        return until if until is not None and until > moment else None

    def _record_name_failure(self, name: str, moment: datetime) -> datetime | None:
        """A failure for a name that is not an account, counted as :meth:`_record_failure` counts
        an account's (a hash of the name is stored, never the name: people type passwords there).
        Returns the lock expiry when the name is (now or still) locked."""
        key = _name_key(name)
        with self._write() as conn:
            row = conn.execute(
                "SELECT failed_attempts, locked_until FROM failed_names WHERE name_key = ?", (key,)
            ).fetchone()
            failed, locked = (0, None) if row is None else (int(row[0]), _parse(row[1]))
            if locked is not None and locked > moment:
                return locked  # locked: refused without counting, as an account is
            if locked is not None:
                failed = 0
            failed += 1
            until = moment + self.lockout if failed >= self.max_failed_attempts else None
            conn.execute(
                "INSERT INTO failed_names (name_key, failed_attempts, locked_until, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(name_key) DO UPDATE SET"
                " failed_attempts = excluded.failed_attempts, locked_until = excluded.locked_until,"
                " updated_at = excluded.updated_at",
                (key, failed, None if until is None else _ts(until), _ts(moment)),
            )
            cutoff = _ts(moment - FAILED_NAME_KEEP)
            conn.execute(
                "DELETE FROM failed_names WHERE updated_at < ? AND (locked_until IS NULL OR locked_until < ?)",
                (cutoff, _ts(moment)),
            )
            return until

    # ----------------------------------------------------------------- single sign-on

    def sso_sign_in(
        self, name: str, roles: Iterable[str], groups: Iterable[str], now: datetime | None = None
    ) -> tuple[User | None, User]:
        """A sign-in the IdP vouched for: create or update the single sign-on account ``name``
        with the roles and access groups the IdP's groups map to, and record the sign-in.

        Returns ``(before, after)`` (``before`` is None for a new account). Raises
        :class:`AuthError` when the name is locked (the same lockout as passwords), the account is
        disabled, or the name belongs to a password account (``sso_password_account``: the IdP
        never takes over a local account). The last enabled admin keeps its admin role
        (:class:`UserError`).
        """
        moment = _utc(now)
        validate_name(name)
        roles_t, groups_t = normalize_roles(roles), normalize_groups(groups)
        existing = self.get(name)
        pw_hash = self._hash(secrets.token_urlsafe(32)) if existing is None else None  # never usable
        with self._write() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
            before = None if row is None else self._user(row)
            if before is None:
                locked = conn.execute(
                    "SELECT locked_until FROM failed_names WHERE name_key = ?", (_name_key(name),)
                ).fetchone()
                until = _parse(locked[0]) if locked else None
                if until is not None and until > moment:
                    raise AuthError(self._locked_message(until, moment), "locked")
                if pw_hash is None:  # created by someone else meanwhile
                    pw_hash = self._hash(secrets.token_urlsafe(32))
                now_ts = _ts(moment)
                conn.execute(
                    "INSERT INTO users (name, pw_hash, roles, groups_json, created_at, updated_at,"
                    " password_changed_at, last_login_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, pw_hash, json.dumps(roles_t), json.dumps(groups_t, ensure_ascii=False),
                     now_ts, now_ts, now_ts, now_ts, OIDC_SOURCE),
                )
                conn.execute("DELETE FROM failed_names WHERE name_key = ?", (_name_key(name),))
                return None, self._get_in(conn, name)
            if before.source != OIDC_SOURCE:
                raise AuthError(SSO_REFUSED, "sso_password_account")
            if before.is_locked(moment):
                raise AuthError(self._locked_message(before.locked_until, moment), "locked")
            if before.disabled:
                raise AuthError("This account is disabled. Ask an administrator.", "disabled")
            if "admin" in before.roles and "admin" not in roles_t:
                self._keep_an_admin(conn, before.name, "remove the admin role from")
            conn.execute(
                "UPDATE users SET roles = ?, groups_json = ?, failed_attempts = 0, locked_until = NULL,"
                " last_login_at = ?, updated_at = ? WHERE name = ?",
                (json.dumps(roles_t), json.dumps(groups_t, ensure_ascii=False), _ts(moment), _ts(moment),
                 before.name),
            )
            return before, self._get_in(conn, before.name)

    def _needs_rehash(self, pw_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(pw_hash)
        except (InvalidHashError, ValueError):
            return True

    def _record_failure(self, name: str, moment: datetime) -> datetime | None:
        """Count one failed attempt; return the lock expiry when this one locks the account."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT failed_attempts, locked_until FROM users WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return None
            failed, locked = int(row[0]), _parse(row[1])
            if locked is not None and locked <= moment:
                failed = 0  # the previous lockout expired: start counting afresh
            failed += 1
            until = moment + self.lockout if failed >= self.max_failed_attempts else None
            conn.execute(
                "UPDATE users SET failed_attempts = ?, locked_until = ? WHERE name = ?",
                (failed, None if until is None else _ts(until), name),
            )
            return until

    @staticmethod
    def _locked_message(until: datetime | None, moment: datetime) -> str:
        minutes = 1
        if until is not None:
            minutes = max(1, int((until - moment).total_seconds() + 59) // 60)
        return (
            "This account is locked after too many failed sign-ins. "
            f"Try again in {minutes} minute(s) or ask an administrator."
        )


__all__ = [
    "GENERIC_AUTH_FAILURE",
    "OIDC_SOURCE",
    "PASSWORD_SOURCE",
    "SSO_REFUSED",
    "ROLES",
    "USERS_DB_NAME",
    "AuthError",
    "PasswordPolicyError",
    "User",
    "UserError",
    "UserStore",
    "normalize_groups",
    "normalize_roles",
    "validate_name",
]
