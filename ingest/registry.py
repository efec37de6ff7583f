"""The document registry (a SQLite file, or its schema in the PostgreSQL database of ``database.url``): every version
of every document, and its state.

A version goes ``pending`` (chunks being written, invisible to search) -> ``active``;
the version it replaces becomes ``superseded``; a document gone from a synced folder
becomes ``withdrawn``. ``store_synced = 0`` marks versions whose status the vector store
has not caught up with yet (a crash between the two writes): ``recover()`` finishes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import (
    REAL,
    Column,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    RowMapping,
    Select,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from db import Database
from db.statements import lock, upsert

_METADATA = MetaData()
DOCUMENTS = Table(
    "documents",
    _METADATA,
    Column("doc_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("doc_key", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("doc_type", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("effective_from", Text),
    Column("effective_to", Text),
    Column("status", Text, nullable=False),
    Column("access", Text, nullable=False),
    Column("ingested_at", Text, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("warnings", Text, nullable=False),
    Column("store_synced", Integer, nullable=False),
    Column("source_path", Text, nullable=False),
    Column("reading", Text, nullable=False),
    PrimaryKeyConstraint("doc_id", "version"),
)
EDITION_SUGGESTIONS = Table(
    "edition_suggestions",
    _METADATA,
    Column("doc_id", Text, nullable=False),
    Column("of_doc_id", Text, nullable=False),
    Column("overlap", REAL, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    PrimaryKeyConstraint("doc_id", "of_doc_id"),
)
_D = DOCUMENTS.c


@dataclass(frozen=True)
class DocumentVersion:
    doc_id: str
    version: int
    doc_key: str
    title: str
    doc_type: str
    source: str
    sha256: str
    effective_from: date | None
    effective_to: date | None
    status: str
    access: tuple[str, ...]
    ingested_at: str
    pages: int
    chunks: int
    warnings: list[str] = field(default_factory=list)
    store_synced: bool = True
    source_path: str = ""
    """The file's absolute path when it was ingested: re-ingesting that path makes a new edition."""
    reading: str = ""
    """What read and chunked it (``ingest.reading.reading_stamp``); '' when stored before this was recorded."""

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["effective_from"] = self.effective_from.isoformat() if self.effective_from else None
        d["effective_to"] = self.effective_to.isoformat() if self.effective_to else None
        d["access"] = list(self.access)
        return d


def _row_to_version(row: RowMapping) -> DocumentVersion:
    return DocumentVersion(
        doc_id=row["doc_id"],
        version=row["version"],
        doc_key=row["doc_key"],
        title=row["title"],
        doc_type=row["doc_type"],
        source=row["source"],
        sha256=row["sha256"],
        effective_from=date.fromisoformat(row["effective_from"]) if row["effective_from"] else None,
        effective_to=date.fromisoformat(row["effective_to"]) if row["effective_to"] else None,
        status=row["status"],
        access=tuple(json.loads(row["access"])),
        ingested_at=row["ingested_at"],
        pages=row["pages"],
        chunks=row["chunks"],
        warnings=json.loads(row["warnings"]),
        store_synced=bool(row["store_synced"]),
        source_path=row["source_path"],
        reading=row["reading"],
    )


@dataclass(frozen=True)
class EditionSuggestion:
    """A new document that looks like a new edition of an existing one; merged only when an admin confirms."""

    doc_id: str
    of_doc_id: str
    overlap: float
    """Share of text the two documents have in common (0-1)."""
    reason: str
    """same title | same file name"""
    created_at: str


def _lock(conn: Connection, doc_id: str) -> None:
    """One writer per document at a time (on PostgreSQL; SQLite has one writer at a time anyway): a new
    version's number and the single active version rest on what the transaction read before it writes."""
    lock(conn, f"cqa registry {doc_id}")


