"""Retrieval quality on public labelled sets, through the product's own ingest and retrieval.

``python -m eval retrieval --dataset NAME [--limit N] [--k 10] [--json] [--set KEY=VALUE ...]``
(also ``python -m eval.retrieval_quality ...``).

Datasets (read from the shared corpus, never copied into the repository):

- ``jfinteb-wikinews`` / ``jfinteb-wikipedia``: JFinTEB validation queries; each document of
  ``docs.jsonl`` is written to ``<docid>.txt`` and ingested like any text file. Scored per
  *document*: the ranked chunks are collapsed to their documents (first occurrence wins).
- ``obliqa-dev``: all ObliQA dev questions against the 40 ADGM rulebooks (``regulatory_documents_txt``).
- ``obliqa-aml``: the dev questions whose gold passages are all in DocumentID 1 (the AML rulebook),
  against that one document (``--corpus all``: against all 40 documents).

ObliQA is scored per *chunk*: a retrieved chunk hits a gold passage by :func:`chunk_hits_passage`.
Recall@k is the fraction of a question's gold passages hit within the top k chunks (averaged over
questions); ``any@k`` is the fraction of questions with at least one gold passage hit in the top k.

The corpus is ingested once per configuration into ``<data_dir>/eval/retrieval/<corpus>-<hash>``
(the hash covers every setting and source file that changes the index) and reused afterwards.
Query-time settings (fusion, rrf_k, candidates, query prefix, reranker) never force a rebuild.

Experiments measure candidate product changes before anyone makes them: ``--mode dense|sparse`` (one leg),
``--rrf-weights D,S`` (= ``--set retrieval.dense_weight=D --set retrieval.sparse_weight=S``),
``--experiment latin-surface`` (Sudachi terms that keep Latin-script words as written),
``--experiment llamaindex-chunks`` (the ingest benchmark baseline's chunking, to compare retrieval quality).
Results and the rules above: docs/retrieval.md.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.cli import ArgumentParser, UsageError, run
from eval.measures import percentile, score_ranking
from eval.passages import GoldPassage, chunk_hits_passage, words

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
DATASETS = ("obliqa-dev", "obliqa-aml", "jfinteb-wikinews", "jfinteb-wikipedia", "dev-pages", "dev-pages-ja",
            "dev-pages-en")
MODES = ("hybrid", "dense", "sparse")
KS = (1, 5, 10)
WORD_BUDGETS = (1000, 2000)
"""ObliQA: recall within the first chunks that fit this many words, i.e. at an equal amount of text handed
to the LLM (chunkers with larger chunks fill the top k with more text)."""
PASSAGE_DEPTH = 40
INDEX_FORMAT = 1
"""Bump when the way this module builds an index changes."""

# Source files whose code changes what ends up in the index.
_INDEX_CODE = (
    "ingest/readers.py",
    "ingest/chunking.py",
    "ingest/service.py",
    "ingest/document.py",
    "retrieval/embedding.py",
    "retrieval/sparse.py",
    "retrieval/store/base.py",
    "retrieval/store/edge_store.py",
)

# Targets set by the issue; published figures are read from the corpus (JFinTEB) or quoted (ObliQA).
TARGETS = {
    "obliqa-aml": ("recall@10", 0.85),
    "obliqa-dev": ("recall@10", 0.80),
    "jfinteb-wikinews": ("ndcg@10", 0.90),
    "jfinteb-wikipedia": ("ndcg@10", 0.96),
    "dev-pages": ("page_hit@1", 0.85),
    "dev-pages-ja": ("page_hit@1", 0.85),
    "dev-pages-en": ("page_hit@1", 0.85),
}
OBLIQA_PUBLISHED = [
    {
        "system": "LeSeR (fine-tuned retriever, Gokhan et al. 2025)",
        "split": "test",
        "recall@10": 0.820,
        "map@10": 0.666,
    }
]


# -- datasets ---------------------------------------------------------------------------------------------


@dataclass
class Query:
    qid: str
    text: str
    relevant_docs: list[str] = field(default_factory=list)
    """JFinTEB: relevant document ids."""
    gold: list[GoldPassage] = field(default_factory=list)
    """ObliQA: gold passages."""
    gold_units: list = field(default_factory=list)
    """Page-level sets: the question's gold sources (eval.testset.GoldSource)."""


