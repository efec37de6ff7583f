"""Each user's conversations, kept so a reload or another day can reopen them.

A conversation is its owner's only: every call names the user, and another user's conversation is "not found".
Answers are stored as the answer service returned them (citations with the service's numbers, the passages
they quote). Reopening checks each cited document again against the reader's current access and the versions
now in force (:func:`recheck`): an answer that cites a document the reader may no longer read is withheld whole,
and a citation whose version was superseded or withdrawn says so. Deleting a conversation and the retention
purge (``security.conversation_retention_days`` after the last message) are on the audit trail."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, Table, Text, delete, func, insert, select, update

from core.errors import CQAError
from core.schema import Answer, SearchFilter
from db import Database

TITLE_CHARS = 40
"""A new conversation's title: the first question's first characters."""
MAX_TITLE_CHARS = 120

_METADATA = MetaData()
CONVERSATIONS = Table(
    "conversations",
    _METADATA,
    Column("id", Text, primary_key=True),
    Column("user", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
MESSAGES = Table(
    "messages",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", Text, ForeignKey("conversations.id"), nullable=False),
    Column("role", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("answer", Text),
    Column("as_of", Text),
    Column("created_at", Float, nullable=False),
)

AuditEvent = Callable[[str, str, dict], object]
"""``AuditLog.append(user, action, detail)``."""


class ConversationNotFound(CQAError):
    def __init__(self) -> None:
        super().__init__("no such conversation of yours", key="conversation_not_found")


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created_at: float
    updated_at: float
    messages: int


@dataclass(frozen=True)
class Message:
    role: Literal["user", "assistant"]
    content: str
    answer: Answer | None = None
    as_of: date | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class DocumentState:
    """A document version as the registry has it now."""

    access: tuple[str, ...]
    status: str
    """active | superseded | withdrawn"""
    active_version: int | None
    """The version in force now (None: none is)."""


SourceState = Literal["current", "superseded", "withdrawn", "withheld"]


@dataclass(frozen=True)
class SourceCheck:
    state: SourceState
    active_version: int | None = None


@dataclass(frozen=True)
class ReopenedMessage:
    """A stored message as its reader may see it now. ``withheld``: the answer cited a document the reader may
    no longer read (or that was deleted), so its text, citations and passages are not shown."""

    message: Message
    checks: dict[int, SourceCheck] = field(default_factory=dict)
    """By the citation's stored number."""
    withheld: bool = False


