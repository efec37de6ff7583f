"""Builds components from settings and composes them into services, lazily.

The UI and every CLI go through one Container, so they run the same services; heavy
components (embedder, store, LLM) load on first use only."""

from __future__ import annotations

import threading
from functools import cached_property

from audit import records
from audit.log import AuditLog
from auth.service import AuthService
from auth.session import RateLimiter
from auth.store import UserStore
from auth.web_sessions import WebSessions
from ingest.embedding_cache import EmbeddingCache
from ingest.originals import Originals
from ingest.registry import Registry
from ingest.service import IngestService
from ingest.viewer import SourceViewer
from llm.factory import build_chat_model, effective_sampling
from llm.presets import get_preset
from qa.conversations import ConversationStore, DocumentState
from qa.feedback import FeedbackStore
from qa.service import AnswerService
from retrieval.embedding import build_embedder
from retrieval.service import RetrievalService
from retrieval.sparse import SparseEncoder
from retrieval.store import build_store
from settings import Settings, load_settings


class Container:
    def __init__(self, settings: Settings, store_wait_seconds: float = 0.0, *, sparse=None, store_dir=None) -> None:
        """``sparse``: a sparse encoder to use instead of the one the settings describe (the retrieval
        harness's experiments measure candidate encoders this way). ``store_dir``: an embedded store folder to
        open instead of the data dir's (the evaluation worker's snapshot of it)."""
        self.settings = settings
        self._store_wait = store_wait_seconds
        self._store_dir = store_dir or settings.store_dir
        self._lock = threading.RLock()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if sparse is not None:
            self.__dict__["_sparse"] = sparse

    def _build(self, name: str, factory):
        with self._lock:
            if name not in self.__dict__:
                self.__dict__[name] = factory()
            return self.__dict__[name]

    @property
    def embedder(self):
        return self._build("_embedder", lambda: build_embedder(self.settings.embedding))

    @property
    def sparse(self):
        return self._build("_sparse", lambda: SparseEncoder(self.settings.retrieval.sparse_tokenizer))

    @property
    def store(self):
        return self._build(
            "_store",
            lambda: build_store(self.settings.store, self._store_dir, self.embedder.dim, self._store_wait),
        )

    @cached_property
    def registry(self):
        return Registry(self.settings.database.target(self.settings.registry_path))

    @property
    def retrieval(self):
        return self._build(
            "_retrieval",
            lambda: RetrievalService(self.settings.retrieval, self.embedder, self.sparse, self.store),
        )

    @property
    def ingest(self):
        def make():
            cache = EmbeddingCache(
                self.settings.database.target(self.settings.data_dir / "embeddings.sqlite3"), self.embedder.name
            )
            service = IngestService(
                self.settings.ingest,
                self.registry,
                self.embedder,
                self.sparse,
                self.store,
                cache,
                audit_event=self.audit.append,
                originals=Originals(self.settings.data_dir / "originals"),
                upload_dir=self.settings.data_dir / "uploads",
            )
            service.recover()
            return service

        return self._build("_ingest", make)

    @cached_property
    def viewer(self):
        """The source panel's scoped reads: a cited PDF page rendered with its passage marked, a section."""
        return SourceViewer(self.registry, Originals(self.settings.data_dir / "originals"), self.store)

    @cached_property
    def web_sessions(self):
        """Signed-in browser sessions behind the signed session cookie (a reload keeps the sign-in)."""
        return WebSessions.from_settings(self.settings)

    @cached_property
    def conversations(self):
        """Each user's stored conversations (deletes and the retention purge go on the audit trail)."""
        return ConversationStore(self.settings.database.target(self.settings.data_dir / "conversations.sqlite3"),
                                 self.audit.append,
                                 self.settings.security.conversation_retention_days)

    def document_state(self, doc_id: str, version: int):
        """A cited document version as the registry has it now, for re-checking a reopened conversation."""
        record = self.registry.get(doc_id, version)
        if record is None:
            return None
        active = self.registry.active_version(doc_id)
        return DocumentState(record.access, record.status, active.version if active else None)

    @cached_property
    def users(self):
        sec = self.settings.security
        return UserStore.from_settings(
            self.settings, min_password_length=sec.min_password_length,
            max_failed_attempts=sec.max_failed_logins, lockout_minutes=sec.lockout_minutes,
        )

    @cached_property
    def auth(self):
        """The one sign-in and user-administration service (the site's password policy, lockout,
        throttling and single sign-on mapping)."""
        return AuthService.from_settings(self.settings, self.users, self.audit)

    @cached_property
    def audit(self):
        return AuditLog.from_settings(self.settings)

    @cached_property
    def question_limiter(self):
        return RateLimiter(self.settings.security.questions_per_minute, 60)

    def record_answer(self, requester, answer) -> None:
        """The answer service's ``on_answer``: the answer on the audit trail (``audit.records``)."""
        index_version = self.registry.index_version()
        records.record_answer(self.audit, requester.name, answer, index_version)

    def record_unanswered(self, requester, question, error) -> None:
        """The answer service's ``on_failure``: the unanswered question on the audit trail (``audit.records``)."""
        records.record_unanswered(self.audit, requester.name, question, error)

    def record_feedback(self, feedback) -> int:
        """Store a thumbs up/down and put it on the audit trail (``audit.records``)."""
        return records.record_feedback(self.feedback, self.audit, feedback)

    @cached_property
    def feedback(self):
        return FeedbackStore(self.settings.database.target(self.settings.feedback_path))

    def chat_model(self, preset: str | None = None):
        return build_chat_model(self.settings, preset)

    @property
    def answers(self):
        def make():
            preset = get_preset(self.settings.llm.preset)
            return AnswerService(
                retrieval=self.retrieval,
                llm_factory=self.chat_model,
                llm_settings=self.settings.llm,
                retrieval_settings=self.settings.retrieval,
                sampling=effective_sampling(preset, self.settings),
                prompt_style=preset.prompt_style,
                on_answer=self.record_answer,
                on_failure=self.record_unanswered,
                max_question_chars=self.settings.security.max_question_chars,
            )

        return self._build("_answers", make)

    def close(self) -> None:
        store = self.__dict__.pop("_store", None)
        if store is not None:
            store.close()
        if "registry" in self.__dict__:
            self.registry.close()


def open_container(store_wait_seconds: float = 0.0) -> Container:
    """The services of the site's settings (environment and site file), for a command line."""
    return Container(load_settings(), store_wait_seconds=store_wait_seconds)
