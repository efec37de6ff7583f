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
from auth.service import AuthService, SSOPolicy, UserAdmin, client_key
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
    "AuthService",
    "PasswordPolicyError",
    "Permission",
    "RateLimited",
    "RateLimiter",
    "SSOPolicy",
    "SessionClock",
    "User",
    "UserAdmin",
    "UserError",
    "UserStore",
    "access_groups",
    "allowed_pages",
    "can",
    "client_key",
    "permissions",
    "require",
]
