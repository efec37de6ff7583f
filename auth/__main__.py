"""``python -m auth``: manage the users of the data dir. Every change is audited.

The command loads the settings as the app does (profile, ``CQA_SETTINGS_FILE``, ``CQA_*``), so
the site's password policy applies here too; it goes through the app's auth service.

Passwords are read from stdin with ``--password-stdin`` (first line), or prompted for twice
on a terminal; they are never printed. New users and reset passwords must be changed at the
next sign-in unless ``--no-must-change`` is given. Exit codes: 0 ok, 1 failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from auth.store import (
    PasswordPolicyError,
    User,
    UserError,
    normalize_groups,
    normalize_roles,
    validate_name,
)
from core.cli import EXIT_OK, ArgumentParser, UsageError, cli_actor, run
from settings import load_settings
from wiring import Container

PROG = "python -m auth"


def _roles(values: list[str] | None) -> list[str]:
    return [r for v in values or [] for r in v.split(",") if r.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def name_cmd(cmd: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(cmd, help=help_text)
        p.add_argument("name")
        return p

    def password_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        p.add_argument("--no-must-change", action="store_true",
                       help="do not ask the user to change the password at the next sign-in")

    p = name_cmd("add", "add a user")
    p.add_argument("--role", action="append", required=True,
                   help="staff, compliance or admin; repeat or separate with commas")
    p.add_argument("--groups", default="", help="access groups, comma-separated")
    password_opts(p)

    p = name_cmd("reset-password", "set a new password (also unlocks)")
    password_opts(p)

    p = name_cmd("set-groups", "replace the access groups")
    p.add_argument("--groups", required=True, help='comma-separated; "" for none')

    p = name_cmd("set-roles", "replace the roles")
    p.add_argument("--role", action="append", required=True)

    name_cmd("disable", "disable a user")
    name_cmd("enable", "enable a user")
    name_cmd("unlock", "clear a lockout after failed sign-ins")
    name_cmd("delete", "delete a user")

    p = sub.add_parser("list", help="list users")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    return parser


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise PasswordPolicyError("no password on stdin")
        return password
    if not sys.stdin.isatty():
        raise UsageError("stdin is not a terminal: pass the password with --password-stdin")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("Repeat password: "):
        raise PasswordPolicyError("the passwords do not match")
    return first


def user_json(user: User) -> dict:
    return {
        "name": user.name,
        "roles": list(user.roles),
        "groups": list(user.groups),
        "disabled": user.disabled,
        "locked": user.is_locked(),
    }


def describe(user: User) -> str:
    flags = [f for f, on in (("disabled", user.disabled), ("locked", user.is_locked()),
                             ("must-change-password", user.must_change_password),
                             ("sso", user.source != "password")) if on]
    groups = ",".join(user.groups) or "-"
    return f"{user.name}\troles={','.join(user.roles)}\tgroups={groups}" + (
        f"\t{' '.join(flags)}" if flags else ""
    )


def execute(args: argparse.Namespace) -> int:
    services = Container(load_settings()).auth  # the app's service: the site's password policy
    store = services.store
    if args.command == "list":
        users = store.list_users()
        if args.json:
            print(json.dumps([user_json(u) for u in users], ensure_ascii=False))
        else:
            for u in users:
                print(describe(u))
        return EXIT_OK

    admin = services.cli_admin(cli_actor())
    cmd = args.command
    if cmd == "add":
        roles = _roles(args.role)
        validate_name(args.name)  # check everything before asking for a password
        normalize_roles(roles)
        normalize_groups(args.groups)
        if store.get(args.name) is not None:
            raise UserError(f"user {args.name} already exists")
        password = read_password(args.password_stdin)
        user = admin.add_user(args.name, password, roles, args.groups,
                              must_change_password=not args.no_must_change)
        print(f"added {describe(user)}")
    elif cmd == "reset-password":
        if store.get(args.name) is None:  # fail before asking for a password
            raise UserError(f"no such user: {args.name}")
        password = read_password(args.password_stdin)
        user = admin.reset_password(args.name, password, must_change_password=not args.no_must_change)
        print(f"password reset for {user.name}")
    elif cmd == "set-groups":
        print(f"updated {describe(admin.set_groups(args.name, args.groups))}")
    elif cmd == "set-roles":
        print(f"updated {describe(admin.set_roles(args.name, _roles(args.role)))}")
    elif cmd == "disable":
        print(f"disabled {admin.disable(args.name).name}")
    elif cmd == "enable":
        print(f"enabled {admin.enable(args.name).name}")
    elif cmd == "unlock":
        print(f"unlocked {admin.unlock(args.name).name}")
    elif cmd == "delete":
        admin.delete(args.name)
        print(f"deleted {args.name}")
    return EXIT_OK


def main(argv: list[str]) -> int:
    return execute(build_parser().parse_args(argv))


if __name__ == "__main__":
    run(PROG, main)
