"""Session idle timeout and a per-user rate limiter (pure Python, no UI code).

Times are seconds: ``now`` may be a float (epoch seconds, as ``time.time()``) or an aware
datetime; the default is the current time. The rate limiter uses ``time.monotonic()`` by
default, so clock steps cannot reset it; pass ``now`` floats of one kind consistently.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from datetime import datetime

from auth.store import User
from core.errors import CQAError


class RateLimited(CQAError):
    """Too many requests from one user; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: float, *, key: str | None = None,
                 params: dict | None = None) -> None:
        super().__init__(message, key=key, params=params)
        self.retry_after = retry_after


def _seconds(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return float(now)


class SessionClock:
    """Idle timeout for one signed-in session: ``touch`` on every request, check ``expired``.

    Keep one per session (e.g. in the UI's session state). A clock that was never touched
    counts from its creation.
    """

    def __init__(self, timeout_minutes: float, now: float | datetime | None = None) -> None:
        if timeout_minutes <= 0:
            raise ValueError("timeout_minutes must be positive")
        self.timeout = timeout_minutes * 60.0
        self.last_seen = _seconds(now)

    def touch(self, now: float | datetime | None = None) -> None:
        """Record activity (a later time only: a clock that went backwards is ignored)."""
        self.last_seen = max(self.last_seen, _seconds(now))

    def remaining(self, now: float | datetime | None = None) -> float:
        """Seconds left before the session expires (0 when expired)."""
        return max(0.0, self.last_seen + self.timeout - _seconds(now))

    def expired(self, now: float | datetime | None = None) -> bool:
        return _seconds(now) - self.last_seen >= self.timeout


class RateLimiter:
    """At most ``max_events`` per user in any sliding window of ``per_seconds``.

    In memory and per process; thread-safe. ``check`` records the event when allowed and
    raises :class:`RateLimited` otherwise (refused events are not counted).
    """

    def __init__(self, max_events: int, per_seconds: float) -> None:
        if max_events < 1 or per_seconds <= 0:
            raise ValueError("max_events and per_seconds must be positive")
        self.max_events = max_events
        self.per_seconds = float(per_seconds)
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._checks = 0

    @staticmethod
    def _key(user: User | str) -> str:
        return (user.name if isinstance(user, User) else str(user)).lower()

    def check(self, user: User | str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else float(now)
        with self._lock:
            wait = self._wait(self._key(user), moment)
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                raise RateLimited(
                    f"Too many requests: at most {self.max_events} per {self._window()}. "
                    f"Please wait {seconds} second(s) and try again.",
                    retry_after=wait, key="too_many_requests", params={"seconds": seconds},
                )
            self._add(self._key(user), moment)

    def retry_after(self, user: User | str, now: float | None = None) -> float | None:
        """Seconds to wait before the next event is allowed, or None when it is allowed now.
        Records nothing: with :meth:`add`, a caller can count only some events (failures, say)."""
        moment = time.monotonic() if now is None else float(now)
        with self._lock:
            return self._wait(self._key(user), moment)

    def add(self, user: User | str, now: float | None = None) -> None:
        """Record one event, allowed or not."""
        moment = time.monotonic() if now is None else float(now)
        with self._lock:
            self._add(self._key(user), moment)

    def _wait(self, key: str, moment: float) -> float | None:
        events = self._events.get(key)
        if not events:
            return None
        while events and events[0] <= moment - self.per_seconds:
            events.popleft()
        if len(events) >= self.max_events:
            return max(0.0, events[-self.max_events] + self.per_seconds - moment)
        return None

    def _add(self, key: str, moment: float) -> None:
        self._events.setdefault(key, deque()).append(moment)
        self._checks += 1
        if self._checks % 1000 == 0:
            self._sweep(moment)

    def reset(self, user: User | str | None = None) -> None:
        with self._lock:
            if user is None:
                self._events.clear()
            else:
                self._events.pop(self._key(user), None)

    def _sweep(self, moment: float) -> None:
        """Forget users with no event in the window (keeps memory bounded)."""
        idle = [k for k, ev in self._events.items() if not ev or ev[-1] <= moment - self.per_seconds]
        for key in idle:
            del self._events[key]

    def _window(self) -> str:
        s = self.per_seconds
        if s % 3600 == 0:
            return f"{int(s // 3600)} hour(s)"
        if s % 60 == 0:
            return f"{int(s // 60)} minute(s)"
        return f"{s:g} second(s)"


__all__ = ["RateLimited", "RateLimiter", "SessionClock"]
