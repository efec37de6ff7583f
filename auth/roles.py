"""Roles, permissions, pages and the access groups the retrieval filter uses.

=============  =====================================================
permission     granted to
=============  =====================================================
chat           every signed-in role (staff, compliance, admin)
evaluate       compliance, admin
ingest         admin
manage_users   admin
view_audit     admin
view_settings  admin
=============  =====================================================

A disabled user (or no user) has no permission at all.
"""

from __future__ import annotations

from enum import StrEnum

from auth.store import ROLES, User
from core.errors import AccessDenied


class Permission(StrEnum):
    CHAT = "chat"
    EVALUATE = "evaluate"
    INGEST = "ingest"
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"
    VIEW_SETTINGS = "view_settings"


PERMISSIONS: frozenset[str] = frozenset(p.value for p in Permission)

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "staff": frozenset({Permission.CHAT}),
    "compliance": frozenset({Permission.CHAT, Permission.EVALUATE}),
    "admin": frozenset(Permission),
}
assert set(ROLE_PERMISSIONS) == ROLES

PAGES: tuple[tuple[str, Permission], ...] = (
    ("chat", Permission.CHAT),
    ("evaluate", Permission.EVALUATE),
    ("feedback", Permission.EVALUATE),
    ("ingest", Permission.INGEST),
    ("users", Permission.MANAGE_USERS),
    ("audit", Permission.VIEW_AUDIT),
    ("settings", Permission.VIEW_SETTINGS),
    ("account", Permission.CHAT),
)
"""UI page keys in menu order, each with the permission it needs."""


def _permission(permission: str | Permission) -> Permission:
    try:
        return Permission(permission)
    except ValueError:
        raise ValueError(
            f"unknown permission {permission!r} (known: {', '.join(sorted(PERMISSIONS))})"
        ) from None


def permissions(user: User | None) -> frozenset[Permission]:
    if user is None or user.disabled:
        return frozenset()
    granted: set[Permission] = set()
    for role in user.roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def can(user: User | None, permission: str | Permission) -> bool:
    return _permission(permission) in permissions(user)


def require(user: User | None, permission: str | Permission) -> None:
    """Raise :class:`AccessDenied` unless ``user`` holds ``permission``."""
    perm = _permission(permission)
    if user is None:
        raise AccessDenied("Please sign in first.", key="sign_in_first")
    if user.disabled:
        raise AccessDenied("This account is disabled.", key="account_disabled")
    if perm not in permissions(user):
        raise AccessDenied(f"Access denied: {user.name} may not use {perm.value!r}.", key="forbidden")


def allowed_pages(user: User | None) -> list[str]:
    """The page keys of :data:`PAGES` this user may open, in menu order."""
    granted = permissions(user)
    return [page for page, perm in PAGES if perm in granted]


def access_groups(user: User | None) -> tuple[str, ...]:
    """The user's access groups for ``SearchFilter.access_groups``.

    Never None (None would lift the restriction): admins get public documents plus their
    own groups like everyone else. The store adds the public marker itself; a user with no
    groups, a disabled user or no user gets () = public documents only.
    """
    if user is None or user.disabled:
        return ()
    return tuple(sorted(set(user.groups)))


__all__ = [
    "PAGES",
    "PERMISSIONS",
    "ROLE_PERMISSIONS",
    "Permission",
    "access_groups",
    "allowed_pages",
    "can",
    "permissions",
    "require",
]
