"""The retrieval harness's index cache: a labelled set's corpus ingested once per configuration into
``<data_dir>/eval/retrieval/<corpus>-<hash>`` (the hash covers every setting and source file that changes the
index) and reused afterwards; ``--set`` overrides of the settings."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from core.cli import UsageError
from core.schema import UNRESTRICTED, SearchFilter
from eval.datasets import Dataset
from eval.datasets.labelled_set import REPO
from eval.retrieval_experiments import (
    EXPERIMENT_CODE,
    EXPERIMENTS,
    code_hash,
    experiment_components,
    experiment_settings,
    typed_titles,
)
from ingest.embedding_cache import EmbeddingCache
from ingest.service import IngestOptions, IngestService
from settings import Settings, load_settings

INDEX_FORMAT = 1
"""Bump when the way this module builds an index changes."""


# Source files, and packages (every .py file in them), whose code changes what ends up in the index.
INDEX_CODE = (
    "ingest/readers/",
    "ingest/chunking/",
    "core/text.py",  # the sentence splitter and the CJK ranges the readers and the chunker use
    "ingest/ocr.py",
    "ingest/service.py",
    "ingest/document.py",
    "retrieval/embedding.py",
    "retrieval/sparse.py",
    "retrieval/store/base.py",
    "retrieval/store/edge_store.py",
)


def source_hash(rel: str) -> str | None:
    """Short hash of a source file, or of a package's ``.py`` files with their names; None when it is missing."""
    path = REPO / rel
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(REPO).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def parse_overrides(items: Iterable[str]) -> dict:
    """``section.field=value`` pairs as nested keyword arguments for ``load_settings``."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2:
            raise UsageError(f"--set needs SECTION.FIELD=VALUE, got {item!r}")
        section, name = parts
        model = Settings.model_fields.get(section)
        sub = getattr(model.annotation, "model_fields", None) if model else None
        if not sub or name not in sub:
            raise UsageError(f"--set: unknown setting {key!r}")
        value = value.strip()
        out.setdefault(section, {})[name] = None if value.lower() in ("", "none", "null") else value
    return out


def index_fingerprint(settings, corpus_id: str, experiments: tuple[str, ...] = ()) -> tuple[str, dict]:
    """What decides the index's content, and its short hash."""
    emb = settings.embedding
    facts = {
        "format": INDEX_FORMAT,
        "corpus": corpus_id,
        "experiments": sorted(experiments),
        "embedding": {
            "backend": emb.backend,
            "model_path": str(emb.model_path) if emb.model_path else None,
            "passage_prefix": emb.passage_prefix,
            "max_tokens": emb.max_tokens,
        },
        "sparse_tokenizer": settings.retrieval.sparse_tokenizer,
        "ingest": settings.ingest.model_dump(mode="json", exclude={"max_file_mb"}),
        "store": settings.store.backend,
        "code": {rel: source_hash(rel) for rel in INDEX_CODE}
        | {f"experiment {name}": code_hash(EXPERIMENT_CODE[name]) for name in experiments if name in EXPERIMENTS},
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:10]
    return digest, facts


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Index:
    container: object
    path: Path
    info: dict
    reused: bool


