"""python -m retrieval "QUERY" [--k 10] [--user NAME] [--as-of D] [--doc-type T] [--json]
python -m retrieval --queries FILE.jsonl [--k 10] --json   (one output line per query)"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from core.cli import ArgumentParser, UsageError, print_json, run
from core.schema import SearchFilter
from wiring import open_container, requester_for

PROG = "python -m retrieval"


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Search the indexed documents.")
    p.add_argument("query", nargs="?")
    p.add_argument("--queries", type=Path, help='JSONL file of {"id", "query"}')
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--user", help="apply this user's access groups")
    p.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--doc-type", action="append", choices=["regulation", "guidance", "manual"], default=[])
    p.add_argument("--json", action="store_true")
    return p


def search_filter_for(container, user: str | None, **kwargs) -> SearchFilter:
    return requester_for(container.settings, user).search_filter(**kwargs)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if bool(args.query) == bool(args.queries):
        raise UsageError("give either a QUERY or --queries FILE")
    container = open_container(store_wait_seconds=5.0)
    try:
        flt = search_filter_for(container, args.user, as_of=args.as_of, doc_types=tuple(args.doc_type))
        service = container.retrieval
        if args.queries:
            for line in args.queries.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                hits = service.retrieve(item["query"], flt, args.k)
                print_json({"id": item.get("id"), "hits": [h.model_dump(mode="json") for h in hits]})
            return 0
        hits = service.retrieve(args.query, flt, args.k)
        if args.json:
            print_json({"query": args.query, "hits": [h.model_dump(mode="json") for h in hits]})
        else:
            for i, h in enumerate(hits, 1):
                where = f"p.{h.page}" if h.page else ""
                print(f"{i:2}. {h.score:.4f}  {h.source} {where}  {h.section}")
                print(f"    {h.text[:160]}")
        return 0
    finally:
        container.close()


if __name__ == "__main__":
    run(PROG, main)
