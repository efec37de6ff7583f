"""Read an ``strace -f`` log of a whole process tree and judge where its sockets went.

The egress tests run a journey behind :func:`strace_prefix`, which traces every socket call that can name a
destination (``connect``, ``sendto``, ``sendmsg``, ``sendmmsg``, ``bind``), the calls that start processes and
threads (to count what was followed), and ``io_uring_setup`` (io_uring can connect and send without any of those
calls, so its use alone is reported). :func:`parse` is strict: a line it cannot read, a socket call whose
destination it cannot read, or a call strace itself could not identify (``???``), is a finding, so a trace in an
unexpected format cannot pass for a clean one.

Allowed destinations: AF_UNIX, AF_NETLINK, and loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), except a
local host-name resolver: port 53 on loopback, and the sockets of systemd-resolved and avahi (a resolver forwards
the names it is asked off the machine). nscd's socket is allowed: glibc asks it for user and group entries too
(``pwd.getpwuid``), and the request is not in the trace; on a host without nscd, where the tests run, a host-name
lookup shows as a connect to the DNS server. A send with no
address goes where its socket was connected, and that connect is in the trace; an inbound socket comes from
``accept`` on a socket whose ``bind`` is in the trace.

    python -m tests.syscall_trace TRACE...   prints each trace's summary as JSON
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SOCKET_CALLS = ("connect", "sendto", "sendmsg", "sendmmsg", "bind")
PROCESS_CALLS = ("execve", "clone", "clone3", "fork", "vfork")
TRACED = (*SOCKET_CALLS, *PROCESS_CALLS, "io_uring_setup")
ALLOWED_FAMILIES = {"AF_UNIX", "AF_NETLINK"}
DNS_PORT = 53
NAME_SERVICE_SOCKETS = {
    f'"{path}"'
    for path in ("/run/systemd/resolve/io.systemd.Resolve", "/var/run/avahi-daemon/socket", "/run/avahi-daemon/socket")
}

_LINE = re.compile(r"^(\d+) +(.*)$")
_UNKNOWN = "???"  # strace's name for a call whose number it could not read (e.g. the thread was being killed)
_NAME = rf"(\w+|{re.escape(_UNKNOWN)})"
_RESUMED = re.compile(rf"^<\.\.\. {_NAME} resumed>(.*)$")
_CALL = re.compile(rf"^{_NAME}\((.*)$")
_UNFINISHED = " <unfinished ...>"
_RETURN = re.compile(r"\)\s+=\s+(-?\d+|\?)(?:\s.*)?$")
_INET = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'sin6_port=htons\((\d+)\).*inet_pton\(AF_INET6, "([^"]+)"')
_UNIX = re.compile(r'sun_path=(@?"(?:[^"\\]|\\.)*")')
_FAMILY = re.compile(r"^\{sa_family=(\w+)")
_DNS_HEADER = re.compile(rb"^..\x01\x00\x00\x01\x00\x00\x00\x00\x00[\x00\x01]", re.S)


def strace_prefix(out: Path) -> list[str]:
    """The command to put in front of a journey: follow every fork, thread and exec, write to ``out``."""
    return ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "signal=none", "-e", f"trace={','.join(TRACED)}",
            "-s", "128", "-o", str(out), "--"]


@dataclass(frozen=True)
class Address:
    family: str
    host: str = ""
    port: int | None = None

    def allowed(self) -> bool:
        if self.family in ALLOWED_FAMILIES:
            return self.host not in NAME_SERVICE_SOCKETS
        if self.family not in ("AF_INET", "AF_INET6") or self.port == DNS_PORT:
            return False
        try:
            ip = ipaddress.ip_address(self.host)
        except ValueError:
            return False
        mapped = getattr(ip, "ipv4_mapped", None)
        return ip.is_loopback or (mapped is not None and mapped.is_loopback)

    def __str__(self) -> str:
        if self.family == "AF_INET6":
            return f"[{self.host}]:{self.port}"
        if self.family == "AF_INET":
            return f"{self.host}:{self.port}"
        return f"{self.family} {self.host}".strip()


@dataclass
class Trace:
    calls: Counter = field(default_factory=Counter)
    """Completed calls by name."""
    addresses: Counter = field(default_factory=Counter)
    """(call, address) -> times, for every socket call that named an address."""
    findings: list[str] = field(default_factory=list)
    """Trace lines that break the rule or could not be read."""
    processes: int = 0
    threads: int = 0
    programs: Counter = field(default_factory=Counter)
    """Successful execve by program file name (``python``, ``chromium``...) and, for Python, its mode."""
    dns_names: Counter = field(default_factory=Counter)
    """Names in DNS queries the traced processes sent (read from the payloads strace printed)."""

    def offending(self) -> list[str]:
        return list(self.findings)

    def loopback_ports(self, call: str = "connect") -> set[int]:
        return {a.port for (c, a) in self.addresses if c == call and a.family.startswith("AF_INET") and a.allowed()}

    def binds(self) -> list[Address]:
        """Local addresses sockets were bound to (where a server listens, or a client's own end)."""
        return [a for (c, a) in self.addresses if c == "bind"]

    def summary(self) -> dict:
        destinations, bound = Counter(), Counter()
        for (call, address), times in self.addresses.items():
            if call == "bind":
                bound[address.host if address.host else address.family] += times
            else:
                destinations[str(address)] += times
        return {
            "socket_calls": {c: self.calls[c] for c in SOCKET_CALLS if self.calls[c]},
            "processes": self.processes,
            "threads": self.threads,
            "programs": dict(self.programs),
            "destinations": dict(sorted(destinations.items())),
            "bound": dict(sorted(bound.items())),
            "dns_names": dict(self.dns_names),
            "findings": len(self.findings),
        }


def _sockaddrs(text: str) -> list[str]:
    """The ``{sa_family=...}`` structures in a call's text, outside quoted strings."""
    found, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i = _skip_string(text, i)
            continue
        if text.startswith("{sa_family=", i):
            depth, j = 0, i
            while j < n:
                if text[j] == '"':
                    j = _skip_string(text, j)
                    continue
                depth += text[j] == "{"
                depth -= text[j] == "}"
                j += 1
                if depth == 0:
                    break
            found.append(text[i:j])
            i = j
            continue
        i += 1
    return found


def _skip_string(text: str, i: int) -> int:
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == '"':
            return j + 1
        j += 1
    return j


def _address(sockaddr: str) -> Address | None:
    family = _FAMILY.match(sockaddr)
    if family is None:
        return None
    name = family.group(1)
    if name == "AF_INET":
        m = _INET.search(sockaddr)
        return Address(name, m.group(2), int(m.group(1))) if m else None
    if name == "AF_INET6":
        m = _INET6.search(sockaddr)
        return Address(name, m.group(2), int(m.group(1))) if m else None
    if name == "AF_UNIX":
        m = _UNIX.search(sockaddr)
        return Address(name, m.group(1) if m else "(unnamed)")
    return Address(name)


def _c_bytes(literal: str) -> bytes:
    """strace's quoted string (C escapes) as bytes."""
    out, i, body = bytearray(), 0, literal[1:-1]
    simple = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "\\": 92, '"': 34}
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
        elif body[i + 1] in simple:
            out.append(simple[body[i + 1]])
            i += 2
        elif body[i + 1] == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            out.append(int(m.group(0), 8) & 0xFF)
            i += 1 + len(m.group(0))
    return bytes(out)


