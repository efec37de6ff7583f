"""Copy the embedded store (qdrant-edge) into a Qdrant server or cluster collection.

python -m retrieval.migrate --to-url URL [--api-key-env VAR] [--collection NAME] [--batch 256] [--json]
python -m retrieval.migrate --to-path DIR ...   (rehearsal into a qdrant-client local-mode folder)

Reads ``<data dir>/store`` of the current settings (profile, ``CQA_SETTINGS_FILE``, ``CQA_*``),
whatever ``store.backend`` says, and copies every point with the same id, payload, dense and
sparse vector. The target collection is created by ``QdrantStore``'s constructor when it does
not exist: dense cosine vectors named ``dense`` of the stored size, sparse ``sparse`` with IDF,
the payload indexes of ``retrieval.store.base`` and ``shard_number`` / ``replication_factor``
from ``[store]``. Re-running upserts the same ids, so an interrupted run is simply repeated.
At the end the counts are compared (all points, and the active ones the app searches); exit
status 1 when they differ, 2 for bad usage.

The embedded store has one owner at a time: stop the app first (the command waits a few
seconds for the lock, then says so). The API key is read from an environment variable
(``--api-key-env``, default ``store.qdrant_api_key`` of the settings), never from the
command line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import qdrant_edge
from pydantic import SecretStr
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ApiException

from audit.log import AuditLog
from core.cli import ArgumentParser, UsageError, cli_actor, run
from core.errors import CQAError
from core.schema import UNRESTRICTED, SearchFilter
from retrieval.store.base import DENSE, SPARSE
from retrieval.store.edge_store import EdgeStore
from retrieval.store.qdrant_store import QdrantStore
from settings import load_settings
from settings.model import StoreSettings

PROG = "python -m retrieval.migrate"
DEFAULT_BATCH = 256
LOCK_WAIT_SECONDS = 5.0


class MigrationError(CQAError):
    """The source or the target cannot take part in a migration (nothing was half-done silently)."""


@dataclass
class MigrationReport:
    source: str
    target: str
    collection: str
    dim: int
    source_points: int = 0
    source_active: int = 0
    target_points_before: int = 0
    copied: int = 0
    batches: int = 0
    target_points: int = 0
    target_active: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def stored_dim(edge_dir: Path) -> int:
    """The dense vector size the embedded shard was created with."""
    config = edge_dir / "shard" / "edge_config.json"
    if not (edge_dir / "shard").is_dir():
        raise MigrationError(f"no embedded store at {edge_dir} (nothing to migrate)")
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["vectors"][DENSE]["size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MigrationError(f"cannot read the vector size of {edge_dir} from {config.name}: {exc}") from None


def _sparse_parts(vector) -> tuple[list[int], list[float]] | None:
    """qdrant_edge SparseVector (or a dict / qdrant-client SparseVector) -> (indices, values)."""
    if vector is None:
        return None
    if isinstance(vector, dict):
        indices, values = vector.get("indices"), vector.get("values")
    else:
        indices, values = getattr(vector, "indices", None), getattr(vector, "values", None)
    if not indices:
        return None
    return [int(i) for i in indices], [float(v) for v in values]


def _target_store(target, dim: int, store_settings: StoreSettings | None):
    if isinstance(target, QdrantStore):
        return target
    # A qdrant_client.QdrantClient (or anything that speaks its API): create the collection
    # exactly as the app would, through QdrantStore's constructor.
    return QdrantStore(store_settings or StoreSettings(), dim, client=target)


def _check_target_schema(store, dim: int) -> None:
    info = store._client.get_collection(store.collection)
    vectors = info.config.params.vectors
    dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
    if dense is None or dense.size != dim:
        have = "no 'dense' vector" if dense is None else f"{dense.size}-dim 'dense' vectors"
        raise MigrationError(
            f"collection {store.collection!r} has {have}, the embedded store has {dim}-dim ones: "
            "migrate into a new collection (--collection NAME) or delete the old one first"
        )
    sparse = info.config.params.sparse_vectors or {}
    if SPARSE not in sparse:
        raise MigrationError(f"collection {store.collection!r} has no {SPARSE!r} sparse vector: use a new collection")


def migrate(
    edge_dir: Path,
    target,
    batch: int = DEFAULT_BATCH,
    *,
    store_settings: StoreSettings | None = None,
    wait_seconds: float = 0.0,
    target_name: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Copy every point of the embedded store at ``edge_dir`` into ``target``.

    ``target`` is a ``QdrantStore`` or a qdrant-client ``QdrantClient`` (then the collection
    named by ``store_settings`` is created like ``QdrantStore`` does, with its shards and
    replication factor). The embedded store is opened (and its owner lock held) for the
    duration; the target is left open for the caller. Raises ``StoreBusy`` when another
    process owns the embedded store, ``MigrationError`` when the target collection has an
    incompatible schema. The returned report's ``problems`` say whether the counts match.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    started = time.perf_counter()
    dim = stored_dim(edge_dir)
    source = EdgeStore(edge_dir, dim, wait_seconds=wait_seconds)
    try:
        store = _target_store(target, dim, store_settings)
        _check_target_schema(store, dim)
        client, collection = store._client, store.collection
        report = MigrationReport(
            source=str(edge_dir),
            target=target_name or type(client).__name__,
            collection=collection,
            dim=dim,
            source_points=source.count(None),
            source_active=source.count(SearchFilter(access_groups=UNRESTRICTED)),
            target_points_before=store.count(None),
        )
        offset = None
        while True:
            records, offset = source._shard.scroll(
                qdrant_edge.ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=True)
            )
            points = []
            for record in records:
                vectors = record.vector or {}
                dense = vectors.get(DENSE)
                if dense is None or len(dense) != dim:
                    raise MigrationError(f"point {record.id} has no {dim}-dim dense vector")
                vector: dict = {DENSE: [float(x) for x in dense]}
                sparse = _sparse_parts(vectors.get(SPARSE))
                if sparse is not None:
                    vector[SPARSE] = models.SparseVector(indices=sparse[0], values=sparse[1])
                points.append(models.PointStruct(id=str(record.id), vector=vector, payload=dict(record.payload or {})))
            if points:
                client.upsert(collection, points, wait=True)
                found = client.retrieve(collection, [p.id for p in points], with_payload=False, with_vectors=False)
                if len(found) != len(points):
                    report.problems.append(
                        f"batch {report.batches + 1}: {len(points) - len(found)} of {len(points)} points "
                        "not readable back from the target"
                    )
                report.copied += len(points)
                report.batches += 1
                if progress is not None:
                    progress(report.copied, report.source_points)
            if offset is None or not records:
                break
        report.target_points = store.count(None)
        report.target_active = store.count(SearchFilter(access_groups=UNRESTRICTED))
    finally:
        source.close()
    if report.copied != report.source_points:
        report.problems.append(f"copied {report.copied} points but the embedded store counts {report.source_points}")
    if report.target_points != report.source_points:
        extra = report.target_points - report.source_points
        why = (
            f"{extra} points in the target are not in the embedded store (left from an earlier state: "
            "migrate into a fresh collection, or delete the collection and re-run)"
            if extra > 0
            else "points are missing in the target"
        )
        report.problems.append(
            f"target holds {report.target_points} points, the embedded store {report.source_points}: {why}"
        )
    if report.target_active != report.source_active:
        report.problems.append(
            f"active points differ: target {report.target_active}, embedded store {report.source_active}"
        )
    report.seconds = round(time.perf_counter() - started, 3)
    return report


# --- command line -----------------------------------------------------------------------


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Copy the embedded store of the current settings into a Qdrant server collection.",
        epilog="Exit status: 0 copied and verified, 1 failed or counts differ, 2 bad usage.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--to-url", metavar="URL", help="Qdrant server or cluster, e.g. http://qdrant:6333")
    where.add_argument(
        "--to-path", type=Path, metavar="DIR", help="rehearse into a qdrant-client local-mode folder instead"
    )
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the server's API key (default: the settings' store.qdrant_api_key)",
    )
    p.add_argument("--collection", help="target collection (default: the settings' store.collection)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help=f"points per upsert (default {DEFAULT_BATCH})")
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    settings = load_settings()
    api_key = settings.store.qdrant_api_key.get_secret_value()
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env, "")
        if not api_key:
            raise UsageError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    target_settings = settings.store.model_copy(
        update={
            "backend": "qdrant",
            "qdrant_url": args.to_url,
            "qdrant_api_key": SecretStr(api_key),
            "collection": args.collection or settings.store.collection,
        }
    )
    if args.to_url:
        client = QdrantClient(url=args.to_url, api_key=api_key or None, timeout=60)
        name = args.to_url
    else:
        client = QdrantClient(path=str(args.to_path))
        name = f"local:{args.to_path}"

    # every document's text, whoever may read it, is copied: an unrestricted read, on the audit trail first
    AuditLog.from_settings(settings).append(cli_actor(), "unrestricted_scope",
                                            {"purpose": "store migration", "target": name})
    try:
        report = migrate(
            settings.store_dir,
            client,
            args.batch,
            store_settings=target_settings,
            wait_seconds=LOCK_WAIT_SECONDS,
            target_name=name,
        )
    except (ApiException, ConnectionError) as exc:  # unreachable server, wrong API key, ...
        raise MigrationError(f"Qdrant at {name}: {' '.join(str(exc).split())[:300]}") from None
    finally:
        client.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(
            f"copied {report.copied} points ({report.dim}-dim) in {report.batches} batches from {report.source} "
            f"to {name} collection {report.collection!r} in {report.seconds:.1f} s"
        )
        print(
            f"target: {report.target_points} points ({report.target_active} active), embedded store: "
            f"{report.source_points} ({report.source_active} active)"
        )
        for problem in report.problems:
            print(f"PROBLEM: {problem}")
        print("verified: counts match" if report.ok else "NOT verified: see the problems above")
    return 0 if report.ok else 1


if __name__ == "__main__":
    run(PROG, main)
