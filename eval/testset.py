"""Test sets: one ``TestCase`` per line of a JSONL file, or imported from CSV / Excel.

CSV and Excel columns carry the same field names as JSONL. List columns
(``reference_contexts``, ``tags``, ``gold_sources``) hold either JSON or ``;``-separated
values; a gold source written as text is ``file.pdf#2,3`` (pages optional, ``2-4`` ranges
allowed). Every invalid row is reported with its row number, in one error.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import CQAError

MAX_ERRORS_SHOWN = 5


class TestsetError(CQAError):
    """A test set file that cannot be read, with the offending rows."""

    __test__ = False  # not a pytest test class


class GoldSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    """File name of the document (compared by file name, not folder)."""
    pages: list[int] = Field(default_factory=list)
    """Pages that hold the answer; empty means any page of the file."""
    sections: list[str] = Field(default_factory=list)
    """For a page-less document (a law text): the articles that hold the answer, e.g. 第六条."""

    @field_validator("source")
    @classmethod
    def _source_not_empty(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("gold source file name is empty")
        return value


class TestCase(BaseModel):
    """One question of a test set, with what a good answer and good retrieval look like."""

    __test__ = False  # not a pytest test class
    model_config = ConfigDict(extra="forbid")

    id: str
    question: str
    reference_answer: str | None = None
    reference_contexts: list[str] = Field(default_factory=list)
    gold_sources: list[GoldSource] = Field(default_factory=list)
    answerable: bool = True
    tags: list[str] = Field(default_factory=list)
    history: list[dict[str, str]] = Field(default_factory=list)
    """Earlier turns of the conversation ({"role": "user"|"assistant", "content": ...}) for a follow-up."""

    @field_validator("id", "question")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("reference_answer")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _raise_collected(path: Path, errors: list[str], what: str) -> None:
    shown = errors[:MAX_ERRORS_SHOWN]
    more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
    plural = "s" if len(errors) > 1 else ""
    raise TestsetError(f"{path}: {len(errors)} invalid {what}{plural}: {' | '.join(shown)}{more}",
                       key="testset_invalid", params={"name": path.name, "n": len(errors), "detail": shown[0]})


def _check_unique(path: Path, cases: list[TestCase]) -> None:
    seen: set[str] = set()
    dupes = []
    for case in cases:
        if case.id in seen:
            dupes.append(case.id)
        seen.add(case.id)
    if dupes:
        raise TestsetError(f"{path}: duplicate ids: {', '.join(sorted(set(dupes)))}", key="testset_duplicate_ids",
                           params={"name": path.name, "ids": ", ".join(sorted(set(dupes)))})


def load_jsonl(path: Path) -> list[TestCase]:
    cases: list[TestCase] = []
    errors: list[str] = []
    with path.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {lineno}: not JSON ({exc.msg})")
                continue
            try:
                cases.append(TestCase.model_validate(data))
            except ValidationError as exc:
                errors.append(f"line {lineno}: {_describe(exc)}")
    if errors:
        _raise_collected(path, errors, "line")
    return cases


# --- tabular import (CSV / Excel) ---------------------------------------------------------

_TRUE = {"true", "1", "yes", "y", "t", "はい", "可", "○"}
_FALSE = {"false", "0", "no", "n", "f", "いいえ", "不可", "×"}
_COLUMNS = set(TestCase.model_fields)


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _text(value) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _split_list(value) -> list:
    text = _text(value)
    if text is None:
        return []
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"looks like JSON but does not parse ({exc.msg})") from None
        if not isinstance(parsed, list):
            raise ValueError("JSON value must be a list")
        return parsed
    return [part.strip() for part in text.split(";") if part.strip()]


def _parse_pages(text: str) -> list[int]:
    pages: list[int] = []
    for part in text.replace("、", ",").split(","):
        part = part.strip().lstrip("pP.").strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            if hi < lo:
                raise ValueError(f"page range {part!r} runs backwards")
            pages.extend(range(lo, hi + 1))
        else:
            pages.append(int(part))
    return pages


def _gold_sources(value) -> list:
    items = _split_list(value)
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
            continue
        source, _, pages = str(item).partition("#")
        try:
            out.append({"source": source.strip(), "pages": _parse_pages(pages) if pages.strip() else []})
        except ValueError:
            raise ValueError(f"gold source {item!r}: pages must look like 2,3 or 2-4") from None
    return out


def _bool(value) -> bool:
    if _is_blank(value):
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"answerable {value!r} is not true/false")


def cases_from_rows(path: Path, rows: Iterable[dict], first_row: int = 2) -> list[TestCase]:
    """Validate table rows (header names = TestCase fields); ``first_row`` is the sheet row
    number of the first data row, so errors point at what a person sees in Excel."""
    cases: list[TestCase] = []
    errors: list[str] = []
    for n, row in enumerate(rows, start=first_row):
        if all(_is_blank(v) for v in row.values()):
            continue
        try:
            data = {
                "id": _text(row.get("id")) or f"row-{n}",
                "question": _text(row.get("question")) or "",
                "reference_answer": _text(row.get("reference_answer")),
                "reference_contexts": [str(x) for x in _split_list(row.get("reference_contexts"))],
                "gold_sources": _gold_sources(row.get("gold_sources")),
                "answerable": _bool(row.get("answerable")),
                "tags": [str(x) for x in _split_list(row.get("tags"))],
            }
            cases.append(TestCase.model_validate(data))
        except ValidationError as exc:
            errors.append(f"row {n}: {_describe(exc)}")
        except ValueError as exc:
            errors.append(f"row {n}: {exc}")
    if errors:
        _raise_collected(path, errors, "row")
    return cases


def _read_table(path: Path):
    import pandas as pd  # 1 s to import: only for a .csv or .xlsx test set

    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    try:
        return pd.read_excel(path, dtype=str, keep_default_na=False)
    except ImportError as exc:
        raise TestsetError(
            f"{path}: reading Excel files needs openpyxl ({exc}); install it or save the sheet as CSV"
        ) from None


def load_table(path: Path) -> list[TestCase]:
    frame = _read_table(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    unknown = [c for c in frame.columns if c not in _COLUMNS and not c.startswith("#")]
    if unknown:
        raise TestsetError(
            f"{path}: unknown column(s) {', '.join(unknown)} (expected: {', '.join(TestCase.model_fields)})",
            key="testset_columns", params={"name": path.name, "columns": ", ".join(unknown),
                                           "expected": ", ".join(TestCase.model_fields)},
        )
    if "question" not in frame.columns:
        raise TestsetError(f"{path}: a 'question' column is required", key="testset_no_question",
                           params={"name": path.name})
    return cases_from_rows(path, frame.to_dict(orient="records"))


def load_testset(path: str | Path) -> list[TestCase]:
    """Read a test set from .jsonl, .csv or .xlsx; raise TestsetError naming every bad row."""
    path = Path(path)
    if not path.is_file():
        raise TestsetError(f"test set {path} does not exist", key="testset_missing", params={"name": path.name})
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        cases = load_jsonl(path)
    elif suffix in (".csv", ".xlsx", ".xlsm"):
        cases = load_table(path)
    else:
        raise TestsetError(f"{path}: unsupported test set format {suffix!r} (use .jsonl, .csv or .xlsx)")
    if not cases:
        raise TestsetError(f"{path}: the test set is empty", key="testset_empty", params={"name": path.name})
    _check_unique(path, cases)
    return cases


def select_cases(
    cases: list[TestCase], ids: list[str] | None = None, tags: list[str] | None = None, limit: int | None = None
) -> list[TestCase]:
    """Cases in file order: only ``ids`` (all must exist), only those with any of ``tags``,
    then the first ``limit``."""
    selected = cases
    if ids:
        known = {c.id for c in cases}
        missing = [i for i in ids if i not in known]
        if missing:
            raise TestsetError(f"unknown test case id(s): {', '.join(missing)}")
        wanted = set(ids)
        selected = [c for c in selected if c.id in wanted]
    if tags:
        wanted_tags = set(tags)
        selected = [c for c in selected if wanted_tags & set(c.tags)]
    if limit is not None:
        if limit < 1:
            raise ValueError("--limit must be at least 1")
        selected = selected[:limit]
    if not selected:
        raise TestsetError("no test case matches the selection")
    return selected


def write_jsonl(cases: Iterable[TestCase], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(case.model_dump(mode="json"), ensure_ascii=False) + "\n")
    tmp.replace(path)


def obliqa_cases(path: str | Path, document_ids: set[int] | None = None) -> list[TestCase]:
    """ObliQA questions (``ObliQA_dev.json`` in the shared corpus) as test cases whose gold
    passages are reference contexts (hit@k then uses the passage rule); with ``document_ids``
    only questions whose passages all come from those documents."""

    cases = []
    for q in json.loads(Path(path).read_text(encoding="utf-8")):
        passages = q["Passages"] if isinstance(q["Passages"], list) else ast.literal_eval(q["Passages"])
        docs = {int(p["DocumentID"]) for p in passages}
        texts = [p["Passage"] for p in passages if p["Passage"].strip()]
        if not texts or (document_ids is not None and not docs <= document_ids):
            continue
        cases.append(TestCase(id=q["QuestionID"], question=q["Question"], reference_contexts=texts,
                              tags=["obliqa", *(f"doc{d}" for d in sorted(docs))]))
    return cases
