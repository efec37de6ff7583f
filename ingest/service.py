"""Ingestion use cases: files and folders in, versioned chunks in the store out.

Each document is atomic: its chunks are written as ``pending`` (invisible to search),
then the registry switches versions in one transaction, then the store's status payload
follows. A crash at any point leaves the previous version serving; ``recover()`` (run
at every start) removes half-written versions and finishes unsynced status changes.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from core.errors import CQAError, IngestError
from core.schema import PUBLIC_GROUP, UNRESTRICTED, Chunk, EditionMatch, IngestItem, IngestReport, SearchFilter
from core.text import detect_language, safe_file_name
from ingest.document import ChunkDraft, ParsedDocument, mark_ocr
from ingest.embedding_cache import EmbeddingCache
from ingest.identity import new_doc_id, normalise_key, path_key, shingles, text_overlap
from ingest.ocr import SKIPPED as OCR_SKIPPED
from ingest.ocr import OcrConfig, OcrProgress, PageOcr, unavailable_reason
from ingest.originals import Originals
from ingest.read_ahead import ReadAhead
from ingest.readers import check_size, read_document
from ingest.reading import reading_stamp
from ingest.registry import DocumentVersion, EditionSuggestion, Registry
from retrieval.embedding import Embedder
from retrieval.sparse import SparseEncoder
from retrieval.store.base import StoredPoint, VectorStore
from settings.model import IngestSettings

_REGULATION = re.compile(r"(法律|法$|法\b|施行令|施行規則|政令|府令|省令|条例|Act\b|Regulation|Directive|Law\b)")
_GUIDANCE = re.compile(r"(ガイドライン|指針|Ｑ＆Ａ|Q&A|事例集|guidance|guideline|recommendation)", re.IGNORECASE)
_NAME_SEPARATORS = re.compile(r"[\s_\-.]+")
_LETTER = re.compile(r"[^\W\d_]")
READ_AGAIN_OCR = "ocr installed"
"""Why stored content is read again: its scanned pages were skipped for want of an OCR that is installed now."""
READ_AGAIN_READING = "reading changed"
"""Why stored content is read again: it was read or chunked otherwise than now (another release or chunk settings)."""


@dataclass(frozen=True)
class IngestOptions:
    doc_type: str | None = None
    title: str | None = None
    doc_key: str | None = None
    """The logical document: a key given before, or a stored document's id. Without it, a file is a new
    edition only of the document last ingested from the same path."""
    effective_from: date | None = None
    access: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upload:
    """A file sent through the admin page: its name on the sender's machine and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class IngestProgress:
    path: str
    stage: str
    """reading | ocr | chunking | embedding | storing | done | failed"""
    file_index: int
    file_count: int
    ocr: OcrProgress | None = None
    """While the file's scanned pages are read (stage ``ocr``): pages read of how many, and the time left."""


ProgressFn = Callable[[IngestProgress], None]


def infer_doc_type(title: str, source: str) -> str:
    text = f"{title} {Path(source).stem}"
    if _GUIDANCE.search(text):
        return "guidance"
    if _REGULATION.search(text):
        return "regulation"
    return "manual"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and every visible file below named folders, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            files.append(path)
    return files


