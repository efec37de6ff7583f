"""The auth service: every sign-in (password form, first-admin setup, single sign-on) and
every user change (Users page, ``python -m auth``) goes through :class:`AuthService`, which
always writes the audit log.

Pages and the CLI call it instead of :class:`UserStore` directly, so no change to a user and
no sign-in goes unrecorded, and the site's password policy, lockout and throttling apply to
all of them. Passwords are never written to the audit log.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audit.log import AuditLog
from auth.roles import Permission, require
from auth.session import RateLimited, RateLimiter
from auth.store import (
    NAME_RE,
    SSO_REFUSED,
    AuthError,
    User,
    UserError,
    UserStore,
    normalize_groups,
    normalize_roles,
)

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

    def _not_self(self, name: str, action: str) -> None:
        """An admin cannot delete or disable the account they act with (the last admin is kept by the store)."""
        if self.via == "ui" and str(name).lower() == self.actor.lower():
            raise UserError(f"you cannot {action} your own account", key=f"{action}_self")

    def disable(self, name: str) -> User:
        self._not_self(name, "disable")
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
        self._not_self(name, "delete")
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


LOOPBACK_CLIENT = "loopback"


def client_key(remote_ip: str | None, headers: Mapping[str, str] | None = None, header: str | None = None) -> str:
    """The client a sign-in attempt is throttled as: its address.

    ``remote_ip`` is the connection's peer as Streamlit reports it (``st.context.ip_address``:
    None on loopback). On loopback, that is the reverse proxy on this host (or a local user):
    when ``header`` names the header the proxy sets (``X-Forwarded-For``, ``X-Real-IP``), its
    last value is the address the proxy saw; without it every loopback connection is one client.
    The header is never trusted on a connection from another address (anyone can send it).
    """
    if isinstance(remote_ip, str) and remote_ip:
        return remote_ip[:64]
    if header and headers is not None:
        value = headers.get(header)
        last = value.split(",")[-1].strip() if isinstance(value, str) else ""
        if last:
            return last[:64]
    return LOOPBACK_CLIENT


@dataclass(frozen=True)
class SSOPolicy:
    """How an IdP's ID token becomes an app account: the user-name claim, the groups claim and
    what each IdP group grants (roles, access groups). A user none of whose IdP groups grants a
    role is refused (fail closed)."""

    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    group_map: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, security: Any) -> SSOPolicy:
        return cls(
            username_claim=security.oidc_username_claim,
            groups_claim=security.oidc_groups_claim,
            group_map={
                idp: (normalize_roles(g.roles) if g.roles else (), normalize_groups(g.groups))
                for idp, g in security.oidc_group_map.items()
            },
        )

    def idp_groups(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        value = claims.get(self.groups_claim)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return ()
        return tuple(sorted({str(g) for g in value}))

    def grant(self, idp_groups: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The app roles and access groups that ``idp_groups`` map to."""
        roles: set[str] = set()
        groups: set[str] = set()
        for idp in idp_groups:
            mapped = self.group_map.get(idp)
            if mapped:
                roles.update(mapped[0])
                groups.update(mapped[1])
        return tuple(sorted(roles)), tuple(sorted(groups))


SSO_EXPIRED = "Your single sign-on has expired. Please sign in again."


