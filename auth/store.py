"""Users, argon2 password hashes and sign-in with lockout, on SQLite.

The hash never leaves this module: :class:`User` carries no hash. Every call opens its own
connection, so one store can be shared between threads (Streamlit sessions) and processes.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Column, Connection, Integer, MetaData, Row, Table, Text, delete, insert, select, update

from core.errors import CQAError
from db import Database
from db.statements import upsert

USERS_DB_NAME = "users.sqlite3"
ROLES: frozenset[str] = frozenset({"staff", "compliance", "admin"})
NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")  # '@': an IdP's user name may be a UPN
GROUP_RE = re.compile(r"[\w.\-]{1,64}")  # \w is Unicode: Japanese group names are fine
MAX_PASSWORD_LEN = 1024

GENERIC_AUTH_FAILURE = "Sign-in failed: wrong user name or password."
SSO_REFUSED = "Your single sign-on account has no access to this app. Ask an administrator."
_REASON_KEYS = {  # what the app says for a refused sign-in (core.errors: message keys)
    "bad_credentials": "sign_in_failed", "locked": "account_locked", "disabled": "account_disabled",
    "must_change_password": "must_change_password", "sso_expired": "sso_expired",
}
PASSWORD_SOURCE, OIDC_SOURCE = "password", "oidc"
FAILED_NAME_KEEP = timedelta(days=30)
"""How long the failure count of a name that is not an account is kept after its last failure."""

_METADATA = MetaData()
USERS = Table(
    "users",
    _METADATA,
    Column("name", Text, primary_key=True),  # COLLATE NOCASE on SQLite (db/migrations/users): names ignore case
    Column("pw_hash", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("groups_json", Text, nullable=False),
    Column("disabled", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("password_changed_at", Text, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", Text),
    Column("must_change_password", Integer, nullable=False),
    Column("last_login_at", Text),
    Column("source", Text, nullable=False),
)
FAILED_NAMES = Table(
    "failed_names",
    _METADATA,
    Column("name_key", Text, primary_key=True),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", Text),
    Column("updated_at", Text, nullable=False),
)
_U, _F = USERS.c, FAILED_NAMES.c
_USER_COLUMNS = (
    _U.name, _U.roles, _U.groups_json, _U.disabled, _U.created_at, _U.failed_attempts, _U.locked_until,
    _U.must_change_password, _U.last_login_at, _U.source,
)


class AuthError(CQAError):
    """Sign-in refused. The message never says whether the user name exists.

    ``reason`` (for the audit log, not for the screen): ``bad_credentials``, ``locked``,
    ``disabled``, ``must_change_password``, ``rate_limited``, or for single sign-on
    ``sso_no_role``, ``sso_bad_name`` and ``sso_password_account``.
    """

    def __init__(self, message: str, reason: str = "bad_credentials", *, key: str | None = None,
                 params: dict | None = None) -> None:
        super().__init__(message, key=key or _REASON_KEYS.get(reason, "sso_refused"), params=params)
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
            "invalid user name: use 1-64 characters from letters, digits, '.', '_', '@' and '-'",
            key="invalid_user_name",
        )
    return name


def normalize_roles(roles: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(roles, str):
        roles = roles.split(",")
    cleaned = {r.strip().lower() for r in roles if r and r.strip()}
    unknown = cleaned - ROLES
    if unknown:
        raise UserError(
            f"unknown role(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(ROLES))})",
            key="unknown_roles", params={"roles": ", ".join(sorted(unknown)), "known": ", ".join(sorted(ROLES))},
        )
    if not cleaned:
        raise UserError("a user needs at least one role", key="no_role")
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
            f"invalid access group(s): {', '.join(bad)} (letters, digits, '.', '_', '-'; up to 64)",
            key="invalid_groups", params={"groups": ", ".join(bad)},
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
        self.db_path = db_path if isinstance(db_path, str) and "://" in db_path else Path(db_path)
        self.min_password_length = min_password_length
        self.max_failed_attempts = max_failed_attempts
        self.lockout = timedelta(minutes=lockout_minutes)
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        # a new file is created owner-only (password hashes); an older one gets its missing columns (db.migrate)
        self._db = Database(
            self.db_path, "users", busy_timeout=busy_timeout, wal=True, file_mode=0o600
        )

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> UserStore:
        return cls(settings.database.target(Path(settings.data_dir) / USERS_DB_NAME), **kwargs)

    # ----------------------------------------------------------------- database

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with self._db.read() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._db.write() as conn:
            yield conn

    @staticmethod
    def _user(row: Row | tuple) -> User:
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

    def _get_in(self, conn: Connection, name: str) -> User:
        row = conn.execute(select(*_USER_COLUMNS).where(_U.name == name)).fetchone()
        if row is None:
            raise UserError(f"no such user: {name}", key="no_such_user", params={"name": name})
        return self._user(row)

    @staticmethod
    def _enabled_admins(conn: Connection) -> list[str]:
        rows = conn.execute(select(_U.name, _U.roles).where(_U.disabled == 0)).all()
        return [name for name, roles in rows if "admin" in json.loads(roles)]

    def _keep_an_admin(self, conn: Connection, name: str, action: str) -> None:
        admins = self._enabled_admins(conn)
        if [a.lower() for a in admins] == [name.lower()]:
            raise UserError(f"cannot {action} {name}: it is the last enabled admin", key="last_admin",
                            params={"name": name})

    # ----------------------------------------------------------------- passwords

    def check_password_policy(self, password: str, name: str | None = None) -> None:
        if not isinstance(password, str):
            raise PasswordPolicyError("the password must be text", key="password_not_text")
        if len(password) < self.min_password_length:
            raise PasswordPolicyError(
                f"the password must have at least {self.min_password_length} characters",
                key="password_too_short", params={"n": self.min_password_length},
            )
        if len(password) > MAX_PASSWORD_LEN:
            raise PasswordPolicyError(f"the password must have at most {MAX_PASSWORD_LEN} characters",
                                      key="password_too_long", params={"n": MAX_PASSWORD_LEN})
        if not password.strip():
            raise PasswordPolicyError("the password must not be only spaces", key="password_blank")
        lowered, user = password.lower(), (name or "").lower()
        if user and (lowered == user or (len(user) >= 4 and user in lowered)):
            raise PasswordPolicyError("the password must not contain the user name", key="password_has_name")

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
            if self._exists_in(conn, name):
                raise UserError(f"user {name} already exists", key="user_exists", params={"name": name})
            conn.execute(
                insert(USERS).values(
                    name=name, pw_hash=pw_hash, roles=json.dumps(roles_t),
                    groups_json=json.dumps(groups_t, ensure_ascii=False), created_at=now, updated_at=now,
                    password_changed_at=now, must_change_password=int(must_change_password),
                )
            )
            self._forget_failures_in(conn, name)
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
                raise UserError("an admin already exists", key="admin_exists")
            if self._exists_in(conn, name):
                raise UserError(f"user {name} already exists", key="user_exists", params={"name": name})
            conn.execute(
                insert(USERS).values(
                    name=name, pw_hash=pw_hash, roles=json.dumps(["admin"]),
                    groups_json=json.dumps(groups_t, ensure_ascii=False), created_at=now, updated_at=now,
                    password_changed_at=now,
                )
            )
            self._forget_failures_in(conn, name)
            return self._get_in(conn, name)

    def set_password(self, name: str, password: str, *, must_change_password: bool = False) -> User:
        """Set a new password (admin reset); also clears failed attempts and any lockout."""
        with self._connection() as conn:
            user = self._get_in(conn, name)
        if user.source != PASSWORD_SOURCE:
            raise UserError(f"{user.name} signs in through single sign-on and has no password here",
                            key="sso_account_no_password", params={"name": user.name})
        self.check_password_policy(password, user.name)
        pw_hash = self._hash(password)
        now = _ts(_utc())
        with self._write() as conn:
            self._get_in(conn, name)
            conn.execute(
                update(USERS).where(_U.name == name).values(
                    pw_hash=pw_hash, password_changed_at=now, updated_at=now, failed_attempts=0, locked_until=None,
                    must_change_password=int(must_change_password),
                )
            )
            return self._get_in(conn, name)

    def change_password(self, name: str, old_password: str, new_password: str) -> User:
        """The user's own change: checks the old password (with lockout) first."""
        if old_password == new_password:
            raise PasswordPolicyError("the new password must differ from the old one", key="password_same")
        user = self.get(name)
        if user is not None and user.source != PASSWORD_SOURCE:
            raise UserError(f"{user.name} signs in through single sign-on and has no password here",
                            key="sso_account_no_password", params={"name": user.name})
        self.check_password_policy(new_password, name)
        self.authenticate(name, old_password, allow_must_change=True)
        return self.set_password(name, new_password, must_change_password=False)

    def _update(self, name: str, values: dict[str, Any], guard: str | None = None) -> User:
        with self._write() as conn:
            user = self._get_in(conn, name)
            if guard:
                self._keep_an_admin(conn, user.name, guard)
            conn.execute(update(USERS).where(_U.name == name).values(**values, updated_at=_ts(_utc())))
            return self._get_in(conn, name)

    def disable(self, name: str) -> User:
        return self._update(name, {"disabled": 1}, guard="disable")

    def enable(self, name: str) -> User:
        return self._update(name, {"disabled": 0})

    def unlock(self, name: str) -> User:
        return self._update(name, {"failed_attempts": 0, "locked_until": None})

    def set_roles(self, name: str, roles: Iterable[str] | str) -> User:
        roles_t = normalize_roles(roles)
        guard = None if "admin" in roles_t else "remove the admin role from"
        return self._update(name, {"roles": json.dumps(roles_t)}, guard=guard)

    def set_groups(self, name: str, groups: Iterable[str] | str | None) -> User:
        groups_t = normalize_groups(groups)
        return self._update(name, {"groups_json": json.dumps(groups_t, ensure_ascii=False)})

    def delete(self, name: str) -> None:
        with self._write() as conn:
            user = self._get_in(conn, name)
            self._keep_an_admin(conn, user.name, "delete")
            conn.execute(delete(USERS).where(_U.name == name))

    # ----------------------------------------------------------------- queries

    def get(self, name: str) -> User | None:
        """The user (user names are case-insensitive), or None."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            return None
        with self._connection() as conn:
            row = conn.execute(select(*_USER_COLUMNS).where(_U.name == name)).fetchone()
        return None if row is None else self._user(row)

    def list_users(self) -> list[User]:
        with self._connection() as conn:
            rows = conn.execute(select(*_USER_COLUMNS).order_by(_U.name)).all()
        return [self._user(r) for r in rows]

    @staticmethod
    def _has_admin_in(conn: Connection) -> bool:
        return any("admin" in json.loads(roles) for roles in conn.execute(select(_U.roles)).scalars())

    @staticmethod
    def _exists_in(conn: Connection, name: str) -> bool:
        return conn.execute(select(_U.name).where(_U.name == name)).first() is not None

    @staticmethod
    def _forget_failures_in(conn: Connection, name: str) -> None:
        """Drop the failure count kept for ``name`` while it was not an account."""
        conn.execute(delete(FAILED_NAMES).where(_F.name_key == _name_key(name)))

    @staticmethod
    def _name_lock_in(conn: Connection, name: str) -> datetime | None:
        """The lock expiry recorded for ``name`` while it is not an account (past or future), or None."""
        return _parse(conn.execute(select(_F.locked_until).where(_F.name_key == _name_key(name))).scalar())

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
                row = conn.execute(select(_U.pw_hash, *_USER_COLUMNS).where(_U.name == name)).fetchone()
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
                raise self._locked(current.locked_until, moment)
            if current.disabled:
                raise AuthError("This account is disabled. Ask an administrator.", "disabled")
            if current.must_change_password and not allow_must_change:
                raise AuthError("You must change your password before signing in.", "must_change_password")
            conn.execute(
                update(USERS).where(_U.name == user.name).values(
                    failed_attempts=0, locked_until=None, last_login_at=_ts(moment)
                )
            )
            if new_hash is not None:  # only if nobody changed the password meanwhile
                conn.execute(
                    update(USERS).where(_U.name == user.name, _U.pw_hash == pw_hash).values(pw_hash=new_hash)
                )
            return self._get_in(conn, user.name)

    def _refuse(self, locked_until: datetime | None, moment: datetime) -> None:
        """Raise the one answer a failed sign-in gets: locked (until when) or generic."""
        if locked_until is not None and locked_until > moment:
            raise self._locked(locked_until, moment)
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
            until = self._name_lock_in(conn, str(name))
        return until if until is not None and until > moment else None

    def _record_name_failure(self, name: str, moment: datetime) -> datetime | None:
        """A failure for a name that is not an account, counted as :meth:`_record_failure` counts
        an account's (a hash of the name is stored, never the name: people type passwords there).
        Returns the lock expiry when the name is (now or still) locked."""
        key = _name_key(name)
        with self._write() as conn:
            row = conn.execute(select(_F.failed_attempts, _F.locked_until).where(_F.name_key == key)).fetchone()
            failed, locked = (0, None) if row is None else (int(row[0]), _parse(row[1]))
            if locked is not None and locked > moment:
                return locked  # locked: refused without counting, as an account is
            if locked is not None:
                failed = 0
            failed += 1
            until = moment + self.lockout if failed >= self.max_failed_attempts else None
            values = {"name_key": key, "failed_attempts": failed, "locked_until": None if until is None else _ts(until),
                      "updated_at": _ts(moment)}
            upsert(conn, FAILED_NAMES, values, keys=("name_key",))
            cutoff = _ts(moment - FAILED_NAME_KEEP)
            conn.execute(
                delete(FAILED_NAMES).where(
                    _F.updated_at < cutoff, _F.locked_until.is_(None) | (_F.locked_until < _ts(moment))
                )
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
            row = conn.execute(select(*_USER_COLUMNS).where(_U.name == name)).fetchone()
            before = None if row is None else self._user(row)
            if before is None:
                until = self._name_lock_in(conn, name)
                if until is not None and until > moment:
                    raise self._locked(until, moment)
                if pw_hash is None:  # created by someone else meanwhile
                    pw_hash = self._hash(secrets.token_urlsafe(32))
                now_ts = _ts(moment)
                conn.execute(
                    insert(USERS).values(
                        name=name, pw_hash=pw_hash, roles=json.dumps(roles_t),
                        groups_json=json.dumps(groups_t, ensure_ascii=False), created_at=now_ts, updated_at=now_ts,
                        password_changed_at=now_ts, last_login_at=now_ts, source=OIDC_SOURCE,
                    )
                )
                self._forget_failures_in(conn, name)
                return None, self._get_in(conn, name)
            if before.source != OIDC_SOURCE:
                raise AuthError(SSO_REFUSED, "sso_password_account")
            if before.is_locked(moment):
                raise self._locked(before.locked_until, moment)
            if before.disabled:
                raise AuthError("This account is disabled. Ask an administrator.", "disabled")
            if "admin" in before.roles and "admin" not in roles_t:
                self._keep_an_admin(conn, before.name, "remove the admin role from")
            conn.execute(
                update(USERS).where(_U.name == before.name).values(
                    roles=json.dumps(roles_t), groups_json=json.dumps(groups_t, ensure_ascii=False), failed_attempts=0,
                    locked_until=None, last_login_at=_ts(moment), updated_at=_ts(moment),
                )
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
            row = conn.execute(select(_U.failed_attempts, _U.locked_until).where(_U.name == name)).fetchone()
            if row is None:
                return None
            failed, locked = int(row[0]), _parse(row[1])
            if locked is not None and locked <= moment:
                failed = 0  # the previous lockout expired: start counting afresh
            failed += 1
            until = moment + self.lockout if failed >= self.max_failed_attempts else None
            conn.execute(
                update(USERS).where(_U.name == name).values(
                    failed_attempts=failed, locked_until=None if until is None else _ts(until)
                )
            )
            return until

    @staticmethod
    def _locked(until: datetime | None, moment: datetime) -> AuthError:
        minutes = 1
        if until is not None:
            minutes = max(1, int((until - moment).total_seconds() + 59) // 60)
        return AuthError(
            "This account is locked after too many failed sign-ins. "
            f"Try again in {minutes} minute(s) or ask an administrator.",
            "locked", params={"minutes": minutes},
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