class IngestService:
    def __init__(
        self,
        settings: IngestSettings,
        registry: Registry,
        embedder: Embedder,
        sparse: SparseEncoder,
        store: VectorStore,
        cache: EmbeddingCache,
        audit_event: Callable[[str, str, dict], None] | None = None,
        originals: Originals | None = None,
        upload_dir: Path | None = None,
    ) -> None:
        self.originals = originals
        self.upload_dir = upload_dir
        self.audit_event = audit_event
        self.settings = settings
        self.registry = registry
        self.embedder = embedder
        self.sparse = sparse
        self.store = store
        self.cache = cache

    # -- use cases -------------------------------------------------------------------

    def ingest(
        self,
        paths: list[Path],
        options: IngestOptions = IngestOptions(),
        progress: ProgressFn | None = None,
        actor: str = "cli",
    ) -> IngestReport:
        started = time.perf_counter()
        files = collect_files(paths)
        items = []
        hashes: dict[int, str] = {}  # of the files hashed to decide whether to read them ahead
        seen: set[str] = set()

        def look_ahead(j: int) -> None:
            """Start reading file ``j`` ahead when it will be read: its content is neither stored unchanged nor
            earlier in this batch (a duplicate waits for the first copy to be stored, then it is unchanged)."""
            sha = self._hash(files[j]) if j < len(files) else None
            if sha is not None:
                hashes[j] = sha
                if sha not in seen and self._unchanged(sha) is None:
                    ahead.start(j)
                seen.add(sha)

        with ReadAhead(lambda j, stage: self._read(files[j], stage)) as ahead:
            look_ahead(0)
            for i, path in enumerate(files):
                look_ahead(i + 1)

                def stage(name: str, ocr: OcrProgress | None = None, path: Path = path, i: int = i) -> None:
                    _report(progress, path, name, i, len(files), ocr)

                item = self._ingest_one(path, options, stage, actor, hashes.get(i),
                                        lambda stage, i=i: ahead.take(i, stage))
                ahead.drop(i)  # started ahead but not needed: the file was unchanged
                if item.status != "unchanged":
                    self._audit(actor, "ingest", item.model_dump(exclude={"warnings", "error_key", "error_params"}))
                items.append(item)
        return IngestReport(documents=items, seconds=round(time.perf_counter() - started, 3))

    def _hash(self, path: Path) -> str | None:
        """The file's hash, or None when it is not a file that could be read (``_ingest_one`` reports why)."""
        try:
            if not path.is_file() or path.stat().st_size > self._max_bytes:
                return None
            return file_sha256(path)
        except OSError:
            return None

    def ingest_uploads(
        self,
        uploads: list[Upload],
        options: IngestOptions = IngestOptions(),
        progress: ProgressFn | None = None,
        actor: str = "cli",
    ) -> IngestReport:
        """Keep uploaded files in the upload folder under their own names (made safe) and ingest them;
        a name that cannot be a file name is reported as failed, the other files go on."""
        if self.upload_dir is None:
            raise CQAError("this service has no upload folder", key="ingest_no_upload_folder")
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        paths, refused = [], []
        for upload in uploads:
            try:
                check_size(len(upload.data), self._max_bytes)
                path = self.upload_dir / safe_file_name(upload.name)
            except (ValueError, IngestError) as exc:  # the name is kept as sent: shown through printable()
                refused.append(_failed(upload.name, exc))
                continue
            path.write_bytes(upload.data)
            paths.append(path)
        report = self.ingest(paths, options, progress, actor)
        return report.model_copy(update={"documents": refused + report.documents})

    def sync(
        self,
        folder: Path,
        options: IngestOptions = IngestOptions(),
        progress: ProgressFn | None = None,
        actor: str = "cli",
    ) -> IngestReport:
        """Make the store match ``folder``: ingest new and changed files, withdraw the rest."""
        if not folder.is_dir():
            raise CQAError(f"--sync needs a folder: {folder} is not one", key="not_a_folder",
                           params={"folder": str(folder)})
        report = self.ingest([folder], options, progress, actor)
        present = {d.doc_id for d in report.documents if d.doc_id}
        started = time.perf_counter()
        for version in self.registry.active():
            if version.doc_id not in present:
                self.withdraw(version.doc_id, actor)
                report.documents.append(
                    IngestItem(path=version.source, doc_id=version.doc_id, status="withdrawn", version=version.version)
                )
        report.seconds = round(report.seconds + time.perf_counter() - started, 3)
        return report

    def withdraw(self, doc_id: str, actor: str = "cli") -> DocumentVersion:
        active = self.registry.active_version(doc_id)
        if active is None:
            raise CQAError(f"no active document with id {doc_id}", key="no_document", params={"doc_id": doc_id})
        self.registry.set_status(doc_id, active.version, "withdrawn")
        self._sync_store_status()
        self._audit(actor, "withdraw", {"doc_id": doc_id, "version": active.version, "title": active.title})
        return active

    def _audit(self, actor: str, action: str, detail: dict) -> None:
        if self.audit_event is not None:
            self.audit_event(actor, action, detail)

    def delete(self, doc_id: str, actor: str = "cli") -> None:
        """Remove every version of a document from the store and the registry."""
        versions = self.registry.versions_of(doc_id)
        if not versions:
            raise CQAError(f"no document with id {doc_id}", key="no_document", params={"doc_id": doc_id})
        self.store.delete_document(doc_id)
        for v in versions:
            self.registry.delete_version(doc_id, v.version)
        self.registry.drop_suggestions(doc_id)
        self._audit(actor, "delete", {"doc_id": doc_id, "title": versions[-1].title,
                                      "versions": [v.version for v in versions]})

    def plan(self, paths: list[Path], options: IngestOptions = IngestOptions()) -> IngestReport:
        """What ``ingest`` would do, without reading or writing anything but file hashes (``--dry-run``):
        which files are unchanged, which are new documents, which new edition replaces which version."""
        items = []
        for path in collect_files(paths):
            try:
                safe_file_name(path.name)
                if not path.is_file():
                    raise IngestError("no such file", key="ingest_no_such_file")
                known = self._known(file_sha256(path))
            except (ValueError, OSError, IngestError) as exc:
                items.append(_failed(str(path), exc))
                continue
            again = self._read_again(known)
            if known is not None and not again:
                items.append(IngestItem(path=str(path), doc_id=known.doc_id, status="unchanged",
                                        version=known.version, title=known.title))
                continue
            doc_id, _, reason, _ = self._document_for(options, str(path.resolve()), known, again)
            previous = self.registry.active_version(doc_id)
            items.append(IngestItem(
                path=str(path), doc_id=doc_id, status="would-update" if previous else "would-ingest",
                title=options.title or "", replaces=_match(previous, reason) if previous else None,
            ))
        return IngestReport(documents=items, seconds=0.0)

    def restore(self, doc_id: str, version: int, actor: str = "cli") -> DocumentVersion:
        """Make an earlier version the active one again (undo a wrong supersede or withdrawal)."""
        target = self.registry.get(doc_id, version)
        if target is None or target.status == "pending":
            raise CQAError(f"no version {version} of document {doc_id}", key="no_document", params={"doc_id": doc_id})
        if target.status == "active":
            raise CQAError(f"version {version} of {target.title} is already the active one", key="already_active",
                           params={"title": target.title, "version": version})
        active = self.registry.active_version(doc_id)
        self.registry.restore(doc_id, version)
        self._sync_store_status()
        self._audit(actor, "restore", {"doc_id": doc_id, "version": version, "title": target.title,
                                       "replaced_version": active.version if active else None})
        return self.registry.get(doc_id, version)  # type: ignore[return-value]

    def suggestions(self) -> list[tuple[EditionSuggestion, DocumentVersion, DocumentVersion]]:
        """Pending edition suggestions whose two documents are both still active: (suggestion, new, stored)."""
        out = []
        for s in self.registry.suggestions():
            new, stored = self.registry.active_version(s.doc_id), self.registry.active_version(s.of_doc_id)
            if new is not None and stored is not None:
                out.append((s, new, stored))
        return out

    def confirm_edition(self, doc_id: str, of_doc_id: str, actor: str = "cli") -> DocumentVersion:
        """An admin's confirmation that document ``doc_id`` is the next edition of ``of_doc_id``: its active
        version becomes ``of_doc_id``'s next version (vectors from the embedding cache), and the separate
        document is removed. The superseded edition stays queryable by date and can be restored."""
        new, stored = self.registry.active_version(doc_id), self.registry.active_version(of_doc_id)
        if new is None or stored is None or doc_id == of_doc_id:
            raise CQAError(f"{doc_id} and {of_doc_id} must be two different active documents", key="edition_pair")
        drafts = [
            ChunkDraft(text=p["text"], section=p.get("section", ""), page_start=p.get("page_start"),
                       page_end=p.get("page_end"), ocr=p.get("ocr", False),
                       page_marks=tuple((int(o), int(g)) for o, g in p.get("page_marks", ())))
            for p in self._chunk_payloads(new, actor)
        ]
        draft = replace(new, doc_id=of_doc_id, doc_key=stored.doc_key, status="pending",
                        access=stored.access, doc_type=stored.doc_type)
        _, _, version = self._store_version(draft, drafts, lambda _stage: None)
        self.store.delete_document(doc_id)
        for v in self.registry.versions_of(doc_id):
            self.registry.delete_version(doc_id, v.version)
        self.registry.drop_suggestions(doc_id)
        self._audit(actor, "confirm_edition", {
            "doc_id": of_doc_id, "version": version.version, "title": version.title, "from_doc_id": doc_id,
            "replaces": f"{stored.title} v{stored.version}",
        })
        return version

    def dismiss_suggestion(self, doc_id: str, of_doc_id: str, actor: str = "cli") -> None:
        self.registry.drop_suggestions(doc_id, of_doc_id)
        self._audit(actor, "dismiss_edition", {"doc_id": doc_id, "of_doc_id": of_doc_id})

    def page_pdf(self, doc_id: str, version: int, page: int, flt: SearchFilter) -> bytes | None:
        """The cited page of a PDF document version, for the source panel; None outside ``flt``'s scope."""
        record = self.registry.get(doc_id, version)
        if record is None or self.originals is None or not flt.can_read(record.access):
            return None
        return self.originals.pdf_page(record.sha256, record.source, page)

    def recover(self) -> None:
        """Finish or undo what an interrupted run left behind."""
        for pending in self.registry.pending():
            self.store.delete_document(pending.doc_id, pending.version)
            self.registry.delete_version(pending.doc_id, pending.version)
        self._sync_store_status()

    # -- one document ----------------------------------------------------------------

    def _known(self, sha: str) -> DocumentVersion | None:
        """The stored version with exactly this content: its document's active version when that is the one."""
        known = self.registry.find_by_sha(sha)
        if known is None or known.status not in ("active", "superseded"):
            return None
        active = self.registry.active_version(known.doc_id)
        return active if active is not None and active.sha256 == sha else known

    def _read_again(self, known: DocumentVersion | None) -> str:
        """Why the active version ``known`` of a file is read again when the file is ingested again ('' when it
        still serves): its scanned pages were skipped for want of an OCR that is installed now, or it was read or
        chunked otherwise than this release and these settings do (``ingest.reading``). A superseded edition is
        not: ingesting an old file again does not bring it back (``--restore`` does)."""
        if known is None or known.status != "active":
            return ""
        if any(w.startswith(OCR_SKIPPED) for w in known.warnings) and unavailable_reason(self._ocr_config) is None:
            return READ_AGAIN_OCR
        return READ_AGAIN_READING if known.reading != self._reading else ""

    def _unchanged(self, sha: str) -> DocumentVersion | None:
        """The stored version with exactly this content, if it still serves (no work to do)."""
        known = self._known(sha)
        return known if known is not None and not self._read_again(known) else None

    @property
    def _max_bytes(self) -> int:
        return self.settings.max_file_mb * 1024 * 1024

    @property
    def _reading(self) -> str:
        return reading_stamp(self.settings)

    @property
    def _ocr_config(self) -> OcrConfig:
        s = self.settings
        return OcrConfig(command=s.ocr_command, languages=s.ocr_languages, dpi=s.ocr_dpi)

    def _ingest_one(
        self,
        path: Path,
        options: IngestOptions,
        stage: Callable[..., None],
        actor: str,
        sha: str | None,
        read: Callable[[Callable[..., None]], tuple[ParsedDocument, list[ChunkDraft]]],
    ) -> IngestItem:
        """One file ingested. ``sha``: its hash when already computed; ``read``: its reading and chunking
        (``ReadAhead.take``: perhaps started ahead)."""
        try:
            source = safe_file_name(path.name)
        except ValueError as exc:
            return _failed(str(path), exc)
        try:
            stage("reading")
            if not path.is_file():
                raise IngestError("no such file", key="ingest_no_such_file")
            check_size(path.stat().st_size, self._max_bytes)  # before hashing: a 200 MB file is not read at all
            sha = sha or file_sha256(path)
            known = self._known(sha)
            again = self._read_again(known)
            if known is not None and not again:
                stage("done")
                return IngestItem(
                    path=str(path),
                    doc_id=known.doc_id,
                    status="unchanged",
                    pages=known.pages,
                    chunks=known.chunks,
                    version=known.version,
                    title=known.title,
                )
            doc, drafts = read(stage)
            source_path = str(path.resolve())
            doc_id, doc_key, reason, kept = self._document_for(options, source_path, known, again)
            title = options.title or (kept.title if kept else doc.title or Path(source).stem)
            previous = self.registry.active_version(doc_id)
            is_new = not self.registry.versions_of(doc_id)
            draft = DocumentVersion(
                doc_id=doc_id,
                version=0,
                doc_key=doc_key,
                title=title,
                doc_type=options.doc_type or (previous.doc_type if previous else infer_doc_type(title, source)),
                source=source,
                sha256=sha,
                effective_from=options.effective_from or (kept.effective_from if kept else date.today()),
                effective_to=None,
                status="pending",
                access=tuple(options.access) or (previous.access if previous else (PUBLIC_GROUP,)),
                ingested_at="",
                pages=doc.page_count or len(doc.pages),
                chunks=0,
                warnings=list(doc.warnings),
                source_path=source_path,
                reading=self._reading,
            )
            chunks, embedded, version = self._store_version(draft, drafts, stage)
            if self.originals is not None:
                self.originals.keep(path, sha)
            stage("done")
            suggestion = self._suggest_edition(version, chunks, actor) if is_new else None
            return IngestItem(
                path=str(path),
                doc_id=doc_id,
                status="updated" if previous else "ingested",
                pages=version.pages,
                chunks=len(chunks),
                embedded=embedded,
                version=version.version,
                warnings=version.warnings,
                title=title,
                replaces=_match(previous, reason) if previous else None,
                suggested_edition_of=suggestion,
            )
        except (IngestError, CQAError) as exc:
            stage("failed")
            return _failed(str(path), exc)
        except Exception as exc:  # a reader library's own failure on a bad file
            stage("failed")
            detail = f"{type(exc).__name__}: {exc}"
            return IngestItem(path=str(path), status="failed", error=detail, error_key="ingest_read_failed",
                              error_params={"detail": detail[:300]})

    def _store_version(
        self,
        draft: DocumentVersion,
        drafts: list[ChunkDraft],
        stage: Callable[[str], None],
    ) -> tuple[list[Chunk], int, DocumentVersion]:
        """Write a version's chunks as pending, then make it the active version (superseding the
        active one) in one registry transaction; on any failure nothing of it remains."""
        version = self.registry.begin_version(draft)
        try:
            chunks = self._chunks(drafts, version)
            if not chunks:
                raise IngestError("no text to index after chunking", key="ingest_no_chunks")
            stage("embedding")
            points, embedded = self._embed(chunks)
            stage("storing")
            self.store.upsert(points)
            _flush(self.store)
        except BaseException:
            self.store.delete_document(version.doc_id, version.version)
            self.registry.delete_version(version.doc_id, version.version)
            raise
        self.registry.activate(version.doc_id, version.version, len(chunks))
        self._sync_store_status()
        return chunks, embedded, version

    def _document_for(self, options: IngestOptions, source_path: str, known: DocumentVersion | None,
                      again: str) -> tuple[str, str, str, DocumentVersion | None]:
        """``_identify``'s answer, except for stored content read again (``again``, its reason): a new version of
        the document whose active version it is (returned last, to keep its title and dates), wherever the file
        lies now, unless ``--doc-key`` names another."""
        if again and known is not None and not options.doc_key:
            return known.doc_id, known.doc_key, again, known
        return *self._identify(options, source_path), None

    def _identify(self, options: IngestOptions, source_path: str) -> tuple[str, str, str]:
        """(doc_id, doc_key, why it is that document): ``--doc-key`` (a key or a stored document's id),
        else the document last ingested from this path, else a new document keyed by its path."""
        if options.doc_key:
            key = normalise_key(options.doc_key)
            doc_id = self.registry.find_by_key(key)
            if doc_id:
                return doc_id, key, "doc key"
            stored = self.registry.versions_of(options.doc_key.strip())
            if stored:
                return stored[0].doc_id, stored[0].doc_key, "doc key"
            return new_doc_id(key), key, "doc key"
        doc_id = self.registry.find_by_path(source_path)
        if doc_id:
            return doc_id, self.registry.versions_of(doc_id)[0].doc_key, "same path"
        key = path_key(source_path)
        return new_doc_id(key), key, ""

    def _suggest_edition(self, version: DocumentVersion, chunks: list[Chunk], actor: str) -> EditionMatch | None:
        """The stored document this new one most likely is a new edition of: same title or file name and
        at least ``edition_overlap`` of the text in common. Recorded for an admin to confirm, never merged."""
        title = normalise_key(version.title)
        candidates = [
            (v, "same title" if normalise_key(v.title) == title else "same file name")
            for v in self.registry.active()
            if v.doc_id != version.doc_id and (normalise_key(v.title) == title or v.source == version.source)
        ]
        if not candidates:
            return None
        mine = shingles([c.text for c in chunks])
        best: EditionMatch | None = None
        for other, reason in candidates:
            overlap = round(text_overlap(mine, shingles([p["text"] for p in self._chunk_payloads(other, actor)])), 3)
            if overlap >= self.settings.edition_overlap and (best is None or overlap > (best.overlap or 0)):
                best = _match(other, reason, overlap)
        if best is not None:
            self.registry.suggest_edition(version.doc_id, best.doc_id, best.overlap or 0.0, best.reason)
        return best

    def _chunk_payloads(self, version: DocumentVersion, actor: str) -> list[dict]:
        """Every chunk of a stored version, whoever may read it: an admin's edition matching, audited."""
        self._audit(actor, "unrestricted_scope", {"purpose": "edition matching", "doc_id": version.doc_id,
                                                  "version": version.version})
        every_chunk = SearchFilter(access_groups=UNRESTRICTED)
        return self.store.chunks_by_index(version.doc_id, version.version, list(range(version.chunks)), every_chunk)

    def _read(self, path: Path, stage: Callable[..., None]) -> tuple[ParsedDocument, list[ChunkDraft]]:
        """A file read (scanned pages by OCR) and chunked: the part of an ingest that may run on the read-ahead
        thread, so it touches neither the registry nor the store."""
        doc = read_document(path, max_bytes=self._max_bytes, ocr=PageOcr(self._ocr_config, lambda p: stage("ocr", p)))
        stage("chunking")
        return doc, self._drafts(doc)

    def _drafts(self, doc: ParsedDocument) -> list[ChunkDraft]:
        from ingest.chunking import chunk_document
        from ingest.chunking.sentence_splitter import sentence_splitter_chunks

        if self.settings.chunker == "sentence-splitter":
            return sentence_splitter_chunks(doc)
        return mark_ocr(doc, chunk_document(
            doc,
            count_tokens=self.embedder.count_tokens,
            max_tokens=self.settings.chunk_tokens,
            overlap_sentences=self.settings.chunk_overlap_sentences,
            overlap_max_tokens=self.settings.chunk_overlap_max_tokens,
        ))

    def _chunks(self, drafts: list[ChunkDraft], version: DocumentVersion) -> list[Chunk]:
        chunks = []
        for i, d in enumerate(drafts):
            prefix = self._embed_prefix(version.title, d.section)
            chunks.append(
                Chunk(
                    chunk_id=f"{version.doc_id}:{version.version}:{i}",
                    doc_id=version.doc_id,
                    version=version.version,
                    chunk_index=i,
                    text=d.text,
                    embed_text=prefix + d.text,
                    section=d.section,
                    page_start=d.page_start,
                    page_end=d.page_end,
                    source=version.source,
                    title=version.title,
                    doc_type=version.doc_type,
                    status="pending",
                    effective_from=version.effective_from,
                    effective_to=None,
                    access=version.access,
                    lang=detect_language(d.text),
                    ocr=d.ocr,
                    page_marks=d.page_marks,
                )
            )
        return chunks

    def _embed(self, chunks: list[Chunk]) -> tuple[list[StoredPoint], int]:
        """The chunks' points, and how many texts had to be embedded (not in the cache)."""
        texts = [c.embed_text for c in chunks]
        dense, embedded = self.cache.embed(texts, self.embedder.embed_passages)
        points = [
            StoredPoint(chunk=c, dense=dense[i], sparse=self.sparse.embed_document(self._sparse_text(c)))
            for i, c in enumerate(chunks)
        ]
        return points, embedded

    def _embed_prefix(self, title: str, section: str) -> str:
        """What the dense embedding reads before a chunk's text: its document's title and its section path (or,
        ``embed_section = "heading"``, the section's own heading only: fewer tokens to embed per chunk)."""
        if not self.settings.embed_title_prefix:
            return ""
        if self.settings.embed_section == "heading":
            section = section.rsplit(" > ", 1)[-1]
        return f"{title}\n{section}\n"

    def _sparse_text(self, chunk: Chunk) -> str:
        """What BM25 indexes: the chunk's text and, with the title prefix on, its title, whole section path and the
        words of the file name, so a question that names its source ("under the Basel guidance", 「犯収法施行規則では」)
        finds that file's chunks."""
        if not self.settings.embed_title_prefix:
            return chunk.text
        words = [w for w in _NAME_SEPARATORS.split(Path(chunk.source).stem) if _LETTER.search(w)]
        # "12345.txt", "211122.pdf": no words to add
        return (" ".join(words) + "\n" if words else "") + f"{chunk.title}\n{chunk.section}\n" + chunk.text

    def _sync_store_status(self) -> None:
        """Make the store's status payloads follow the registry; one flush covers them all
        (each flush is a WAL fsync, ~0.25 s) before they are marked synced."""
        unsynced = self.registry.unsynced()
        for v in unsynced:
            self.store.set_status(v.doc_id, v.version, v.status, v.effective_to)
        if unsynced:
            _flush(self.store)
        for v in unsynced:
            self.registry.mark_synced(v.doc_id, v.version)


def _match(version: DocumentVersion, reason: str, overlap: float | None = None) -> EditionMatch:
    return EditionMatch(doc_id=version.doc_id, title=version.title, version=version.version, overlap=overlap,
                        reason=reason)


def _flush(store: VectorStore) -> None:
    flush = getattr(store, "flush", None)
    if flush is not None:
        flush()


def _report(progress: ProgressFn | None, path: Path, stage: str, i: int, n: int,
            ocr: OcrProgress | None = None) -> None:
    if progress is not None:
        progress(IngestProgress(str(path), stage, i, n, ocr))


def _failed(path: str, exc: Exception) -> IngestItem:
    """A file that could not be ingested, with the error's message key for the app: a ``CQAError``'s own, a name
    that cannot be a file name (``ValueError``) or an unreadable file (``OSError``)."""
    key, params = None, {}
    if isinstance(exc, CQAError):
        key, params = exc.key, exc.params
    elif isinstance(exc, ValueError):
        key, params = "bad_file_name", {"name": Path(path.replace("\\", "/")).name or path}
    elif isinstance(exc, OSError):
        key, params = "ingest_unreadable", {"detail": str(exc.strerror or exc)}
    return IngestItem(path=path, status="failed", error=str(exc), error_key=key, error_params=params)
