"""Who is asking, for the CLIs and the evaluation: a named user's access groups, or only public documents."""

from __future__ import annotations

from auth.roles import access_groups
from auth.store import UserStore
from core.errors import CQAError
from core.schema import Requester
from settings import Settings


def requester_for(settings: Settings, user: str | None) -> Requester:
    """Without ``--user`` a CLI sees public documents only; with it, that user's groups."""
    if user is None:
        return Requester(name="cli", groups=())
    account = UserStore.from_settings(settings).get(user)
    if account is None or account.disabled:
        raise CQAError(f"no active user named {user!r}")
    return Requester(name=account.name, groups=access_groups(account))
