"""Users, roles and sessions: argon2 password store, permissions, timeouts, rate limits."""

from auth.roles import (
    PAGES,
    Permission,
    access_groups,
    allowed_pages,
    can,
    permissions,
    require,
)
from auth.service import UserAdmin, change_own_password, sign_in, sign_out
from auth.session import RateLimited, RateLimiter, SessionClock
from auth.store import (
    ROLES,
    USERS_DB_NAME,
    AuthError,
    PasswordPolicyError,
    User,
    UserError,
    UserStore,
)

__all__ = [
    "PAGES",
    "ROLES",
    "USERS_DB_NAME",
    "AuthError",
    "PasswordPolicyError",
    "Permission",
    "RateLimited",
    "RateLimiter",
    "SessionClock",
    "User",
    "UserAdmin",
    "UserError",
    "UserStore",
    "access_groups",
    "allowed_pages",
    "can",
    "change_own_password",
    "permissions",
    "require",
    "sign_in",
    "sign_out",
]