@dataclass
class Dataset:
    name: str
    corpus_id: str
    corpus_label: str
    level: str
    """'doc' (collapse chunks to documents) or 'passage' (score chunks against gold passages)."""
    queries: list[Query]
    files: Callable[[Path], list[Path]]
    """Writes/locates the corpus: the files and folders an admin would pass to ``python -m ingest``."""
    published: list[dict]
    notes: list[str] = field(default_factory=list)
    typed_options: Callable[[Path], dict] | None = None
    """Experiment ``typed-titles``: the ingest options an admin would have to type per file."""


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _jfinteb(name: str, corpus: Path, max_docs: int | None = None, limit: int | None = None) -> Dataset:
    sub = name.split("-", 1)[1]
    folder = corpus / "ja" / "jfinteb" / sub
    if not folder.is_dir():
        raise FileNotFoundError(f"JFinTEB set not found at {folder} (the shared corpus is needed)")
    docs = _read_jsonl(folder / "docs.jsonl")
    # The ingest service stores a text once (content hash): a document whose text repeats an earlier
    # one's is represented by that earlier document, and counts as relevant wherever it is.
    first: dict[str, str] = {}
    canonical: dict[str, str] = {}
    for doc in docs:
        canonical[str(doc["docid"])] = first.setdefault(doc["text"], str(doc["docid"]))
    queries = [
        Query(str(i), q["query"], relevant_docs=sorted({canonical.get(str(d), str(d)) for d in q["relevant_docs"]}))
        for i, q in enumerate(_read_jsonl(folder / "query-validation.jsonl"))
    ]
    duplicates = sum(1 for d in docs if d["text"].strip()) - sum(1 for t in first if t.strip())
    keep: set[str] | None = None
    corpus_id, label = name, f"JFinTEB {sub} docs.jsonl (one .txt file per document)"
    if max_docs:
        # A smaller corpus for quick runs: the relevant documents of the evaluated queries, then the
        # other documents in file order up to max_docs. Easier than the full set: not comparable.
        queries = pick(queries, limit)
        keep = {d for q in queries for d in q.relevant_docs}
        for doc in docs:
            docid = str(doc["docid"])
            if len(keep) >= max_docs:
                break
            if doc["text"].strip() and canonical[docid] == docid:
                keep.add(docid)
        corpus_id = f"{name}-q{len(queries)}-d{max_docs}"
        label = f"JFinTEB {sub}: SAMPLE of {len(keep)} documents (relevant ones + first in file order)"

    def files(workdir: Path) -> list[Path]:
        target = workdir / "docs"
        target.mkdir(parents=True, exist_ok=True)
        for doc in docs:
            docid = str(doc["docid"])
            if not doc["text"].strip() or canonical[docid] != docid:
                continue  # empty documents cannot be ingested; repeated texts are stored once
            if keep is not None and docid not in keep:
                continue
            (target / f"{docid}.txt").write_text(doc["text"] + "\n", encoding="utf-8")
        return [target]

    return Dataset(
        name=name,
        corpus_id=corpus_id,
        corpus_label=label,
        level="doc",
        queries=queries,
        files=files,
        published=_jfinteb_published(corpus / "ja" / "jfinteb" / "leaderboard.md", sub),
        notes=[
            "queries: validation split; published figures: test split (nDCG@10, dense embedders alone)",
            f"{duplicates} documents repeat an earlier document's text: stored once, either copy counts as relevant",
        ],
    )


def _jfinteb_published(leaderboard: Path, sub: str) -> list[dict]:
    """The Retrieval table of leaderboard.md: nDCG@10 per model for Wikinews / Wikipedia."""
    if not leaderboard.is_file():
        return []
    text = leaderboard.read_text(encoding="utf-8")
    section = text.split("## Retrieval", 1)[-1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines() if "|" in line]
    if len(rows) < 3:
        return []
    header = [h.lower() for h in rows[0]]
    col = header.index(sub) if sub in header else -1
    out = []
    for row in rows[2:]:
        if col < 0 or col >= len(row):
            continue
        value = row[col].strip("*")
        try:
            out.append({"system": row[0], "split": "test", "ndcg@10": round(float(value) / 100, 4)})
        except ValueError:
            continue
    return sorted(out, key=lambda r: -r["ndcg@10"])