class AuthService:
    """The one way in: password sign-in, first-admin setup, single sign-on, password changes,
    sign-out and user administration (the form, the SSO callback, the Users page and
    ``python -m auth`` all call it). Built from the site settings by the composition root
    (:class:`wiring.Container`), so the password policy, lockout and throttling are
    the site's everywhere.

    Throttling counts failed sign-ins in a sliding window per user name and per client (see
    :func:`client_key`); past either limit every attempt is refused before any password is
    checked, with one message for known and unknown names. The counts live in this process
    (the app is one process); the lockout lives in the user store and holds across processes.
    """

    def __init__(
        self,
        store: UserStore,
        audit: AuditLog,
        *,
        per_name: RateLimiter | None = None,
        per_client: RateLimiter | None = None,
        sso: SSOPolicy | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.per_name = per_name or RateLimiter(10, 300)
        self.per_client = per_client or RateLimiter(30, 300)
        self.sso = sso

    @classmethod
    def from_settings(cls, settings: Any, store: UserStore, audit: AuditLog) -> AuthService:
        sec = settings.security
        return cls(
            store, audit,
            per_name=RateLimiter(sec.login_failures_per_name, sec.login_throttle_seconds),
            per_client=RateLimiter(sec.login_failures_per_client, sec.login_throttle_seconds),
            sso=SSOPolicy.from_settings(sec) if sec.oidc_provider else None,
        )

    # ----------------------------------------------------------------- throttling

    @staticmethod
    def _name_bucket(name: object) -> str:
        return "name:" + hashlib.sha256(str(name).lower().encode("utf-8", "replace")).hexdigest()

    def _throttle(self, name: object, client: str, moment: float | None) -> None:
        waits = [w for w in (self.per_name.retry_after(self._name_bucket(name), moment),
                             self.per_client.retry_after("client:" + client, moment)) if w is not None]
        if waits:
            wait = max(waits)
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"Too many failed sign-ins. Please wait {seconds} second(s) and try again.",
                retry_after=wait, key="too_many_sign_ins", params={"seconds": seconds},
            )

    def _count_failure(self, name: object, client: str, moment: float | None) -> None:
        self.per_name.add(self._name_bucket(name), moment)
        self.per_client.add("client:" + client, moment)

    def _failed(self, name: object, exc: AuthError | RateLimited, extra: dict[str, Any]) -> None:
        who, detail = _attempted(self.store, name)
        reason = exc.reason if isinstance(exc, AuthError) else "rate_limited"
        self.audit.append(who, "login_failed", {"reason": reason, **detail, **extra})

    # ----------------------------------------------------------------- sign-in

    def sign_in(
        self, name: str, password: str, *, client: str, now: datetime | None = None, tick: float | None = None
    ) -> User:
        """Password sign-in; audited as ``login`` or ``login_failed`` (with the reason).
        ``now`` is the lockout clock, ``tick`` the throttle's (monotonic seconds; tests set both)."""
        extra = {"client": client, "via": "password"}
        try:
            self._throttle(name, client, tick)
            try:
                user = self.store.authenticate(name, password, now)
            except AuthError:
                self._count_failure(name, client, tick)
                raise
        except (AuthError, RateLimited) as exc:
            self._failed(name, exc, extra)
            raise
        self.audit.append(user.name, "login", {"must_change_password": user.must_change_password, **extra})
        return user

    def sso_sign_in(
        self, claims: Mapping[str, Any], *, client: str, now: datetime | None = None, tick: float | None = None
    ) -> User:
        """Sign in with the claims of an ID token the IdP issued (``st.user``): the account is
        created or updated with the roles and access groups its IdP groups map to, so a group
        removed at the IdP is gone at the next sign-in. Refused, and counted like a wrong
        password: no mapped role, a name that is not a valid user name, a name that belongs to a
        password account. A locked or disabled account is refused as on the password path, and
        an ID token past its ``exp`` is not accepted (sign in at the IdP again)."""
        policy = self.sso
        raw = claims.get(policy.username_claim) if policy else None
        name = raw if isinstance(raw, str) else ""
        idp_groups = policy.idp_groups(claims) if policy else ()
        extra = {"client": client, "via": "oidc", "idp_groups": list(idp_groups)}
        moment = now or datetime.now(UTC)
        try:
            if policy is None:
                raise AuthError(SSO_REFUSED, "sso_not_configured")
            exp = claims.get("exp")
            if isinstance(exp, (int, float)) and exp <= moment.timestamp():
                raise AuthError(SSO_EXPIRED, "sso_expired")
            self._throttle(name, client, tick)
            try:
                before, user = self._sso_account(policy, name, idp_groups, moment)
            except AuthError:
                self._count_failure(name, client, tick)
                raise
        except (AuthError, RateLimited) as exc:
            self._failed(name, exc, extra)
            raise
        if before is None:
            self.audit.append(user.name, "user_change", {
                "op": "add", "target": user.name, "roles": list(user.roles), "groups": list(user.groups),
                "via": "oidc"})
        elif (before.roles, before.groups) != (user.roles, user.groups):
            self.audit.append(user.name, "user_change", {
                "op": "sso_update", "target": user.name, "before": {"roles": list(before.roles),
                "groups": list(before.groups)}, "roles": list(user.roles), "groups": list(user.groups),
                "via": "oidc"})
        self.audit.append(user.name, "login", {"must_change_password": False, **extra})
        return user

    def _sso_account(
        self, policy: SSOPolicy, name: str, idp_groups: tuple[str, ...], moment: datetime
    ) -> tuple[User | None, User]:
        if not NAME_RE.fullmatch(name):
            raise AuthError(SSO_REFUSED, "sso_bad_name")
        roles, groups = policy.grant(idp_groups)
        refusal = None if roles else "sso_no_role"
        if refusal is None:
            try:
                return self.store.sso_sign_in(name, roles, groups, moment)
            except AuthError as exc:
                if exc.reason == "locked":
                    raise
                refusal = exc.reason
            except UserError:  # the last enabled admin would lose its role
                refusal = "sso_last_admin"
        until = self.store.record_failed_sign_in(name, moment)
        if until is not None and until > moment:
            raise UserStore._locked(until, moment)
        if refusal == "disabled":
            raise AuthError("This account is disabled. Ask an administrator.", "disabled")
        raise AuthError(SSO_REFUSED, refusal)

    # ----------------------------------------------------------------- accounts

    def create_first_admin(self, name: str, password: str, *, client: str) -> User:
        """First-run setup (only while no admin exists); the site's password policy applies."""
        user = self.store.create_initial_admin(name, password, ())
        self.audit.append(user.name, "user_change",
                          {"op": "create_initial_admin", "target": user.name, "via": "ui", "client": client})
        return user

    def change_password(self, user: User, old_password: str, new_password: str) -> User:
        """The signed-in user's own change (checks the old password, with lockout; audited)."""
        updated = self.store.change_password(user.name, old_password, new_password)
        self.audit.append(user.name, "user_change", {"op": "change_password", "target": user.name, "via": "ui"})
        return updated

    def sign_out(self, user: User, reason: str = "logout") -> None:
        """Audit a sign-out; ``reason`` is ``logout`` or ``timeout``."""
        self.audit.append(user.name, "logout", {"reason": reason})

    def current(self, name: str) -> User | None:
        """The account as stored now (a signed-in session re-reads it on every run)."""
        return self.store.get(name)

    def has_admin(self) -> bool:
        return self.store.has_admin()

    def admin_for(self, user: User | None) -> UserAdmin:
        """User administration for a signed-in admin (AccessDenied otherwise)."""
        return UserAdmin.for_user(self.store, self.audit, user)

    def cli_admin(self, actor: str) -> UserAdmin:
        return UserAdmin(self.store, self.audit, actor, via="cli")


__all__ = [
    "LOOPBACK_CLIENT",
    "SSO_EXPIRED",
    "UNKNOWN_USER",
    "AuthService",
    "SSOPolicy",
    "UserAdmin",
    "client_key",
]
