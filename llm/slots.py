"""The model's slots as one app process sees them: at most ``capacity`` answers written at once, the
others wait first come first served and know their place in the queue.

Capacity is ``servers × server_slots`` (settings ``llm``). Behind a balancer several app processes share
the servers, so the balancer's own per-server ``maxconn`` and queue (deploy/haproxy.cfg) stay the
limit across processes; this queue is what lets the asking person see their place."""

from __future__ import annotations

import threading
from collections import deque

from core.errors import ModelBusy
from settings.model import LLMSettings


class Ticket:
    """One question's place: waiting (``position`` ≥ 1) or admitted (``position`` 0) until ``leave()``."""

    def __init__(self, slots: LLMSlots) -> None:
        self._slots = slots
        self.admitted = False
        self.left = False

    @property
    def position(self) -> int:
        """1 for the next in line; 0 once admitted."""
        return self._slots.position(self)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a slot; True once admitted."""
        return self._slots.wait(self, timeout)

    def leave(self) -> None:
        """Give the slot back (or the place in the queue); safe to call twice."""
        self._slots.leave(self)


class LLMSlots:
    def __init__(self, capacity: int, queue_limit: int) -> None:
        if capacity < 1 or queue_limit < 0:
            raise ValueError(f"capacity must be ≥ 1 and queue_limit ≥ 0, not {capacity} and {queue_limit}")
        self.capacity = capacity
        self.queue_limit = queue_limit
        self._running = 0
        self._waiting: deque[Ticket] = deque()
        self._changed = threading.Condition()

    @classmethod
    def from_settings(cls, llm: LLMSettings) -> LLMSlots:
        return cls(llm.servers * llm.server_slots, llm.queue_limit)

    def join(self) -> Ticket:
        """A ticket for the next question: admitted at once when a slot is free, else queued.

        Raises ``ModelBusy`` when ``queue_limit`` questions are already waiting."""
        ticket = Ticket(self)
        with self._changed:
            if self._running < self.capacity and not self._waiting:
                self._running += 1
                ticket.admitted = True
            elif len(self._waiting) >= self.queue_limit:
                raise ModelBusy(
                    f"all {self.capacity} model slots are busy and {len(self._waiting)} questions wait: "
                    "ask again in a minute", key="llm_busy", params={"waiting": len(self._waiting)},
                )
            else:
                self._waiting.append(ticket)
        return ticket

    def position(self, ticket: Ticket) -> int:
        with self._changed:
            if ticket.admitted or ticket.left:
                return 0
            return self._waiting.index(ticket) + 1

    def wait(self, ticket: Ticket, timeout: float) -> bool:
        with self._changed:
            self._changed.wait_for(lambda: ticket.admitted, timeout)
            return ticket.admitted

    def leave(self, ticket: Ticket) -> None:
        with self._changed:
            if ticket.left:
                return
            ticket.left = True
            if ticket.admitted:
                self._running -= 1
            else:
                self._waiting.remove(ticket)
            while self._waiting and self._running < self.capacity:
                self._waiting.popleft().admitted = True
                self._running += 1
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._waiting)
