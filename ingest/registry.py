"""The document registry (SQLite): every version of every document, and its state.

A version goes ``pending`` (chunks being written, invisible to search) -> ``active``;
the version it replaces becomes ``superseded``; a document gone from a synced folder
becomes ``withdrawn``. ``store_synced = 0`` marks versions whose status the vector store
has not caught up with yet (a crash between the two writes): ``recover()`` finishes them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from core.sqlite import ThreadLocalSQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc_key TEXT NOT NULL,
    title TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    effective_from TEXT,
    effective_to TEXT,
    status TEXT NOT NULL,
    access TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    pages INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]',
    store_synced INTEGER NOT NULL DEFAULT 1,
    source_path TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (doc_id, version)
);
CREATE INDEX IF NOT EXISTS documents_sha ON documents (sha256);
CREATE INDEX IF NOT EXISTS documents_key ON documents (doc_key);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edition_suggestions (
    doc_id TEXT NOT NULL,
    of_doc_id TEXT NOT NULL,
    overlap REAL NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (doc_id, of_doc_id)
);
"""


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

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["effective_from"] = self.effective_from.isoformat() if self.effective_from else None
        d["effective_to"] = self.effective_to.isoformat() if self.effective_to else None
        d["access"] = list(self.access)
        return d


def _row_to_version(row: sqlite3.Row) -> DocumentVersion:
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


_COLUMNS = (
    "doc_id", "version", "doc_key", "title", "doc_type", "source", "sha256", "effective_from", "effective_to",
    "status", "access", "ingested_at", "pages", "chunks", "warnings", "store_synced", "source_path",
)


