"""python -m ingest PATH... [--doc-type T] [--title T] [--doc-key K] [--effective-from D]
[--access G1,G2] [--sync DIR] [--list] [--withdraw DOC_ID] [--json]"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from core.cli import ArgumentParser, UsageError, open_container, print_json, run


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m ingest", description="Ingest documents into the store.")
    p.add_argument("paths", nargs="*", type=Path, help="files or folders")
    p.add_argument("--doc-type", choices=["regulation", "guidance", "manual"])
    p.add_argument("--title")
    p.add_argument("--doc-key", help="logical document id: new content under the same key is a new version")
    p.add_argument("--effective-from", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--access", default="", help="comma-separated access groups (default: every signed-in user)")
    p.add_argument("--sync", type=Path, metavar="DIR", help="make the store match this folder")
    p.add_argument("--list", action="store_true", help="print the document registry")
    p.add_argument("--withdraw", metavar="DOC_ID")
    p.add_argument("--delete", metavar="DOC_ID", help="remove every version from the index and the registry")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: list[str]) -> int:
    from ingest.service import IngestOptions

    args = _parser().parse_args(argv)
    if not (args.paths or args.sync or args.list or args.withdraw or args.delete):
        raise UsageError("give PATH..., --sync DIR, --list, --withdraw DOC_ID or --delete DOC_ID")
    container = open_container(store_wait_seconds=5.0)
    try:
        if args.list:
            return _print_registry(container.registry.all_versions(), args.json)
        if args.withdraw:
            version = container.ingest.withdraw(args.withdraw)
            print_json(
                {"doc_id": version.doc_id, "version": version.version, "status": "withdrawn"}
            ) if args.json else print(f"withdrew {version.title} (version {version.version})")
            return 0
        if args.delete:
            container.ingest.delete(args.delete)
            print_json({"doc_id": args.delete, "status": "deleted"}) if args.json else print(f"deleted {args.delete}")
            return 0
        options = IngestOptions(
            doc_type=args.doc_type,
            title=args.title,
            doc_key=args.doc_key,
            effective_from=args.effective_from,
            access=tuple(g.strip() for g in args.access.split(",") if g.strip()),
        )
        progress = None if args.json or not sys.stderr.isatty() else _progress_bar()
        service = container.ingest
        report = (
            service.sync(args.sync, options, progress) if args.sync else service.ingest(args.paths, options, progress)
        )
        if args.sync and args.paths:
            extra = service.ingest(args.paths, options, progress)
            report.documents.extend(extra.documents)
        if args.json:
            print_json(report)
        else:
            for d in report.documents:
                detail = (d.error if d.status == "failed"
                          else f"{d.pages} pages, {d.chunks} chunks ({d.embedded} embedded), v{d.version}")
                print(f"{d.status:10} {d.path}: {detail}")
            print(f"{len(report.documents)} files in {report.seconds:.1f} s")
        return 1 if report.failed else 0
    finally:
        container.close()


def _progress_bar():
    from tqdm import tqdm

    bar = tqdm(unit="file", file=sys.stderr)

    def update(p) -> None:
        bar.total = p.file_count
        bar.set_description(f"{Path(p.path).name[:30]} {p.stage}")
        if p.stage in ("done", "failed"):
            bar.update(1)

    return update


def _print_registry(versions, as_json: bool) -> int:
    if as_json:
        print_json({"documents": [v.as_dict() for v in versions]})
        return 0
    for v in versions:
        print(f"{v.doc_id}  v{v.version}  {v.status:10}  {v.doc_type:10}  {v.chunks:5} chunks  {v.title}")
    return 0


if __name__ == "__main__":
    run(main)
