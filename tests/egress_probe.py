"""Run a module under a socket audit hook that records every outbound attempt.

    python tests/egress_probe.py LOG -m MODULE [ARGS...]

Each connection attempt to a non-loopback address, and each name lookup of a host that is
not localhost, is appended to LOG as one line. Loopback traffic is allowed (Streamlit's own
server, a local Qdrant or LLM server)."""

import ipaddress
import runpy
import sys

LOG = sys.argv[1]
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    if host in LOCAL_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return addr.is_loopback or addr.is_unspecified


def _record(line: str) -> None:
    with open(LOG, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def hook(event: str, args) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            _record(f"connect {address!r}")
    elif event == "socket.getaddrinfo":
        if not _is_loopback(args[0]):
            _record(f"getaddrinfo {args[0]!r}")
    elif event == "socket.gethostbyname":
        if not _is_loopback(args[0]):
            _record(f"gethostbyname {args[0]!r}")


sys.addaudithook(hook)
assert sys.argv[2] == "-m", "usage: egress_probe.py LOG -m MODULE [ARGS...]"
module = sys.argv[3]
sys.argv = [module, *sys.argv[4:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