def _dns_name(payload: bytes) -> str | None:
    if not _DNS_HEADER.match(payload):
        return None
    labels, i = [], 12
    while i < len(payload) and payload[i]:
        size = payload[i]
        labels.append(payload[i + 1 : i + 1 + size].decode("ascii", "replace"))
        i += 1 + size
    return ".".join(labels) or None


def _judge(trace: Trace, name: str, text: str, pid: int) -> None:
    line = f"{pid} {text}"
    ret = _RETURN.search(text)
    if ret is None:
        trace.findings.append(f"unparsed (no return value): {line}")
        return
    trace.calls[name] += 1
    result = ret.group(1)
    if name == _UNKNOWN:
        trace.findings.append(f"unidentified call (strace could not tell which, nor its arguments): {line}")
        return
    if name == "io_uring_setup":
        trace.findings.append(f"io_uring (sockets it drives are invisible to this trace): {line}")
        return
    if name in PROCESS_CALLS:
        if result in ("?", "-1"):
            return
        if name == "execve":
            program = re.match(r'\w+\("([^"]*)"', text)
            base = program.group(1).rsplit("/", 1)[-1] if program else "?"
            if base.startswith("python") and "multiprocessing" in text:
                base += " (multiprocessing " + ("worker" if "spawn" in text else "helper") + ")"
            trace.programs[base] += 1
        elif name in ("clone", "clone3") and "CLONE_THREAD" in text:
            trace.threads += 1
        else:
            trace.processes += 1
        return
    sockaddrs = _sockaddrs(text)
    addresses = [_address(s) for s in sockaddrs]
    if any(a is None for a in addresses):
        trace.findings.append(f"unparsed address: {line}")
        return
    if name in ("connect", "bind") and len(addresses) != 1:
        trace.findings.append(f"unparsed ({name} without one address): {line}")
        return
    if name == "sendto" and not addresses and not re.search(r", NULL, 0\)\s+=", text):
        trace.findings.append(f"unparsed (sendto destination): {line}")
        return
    if name in ("sendmsg", "sendmmsg"):
        names = len(re.findall(r"msg_name=", _strip_strings(text)))
        nulls = len(re.findall(r"msg_name=NULL", _strip_strings(text)))
        if names == 0 or names != nulls + len(addresses):
            trace.findings.append(f"unparsed ({name} destination): {line}")
            return
    for address in addresses:
        trace.addresses[(name, address)] += 1
        if name != "bind" and not address.allowed():  # a bind names no destination (binds() lists them)
            trace.findings.append(f"{name} to {address}: {line}")
    if name != "bind":
        for literal in re.findall(r'"(?:[^"\\]|\\.)*"', text):
            dns = _dns_name(_c_bytes(literal))
            if dns:
                trace.dns_names[dns] += 1