def _obliqa_titles(folder: Path) -> dict[str, str]:
    titles = {}
    path = folder / "document_map.tsv"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 4:
                titles[parts[1]] = parts[3].replace("\\'96", "-")
    return titles


def _obliqa(name: str, corpus: Path, corpus_variant: str) -> Dataset:
    folder = corpus / "en" / "obliqa"
    if not (folder / "ObliQA_dev.json").is_file():
        raise FileNotFoundError(f"ObliQA not found at {folder} (the shared corpus is needed)")
    raw = json.loads((folder / "ObliQA_dev.json").read_text(encoding="utf-8"))
    if name == "obliqa-aml":
        raw = [q for q in raw if q["Passages"] and all(p["DocumentID"] == 1 for p in q["Passages"])]
    queries = []
    skipped = 0
    for q in raw:
        gold = [GoldPassage(f"{p['DocumentID']}:{p['PassageID']}", p["Passage"]) for p in q["Passages"]]
        gold = [g for g in gold if g.tokens]
        if not gold:
            skipped += 1
            continue
        queries.append(Query(q["QuestionID"], q["Question"], gold=gold))
    titles = _obliqa_titles(folder)
    txt = folder / "regulatory_documents_txt"
    whole = name == "obliqa-dev" or corpus_variant == "all"

    def files(workdir: Path) -> list[Path]:
        return [txt] if whole else [txt / "AML_VER09.211223.txt"]

    def typed_options(path: Path) -> dict:
        return {"title": titles.get(path.stem, path.stem), "doc_key": f"obliqa-{path.stem}"}

    notes = ["published figure: ObliQA test split; ours: dev split"]
    if skipped:
        notes.append(f"{skipped} questions without a non-empty gold passage left out")
    return Dataset(
        name=name,
        corpus_id="obliqa-all" if whole else "obliqa-aml",
        corpus_label="all 40 ADGM documents" if whole else "AML rulebook only (AML_VER09.211223.txt)",
        level="passage",
        queries=queries,
        files=files,
        published=OBLIQA_PUBLISHED,
        notes=notes,
        typed_options=typed_options,
    )


DEV_PAGE_SETS = {
    "dev-pages": ("dev_retrieval_ja.jsonl", "dev_retrieval_en.jsonl"),
    "dev-pages-ja": ("dev_retrieval_ja.jsonl",),
    "dev-pages-en": ("dev_retrieval_en.jsonl",),
}


def shared_documents(corpus: Path) -> list[Path]:
    """Every shared PDF and the e-Gov law texts: the staff questions' documents and their distractors."""
    pdfs = sorted(p for p in corpus.rglob("*.pdf") if "obliqa" not in p.parts)
    return [*pdfs, corpus / "ja" / "egov_laws_2013" / "text"]


def _dev_pages(name: str, corpus: Path, testsets: tuple[Path, ...] = ()) -> Dataset:
    from eval.page_retrieval import load_cases

    if not testsets:
        testsets = tuple(REPO / "eval" / "testsets" / f for f in DEV_PAGE_SETS[name])
    if not (corpus / "ja" / "fsa_amlcft").is_dir():
        raise FileNotFoundError(f"the shared corpus is needed at {corpus}")
    cases = load_cases(testsets)
    queries = [Query(c.id, c.question, gold_units=c.gold_sources) for c in cases]
    return Dataset(
        name=name,
        corpus_id="shared-docs",
        corpus_label="every shared PDF and the 18 e-Gov law texts",
        level="page",
        queries=queries,
        files=lambda workdir: shared_documents(corpus),
        published=[],
        notes=[f"questions: {', '.join(p.name for p in testsets)}; floor: BM25 over whole pages / law articles"],
    )


def load_dataset(
    name: str,
    corpus: Path = DEFAULT_CORPUS,
    corpus_variant: str = "default",
    max_docs: int | None = None,
    limit: int | None = None,
) -> Dataset:
    """``max_docs`` (JFinTEB only) ingests a sample of the documents that keeps the relevant ones of
    the ``limit`` queries that will be evaluated."""
    if name.startswith("jfinteb-"):
        return _jfinteb(name, corpus, max_docs, limit)
    if max_docs:
        raise UsageError("--max-docs applies to the JFinTEB sets only")
    if name.startswith("obliqa-"):
        return _obliqa(name, corpus, corpus_variant)
    if name in DEV_PAGE_SETS:
        return _dev_pages(name, corpus)
    raise UsageError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")


