"""The audit log's head anchor: its latest (record id, hash), kept outside the database.

The hash chain inside ``audit.sqlite3`` detects an edited or deleted record, but someone who
can write the file can also drop the triggers, cut off the last records and set the ``head``
table back, or rewrite the chain from some record on. The anchor is the part they cannot
reach from the database: every append also appends one line to this file, **before** the
record is committed and while the log's write lock is held::

    {"hash":"<sha256 of record 1041>","seq":1041,"ts":"2025-04-01T09:30:00.123456Z"}

``python -m audit verify`` then requires, besides an intact chain, that the lines are
consecutive (one per record, none missing, none going back), that every line names a record
that is in the log with that hash (records removed by retention excepted), and that the last
line names the log's last record. So a deleted tail, a rewritten chain or records added with a
SQL tool are reported, and a missing anchor file is an error as soon as the log has records.

With a key (``security.audit_anchor_key``, from the environment, not from the data dir) each
line also carries ``"mac"``: HMAC-SHA256 of the line without it, so the lines cannot be forged
by someone who can write the file but does not hold the key. An append-only location (a
``chattr +a`` file, a WORM share, another host's mount) keeps them from cutting the file back
to an older line; docs/security.md says where the file should go.

``python -m audit anchor --init`` starts the anchor of a log that has none (a log from before
anchors, or after an investigated incident): it appends an audited ``anchor`` record and an
``"init": true`` line for it. Verification starts at the last such line; earlier lines stay in
the file as evidence.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ANCHOR_FILE_NAME = "audit-anchor.jsonl"
MIN_KEY_CHARS = 32
_LINE_RE = re.compile(  # encode()'s output: canonical JSON, keys sorted
    rb'\{"hash":"(?P<hash>[0-9a-f]{64})",(?P<init>"init":true,)?(?P<macpart>"mac":"(?P<mac>[0-9a-f]{64})",)?'
    rb'"seq":(?P<seq>[1-9][0-9]{0,17}),"ts":"(?P<ts>[0-9TZ:.+-]{1,40})"\}\n'
)
_INIT_MARK = b'"init":true'
_TAIL_BYTES = 4096


class AnchorError(Exception):
    """The anchor file cannot be read as a valid anchor (``line`` is 1-based, or None)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line


@dataclass(frozen=True)
class AnchorLine:
    seq: int
    hash: str
    ts: str
    init: bool
    signed: bool
    line: int
    """1-based line number in the file (0 when read from the tail, where lines are not counted)."""


def _payload(entry: dict) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode("ascii")


