"""The composition root: builds components from settings and composes them into services.

Only entry points import this package (app.py and ui, scripts, bench, and each package's ``__main__``); every
other package receives what it needs as arguments, so nothing below depends on how it is assembled."""

from auth.requesters import requester_for
from wiring.container import Container, open_container

__all__ = ["Container", "open_container", "requester_for"]
