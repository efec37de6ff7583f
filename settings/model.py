"""The one typed settings object: every component receives the part it needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DocType = Literal["regulation", "guidance", "manual"]


class Section(BaseModel):
    """A table of the settings: a key no field takes is an error, not a silently kept default."""

    model_config = ConfigDict(extra="forbid")


def default_model_dir() -> Path:
    """Model cache shared by every data dir: the user's cache folder."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "compliance-qa" / "models"


class LLMSettings(Section):
    backend: Literal["llamacpp", "http"] = "llamacpp"
    preset: str = "dev-qwen2.5-0.5b"
    model_path: Path | None = Field(default=None, description="GGUF file; empty means the preset's packaged model")
    http_url: str = "http://127.0.0.1:8080/v1"
    http_api_key: SecretStr = SecretStr("")
    http_model: str = "local"
    servers: int = Field(default=1, ge=1, description="LLM servers behind http_url (a balancer); 1 in-process")
    server_slots: int = Field(
        default=1, ge=1, description="Answers one server writes at once (llama_cpp.server: 1; llama-server: --parallel)"
    )
    queue_limit: int = Field(
        default=32, ge=0, description="Questions one app process lets wait for a slot; one more is told to retry"
    )
    n_threads: int | None = None
    n_ctx: int | None = Field(default=None, description="Overrides the preset's context size")
    max_answer_tokens: int = 320
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int = 42


class EmbeddingSettings(Section):
    backend: Literal["use", "sentence-transformers"] = "use"
    model_path: Path | None = Field(
        default=None, description="sentence-transformers model folder; empty means packaged"
    )
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = 32
    max_tokens: int = 256


class StoreSettings(Section):
    backend: Literal["edge", "qdrant"] = "edge"
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr = SecretStr("")
    collection: str = "chunks"
    shard_number: int = 1
    replication_factor: int = 1


class DatabaseSettings(Section):
    url: SecretStr = Field(
        default=SecretStr(""),
        description="Where the shared state lives (users, audit log, registry, eval runs, feedback, conversations, "
        "sessions, embedding cache): empty = a SQLite file per store in the data dir; "
        "postgresql+psycopg://user:password@host:5432/db = every store in that PostgreSQL database, one schema each",
    )

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, url: SecretStr) -> SecretStr:
        text = url.get_secret_value()
        if text and not re.fullmatch(r"postgresql\+psycopg://[^\s/]+/[^\s/?#]+(\?[^\s#]*)?", text):
            raise ValueError(
                "database.url must be empty (SQLite files in the data dir) or postgresql+psycopg://[user[:password]@]host"
                "[:port]/database"
            )
        return url

    def target(self, sqlite_file: Path) -> Path | str:
        """Where a store opens its database: the PostgreSQL URL when one is set, else its SQLite file."""
        return self.url.get_secret_value() or sqlite_file


class EvaluationSettings(Section):
    """Evaluation runs started on the 評価 page: queued in the database and run by a worker process
    (``python -m eval worker``), so staff questions come first (docs/operations.md, "Evaluations")."""

    app_starts_worker: bool = Field(
        default=True,
        description="The app starts a worker child process when a run is enqueued and no worker is alive; "
        "false when the site runs python -m eval worker as its own service",
    )
    worker_nice: int = Field(
        default=19, ge=0, le=19,
        description="OS niceness of the worker process (19 = lowest priority): its retrieval and in-process "
        "model get the cores only when staff questions leave them free",
    )
    llm_base_url: str = Field(
        default="",
        description="OpenAI-compatible server (or balancer) kept for evaluations, e.g. http://10.0.0.5:8081/v1: "
        "the worker sends its questions and judge calls there, never to llm.http_url; empty = the staff's "
        "model settings (the in-process model, niced, or llm.http_url)",
    )
    heartbeat_seconds: float = Field(default=5.0, gt=0, description="How often a working worker says it is alive")
    worker_timeout_seconds: float = Field(
        default=120.0, gt=0,
        description="A running job whose worker has been silent this long is marked failed (a worker on the "
        "same host whose process is gone: at once)",
    )
    cancel_grace_seconds: float = Field(
        default=60.0, gt=0,
        description="After a stop is asked, how long the worker may take to reach the end of the model call it "
        "is in (a CPU model reading a long prompt) before it ends its process; the run stays resumable",
    )

    @field_validator("llm_base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if url and not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", url):
            raise ValueError(f"evaluation.llm_base_url must be empty or an http(s) URL, not {url!r}")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _timeout_outlasts_heartbeats(self) -> EvaluationSettings:
        if self.worker_timeout_seconds < 3 * self.heartbeat_seconds:
            raise ValueError("evaluation.worker_timeout_seconds must be at least 3 heartbeats "
                             f"(3 × {self.heartbeat_seconds:g} s), or a busy worker is taken for lost")
        return self