class HeadAnchor:
    """The anchor file at ``path``; ``key`` (at least 32 characters) signs and checks the lines."""

    def __init__(self, path: Path | str, key: str | bytes | None = None) -> None:
        self.path = Path(path)
        if isinstance(key, str):
            key = key.encode("utf-8")
        if key is not None and len(key) == 0:
            key = None
        if key is not None and len(key) < MIN_KEY_CHARS:
            raise ValueError(f"the audit anchor key must have at least {MIN_KEY_CHARS} characters")
        self._key = key

    @property
    def signed(self) -> bool:
        return self._key is not None

    # ----------------------------------------------------------------- writing

    def _mac(self, entry: dict) -> str:
        assert self._key is not None
        return hmac.new(self._key, _payload(entry), hashlib.sha256).hexdigest()

    def encode(self, seq: int, digest: str, ts: str, *, init: bool = False) -> bytes:
        entry: dict = {"seq": seq, "hash": digest, "ts": ts}
        if init:
            entry["init"] = True
        if self._key is not None:
            entry["mac"] = self._mac(entry)
        return _payload(entry) + b"\n"

    def write(self, seq: int, digest: str, ts: str, *, init: bool = False) -> None:
        """Append the line for record ``seq`` and fsync it (the caller holds the log's write lock)."""
        self.write_lines([self.encode(seq, digest, ts, init=init)])

    def write_lines(self, lines: Iterable[bytes]) -> None:
        """Append already encoded lines with one fsync (bulk loads, e.g. the benchmark's fill)."""
        # O_APPEND only: works on a chattr +a file; no O_TRUNC, ever. The directory must exist
        # (a missing mount should fail loudly, not be created on the wrong disk).
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            buf = bytearray()
            for line in lines:
                buf += line
                if len(buf) >= 1 << 20:
                    _write_all(fd, bytes(buf))
                    buf.clear()
            if buf:
                _write_all(fd, bytes(buf))
            os.fsync(fd)
        finally:
            os.close(fd)

    # ----------------------------------------------------------------- reading

    def size(self) -> int:
        """Bytes in the file (0 when there is none)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _parse(self, raw: bytes, line: int = 0) -> AnchorLine:
        if not raw.endswith(b"\n"):
            raise AnchorError("the line is incomplete (cut off while being written, or the file was edited)", line)
        match = _LINE_RE.fullmatch(raw)  # exactly what encode() writes, nothing else
        if match is None:
            raise AnchorError("not a valid anchor line (the file was edited)", line)
        mac = match["mac"]
        if self._key is not None:
            if mac is None:
                raise AnchorError(
                    "the line is not signed, but an anchor key is configured (written before the key was set, "
                    "or forged)", line,
                )
            signed_part = raw[: match.start("macpart")] + raw[match.end("macpart"): -1]
            expected = hmac.new(self._key, signed_part, hashlib.sha256).hexdigest().encode("ascii")
            if not hmac.compare_digest(mac, expected):
                raise AnchorError("the line's signature does not match (forged, or signed with another key)", line)
        elif mac is not None:
            raise AnchorError(
                "the line is signed, but no anchor key is configured here (set CQA_SECURITY__AUDIT_ANCHOR_KEY "
                "as for the app)", line,
            )
        return AnchorLine(
            int(match["seq"]), match["hash"].decode("ascii"), match["ts"].decode("ascii"),
            match["init"] is not None, mac is not None, line,
        )

    def _start(self, limit: int) -> tuple[int, int]:
        """(byte offset, line number) of the last ``init`` line within the first ``limit`` bytes,
        or (0, 1) when there is none (every init line found on the way must be valid)."""
        start, start_line = 0, 1
        offset = 0
        with open(self.path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if offset + len(raw) > limit:
                    break
                if _INIT_MARK in raw:
                    self._parse(raw, number)  # a forged init line is an error, not a new start
                    start, start_line = offset, number
                offset += len(raw)
        return start, start_line

    def lines(self, limit: int | None = None) -> Iterator[AnchorLine]:
        """The lines from the last ``init`` line on, within the first ``limit`` bytes, checked:
        well formed, signed when a key is set, and consecutive (each the record after the last).
        Raises :class:`AnchorError` at the first bad line."""
        limit = self.size() if limit is None else limit
        if limit == 0:
            return
        start, number = self._start(limit)
        previous: AnchorLine | None = None
        offset = start
        with open(self.path, "rb") as fh:
            fh.seek(start)
            for raw in fh:
                if offset + len(raw) > limit:
                    break
                offset += len(raw)
                entry = self._parse(raw, number)
                if previous is None:
                    if not entry.init and entry.seq != 1:
                        raise AnchorError(
                            f"the anchor begins at record {entry.seq} without an init line (the file was removed "
                            "and started again, or the log predates anchors: python -m audit anchor --init)",
                            number,
                        )
                elif entry.init:
                    raise AnchorError("a second init line after the last one", number)  # cannot happen: _start
                elif entry.seq != previous.seq + 1:
                    if entry.seq <= previous.seq:
                        raise AnchorError(
                            f"record {entry.seq} follows record {previous.seq}: the log was cut back and written "
                            "again (or the app stopped between anchoring a record and committing it)",
                            number,
                        )
                    raise AnchorError(
                        f"record(s) {span(previous.seq + 1, entry.seq - 1)} were never anchored "
                        "(added outside the log API, or by a process with another anchor path)",
                        number,
                    )
                yield entry
                previous = entry
                number += 1

    def last(self, limit: int | None = None) -> AnchorLine | None:
        """The last complete line within the first ``limit`` bytes (checked, not counted), or None."""
        limit = self.size() if limit is None else limit
        if limit == 0:
            return None
        with open(self.path, "rb") as fh:
            start = max(0, limit - _TAIL_BYTES)
            fh.seek(start)
            tail = fh.read(limit - start)
        if not tail.endswith(b"\n"):
            raise AnchorError("the last line is incomplete (cut off while being written, or the file was edited)")
        body = tail[:-1]
        cut = body.rfind(b"\n")
        if cut < 0 and start > 0:
            raise AnchorError("the last line is too long (the file was edited)")
        return self._parse(body[cut + 1:] + b"\n")


def span(first: int, last: int) -> str:
    """``"7"`` or ``"7..9"``: a run of record ids for messages."""
    return f"{first}" if first == last else f"{first}..{last}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


__all__ = ["ANCHOR_FILE_NAME", "MIN_KEY_CHARS", "AnchorError", "AnchorLine", "HeadAnchor", "span"]
