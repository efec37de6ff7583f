"""`make doctor`: check the environment and say what to fix."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

from core.cli import ArgumentParser, run
from llm.chat import GenerationOptions, complete
from llm.model_files import verify_file
from llm.presets import Sampling, get_preset
from wiring import open_container

PROG = "python -m scripts.doctor"
Check = tuple[str, Callable[[], str]]


def _python() -> str:
    if sys.version_info[:2] != (3, 11):
        raise RuntimeError(f"Python {sys.version.split()[0]}: use Python 3.11")
    return sys.version.split()[0]


def _disk(settings) -> str:
    free = shutil.disk_usage(settings.data_dir if settings.data_dir.exists() else ".").free / 2**30
    if free < 2:
        raise RuntimeError(f"only {free:.1f} GiB free: free some disk for the store and model cache")
    return f"{free:.0f} GiB free"


def _model(settings) -> str:
    preset = get_preset(settings.llm.preset)
    if settings.llm.model_path:
        if not settings.llm.model_path.is_file():
            raise RuntimeError(f"{settings.llm.model_path} does not exist: fix CQA_LLM__MODEL_PATH")
        return f"{settings.llm.model_path} (configured)"
    if preset.packaged is None:
        raise RuntimeError(f"preset {preset.name} needs CQA_LLM__MODEL_PATH")
    path = settings.model_dir / preset.packaged.file_name
    if not path.is_file():
        raise RuntimeError(f"{path} missing: run `python -m llm assemble`")
    verify_file(path, preset.packaged.sha256)
    return f"{path.name} sha256 ok"


def _store(container) -> str:
    return f"{container.store.count(None)} chunks, {len(container.registry.active())} active documents"


def _llm_loads(container) -> str:
    model = container.chat_model()
    text = complete(model, [{"role": "user", "content": "Say OK."}],
                    GenerationOptions(max_tokens=4, sampling=Sampling(temperature=0.0, top_p=1.0, top_k=1)))
    return f"{model.name} answered {text.strip()[:20]!r}"


def main(argv: list[str]) -> int:
    ArgumentParser(prog=PROG, description=__doc__).parse_args(argv)

    container = open_container(store_wait_seconds=2.0)
    settings = container.settings
    checks: list[Check] = [
        ("python", _python),
        ("disk", lambda: _disk(settings)),
        ("model file", lambda: _model(settings)),
        ("store", lambda: _store(container)),
        ("llm loads", lambda: _llm_loads(container)),
    ]
    failed = 0
    for name, check in checks:
        try:
            print(f"ok    {name:12} {check()}")
        except Exception as exc:  # every failure is reported, then the next check runs
            failed += 1
            print(f"FAIL  {name:12} {exc}")
    container.close()
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    run(PROG, main)
