"""First run: ingest the sample documents when the store is empty (re-runs do nothing)."""

from __future__ import annotations

from pathlib import Path

from core.cli import ArgumentParser, run
from wiring import open_container

PROG = "python -m scripts.first_run"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def main(argv: list[str]) -> int:
    ArgumentParser(prog=PROG, description=__doc__).parse_args(argv)
    container = open_container(store_wait_seconds=5.0)
    try:
        if container.registry.active():
            print(f"==> store already holds {len(container.registry.active())} documents: nothing to ingest")
            return 0
        files = sorted([*SAMPLES.glob("*.pdf"), *SAMPLES.glob("*.md")])
        files = [f for f in files if f.name != "README.md"]

        def progress(p) -> None:
            if p.stage in ("done", "failed"):
                print(f"    [{p.file_index + 1}/{p.file_count}] {Path(p.path).name}: {p.stage}")

        report = container.ingest.ingest(files, progress=progress)
        for d in report.documents:
            if d.status == "failed":
                print(f"    failed: {d.path}: {d.error}")
        print(f"==> ingested {len(files)} sample documents in {report.seconds:.1f} s")
        return 1 if report.failed else 0
    finally:
        container.close()


if __name__ == "__main__":
    run(PROG, main)
