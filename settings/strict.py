"""Unknown settings are errors: a mistyped key in a settings file or a mistyped ``CQA_*`` variable would
otherwise be dropped without a word and its default used (``CQA_MODEL__PRESET=judge-1.5b`` ran the dev model)."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel

PREFIX = "CQA_"
COMMAND_VARIABLES = frozenset({"CQA_SETTINGS_FILE", "CQA_EVAL_JUDGE_MODEL_PATH", "CQA_OIDC_DIR"})
"""``CQA_*`` variables that are not settings: read by the settings loader itself, a command or the tests."""


def _submodel(annotation: object) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def unknown_keys(data: Mapping, model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted keys of ``data`` (a settings file's tables) that no field of ``model`` takes."""
    bad = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            bad.append(prefix + key)
        elif isinstance(value, Mapping) and (sub := _submodel(field.annotation)) is not None:
            bad += unknown_keys(value, sub, f"{prefix}{key}.")
    return bad


def setting_path(variable: str, model: type[BaseModel]) -> str | None:
    """``CQA_LLM__HTTP_URL`` -> ``llm.http_url`` when that field exists, else None."""
    if not variable.upper().startswith(PREFIX):
        return None
    parts = variable[len(PREFIX):].lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        if i == len(parts) - 1:
            return ".".join(parts)
        sub = _submodel(field.annotation)
        if sub is None:
            return None
        model = sub
    return None


def _variables(model: type[BaseModel], prefix: str = PREFIX) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        out.append(f"{prefix}{name.upper()}")
        if (sub := _submodel(field.annotation)) is not None:
            out += _variables(sub, f"{prefix}{name.upper()}__")
    return out


def check_environment(environ: Mapping[str, str], model: type[BaseModel]) -> None:
    unknown = sorted(v for v in environ if v.upper().startswith(PREFIX) and v.upper() not in COMMAND_VARIABLES
                     and setting_path(v, model) is None)
    if unknown:
        known = _variables(model)
        hints = [f"{v}" + "".join(f" (did you mean {m}?)" for m in difflib.get_close_matches(v.upper(), known, 1))
                 for v in unknown]
        raise ValueError(f"unknown setting variable: {', '.join(hints)}")


def check_files(files: Iterable[Path], model: type[BaseModel]) -> None:
    for path in files:
        with path.open("rb") as fh:
            unknown = unknown_keys(tomllib.load(fh), model)
        if unknown:
            raise ValueError(f"unknown setting {', '.join(repr(k) for k in unknown)} in {path}")
