"""Builds components from settings and composes them into services, lazily.

The UI and every CLI go through one Container, so they run the same services; heavy
components (embedder, store, LLM) load on first use only."""

from __future__ import annotations

import threading
from functools import cached_property

from settings import Settings


class Container:
    def __init__(self, settings: Settings, store_wait_seconds: float = 0.0, *, sparse=None) -> None:
        """``sparse``: a sparse encoder to use instead of the one the settings describe (the retrieval
        harness's experiments measure candidate encoders this way)."""
        self.settings = settings
        self._store_wait = store_wait_seconds
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
        from retrieval.embedding import build_embedder

        return self._build("_embedder", lambda: build_embedder(self.settings.embedding))

    @property
    def sparse(self):
        from retrieval.sparse import SparseEncoder

        return self._build("_sparse", lambda: SparseEncoder(self.settings.retrieval.sparse_tokenizer))

    @property
    def store(self):
        from retrieval.store import build_store

        return self._build(
            "_store",
            lambda: build_store(self.settings.store, self.settings.store_dir, self.embedder.dim, self._store_wait),
        )

    @cached_property
    def registry(self):
        from ingest.registry import Registry

        return Registry(self.settings.registry_path)

    @property
    def retrieval(self):
        from retrieval.service import RetrievalService

        return self._build(
            "_retrieval",
            lambda: RetrievalService(self.settings.retrieval, self.embedder, self.sparse, self.store),
        )

    @property
    def ingest(self):
        from ingest.embedding_cache import EmbeddingCache
        from ingest.originals import Originals
        from ingest.service import IngestService

        def make():
            cache = EmbeddingCache(self.settings.data_dir / "embeddings.sqlite3", self.embedder.name)
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
    def users(self):
        from auth.store import UserStore

        sec = self.settings.security
        return UserStore.from_settings(
            self.settings, min_password_length=sec.min_password_length,
            max_failed_attempts=sec.max_failed_logins, lockout_minutes=sec.lockout_minutes,
        )

    @cached_property
    def auth(self):
        """The one sign-in and user-administration service (the site's password policy, lockout,
        throttling and single sign-on mapping)."""
        from auth.service import AuthService

        return AuthService.from_settings(self.settings, self.users, self.audit)

    @cached_property
    def audit(self):
        from audit.log import AuditLog

        return AuditLog.from_settings(self.settings)

    @cached_property
    def question_limiter(self):
        from auth.session import RateLimiter

        return RateLimiter(self.settings.security.questions_per_minute, 60)

    def record_answer(self, requester, answer) -> None:
        """The answer service's ``on_answer``: the answer on the audit trail (``audit.records``)."""
        from audit.records import record_answer

        index_version = self.registry.index_version()
        record_answer(self.audit, requester.name, answer, index_version)

    def record_feedback(self, feedback) -> int:
        """Store a thumbs up/down and put it on the audit trail (``audit.records``)."""
        from audit.records import record_feedback

        return record_feedback(self.feedback, self.audit, feedback)

    @cached_property
    def feedback(self):
        from qa.feedback import FeedbackStore

        return FeedbackStore(self.settings.feedback_path)

    def chat_model(self, preset: str | None = None):
        from llm.factory import build_chat_model

        return build_chat_model(self.settings, preset)

    @property
    def answers(self):
        from llm.factory import effective_sampling
        from llm.presets import get_preset
        from qa.service import AnswerService

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
    from settings import load_settings

    return Container(load_settings(), store_wait_seconds=store_wait_seconds)
