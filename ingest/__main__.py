"""python -m ingest PATH... [--doc-type T] [--title T] [--doc-key K] [--effective-from D]
[--access G1,G2] [--dry-run] [--sync DIR] [--list] [--withdraw DOC_ID] [--restore DOC_ID VERSION]
[--suggestions] [--confirm-edition DOC_ID OF_DOC_ID] [--json]"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from tqdm import tqdm

from core.cli import ArgumentParser, UsageError, print_json, run
from core.text import printable
from ingest.service import IngestOptions
from wiring import open_container

PROG = "python -m ingest"


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Ingest documents into the store.")
    p.add_argument("paths", nargs="*", type=Path, help="files or folders")
    p.add_argument("--doc-type", choices=["regulation", "guidance", "manual"])
    p.add_argument("--title")
    p.add_argument("--doc-key", help="logical document: a key used before or a stored document's id; new content "
                   "under it is a new version (without it, only a file re-ingested from the same path is)")
    p.add_argument("--effective-from", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--access", default="", help="comma-separated access groups (default: every signed-in user)")
    p.add_argument("--dry-run", action="store_true", help="list what would be ingested and what it would replace")
    p.add_argument("--sync", type=Path, metavar="DIR", help="make the store match this folder")
    p.add_argument("--list", action="store_true", help="print the document registry")
    p.add_argument("--withdraw", metavar="DOC_ID")
    p.add_argument("--delete", metavar="DOC_ID", help="remove every version from the index and the registry")
    p.add_argument("--restore", nargs=2, metavar=("DOC_ID", "VERSION"),
                   help="make an earlier version the active one again")
    p.add_argument("--suggestions", action="store_true",
                   help="list new documents that look like new editions of stored ones")
    p.add_argument("--confirm-edition", nargs=2, metavar=("DOC_ID", "OF_DOC_ID"),
                   help="confirm that document DOC_ID is the next edition of OF_DOC_ID")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    actions = (args.paths or args.sync, args.list, args.withdraw, args.delete, args.restore, args.suggestions,
               args.confirm_edition)
    if sum(bool(a) for a in actions) != 1:
        raise UsageError("give one of PATH... (or --sync DIR), --list, --withdraw DOC_ID, --delete DOC_ID, "
                         "--restore DOC_ID VERSION, --suggestions, --confirm-edition DOC_ID OF_DOC_ID")
    if args.dry_run and args.sync:
        raise UsageError("--dry-run lists what PATH... would do; it does not combine with --sync")
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
        if args.restore:
            doc_id, number = args.restore
            if not number.isdigit():
                raise UsageError(f"--restore: VERSION must be a number, not {number!r}")
            version = container.ingest.restore(doc_id, int(number))
            print_json(version.as_dict()) if args.json else print(f"restored {version.title} v{version.version}")
            return 0
        if args.suggestions:
            return _print_suggestions(container.ingest.suggestions(), args.json)
        if args.confirm_edition:
            version = container.ingest.confirm_edition(*args.confirm_edition)
            print_json(version.as_dict()) if args.json else print(
                f"{version.title} is now v{version.version} of {version.doc_id}")
            return 0
        options = IngestOptions(
            doc_type=args.doc_type,
            title=args.title,
            doc_key=args.doc_key,
            effective_from=args.effective_from,
            access=tuple(g.strip() for g in args.access.split(",") if g.strip()),
        )
        service = container.ingest
        if args.dry_run:
            report = service.plan(args.paths, options)
            print_json(report) if args.json else _print_report(report)
            return 1 if report.failed else 0
        progress = None if args.json or not sys.stderr.isatty() else progress_bars()
        report = (
            service.sync(args.sync, options, progress) if args.sync else service.ingest(args.paths, options, progress)
        )
        if args.sync and args.paths:
            extra = service.ingest(args.paths, options, progress)
            report.documents.extend(extra.documents)
        print_json(report) if args.json else _print_report(report)
        return 1 if report.failed else 0
    finally:
        container.close()


def progress_bars(stream=None):
    """The files done of all; and while a file's scanned pages are read by OCR, a second bar of its pages with
    the time left at their pace. The pace is the reader's own clock, not tqdm's: a file read ahead reports the
    pages it read while the file before it was embedded when its turn comes, all at once."""
    stream = stream or sys.stderr
    bar = tqdm(unit="file", file=stream)
    ocr_bar: list[tqdm] = []  # the current file's, while it has one

    def update(p) -> None:
        bar.total = p.file_count
        bar.set_description(f"{printable(Path(p.path).name)[:30]} {p.stage}")
        if p.ocr is not None:
            if not ocr_bar:
                ocr_bar.append(tqdm(total=p.ocr.total, unit="page", desc="  OCR", file=stream, position=1, leave=False,
                                    smoothing=0))  # the average pace: pages done / seconds since the first
            ocr_bar[0].start_t = time.time() - p.ocr.elapsed_seconds
            ocr_bar[0].update(p.ocr.done - ocr_bar[0].n)
        elif ocr_bar:
            ocr_bar.pop().close()
        if p.stage in ("done", "failed"):
            bar.update(1)

    return update


def _print_report(report) -> None:
    for d in report.documents:
        if d.status == "failed":
            detail = d.error
        elif d.status.startswith("would-"):
            detail = f"as {d.doc_id}"
        else:
            detail = f"{d.pages} pages, {d.chunks} chunks ({d.embedded} embedded), v{d.version}"
        if d.replaces is not None:
            detail += f"; replaces {d.replaces.label()} ({d.replaces.reason})"
        if d.suggested_edition_of is not None:
            s = d.suggested_edition_of
            detail += (f"; looks like a new edition of {s.label()} ({s.reason}, {s.overlap:.0%} of the text in common):"
                       f" confirm with --confirm-edition {d.doc_id} {s.doc_id}")
        print(f"{d.status:12} {printable(d.path)}: {printable(detail or '')}")
        for warning in d.warnings:
            print(f"{'':12} ! {printable(warning)}")
    if not any(d.status.startswith("would-") for d in report.documents):
        print(f"{len(report.documents)} files in {report.seconds:.1f} s")


def _print_suggestions(suggestions, as_json: bool) -> int:
    rows = [{"doc_id": s.doc_id, "title": new.title, "source": new.source, "of_doc_id": s.of_doc_id,
             "of_title": stored.title, "of_version": stored.version, "overlap": s.overlap, "reason": s.reason}
            for s, new, stored in suggestions]
    if as_json:
        print_json({"suggestions": rows})
        return 0
    for r in rows:
        print(f"{r['doc_id']} {r['title']} ({r['source']}) -> {r['of_doc_id']} {r['of_title']} v{r['of_version']}: "
              f"{r['reason']}, {r['overlap']:.0%} in common")
    return 0


def _print_registry(versions, as_json: bool) -> int:
    if as_json:
        print_json({"documents": [v.as_dict() for v in versions]})
        return 0
    for v in versions:
        print(f"{v.doc_id}  v{v.version}  {v.status:10}  {v.doc_type:10}  {v.chunks:5} chunks  {v.title}")
    return 0


if __name__ == "__main__":
    run(PROG, main)
