"""Thumbs up/down with an optional comment on an answer, kept for the compliance team."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Feedback:
    user: str
    question: str
    answer: str
    positive: bool
    comment: str
    citations: list[dict]
    prompt_version: str
    model: str


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, ts TEXT, user TEXT, question TEXT, "
                "answer TEXT, positive INTEGER, comment TEXT, citations TEXT, prompt_version TEXT, model TEXT)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30)

    def add(self, fb: Feedback) -> int:
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO feedback (ts, user, question, answer, positive, comment, citations, prompt_version, model)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    fb.user,
                    fb.question,
                    fb.answer,
                    int(fb.positive),
                    fb.comment,
                    json.dumps(fb.citations, ensure_ascii=False),
                    fb.prompt_version,
                    fb.model,
                ),
            )
            return int(cur.lastrowid)

    def recent(self, limit: int = 100) -> list[dict]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM feedback ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]