def open_index(
    dataset: Dataset,
    overrides: dict,
    data_dir: Path | None = None,
    rebuild: bool = False,
    experiments: tuple[str, ...] = (),
    reuse_stale: bool = False,
    *,
    make_container,
) -> Index:
    """The dataset's corpus ingested under the given settings: reused when already built.

    ``make_container``: the composition root's ``Container`` (the entry point passes it in; one per index).

    ``reuse_stale``: when no index matches the current code, reuse the newest one built with the same
    settings by older code (the ingest code changes often; the 40-document ObliQA corpus takes long)."""
    overrides = experiment_settings(overrides, experiments)
    base = load_settings(**overrides)
    root = Path(data_dir or base.data_dir) / "eval" / "retrieval"
    digest, facts = index_fingerprint(base, dataset.corpus_id, experiments)
    path = root / f"{dataset.corpus_id}-{digest}"
    root.mkdir(parents=True, exist_ok=True)
    store_overrides = dict(overrides.get("store", {}))
    if base.store.backend != "edge":  # never index into the app's own server collection
        store_overrides["collection"] = f"eval_{dataset.corpus_id}_{digest}".replace("-", "_")
    settings = load_settings(**{**overrides, "store": store_overrides, "data_dir": path})
    done = path / "index.json"
    if reuse_stale and not done.is_file():
        stale = _stale_index(root, dataset.corpus_id, facts)
        if stale is not None:
            path, done = stale, stale / "index.json"
            settings = load_settings(**{**overrides, "store": store_overrides, "data_dir": path})
            _log(f"reusing {path.name}, built by older ingest/retrieval code (--reuse-stale)")
    with FileLock(str(root / f"{path.name}.build.lock")):
        if done.is_file() and not rebuild:
            info = json.loads(done.read_text(encoding="utf-8"))
            if info.get("fingerprint", {}).get("code") != facts["code"]:
                info["stale"] = True
            components = experiment_components(settings, experiments)
            container = make_container(settings, store_wait_seconds=600, **components)
            return Index(container, path, info, reused=True)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        components = experiment_components(settings, experiments)
        container = make_container(settings, store_wait_seconds=600, **components)
        try:
            info = build_index(container, dataset, path, root, facts)
        except BaseException:
            container.close()
            raise
        done.write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
        return Index(container, path, info, reused=False)


def _stale_index(root: Path, corpus_id: str, facts: dict) -> Path | None:
    want = {k: v for k, v in facts.items() if k != "code"}
    found = []
    for info_file in root.glob(f"{corpus_id}-*/index.json"):
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if {k: v for k, v in info.get("fingerprint", {}).items() if k != "code"} == want:
            found.append((info_file.stat().st_mtime, info_file.parent))
    return max(found)[1] if found else None


class FlushAtEnd:
    """The store with its per-document ``flush()`` (an fsync of Qdrant's WAL, ~0.25 s each, two per
    document) deferred to the end of the build. Crash safety is not needed here: an index without
    its ``index.json`` is rebuilt from scratch."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def flush(self) -> None:
        pass

    def flush_now(self) -> None:
        flush = getattr(self._store, "flush", None)
        if flush is not None:
            flush()


def build_index(container, dataset: Dataset, path: Path, root: Path, facts: dict) -> dict:
    """Ingest the dataset's corpus into ``container``'s store as an admin would; the facts ``index.json`` keeps."""
    started = time.perf_counter()
    files = dataset.files(path)
    # One embedding cache for every eval index: changing only the sparse tokenizer, fusion or
    # store re-embeds nothing (vectors are keyed by embedder name and exact text).
    cache = EmbeddingCache(root / "embeddings.sqlite3", container.embedder.name)
    store = FlushAtEnd(container.store)
    service = IngestService(container.settings.ingest, container.registry, container.embedder, container.sparse,
                            store, cache)
    service.recover()
    if "typed-titles" in facts["experiments"]:
        if dataset.typed_options is None:
            raise UsageError(f"--experiment typed-titles applies to the ObliQA sets, not {dataset.name}")
        items = typed_titles(service, files, dataset.typed_options)
    else:  # the user's path: one `python -m ingest PATH...` with the CLI's defaults
        last = [time.perf_counter()]

        def progress(p) -> None:
            if p.stage == "done" and (time.perf_counter() - last[0] > 10 or p.file_index + 1 == p.file_count):
                last[0] = time.perf_counter()
                _log(f"  ingested {p.file_index + 1}/{p.file_count} files, {last[0] - started:.0f} s")

        items = service.ingest(files, IngestOptions(), progress).documents
    failed = [f"{Path(i.path).name}: {i.error}" for i in items if i.status == "failed"]
    store.flush_now()
    ingest_seconds = time.perf_counter() - started
    optimize = getattr(container.store, "optimize", None)
    opt_started = time.perf_counter()
    if optimize is not None:
        optimize()
    return {
        "dataset_corpus": dataset.corpus_id,
        "corpus": dataset.corpus_label,
        "files": len(items),
        "documents": len(container.registry.active()),
        "failed": failed,
        "chunks": container.store.count(SearchFilter(access_groups=UNRESTRICTED)),
        "ingest_seconds": round(ingest_seconds, 1),
        "optimize_seconds": round(time.perf_counter() - opt_started, 1),
        "fingerprint": facts,
    }