def pick(queries: list, limit: int | None) -> list:
    """``limit`` queries spread evenly over the set (all when no limit), in a stable order."""
    if not limit or limit >= len(queries):
        return list(queries)
    return [queries[(i * len(queries)) // limit] for i in range(limit)]


# -- settings overrides and the index cache ---------------------------------------------------------------


def parse_overrides(items: Iterable[str]) -> dict:
    """``section.field=value`` pairs as nested keyword arguments for ``load_settings``."""
    from settings import Settings

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
        "code": {
            rel: hashlib.sha256((REPO / rel).read_bytes()).hexdigest()[:12] if (REPO / rel).exists() else None
            for rel in _INDEX_CODE
        }
        | {f"experiment {name}": _code_hash(_EXPERIMENT_CODE[name]) for name in experiments if name in EXPERIMENTS},
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
    from filelock import FileLock

    from settings import load_settings

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
            components = _experiment_components(settings, experiments)
            container = make_container(settings, store_wait_seconds=600, **components)
            return Index(container, path, info, reused=True)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        components = _experiment_components(settings, experiments)
        container = make_container(settings, store_wait_seconds=600, **components)
        try:
            info = _build(container, dataset, path, root, facts)
        except BaseException:
            container.close()
            raise
        done.write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
        return Index(container, path, info, reused=False)


# -- experiments: candidate changes to product code, measured here before anyone makes them -------------


def _latin_surface_sparse(tokenizer: str):
    """Sudachi BM25 terms, but Latin-script words keep their own (lower-cased) spelling.

    The product's Sudachi path uses ``normalized_form()``, which turns English dictionary words into
    katakana ("client" -> クライアント, "the" -> ザ, "rule" -> ルール): English stop words then count
    as terms and the English stemmer no longer joins "rule"/"rules"."""
    from retrieval.sparse import _SKIP_POS, SparseEncoder

    class LatinSurfaceSparse(SparseEncoder):
        def terms(self, text: str) -> str:
            if self.tokenizer != "sudachi":
                return text
            out = []
            with self._lock:
                for m in self._sudachi.tokenize(text[:15000]):
                    if m.part_of_speech()[0] in _SKIP_POS:
                        continue
                    surface = m.surface()
                    term = (surface if surface.isascii() else m.normalized_form()).strip().lower()
                    if term:
                        out.append(term)
            return " ".join(out)

    return LatinSurfaceSparse(tokenizer)


def _llamaindex_chunks(service) -> None:
    """The ingest benchmark's baseline chunking (bench/ingest.py): llama-index's SentenceSplitter, 512
    tokens with 50 of overlap, over each document's whole text; no sections, pages or title prefix."""
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter

    from ingest.document import ChunkDraft

    splitter = SentenceSplitter(chunk_size=512, chunk_overlap=50)

    def drafts(doc):
        text = "\n\n".join(page.text for page in doc.pages if page.text)
        nodes = splitter.get_nodes_from_documents([Document(text=text)])
        return [ChunkDraft(text=n.get_content(), section="", page_start=None, page_end=None) for n in nodes]

    service._drafts = drafts
    service.settings = service.settings.model_copy(update={"embed_title_prefix": False})


EXPERIMENTS = {
    "latin-surface": "Sudachi BM25 terms keep Latin-script words as written (see _latin_surface_sparse)",
    "llamaindex-chunks": "the ingest benchmark baseline's chunking: SentenceSplitter(512, 50), no title prefix",
    "typed-titles": "ObliQA: each file ingested with the title and doc key an admin would have to type",
}


def _typed_titles(service, files: list[Path], typed_options) -> list:
    """Each file ingested alone with the options an admin would type (``--title``, ``--doc-key``)."""
    from ingest.service import IngestOptions, collect_files

    return [item for f in collect_files(files)
            for item in service.ingest([f], IngestOptions(**typed_options(f))).documents]


_EXPERIMENT_CODE = {"latin-surface": _latin_surface_sparse, "llamaindex-chunks": _llamaindex_chunks,
                    "typed-titles": _typed_titles}


def _code_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:12]


def _experiment_components(settings, experiments: tuple[str, ...]) -> dict:
    """The components the experiments replace, as the container's keyword arguments."""
    components = {}
    for name in experiments:
        if name == "latin-surface":
            components["sparse"] = _latin_surface_sparse(settings.retrieval.sparse_tokenizer)
        elif name not in EXPERIMENTS:
            raise UsageError(f"unknown experiment {name!r} (known: {', '.join(EXPERIMENTS)})")
    return components


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


class _FlushAtEnd:
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


def _build(container, dataset: Dataset, path: Path, root: Path, facts: dict) -> dict:
    from core.schema import UNRESTRICTED, SearchFilter
    from ingest.embedding_cache import EmbeddingCache
    from ingest.service import IngestOptions, IngestService

    started = time.perf_counter()
    files = dataset.files(path)
    # One embedding cache for every eval index: changing only the sparse tokenizer, fusion or
    # store re-embeds nothing (vectors are keyed by embedder name and exact text).
    cache = EmbeddingCache(root / "embeddings.sqlite3", container.embedder.name)
    store = _FlushAtEnd(container.store)
    service = IngestService(container.settings.ingest, container.registry, container.embedder, container.sparse,
                            store, cache)
    if "llamaindex-chunks" in facts["experiments"]:
        _llamaindex_chunks(service)
    service.recover()
    if "typed-titles" in facts["experiments"]:
        if dataset.typed_options is None:
            raise UsageError(f"--experiment typed-titles applies to the ObliQA sets, not {dataset.name}")
        items = _typed_titles(service, files, dataset.typed_options)
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


# -- retrieval modes --------------------------------------------------------------------------------------


def retrieval_service(container, mode: str, rrf_weights: tuple[float, float] | None = None):
    """The product's RetrievalService with its fusion weights set for one leg (``dense`` /
    ``sparse``) or for the given ``rrf_weights``; the configured one otherwise."""
    weights = {"dense": (1.0, 0.0), "sparse": (0.0, 1.0)}.get(mode, rrf_weights)
    if weights is None:
        return container.retrieval
    from retrieval.service import RetrievalService

    settings = container.settings.retrieval.model_copy(update={"dense_weight": weights[0], "sparse_weight": weights[1]})
    return RetrievalService(settings, container.embedder, container.sparse, container.store)


# -- metrics ----------------------------------------------------------------------------------------------


def score_docs(ranked_docs: list[str], relevant: list[str], k: int) -> dict[str, float]:
    """Document-level metrics for one query: R@c, RR@k and nDCG@k (``eval.measures``) over the documents in
    the order of their best chunk."""
    names = [f"recall@{cut}" for cut in sorted({*KS, k})] + [f"mrr@{k}", f"ndcg@{k}"]
    return score_ranking(ranked_docs, relevant, names)


def score_passages(hit_sets: list[set[int]], n_gold: int, k: int) -> dict[str, float]:
    """Chunk-level metrics for one question: ``hit_sets[i]`` holds the gold passages chunk i hits.

    A passage is found once: chunk i counts as relevant when it hits a gold passage that no earlier chunk
    hit, and then stands for that passage in the ranking the standard measures see (``eval.measures``,
    R = ``n_gold``): any@c is Success@c, mrr@k RR@k, ndcg@k nDCG@k. Ours, not standard:
    recall@c counts gold passages hit within the top c chunks over ``n_gold`` (one chunk may hit several,
    so it is not R@c of any ranking); map@k divides the summed precision by min(R, k) where trec_eval's
    AP@k divides by R, so map@k = AP@k x R / min(R, k) (the same value while R <= k)."""
    ranking, seen = [], set()
    for i, hits in enumerate(hit_sets):
        new = hits - seen
        ranking.append(f"p{min(new)}" if new else f"chunk{i}")
        seen |= hits
    cuts = sorted({*KS, k})
    names = [f"hit@{cut}" for cut in cuts] + [f"mrr@{k}", f"ndcg@{k}", f"ap@{k}"]
    std = score_ranking(ranking, [f"p{i}" for i in range(n_gold)], names)
    out: dict[str, float] = {}
    for cut in cuts:
        found = set().union(*hit_sets[:cut]) if hit_sets[:cut] else set()
        out[f"recall@{cut}"] = len(found) / n_gold
        out[f"any@{cut}"] = std[f"hit@{cut}"]
    out[f"mrr@{k}"] = std[f"mrr@{k}"]
    out[f"ndcg@{k}"] = std[f"ndcg@{k}"]
    ap = std[f"ap@{k}"]
    out[f"map@{k}"] = ap if n_gold <= k else ap * n_gold / k
    return out


def recall_within_words(hit_sets: list[set[int]], lengths: list[int], n_gold: int) -> dict[str, float]:
    """Gold passages hit by the top chunks that fit each of ``WORD_BUDGETS`` (the first chunk always counts)."""
    out: dict[str, float] = {}
    for budget in WORD_BUDGETS:
        found: set[int] = set()
        used = 0
        for i, (hits, length) in enumerate(zip(hit_sets, lengths, strict=True)):
            used += length
            if i and used > budget:
                break
            found |= hits
        out[f"recall@{budget}w"] = len(found) / n_gold
    return out


# -- the run ----------------------------------------------------------------------------------------------


def evaluate(
    dataset: Dataset,
    overrides: dict | None = None,
    k: int = 10,
    limit: int | None = None,
    mode: str = "hybrid",
    data_dir: Path | None = None,
    rebuild: bool = False,
    depth: int | None = None,
    rrf_weights: tuple[float, float] | None = None,
    experiments: tuple[str, ...] = (),
    reuse_stale: bool = False,
    rankings: bool = False,
    *,
    make_container,
) -> dict:
    """``rankings``: also return each query's ranked chunk ids (to compare with the CLI's)."""
    from core.schema import UNRESTRICTED, SearchFilter

    overrides = overrides or {}
    index = open_index(dataset, overrides, data_dir=data_dir, rebuild=rebuild, experiments=experiments,
                       reuse_stale=reuse_stale, make_container=make_container)
    container = index.container
    try:
        settings = container.settings
        service = retrieval_service(container, mode, rrf_weights)
        flt = SearchFilter(access_groups=UNRESTRICTED)  # a benchmark corpus, all public
        queries = pick(dataset.queries, limit)
        # Documents hold several chunks: fetch deeper, then keep each document's best chunk. Passages: deep
        # enough for the word budgets.
        if depth is None:
            depth = max(4 * k, settings.retrieval.candidates) if dataset.level != "passage" else max(k, PASSAGE_DEPTH)
        service.retrieve(queries[0].text if queries else "warm-up", flt, depth)  # load models, warm caches
        latencies: list[float] = []
        per_query: list[dict[str, float]] = []
        token_cache: dict[str, list[str]] = {}
        source_paths = {v.doc_id: v.source_path for v in container.registry.active()}
        chunk_ids: dict[str, list[str]] = {}
        for query in queries:
            started = time.perf_counter()
            hits = service.retrieve(query.text, flt, depth)
            latencies.append((time.perf_counter() - started) * 1000)
            chunk_ids[query.qid] = [h.chunk_id for h in hits]
            if dataset.level == "page":
                from eval.page_retrieval import ranked_units, score_units

                per_query.append(score_units(ranked_units(hits, source_paths), query.gold_units))
            elif dataset.level == "doc":
                ranked: list[str] = []
                for h in hits:
                    doc = Path(h.source).stem
                    if doc not in ranked:
                        ranked.append(doc)
                per_query.append(score_docs(ranked, query.relevant_docs, k))
            else:
                hit_sets, lengths = [], []
                for h in hits:
                    key = h.chunk_id or h.text
                    if key not in token_cache:
                        token_cache[key] = words(h.text)
                    toks = token_cache[key]
                    hit_sets.append({i for i, g in enumerate(query.gold) if chunk_hits_passage(h.text, g, toks)})
                    lengths.append(len(toks))
                per_query.append(score_passages(hit_sets[:k], len(query.gold), k)
                                 | recall_within_words(hit_sets, lengths, len(query.gold)))
        metrics = {
            name: round(sum(q[name] for q in per_query) / len(per_query), 4) for name in (per_query or [{}])[0]
        }
        target_metric, target = TARGETS[dataset.name]
        extra: dict = {"rankings": chunk_ids} if rankings else {}
        if dataset.level == "page":
            extra["floor"] = _page_floor(container, index.path, queries, per_query)
        return extra | {
            "dataset": dataset.name,
            "corpus": dataset.corpus_label,
            "level": dataset.level,
            "mode": mode,
            "queries": len(queries),
            "queries_total": len(dataset.queries),
            "k": k,
            "depth": depth,
            "metrics": metrics,
            "latency_ms": {
                "p50": round(percentile(latencies, 50, empty=0.0), 2),
                "p95": round(percentile(latencies, 95, empty=0.0), 2),
                "mean": round(sum(latencies) / max(len(latencies), 1), 2),
                "load_avg": round(os.getloadavg()[0], 2),
            },
            "target": {"metric": target_metric, "value": target, "met": metrics.get(target_metric, 0) >= target},
            "published": dataset.published,
            "settings": {
                "embedding.backend": settings.embedding.backend,
                "embedder": container.embedder.name,
                "retrieval.fusion": settings.retrieval.fusion,
                "retrieval.rrf_k": settings.retrieval.rrf_k,
                "retrieval.weights (dense, sparse)": [service.settings.dense_weight, service.settings.sparse_weight],
                "experiments": list(experiments),
                "retrieval.candidates": settings.retrieval.candidates,
                "retrieval.sparse_tokenizer": settings.retrieval.sparse_tokenizer,
                "retrieval.reranker_path": str(settings.retrieval.reranker_path or "") or None,
                "ingest.chunk_tokens": settings.ingest.chunk_tokens,
                "ingest.chunk_overlap_sentences": settings.ingest.chunk_overlap_sentences,
                "ingest.embed_title_prefix": settings.ingest.embed_title_prefix,
                "overrides": overrides,
            },
            "index": {
                "path": str(index.path),
                "reused": index.reused,
                "built_by_older_code": bool(index.info.get("stale")),
                "files": index.info.get("files"),
                "failed": len(index.info.get("failed", [])),
                "chunks": index.info.get("chunks"),
                "ingest_seconds": index.info.get("ingest_seconds"),
            },
            "notes": dataset.notes,
        }
    finally:
        container.close()


def _page_floor(container, index_path: Path, queries: list[Query], ours: list[dict]) -> dict:
    """Plain BM25 over whole pages / sections of the same documents, on the same queries, in this process;
    with the questions where ours and the floor differ at rank 1."""
    from eval.page_retrieval import Bm25Floor, floor_units, load_units, save_units, score_units
    from ingest.chunking import chunk_document

    cached = index_path / "floor_units.json"
    if cached.is_file():
        units = load_units(cached)
    else:
        settings = container.settings.ingest

        def sections(doc):
            return chunk_document(doc, container.embedder.count_tokens, settings.chunk_tokens, 0)

        units = floor_units([v.source_path for v in container.registry.active()], settings.max_file_mb << 20, sections)
        save_units(units, cached)
    floor = Bm25Floor(units, container.sparse.terms)
    per_query = [score_units(floor.search(q.text, 10), q.gold_units) for q in queries]
    metrics = {name: round(sum(q[name] for q in per_query) / len(per_query), 4) for name in per_query[0]}
    return {
        "system": "BM25 (bm25s) over whole pages and law articles, Sudachi terms",
        "units": len(units),
        "metrics": metrics,
        "ours_only_at_1": [q.qid for q, a, b in zip(queries, ours, per_query, strict=True)
                           if a["page_hit@1"] > b["page_hit@1"]],
        "floor_only_at_1": [q.qid for q, a, b in zip(queries, ours, per_query, strict=True)
                            if a["page_hit@1"] < b["page_hit@1"]],
    }


def format_report(r: dict) -> str:
    m = r["metrics"]
    lines = [
        f"dataset {r['dataset']} ({r['queries']}/{r['queries_total']} queries) · corpus: {r['corpus']}"
        f" · mode {r['mode']}",
        f"index: {r['index']['chunks']} chunks from {r['index']['files']} files"
        f" ({r['index']['failed']} failed), {'reused' if r['index']['reused'] else 'built'}"
        f" in {r['index']['ingest_seconds']} s · {r['index']['path']}",
        "settings: " + ", ".join(f"{key}={val}" for key, val in r["settings"].items() if key != "overrides"),
        "",
        f"{'metric':<12} {'ours':>8}",
    ]
    for name, value in m.items():
        lines.append(f"{name:<12} {value:>8.4f}")
    lat = r["latency_ms"]
    lines.append(f"latency ms   p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  (load average {lat['load_avg']})")
    t = r["target"]
    lines.append(f"target       {t['metric']} >= {t['value']}: {'met' if t['met'] else 'NOT met'}")
    if "floor" in r:
        f = r["floor"]
        lines.append("")
        lines.append(f"floor: {f['system']} ({f['units']} units)")
        for name, value in f["metrics"].items():
            lines.append(f"{name:<12} {m[name]:>8.4f} ours  {value:>8.4f} floor")
        lines.append(f"first page right by ours only: {len(f['ours_only_at_1'])}, by the floor only: "
                     f"{len(f['floor_only_at_1'])} ({', '.join(f['floor_only_at_1'][:12])})")
    if r["published"]:
        lines.append("")
        lines.append("published (for comparison; other split and/or system):")
        metric = "ndcg@10" if r["level"] == "doc" else "recall@10"
        ours = m.get(metric, 0.0)
        lines.append(f"  {'ours (this run)':<36} {metric} {ours:.4f}")
        for p in r["published"]:
            extra = f"  map@10 {p['map@10']:.3f}" if "map@10" in p else ""
            lines.append(f"  {p['system']:<36} {metric} {p[metric]:.4f}  ({p['split']} split){extra}")
    for note in r["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m eval retrieval", description="Measure retrieval quality on a labelled set.")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--limit", type=int, help="evaluate N queries spread evenly over the set")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a setting, e.g. retrieval.fusion=dbsf (repeatable)")
    p.add_argument("--mode", choices=MODES, default="hybrid",
                   help="hybrid: the RetrievalService as configured; dense / sparse: one leg only")
    p.add_argument("--rrf-weights", metavar="DENSE,SPARSE",
                   help="experiment: client-side weighted RRF of the two legs in hybrid mode, e.g. 1,2")
    p.add_argument("--experiment", action="append", default=[], choices=sorted(EXPERIMENTS),
                   help="measure a candidate code change (see EXPERIMENTS); part of the index key")
    p.add_argument("--corpus", choices=("default", "all"), default="default",
                   help="obliqa-aml: 'all' searches all 40 documents instead of the AML rulebook only")
    p.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS, help="the shared corpus folder")
    p.add_argument("--data-dir", type=Path, help="where eval/retrieval/ caches live (default: settings data_dir)")
    p.add_argument("--max-docs", type=int,
                   help="JFinTEB: ingest only the relevant documents plus others up to N (quick, easier)")
    p.add_argument("--reuse-stale", action="store_true",
                   help="reuse an index built with the same settings by older ingest code instead of rebuilding")
    p.add_argument("--rebuild", action="store_true", help="ingest again even when a cached index matches")
    p.add_argument("--depth", type=int,
                   help="chunks fetched per query (default: max(k, 40); max(4k, candidates) for document sets)")
    return p


