"""Ingest the hostile corpus in one batch over an existing data dir, in a process of its own, and measure its
memory: ``python tests/hostile_ingest_probe.py DATA_DIR FILE...`` prints one JSON line with the report and
the resident set sizes (MB) before the batch, at the process's peak, and the peak of its read-ahead workers.

The models are loaded and every reader imported before the "before" figure, so the growth measured is what
the batch itself costs."""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    """This process's resident set now (ru_maxrss is only the peak)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident set since it started (VmHWM). Not ru_maxrss: Linux carries that over from
    the process that forked this one (a pytest holding a model reads as a 3 GB peak here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    sys.path.insert(0, str(REPO))
    import core.offline  # noqa: F401
    from settings import load_settings
    from wiring import Container

    data_dir, files = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
    container = Container(load_settings(data_dir=data_dir))
    service = container.ingest
    service.embedder.embed_passages(["準備", "warm-up"])  # load the embedder before measuring
    import bs4  # noqa: F401
    import docx  # noqa: F401
    import pypdf  # noqa: F401

    before = rss_mb()
    started = time.perf_counter()
    report = service.ingest(files, actor="hostile-probe")
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    container.close()
    deadline = time.monotonic() + 15
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({
        "report": report.model_dump(mode="json"), "seconds": round(seconds, 2), "rss_before_mb": round(before),
        "peak_mb": round(peak), "workers_peak_mb": round(workers_peak),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