class Registry:
    """The registry in ``path`` (normally ``settings.registry_path``; a SQLite file in WAL mode, every commit
    synced) or a database URL."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._db = Database(path, "registry", wal=True, pragmas=("synchronous=FULL",))

    def close(self) -> None:
        """Nothing stays open between calls; kept for the callers that close what they open."""
        self._db.dispose()

    def _select(self, *where: ColumnElement[bool]) -> list[DocumentVersion]:
        query = select(DOCUMENTS).where(*where).order_by(_D.title, _D.doc_id, _D.version)
        with self._db.read() as conn:
            return [_row_to_version(r) for r in conn.execute(query).mappings()]

    def _first_doc_id(self, query: Select) -> str | None:
        with self._db.read() as conn:
            return conn.execute(query.limit(1)).scalar()

    def all_versions(self) -> list[DocumentVersion]:
        return self._select()

    def versions_of(self, doc_id: str) -> list[DocumentVersion]:
        return self._select(_D.doc_id == doc_id)

    def get(self, doc_id: str, version: int) -> DocumentVersion | None:
        found = self._select(_D.doc_id == doc_id, _D.version == version)
        return found[0] if found else None

    def active(self) -> list[DocumentVersion]:
        return self._select(_D.status == "active")

    def active_version(self, doc_id: str) -> DocumentVersion | None:
        found = self._select(_D.doc_id == doc_id, _D.status == "active")
        return found[0] if found else None

    def find_by_sha(self, sha256: str) -> DocumentVersion | None:
        found = self._select(_D.sha256 == sha256, _D.status != "pending")
        return found[-1] if found else None

    def find_by_path(self, source_path: str) -> str | None:
        """The document last ingested from this path (deleted documents are forgotten)."""
        return self._first_doc_id(
            select(_D.doc_id)
            .where(_D.source_path == source_path, _D.status != "pending")
            .order_by(_D.ingested_at.desc(), _D.version.desc())
        )

    def find_by_key(self, doc_key: str) -> str | None:
        return self._first_doc_id(select(_D.doc_id).where(_D.doc_key == doc_key))

    def pending(self) -> list[DocumentVersion]:
        return self._select(_D.status == "pending")

    def unsynced(self) -> list[DocumentVersion]:
        return self._select(_D.store_synced == 0, _D.status != "pending")

    def begin_version(self, draft: DocumentVersion) -> DocumentVersion:
        """Record a new version as pending and return it with its version number."""
        with self._db.write() as conn:
            _lock(conn, draft.doc_id)
            latest = conn.execute(select(func.max(_D.version)).where(_D.doc_id == draft.doc_id)).scalar()
            version = (latest or 0) + 1
            now = datetime.now(UTC).isoformat(timespec="seconds")
            values = {
                **draft.as_dict(),
                "version": version,
                "effective_to": None,
                "status": "pending",
                "access": json.dumps(list(draft.access)),
                "ingested_at": now,
                "chunks": 0,
                "warnings": json.dumps(draft.warnings, ensure_ascii=False),
                "store_synced": 0,
            }
            conn.execute(insert(DOCUMENTS).values(**values))
        return self.get(draft.doc_id, version)  # type: ignore[return-value]

    def activate(self, doc_id: str, version: int, chunks: int) -> list[DocumentVersion]:
        """Make ``version`` active and supersede the active one, in one transaction.

        Returns the versions whose store payload must change (all marked unsynced).
        """
        with self._db.write() as conn:
            _lock(conn, doc_id)
            new = conn.execute(select(_D.effective_from).where(_D.doc_id == doc_id, _D.version == version))
            start = new.scalar() or date.today().isoformat()
            conn.execute(
                update(DOCUMENTS)
                .where(_D.doc_id == doc_id, _D.status == "active")
                .values(status="superseded", effective_to=start, store_synced=0)
            )
            conn.execute(
                update(DOCUMENTS)
                .where(_D.doc_id == doc_id, _D.version == version)
                .values(status="active", chunks=chunks, effective_from=start, store_synced=0)
            )
        return self.unsynced()

    def set_status(self, doc_id: str, version: int, status: str) -> None:
        self._update(doc_id, version, status=status, store_synced=0)

    def restore(self, doc_id: str, version: int) -> None:
        """Make an earlier version active again; the active one (if any) becomes superseded."""
        today = date.today().isoformat()
        with self._db.write() as conn:
            _lock(conn, doc_id)
            conn.execute(
                update(DOCUMENTS)
                .where(_D.doc_id == doc_id, _D.status == "active")
                .values(status="superseded", effective_to=today, store_synced=0)
            )
            conn.execute(
                update(DOCUMENTS)
                .where(_D.doc_id == doc_id, _D.version == version)
                .values(status="active", effective_to=None, store_synced=0)
            )

    def _update(self, doc_id: str, version: int, **values: object) -> None:
        with self._db.write() as conn:
            _lock(conn, doc_id)
            conn.execute(update(DOCUMENTS).where(_D.doc_id == doc_id, _D.version == version).values(**values))

    # -- edition suggestions -------------------------------------------------------------------------------

    def suggest_edition(self, doc_id: str, of_doc_id: str, overlap: float, reason: str) -> EditionSuggestion:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        suggestion = EditionSuggestion(doc_id, of_doc_id, overlap, reason, now)
        with self._db.write() as conn:
            upsert(conn, EDITION_SUGGESTIONS, suggestion.__dict__, keys=("doc_id", "of_doc_id"))
        return suggestion

    def suggestions(self) -> list[EditionSuggestion]:
        query = select(EDITION_SUGGESTIONS).order_by(EDITION_SUGGESTIONS.c.created_at, EDITION_SUGGESTIONS.c.doc_id)
        with self._db.read() as conn:
            return [EditionSuggestion(**r) for r in conn.execute(query).mappings()]

    def drop_suggestions(self, doc_id: str, of_doc_id: str | None = None) -> None:
        """Forget the suggestion of this pair, or every one that names ``doc_id`` (merged or deleted)."""
        s = EDITION_SUGGESTIONS.c
        if of_doc_id is not None:
            which = (s.doc_id == doc_id) & (s.of_doc_id == of_doc_id)
        else:
            which = or_(s.doc_id == doc_id, s.of_doc_id == doc_id)
        with self._db.write() as conn:
            conn.execute(delete(EDITION_SUGGESTIONS).where(which))

    def mark_synced(self, doc_id: str, version: int) -> None:
        self._update(doc_id, version, store_synced=1)

    def delete_version(self, doc_id: str, version: int) -> None:
        with self._db.write() as conn:
            _lock(conn, doc_id)
            conn.execute(delete(DOCUMENTS).where(_D.doc_id == doc_id, _D.version == version))

    def index_version(self) -> str:
        """A fingerprint of what is searchable: changes whenever any version changes."""
        with self._db.read() as conn:
            rows = conn.execute(select(_D.doc_id, _D.version, _D.status).order_by(_D.doc_id, _D.version)).all()
        return hashlib.sha256(json.dumps([tuple(r) for r in rows]).encode()).hexdigest()[:12]
