"""Audited operations: user management and sign-in/sign-out that always write the audit log.

Pages and the CLI call these instead of :class:`UserStore` directly, so no change to a
user and no sign-in goes unrecorded. Passwords are never written to the audit log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from audit.log import AuditLog
from auth.roles import Permission, require
from auth.session import RateLimited, RateLimiter
from auth.store import AuthError, User, UserStore

UNKNOWN_USER = "(unknown)"


class UserAdmin:
    """User management on behalf of ``actor``; each successful change appends a
    ``user_change`` record ``{"op", "target", ..., "via"}``."""

    def __init__(self, store: UserStore, audit: AuditLog, actor: str, via: str = "ui") -> None:
        self.store = store
        self.audit = audit
        self.actor = actor
        self.via = via

    @classmethod
    def for_user(cls, store: UserStore, audit: AuditLog, user: User | None) -> UserAdmin:
        """For a signed-in user: raises AccessDenied unless the user may manage users."""
        require(user, Permission.MANAGE_USERS)
        assert user is not None
        return cls(store, audit, user.name, via="ui")

    def _record(self, op: str, target: str, **detail: Any) -> None:
        self.audit.append(self.actor, "user_change", {"op": op, "target": target, **detail, "via": self.via})

    def add_user(
        self,
        name: str,
        password: str,
        roles: Iterable[str] | str,
        groups: Iterable[str] | str | None = (),
        *,
        must_change_password: bool = True,
    ) -> User:
        user = self.store.add_user(name, password, roles, groups, must_change_password=must_change_password)
        self._record(
            "add", user.name, roles=list(user.roles), groups=list(user.groups),
            must_change_password=user.must_change_password,
        )
        return user

    def reset_password(self, name: str, password: str, *, must_change_password: bool = True) -> User:
        user = self.store.set_password(name, password, must_change_password=must_change_password)
        self._record("reset_password", user.name, must_change_password=must_change_password)
        return user

    def disable(self, name: str) -> User:
        user = self.store.disable(name)
        self._record("disable", user.name)
        return user

    def enable(self, name: str) -> User:
        user = self.store.enable(name)
        self._record("enable", user.name)
        return user

    def unlock(self, name: str) -> User:
        user = self.store.unlock(name)
        self._record("unlock", user.name)
        return user

    def set_roles(self, name: str, roles: Iterable[str] | str) -> User:
        before = self.store.get(name)
        user = self.store.set_roles(name, roles)
        self._record(
            "set_roles", user.name, before=list(before.roles) if before else None, roles=list(user.roles)
        )
        return user

    def set_groups(self, name: str, groups: Iterable[str] | str | None) -> User:
        before = self.store.get(name)
        user = self.store.set_groups(name, groups)
        self._record(
            "set_groups", user.name, before=list(before.groups) if before else None, groups=list(user.groups)
        )
        return user

    def delete(self, name: str) -> None:
        user = self.store.get(name)
        self.store.delete(name)
        self._record("delete", user.name if user else name)


def _attempted(store: UserStore, name: object) -> tuple[str, dict[str, Any]]:
    """Audit identity of a sign-in attempt. Unknown names are not stored in clear (people
    type passwords into the name field); a short hash still lets repeated attempts be linked."""
    user = store.get(name) if isinstance(name, str) else None
    if user is not None:
        return user.name, {}
    digest = hashlib.sha256(str(name).encode("utf-8", "replace")).hexdigest()[:16]
    return UNKNOWN_USER, {"attempted_name_sha256": digest}


def sign_in(
    store: UserStore,
    audit: AuditLog,
    name: str,
    password: str,
    *,
    now: datetime | None = None,
    limiter: RateLimiter | None = None,
    client: str | None = None,
) -> User:
    """Authenticate and audit: ``login`` on success, ``login_failed`` (with the reason) on
    failure. ``limiter`` (optional) throttles attempts per typed user name."""
    extra = {"client": client} if client else {}
    try:
        if limiter is not None:
            limiter.check(f"login:{name}")
        user = store.authenticate(name, password, now)
    except (AuthError, RateLimited) as exc:
        who, detail = _attempted(store, name)
        reason = exc.reason if isinstance(exc, AuthError) else "rate_limited"
        audit.append(who, "login_failed", {"reason": reason, **detail, **extra})
        raise
    audit.append(user.name, "login", {"must_change_password": user.must_change_password, **extra})
    return user


def change_own_password(
    store: UserStore, audit: AuditLog, user: User, old_password: str, new_password: str
) -> User:
    """The signed-in user's own password change (checks the old password; audited)."""
    updated = store.change_password(user.name, old_password, new_password)
    audit.append(user.name, "user_change", {"op": "change_password", "target": user.name, "via": "ui"})
    return updated


def sign_out(audit: AuditLog, user: User, reason: str = "logout") -> None:
    """Audit a sign-out; ``reason`` is ``logout`` or ``timeout``."""
    audit.append(user.name, "logout", {"reason": reason})


__all__ = ["UNKNOWN_USER", "UserAdmin", "change_own_password", "sign_in", "sign_out"]