class Registry(ThreadLocalSQLite):
    SCHEMA = _SCHEMA
    PRAGMAS = ("synchronous=FULL",)

    def __init__(self, path) -> None:
        super().__init__(path)
        columns = {r["name"] for r in self._db().execute("PRAGMA table_info(documents)")}
        if "source_path" not in columns:  # a registry written before document identity by path
            self._db().execute("ALTER TABLE documents ADD COLUMN source_path TEXT NOT NULL DEFAULT ''")

    def _select(self, where: str = "1", args: tuple = ()) -> list[DocumentVersion]:
        rows = (
            self._db()
            .execute(f"SELECT * FROM documents WHERE {where} ORDER BY title, doc_id, version", args)
            .fetchall()
        )
        return [_row_to_version(r) for r in rows]

    def all_versions(self) -> list[DocumentVersion]:
        return self._select()

    def versions_of(self, doc_id: str) -> list[DocumentVersion]:
        return self._select("doc_id = ?", (doc_id,))

    def get(self, doc_id: str, version: int) -> DocumentVersion | None:
        found = self._select("doc_id = ? AND version = ?", (doc_id, version))
        return found[0] if found else None

    def active(self) -> list[DocumentVersion]:
        return self._select("status = 'active'")

    def active_version(self, doc_id: str) -> DocumentVersion | None:
        found = self._select("doc_id = ? AND status = 'active'", (doc_id,))
        return found[0] if found else None

    def find_by_sha(self, sha256: str) -> DocumentVersion | None:
        found = self._select("sha256 = ? AND status != 'pending'", (sha256,))
        return found[-1] if found else None

    def find_by_path(self, source_path: str) -> str | None:
        """The document last ingested from this path (deleted documents are forgotten)."""
        row = self._db().execute(
            "SELECT doc_id FROM documents WHERE source_path = ? AND status != 'pending' ORDER BY ingested_at DESC, "
            "version DESC LIMIT 1",
            (source_path,),
        ).fetchone()
        return row["doc_id"] if row else None

    def find_by_key(self, doc_key: str) -> str | None:
        row = self._db().execute("SELECT doc_id FROM documents WHERE doc_key = ? LIMIT 1", (doc_key,)).fetchone()
        return row["doc_id"] if row else None

    def pending(self) -> list[DocumentVersion]:
        return self._select("status = 'pending'")

    def unsynced(self) -> list[DocumentVersion]:
        return self._select("store_synced = 0 AND status != 'pending'")

    def begin_version(self, draft: DocumentVersion) -> DocumentVersion:
        """Record a new version as pending and return it with its version number."""
        with self._tx() as db:
            row = db.execute("SELECT MAX(version) FROM documents WHERE doc_id = ?", (draft.doc_id,)).fetchone()
            version = (row[0] or 0) + 1
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
            db.execute(
                f"INSERT INTO documents ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                tuple(values[c] for c in _COLUMNS),
            )
        return self.get(draft.doc_id, version)  # type: ignore[return-value]

    def activate(self, doc_id: str, version: int, chunks: int) -> list[DocumentVersion]:
        """Make ``version`` active and supersede the active one, in one transaction.

        Returns the versions whose store payload must change (all marked unsynced).
        """
        with self._tx() as db:
            new = db.execute("SELECT effective_from FROM documents WHERE doc_id=? AND version=?", (doc_id, version))
            start = new.fetchone()["effective_from"] or date.today().isoformat()
            db.execute(
                "UPDATE documents SET status='superseded', effective_to=?, store_synced=0 "
                "WHERE doc_id=? AND status='active'",
                (start, doc_id),
            )
            db.execute(
                "UPDATE documents SET status='active', chunks=?, effective_from=?, store_synced=0 "
                "WHERE doc_id=? AND version=?",
                (chunks, start, doc_id, version),
            )
        return self.unsynced()

    def set_status(self, doc_id: str, version: int, status: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET status=?, store_synced=0 WHERE doc_id=? AND version=?",
                (status, doc_id, version),
            )

    def restore(self, doc_id: str, version: int) -> None:
        """Make an earlier version active again; the active one (if any) becomes superseded."""
        today = date.today().isoformat()
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET status='superseded', effective_to=?, store_synced=0 "
                "WHERE doc_id=? AND status='active'",
                (today, doc_id),
            )
            db.execute(
                "UPDATE documents SET status='active', effective_to=NULL, store_synced=0 WHERE doc_id=? AND version=?",
                (doc_id, version),
            )

    # -- edition suggestions -------------------------------------------------------------------------------

    def suggest_edition(self, doc_id: str, of_doc_id: str, overlap: float, reason: str) -> EditionSuggestion:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO edition_suggestions VALUES (?,?,?,?,?)",
                (doc_id, of_doc_id, overlap, reason, now),
            )
        return EditionSuggestion(doc_id, of_doc_id, overlap, reason, now)

    def suggestions(self) -> list[EditionSuggestion]:
        rows = self._db().execute("SELECT * FROM edition_suggestions ORDER BY created_at, doc_id").fetchall()
        return [EditionSuggestion(**dict(r)) for r in rows]

    def drop_suggestions(self, doc_id: str, of_doc_id: str | None = None) -> None:
        """Forget the suggestion of this pair, or every one that names ``doc_id`` (merged or deleted)."""
        with self._tx() as db:
            if of_doc_id is not None:
                db.execute("DELETE FROM edition_suggestions WHERE doc_id=? AND of_doc_id=?", (doc_id, of_doc_id))
            else:
                db.execute("DELETE FROM edition_suggestions WHERE doc_id=? OR of_doc_id=?", (doc_id, doc_id))

    def mark_synced(self, doc_id: str, version: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE documents SET store_synced=1 WHERE doc_id=? AND version=?", (doc_id, version))

    def delete_version(self, doc_id: str, version: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM documents WHERE doc_id=? AND version=?", (doc_id, version))

    def index_version(self) -> str:
        """A fingerprint of what is searchable: changes whenever any version changes."""
        rows = self._db().execute("SELECT doc_id, version, status FROM documents ORDER BY doc_id, version").fetchall()
        import hashlib

        return hashlib.sha256(json.dumps([tuple(r) for r in rows]).encode()).hexdigest()[:12]