class RetrievalSettings(Section):
    top_k: int = 5
    candidates: int = 40
    fusion: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = 60
    dense_weight: float = Field(default=1.0, ge=0.0, description="RRF weight of the dense leg (0 = sparse only)")
    sparse_weight: float = Field(default=3.0, ge=0.0, description="RRF weight of the BM25 leg (0 = dense only)")
    """Dense 1 : sparse 3 was the best hybrid on every dev set (docs/retrieval.md)."""
    sparse_tokenizer: Literal["sudachi", "edge-multilingual"] = "sudachi"
    reranker_path: Path | None = None
    neighbour_expansion: bool = True
    refusal_min_dense: float = Field(
        default=0.22,
        description="Refuse without calling the LLM when the best dense cosine is below this. Measured for the "
        "packaged embedder with `python -m eval refusal-gate` (docs/evaluation.md, 'The refusal gate'); another "
        "embedder has other cosines and needs its own value",
    )

    @model_validator(mode="after")
    def _one_leg_at_least(self) -> RetrievalSettings:
        if self.dense_weight == 0 and self.sparse_weight == 0:
            raise ValueError("retrieval.dense_weight and retrieval.sparse_weight cannot both be 0")
        return self


class IngestSettings(Section):
    chunker: Literal["structure", "sentence-splitter"] = Field(
        default="structure",
        description="structure: sections, pages and sentences of Japanese and English regulations (ingest/chunking); "
        "sentence-splitter: llama-index's SentenceSplitter(512, 50) over the whole text, the ingest benchmark's "
        "baseline, for measuring it",
    )
    chunk_tokens: int = 220
    chunk_overlap_sentences: int = 1
    chunk_overlap_max_tokens: int | None = Field(
        default=None, ge=0,
        description="At most this many tokens of the previous chunk repeated at the start of the next (its last "
        "chunk_overlap_sentences sentences, fewer when they are longer, none when its last sentence is); unset: no "
        "limit. 50 (as llama-index's SentenceSplitter) with embed_section = heading makes a Japanese first ingest "
        "2x the baseline at equal retrieval figures but fewer grounded answers (docs/retrieval.md, 'Chunk overlap "
        "and section prefix')",
    )
    max_file_mb: int = 100
    embed_title_prefix: bool = True
    embed_section: Literal["path", "heading"] = Field(
        default="path",
        description="With the title prefix on, what of a chunk's section the dense embedding reads before its text: "
        "path (every heading above it) or heading (its own heading only); BM25 always indexes the whole path",
    )
    edition_overlap: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="Text in common (0-1) above which a new document with a stored one's title or file name "
        "is suggested to admins as its new edition",
    )
    ocr_command: str = Field(
        default="tesseract", min_length=1,
        description="Tesseract program (a name on PATH or a path) that reads PDF pages without a text layer; "
        "without it (or its language data) they are skipped with a warning",
    )
    ocr_languages: str = Field(default="jpn+eng", pattern=r"^[a-z_]+(\+[a-z_]+)*$",
                               description="Tesseract language data for scanned pages, joined with +")
    ocr_dpi: int = Field(default=300, ge=100, le=600, description="Resolution scanned pages are rendered at")


class UISettings(Section):
    language: Literal["ja", "en"] = "ja"
    time_zone: str = Field(default="Asia/Tokyo", description="IANA time zone the app shows times in")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Tokyo or UTC)") from None
        return value


class OIDCGrant(Section):
    """What one IdP group gives its members in the app."""

    roles: list[Literal["staff", "compliance", "admin"]] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list, description="access groups (document restrictions)")


class SecuritySettings(Section):
    session_timeout_minutes: float = Field(default=30, gt=0)
    session_max_hours: float = Field(
        default=12, gt=0, description="Longest a sign-in lasts, however active (a reload keeps it until then)"
    )
    conversation_retention_days: int = Field(
        default=90, ge=1, description="Days a conversation is kept after its last message; older ones are purged"
    )
    questions_per_minute: int = 20
    max_question_chars: int = 2000
    max_failed_logins: int = 5
    lockout_minutes: int = 15
    min_password_length: int = 10
    audit_anchor_path: Path | None = Field(
        default=None,
        description="Head anchor of the audit log (docs/security.md): a file outside the database, ideally on "
        "another mount, append-only (chattr +a) or WORM; empty means audit-anchor.jsonl in the data dir",
    )
    audit_anchor_key: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC key (32+ characters) that signs the head anchor's lines; from the environment "
        "(CQA_SECURITY__AUDIT_ANCHOR_KEY), never from the data dir",
    )
    login_failures_per_name: int = Field(
        default=10, ge=1, description="Failed sign-ins per user name in login_throttle_seconds before refusing"
    )
    login_failures_per_client: int = Field(
        default=30, ge=1, description="Failed sign-ins per client address in login_throttle_seconds before refusing"
    )
    login_throttle_seconds: int = Field(default=300, gt=0)
    client_address_header: str | None = Field(
        default=None,
        description="Header in which the reverse proxy on this host passes the client's address "
        "(e.g. X-Forwarded-For; its last value is used); trusted on loopback connections only",
    )
    oidc_provider: str | None = Field(
        default=None, description="Name of an [auth.<provider>] block in Streamlit secrets for st.login SSO"
    )
    oidc_username_claim: str = Field(default="preferred_username", description="ID-token claim with the user name")
    oidc_groups_claim: str = Field(default="groups", description="ID-token claim with the IdP groups")
    oidc_group_map: dict[str, OIDCGrant] = Field(
        default_factory=dict,
        description="IdP group -> app roles and access groups; an SSO user none of whose groups is mapped "
        "to a role is refused",
    )

    @model_validator(mode="after")
    def _provider_name(self) -> SecuritySettings:
        if self.oidc_provider is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", self.oidc_provider):
            raise ValueError(
                "security.oidc_provider must be letters, digits and '-' (Streamlit refuses '_' in a provider name)"
            )
        return self
