"""Peak resident memory of a benchmarked call: this process plus its worker processes, sampled every 20 ms.
Not tracemalloc: that slows pure-Python code (pypdf) and does not see workers."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path


def rss_mib(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # a worker that just exited
        pass
    return 0.0


class PeakRss(threading.Thread):
    """Start it, run the call, ``stop()``: the growth of the peak over the start, in MiB."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.start_mib = self.peak_mib = rss_mib()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            total = rss_mib() + sum(rss_mib(p.pid) for p in multiprocessing.active_children())
            self.peak_mib = max(self.peak_mib, total)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_mib - self.start_mib