def _title(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


class ConversationStore:
    def __init__(self, target: Path | str, audit_event: AuditEvent, retention_days: int) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        self._db = Database(target, "conversations", file_mode=0o600)
        self._audit = audit_event
        self.retention_days = retention_days

    def start(self, user: str, first_question: str, now: float | None = None) -> str:
        """A new conversation of ``user`` titled after its first question; its id."""
        moment = time.time() if now is None else now
        conversation_id = secrets.token_hex(8)
        with self._db.write() as conn:
            conn.execute(insert(CONVERSATIONS).values(id=conversation_id, user=user, title=_title(first_question),
                                                      created_at=moment, updated_at=moment))
        return conversation_id

    def _owned(self, conn, conversation_id: str, user: str) -> None:
        owner = conn.execute(select(CONVERSATIONS.c.user).where(CONVERSATIONS.c.id == conversation_id)).scalar()
        if owner is None or owner != user:
            raise ConversationNotFound()

    def add(self, conversation_id: str, user: str, message: Message, now: float | None = None) -> None:
        moment = time.time() if now is None else now
        with self._db.write() as conn:
            self._owned(conn, conversation_id, user)
            conn.execute(insert(MESSAGES).values(
                conversation_id=conversation_id, role=message.role, content=message.content,
                answer=message.answer.model_dump_json() if message.answer is not None else None,
                as_of=message.as_of.isoformat() if message.as_of else None, created_at=moment,
            ))
            conn.execute(update(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id)
                         .values(updated_at=moment))

    def conversations(self, user: str) -> list[ConversationSummary]:
        """``user``'s conversations, the most recently used first."""
        count = (select(func.count()).where(MESSAGES.c.conversation_id == CONVERSATIONS.c.id)
                 .correlate(CONVERSATIONS).scalar_subquery())
        query = (select(CONVERSATIONS.c.id, CONVERSATIONS.c.title, CONVERSATIONS.c.created_at,
                        CONVERSATIONS.c.updated_at, count.label("messages"))
                 .where(CONVERSATIONS.c.user == user)
                 .order_by(CONVERSATIONS.c.updated_at.desc(), CONVERSATIONS.c.id))
        with self._db.read() as conn:
            return [ConversationSummary(**row) for row in conn.execute(query).mappings()]

    def title(self, conversation_id: str, user: str) -> str:
        with self._db.read() as conn:
            self._owned(conn, conversation_id, user)
            return conn.execute(select(CONVERSATIONS.c.title).where(CONVERSATIONS.c.id == conversation_id)).scalar()

    def messages(self, conversation_id: str, user: str) -> list[Message]:
        with self._db.read() as conn:
            self._owned(conn, conversation_id, user)
            rows = conn.execute(select(MESSAGES).where(MESSAGES.c.conversation_id == conversation_id)
                                .order_by(MESSAGES.c.id)).mappings().all()
        return [Message(role=r["role"], content=r["content"],
                        answer=Answer.model_validate_json(r["answer"]) if r["answer"] else None,
                        as_of=date.fromisoformat(r["as_of"]) if r["as_of"] else None, created_at=r["created_at"])
                for r in rows]

    def rename(self, conversation_id: str, user: str, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise CQAError("a conversation needs a title", key="conversation_title_empty")
        with self._db.write() as conn:
            self._owned(conn, conversation_id, user)
            conn.execute(update(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id)
                         .values(title=title[:MAX_TITLE_CHARS]))

    def delete(self, conversation_id: str, user: str) -> None:
        """Delete a conversation of ``user`` with its messages (audited)."""
        with self._db.write() as conn:
            self._owned(conn, conversation_id, user)
            removed = conn.execute(delete(MESSAGES).where(MESSAGES.c.conversation_id == conversation_id)).rowcount
            conn.execute(delete(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id))
        self._audit(user, "conversation", {"op": "delete", "conversation": conversation_id, "messages": removed})

    def purge(self, now: float | None = None, actor: str = "system") -> int:
        """Delete every conversation whose last message is older than the retention period; how many (audited
        when any were)."""
        moment = time.time() if now is None else now
        cutoff = moment - self.retention_days * 86400
        with self._db.write() as conn:
            old = select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.updated_at < cutoff)
            ids = list(conn.execute(old).scalars())
            if not ids:
                return 0
            messages = conn.execute(delete(MESSAGES).where(MESSAGES.c.conversation_id.in_(ids))).rowcount
            conn.execute(delete(CONVERSATIONS).where(CONVERSATIONS.c.id.in_(ids)))
        self._audit(actor, "conversation", {"op": "purge", "conversations": len(ids), "messages": messages,
                                            "retention_days": self.retention_days})
        return len(ids)


def recheck(messages: list[Message], flt: SearchFilter,
            state_of: Callable[[str, int], DocumentState | None]) -> list[ReopenedMessage]:
    """The messages as ``flt``'s reader may see them now (see the module docstring)."""
    out: list[ReopenedMessage] = []
    for message in messages:
        answer = message.answer
        if answer is None:
            out.append(ReopenedMessage(message))
            continue
        checks: dict[int, SourceCheck] = {}
        for c in answer.citations:
            state = state_of(c.doc_id, c.version)
            if state is None or not flt.can_read(state.access):
                checks[c.n] = SourceCheck("withheld")
            elif state.status == "active":
                checks[c.n] = SourceCheck("current", state.active_version)
            elif state.status == "superseded" and state.active_version is not None:
                checks[c.n] = SourceCheck("superseded", state.active_version)
            else:
                checks[c.n] = SourceCheck("withdrawn", state.active_version)
        readable = [h for h in answer.contexts
                    if (s := state_of(h.doc_id, h.version)) is not None and flt.can_read(s.access)]
        if any(check.state == "withheld" for check in checks.values()):
            hidden = answer.model_copy(update={"answer": "", "citations": [], "contexts": [], "sentences": [],
                                               "removed_claims": []})
            out.append(ReopenedMessage(Message(message.role, "", hidden, message.as_of, message.created_at), checks,
                                       withheld=True))
            continue
        changes: dict = {"contexts": readable}
        if len(readable) < len(answer.contexts):
            changes["removed_claims"] = []  # what the model wrote from a passage the reader may no longer read
        shown = answer.model_copy(update=changes)
        out.append(ReopenedMessage(Message(message.role, message.content, shown, message.as_of, message.created_at),
                                   checks))
    return out
