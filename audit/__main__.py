"""``python -m audit``: verify, export, purge and search the audit log in the data dir.

``verify`` checks the hash chain and the head anchor (``security.audit_anchor_path``, signed
with ``security.audit_anchor_key``); ``anchor --init`` starts the anchor of a log that has none.
Dates are whole days in UTC (the log stores UTC). Exit codes: 0 ok, 1 failure or tampered
log, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from audit.log import ACTIONS, AUDIT_DB_NAME, AuditError, AuditLog, VerifyResult
from core.cli import EXIT_FAILURE, EXIT_OK, ArgumentParser, UsageError, cli_actor, iso_day, run
from core.schema import UNRESTRICTED, SearchFilter
from settings import load_settings
from wiring import requester_for

PROG = "python -m audit"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("verify", help="check the hash chain and the head anchor (exit 1 when tampered)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("anchor", help="show the head anchor; --init starts one for a log that has none")
    p.add_argument("--init", action="store_true", help="anchor the log at a new 'anchor' record (audited)")
    p.add_argument("--force", action="store_true",
                   help="with --init: re-anchor although an anchor exists that does not match (after investigating)")
    p.add_argument("--reason", default="", help="why (recorded; required with --force)")

    p = sub.add_parser("export", help="write records as CSV (oldest first)")
    p.add_argument("--from", dest="since", type=iso_day, metavar="YYYY-MM-DD", help="first day (UTC)")
    p.add_argument("--to", dest="until", type=iso_day, metavar="YYYY-MM-DD", help="last day (UTC), included")
    p.add_argument("--out", type=Path, metavar="FILE", help="CSV file (default: stdout)")
    _reader_options(p)

    p = sub.add_parser("purge", help="retention: delete records older than a day, keeping the chain")
    p.add_argument("--before", type=iso_day, required=True, metavar="YYYY-MM-DD",
                   help="delete records before 00:00 UTC of this day")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    p = sub.add_parser("search", help="list records, newest first")
    p.add_argument("--user")
    p.add_argument("--action", choices=sorted(ACTIONS))
    p.add_argument("--text", help="substring of the detail (case-insensitive)")
    p.add_argument("--since", type=iso_day, metavar="YYYY-MM-DD")
    p.add_argument("--until", type=iso_day, metavar="YYYY-MM-DD", help="included")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    _reader_options(p)
    return parser


def _reader_options(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group()
    who.add_argument("--as", dest="reader", metavar="NAME",
                     help="read as this user: answers drawn from documents outside their groups are withheld "
                          "(default: public documents only)")
    who.add_argument("--unrestricted", action="store_true",
                     help="every answer in full, e.g. to check the hashes outside the app (audited)")


def reader_scope(args: argparse.Namespace, log: AuditLog, purpose: str):
    """The scope the records are read with; an unrestricted read is itself an audit record."""
    if args.unrestricted:
        log.append(cli_actor(), "unrestricted_scope", {"purpose": purpose})
        return SearchFilter(access_groups=UNRESTRICTED)
    return requester_for(load_settings(), args.reader).search_filter()


def open_log() -> AuditLog:
    """The log of the data dir (or of `database.url`) with the anchor path and key of the settings (as the app
    opens it)."""
    settings = load_settings()
    path = Path(settings.data_dir) / AUDIT_DB_NAME
    if not settings.database.url.get_secret_value() and not path.is_file():  # PostgreSQL: the server holds it
        raise AuditError(f"no audit log at {path}")
    return AuditLog.from_settings(settings)


def _report(log: AuditLog, result: VerifyResult, as_json: bool, what: str) -> int:
    if as_json:
        print(json.dumps(result.to_json() | {"anchor_path": str(log.anchor.path)}, ensure_ascii=False))
    for warning in result.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if result.ok:
        if not as_json:
            anchored = (
                f", anchored at record {result.anchored_id} in {log.anchor.path}"
                f" ({'signed' if result.anchor_signed else 'unsigned'})"
                if result.anchored_id is not None else ""
            )
            print(f"OK: {result.records} records, {what}, head {result.head_hash}{anchored}")
        return EXIT_OK
    where = f"record {result.first_bad_id}: " if result.first_bad_id is not None else ""
    print(f"{PROG}: TAMPERED: {where}{result.reason}", file=sys.stderr)
    return EXIT_FAILURE


def cmd_verify(args: argparse.Namespace) -> int:
    log = open_log()
    return _report(log, log.verify(), args.json, "chain intact")


def cmd_anchor(args: argparse.Namespace) -> int:
    if (args.force or args.reason) and not args.init:
        raise UsageError("--force and --reason go with --init")
    if args.force and not args.reason.strip():
        raise UsageError("--force needs --reason TEXT (it is recorded)")
    log = open_log()
    if not args.init:
        return _report(log, log.check_head(), False, "head matches its anchor (run verify for the whole chain)")
    record = log.init_anchor(cli_actor(), reason=args.reason, force=args.force)
    signed = "signed" if log.anchor.signed else "unsigned: set security.audit_anchor_key"
    print(f"anchored at record {record} (an 'anchor' record) in {log.anchor.path} ({signed})")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since > args.until:
        raise UsageError("--from is after --to")
    log = open_log()
    reader = reader_scope(args, log, "audit export")
    if args.out is None:
        sys.stdout.reconfigure(newline="")  # the csv module writes its own line ends
        n = log.export_csv(sys.stdout, reader, args.since, args.until)
    else:
        n = log.export_csv(args.out, reader, args.since, args.until)
    print(f"exported {n} records", file=sys.stderr)
    return EXIT_OK


def cmd_purge(args: argparse.Namespace) -> int:
    log = open_log()
    n = log.purge_before(args.before, actor=cli_actor(), dry_run=args.dry_run)
    day = args.before.isoformat()
    if args.dry_run:
        print(f"would purge {n} records before {day} (UTC)")
    else:
        print(f"purged {n} records before {day} (UTC)")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    log = open_log()
    records = log.search(
        user=args.user, action=args.action, text=args.text,
        since=args.since, until=args.until, limit=args.limit, reader=reader_scope(args, log, "audit search"),
    )
    if args.json:
        print(json.dumps([r.to_json() for r in records], ensure_ascii=False))
        return EXIT_OK
    for r in records:
        detail = json.dumps(r.detail, ensure_ascii=False)
        if len(detail) > 160:
            detail = detail[:157] + "..."
        print(f"{r.id}\t{r.to_json()['ts']}\t{r.user}\t{r.action}\t{detail}")
    return EXIT_OK


COMMANDS = {
    "verify": cmd_verify,
    "anchor": cmd_anchor,
    "export": cmd_export,
    "purge": cmd_purge,
    "search": cmd_search,
}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    run(PROG, main)
