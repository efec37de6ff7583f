"""Types that cross module boundaries (and the CLI JSON contract)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

PUBLIC_GROUP = "*"
"""Access-group value carried by chunks that every signed-in user may read."""

DocStatus = Literal["active", "superseded", "withdrawn"]
IngestStatus = Literal["ingested", "unchanged", "updated", "failed", "withdrawn", "would-ingest", "would-update"]


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage of one version of one document, ready to embed and store."""

    chunk_id: str
    doc_id: str
    version: int
    chunk_index: int
    text: str
    embed_text: str
    section: str
    page_start: int | None
    page_end: int | None
    source: str
    title: str
    doc_type: str
    status: DocStatus
    effective_from: date | None
    effective_to: date | None
    access: tuple[str, ...] = (PUBLIC_GROUP,)
    lang: str = "ja"
    ocr: bool = False
    """Some of the text was read by OCR from a scanned page."""
    page_marks: tuple[tuple[int, int], ...] = ()
    """Where each page starts in ``text`` (offset, page) when it spans pages."""

    @property
    def pages(self) -> list[int]:
        if self.page_start is None:
            return []
        return list(range(self.page_start, (self.page_end or self.page_start) + 1))


@dataclass(frozen=True)
class Unrestricted:
    """The named scope that sees every document: for admin-only tools (edition matching, benchmarks, the
    retrieval harness), never a default. A user's search always carries the user's groups."""

    def __repr__(self) -> str:
        return "UNRESTRICTED"


UNRESTRICTED = Unrestricted()

WITHHELD = "(withheld: a document outside your access groups)"
"""What a reader sees in place of text from a document outside their scope (reports, exports, the audit)."""


@dataclass(frozen=True)
class SearchFilter:
    """What a search may return; always applied inside the store, never afterwards. The access scope has no
    default: a search without one cannot be written."""

    access_groups: tuple[str, ...] | Unrestricted
    """The user's groups (public documents only when empty), or ``UNRESTRICTED`` (admin-only tools)."""
    doc_types: tuple[str, ...] = ()
    as_of: date | None = None
    """None: only active versions. A date: the versions in force on that date."""
    doc_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.access_groups, tuple | Unrestricted):
            raise TypeError(f"SearchFilter.access_groups must be a tuple of groups or UNRESTRICTED, "
                            f"not {self.access_groups!r}")

    def can_read(self, access: Iterable[str]) -> bool:
        """Whether a document with these access groups is inside this scope (the store's filter rule)."""
        if isinstance(self.access_groups, Unrestricted):
            return True
        return not {*self.access_groups, PUBLIC_GROUP}.isdisjoint(access)


class Hit(BaseModel):
    doc_id: str
    source: str
    title: str
    page: int | None
    pages: list[int]
    section: str
    text: str
    score: float
    version: int = 1
    chunk_id: str = ""
    chunk_index: int = 0
    doc_type: str = ""
    dense_score: float | None = None
    access: list[str] = Field(default_factory=list)
    """The document's access groups, so whatever shows this text later can check its reader (empty: not
    recorded, which readers treat as restricted)."""
    ocr: bool = False
    """Some of the text was read by OCR from a scanned page."""
    page_marks: list[tuple[int, int]] = Field(default_factory=list)
    """Where each page starts in ``text`` (offset, page) when it spans pages; empty: all on ``page``."""

    def page_of(self, quote: str) -> int | None:
        """The page on which ``quote`` (a passage of ``text``) starts; ``page`` when that is not known."""
        at = self.text.find(quote) if quote else -1
        if at < 0 and len(quote) > 30:
            at = self.text.find(quote[:30])  # two sentences quoted as one, joined by another separator
        if at < 0 or not self.page_marks:
            return self.page
        return next((page for offset, page in reversed(self.page_marks) if offset <= at), self.page)


class Citation(BaseModel):
    n: int
    doc_id: str
    source: str
    page: int | None
    section: str
    quote: str
    version: int = 1
    title: str = ""
    verified: bool = True
    support: float = 0.0
    ocr: bool = False
    """The cited text was read by OCR from a scanned page (the panel says so)."""


class AnswerSentence(BaseModel):
    text: str
    markers: list[int] = Field(default_factory=list)
    verified: bool = True


class Timings(BaseModel):
    retrieve_ms: float = 0.0
    queue_ms: float = 0.0
    """Time waiting for a free model slot (every slot busy with other questions)."""
    first_token_ms: float | None = None
    total_ms: float = 0.0


RefusalReason = Literal["no_relevant_passage", "not_stated", "only_unsupported"]
"""no_relevant_passage: nothing relevant was found (the LLM was not asked); not_stated: passages were found
but the model said they do not state it, or no verified claim states the kind of specific the question asks for
(何年, いくら, which article); only_unsupported: every claim the model made failed verification."""


class Answer(BaseModel):
    answer: str
    citations: list[Citation]
    refused: bool
    contexts: list[Hit]
    timings: Timings
    sentences: list[AnswerSentence] = Field(default_factory=list)
    """Every sentence the model wrote, with the verifier's decision (the answer keeps the verified ones)."""
    unsupported_sentences: int = 0
    removed_claims: list[str] = Field(default_factory=list)
    """Sentences removed from the answer because no cited source supports them ("not found in the documents")."""
    refusal_reason: RefusalReason | None = None
    invalid_markers: list[int] = Field(default_factory=list)
    language: str = "ja"
    prompt_version: str = ""
    model: str = ""
    question: str = ""
    standalone_question: str = ""


class EditionMatch(BaseModel):
    """A stored document that an ingested file replaces, or looks like a new edition of."""

    doc_id: str
    title: str
    version: int
    overlap: float | None = None
    """Share of text in common (0-1), for a suggested match."""
    reason: str = ""
    """Why: same path | doc key | same title | same file name."""

    def label(self) -> str:
        return f"{self.title} v{self.version}"


class IngestItem(BaseModel):
    path: str
    doc_id: str | None = None
    status: IngestStatus
    pages: int = 0
    chunks: int = 0
    embedded: int = 0
    """Chunks embedded by this run; the others' vectors came from the embedding cache (unchanged text)."""
    error: str | None = None
    error_key: str | None = None
    """The error's message key and parameters (``CQAError.key``/``params``): the app says it in the user's language."""
    error_params: dict[str, str | int | float] = Field(default_factory=dict)
    version: int | None = None
    warnings: list[str] = Field(default_factory=list)
    title: str = ""
    replaces: EditionMatch | None = None
    """The version this one superseded (status updated), or would supersede (dry run)."""
    suggested_edition_of: EditionMatch | None = None
    """A new document that looks like a new edition of this one; merged only when an admin confirms."""


class IngestReport(BaseModel):
    documents: list[IngestItem]
    seconds: float

    @property
    def failed(self) -> bool:
        return any(d.status == "failed" for d in self.documents)


@dataclass
class ChatTurn:
    role: Literal["user", "assistant"]
    content: str
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Requester:
    """Who asks: their name for the audit trail and their access groups for the filter (no defaults: an
    answer is always given to someone, within their scope)."""

    name: str
    groups: tuple[str, ...]

    def search_filter(self, **kwargs) -> SearchFilter:
        return SearchFilter(access_groups=self.groups, **kwargs)
