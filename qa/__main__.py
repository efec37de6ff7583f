"""python -m qa "QUESTION" [--user NAME] [--as-of D] [--json]"""

from __future__ import annotations

import sys
from datetime import date

from core.cli import ArgumentParser, print_json, run
from prompts import load_prompts
from qa.service import AnswerEvent, TokenEvent
from wiring import open_container, requester_for

PROG = "python -m qa"


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Answer a question from the documents, with citations.")
    p.add_argument("question")
    p.add_argument("--user", help="answer as this user (their access groups apply)")
    p.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    container = open_container(store_wait_seconds=5.0)
    try:
        requester = requester_for(container.settings, args.user)
        answer = None
        for event in container.answers.stream(args.question, requester, as_of=args.as_of):
            if isinstance(event, TokenEvent) and not args.json:
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, AnswerEvent):
                answer = event.answer
        if args.json:
            print_json(answer)
        else:
            if answer.refused and not answer.model:
                print(answer.answer)
            print()
            for c in answer.citations:
                mark = "" if c.verified else "  (not supported by this source)"
                print(f"[{c.n}] {c.source} p.{c.page} {c.section}{mark}")
            if not answer.refused and not any(c.verified for c in answer.citations):
                print(load_prompts(answer.language).no_citation)
        return 0
    finally:
        container.close()


if __name__ == "__main__":
    run(PROG, main)