def _strip_strings(text: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def parse(lines) -> Trace:
    """Judge every line of an ``strace -f`` log (see the module docstring)."""
    trace, pending = Trace(), {}
    first = True
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            trace.findings.append(f"unparsed: {line}")
            continue
        pid, body = int(m.group(1)), m.group(2)
        if first:
            trace.processes, first = 1, False  # the journey's own first process
        if body.startswith(("+++ ", "--- ")):
            continue  # an exit or a signal
        resumed = _RESUMED.match(body)
        if resumed:
            head = pending.pop(pid, None)
            if head is None or head[0] != resumed.group(1):
                trace.findings.append(f"unparsed (resumed without its start): {line}")
                continue
            _judge(trace, head[0], head[1] + resumed.group(2), pid)
            continue
        call = _CALL.match(body)
        if call is None or call.group(1) not in (*TRACED, _UNKNOWN):
            trace.findings.append(f"unparsed: {line}")
            continue
        if body.endswith(_UNFINISHED):
            pending[pid] = (call.group(1), body[: -len(_UNFINISHED)])  # judged when it resumes
            continue
        _judge(trace, call.group(1), body, pid)
    for pid, (name, head) in pending.items():  # killed in the call: judge what it was asked to do
        _judge(trace, name, head + ") = ?", pid)
    return trace


def parse_file(path: Path) -> Trace:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse(fh)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps({"trace": arg, **parse_file(Path(arg)).summary()}, ensure_ascii=False))
