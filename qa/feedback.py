"""Thumbs up/down with an optional comment on an answer, kept for the compliance team."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, select

from db import Database

FEEDBACK = Table(
    "feedback",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("ts", Text),
    Column("user", Text),
    Column("question", Text),
    Column("answer", Text),
    Column("positive", Integer),
    Column("comment", Text),
    Column("citations", Text),
    Column("prompt_version", Text),
    Column("model", Text),
)


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
    """Feedback in ``path`` (normally ``data_dir / "feedback.sqlite3"``, settings.feedback_path) or a database URL."""

    def __init__(self, path: Path | str) -> None:
        self._db = Database(path, "feedback")

    def add(self, fb: Feedback) -> int:
        with self._db.write() as conn:
            result = conn.execute(
                insert(FEEDBACK).values(
                    ts=datetime.now(UTC).isoformat(timespec="seconds"),
                    user=fb.user,
                    question=fb.question,
                    answer=fb.answer,
                    positive=int(fb.positive),
                    comment=fb.comment,
                    citations=json.dumps(fb.citations, ensure_ascii=False),
                    prompt_version=fb.prompt_version,
                    model=fb.model,
                )
            )
            return int(result.inserted_primary_key[0])

    def recent(self, limit: int = 100) -> list[dict]:
        with self._db.read() as conn:
            rows = conn.execute(select(FEEDBACK).order_by(FEEDBACK.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]
