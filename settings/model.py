"""The one typed settings object: every component receives the part it needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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
        default=0.30,
        description="Refuse without calling the LLM when the best dense cosine is below this",
    )

    @model_validator(mode="after")
    def _one_leg_at_least(self) -> RetrievalSettings:
        if self.dense_weight == 0 and self.sparse_weight == 0:
            raise ValueError("retrieval.dense_weight and retrieval.sparse_weight cannot both be 0")
        return self


class IngestSettings(Section):
    chunk_tokens: int = 220
    chunk_overlap_sentences: int = 1
    max_file_mb: int = 100
    embed_title_prefix: bool = True
    read_workers: int = Field(
        default=2, ge=0, description="Processes that read the next files while one is embedded (0: read in-process)"
    )
    edition_overlap: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="Text in common (0-1) above which a new document with a stored one's title or file name "
        "is suggested to admins as its new edition",
    )


class UISettings(Section):
    language: Literal["ja", "en"] = "ja"


class OIDCGrant(Section):
    """What one IdP group gives its members in the app."""

    roles: list[Literal["staff", "compliance", "admin"]] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list, description="access groups (document restrictions)")


class SecuritySettings(Section):
    session_timeout_minutes: float = Field(default=30, gt=0)
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
