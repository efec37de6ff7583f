"""A throwaway PostgreSQL server for the state tests: Debian's binaries (``make postgres``), a cluster in a
temporary directory, listening on 127.0.0.1 at a free port and on a unix socket in that directory, trust
authentication on loopback only; stopped and removed at the end.

PostgreSQL refuses to run as root: when the tests run as root, the server runs as the ``postgres`` user that
Debian's package creates (``runuser``); otherwise as the current user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 30


def postgres_bin() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``, or None."""
    if not PG_ROOT.is_dir():
        return None
    versions = sorted((p for p in PG_ROOT.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
    for version in versions:
        if (version / "bin" / "initdb").is_file() and (version / "bin" / "pg_ctl").is_file():
            return version / "bin"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str]) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=START_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


class PostgresServer:
    """A running throwaway server; :meth:`new_database` gives each test its own empty database."""

    def __init__(self, bin_dir: Path, base: Path, port: int) -> None:
        self.bin_dir, self.base, self.port = bin_dir, base, port
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database on this server."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server (initdb, pg_ctl start -w), yield it, stop it (pg_ctl stop -m immediate) and remove its files."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (make postgres)")
    base = Path(tempfile.mkdtemp(prefix="cqa-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data = base / "data"
    port = _free_port()
    _run([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres" if os.geteuid() == 0
          else pwd.getpwuid(os.geteuid()).pw_name, "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
    try:
        _run([str(bin_dir / "pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(data),
              "-l", str(base / "server.log"), "-o", options])
        try:
            yield PostgresServer(bin_dir, base, port)
        finally:
            _run([str(bin_dir / "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", str(data)])
    finally:
        shutil.rmtree(base, ignore_errors=True)