def main_retrieval(argv: list[str], make_container) -> int:
    """``python -m eval retrieval``; ``make_container``: the composition root's ``Container``."""
    args = _parser().parse_args(argv)
    if args.k < 1 or (args.limit is not None and args.limit < 1):
        raise UsageError("--k and --limit must be positive")
    overrides = parse_overrides(args.overrides)
    weights = None
    if args.rrf_weights:
        try:
            weights = tuple(float(w) for w in args.rrf_weights.split(","))
        except ValueError:
            weights = ()
        if len(weights) != 2 or min(weights) < 0 or args.mode != "hybrid":
            raise UsageError("--rrf-weights needs two non-negative numbers DENSE,SPARSE and --mode hybrid")
    dataset = load_dataset(args.dataset, args.corpus_dir, args.corpus, args.max_docs, args.limit)
    result = evaluate(
        dataset, overrides, k=args.k, limit=args.limit, mode=args.mode, data_dir=args.data_dir,
        rebuild=args.rebuild, depth=args.depth, rrf_weights=weights, experiments=tuple(args.experiment),
        reuse_stale=args.reuse_stale, make_container=make_container,
    )
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(format_report(result))
    return 0


if __name__ == "__main__":  # python -m eval.retrieval_quality: the same as python -m eval retrieval
    from eval.__main__ import main

    run(lambda argv: main(["retrieval", *argv]))
