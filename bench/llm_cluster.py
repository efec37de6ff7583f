"""Real LLM servers behind HAProxy on loopback: ``llama_cpp.server`` processes with the given GGUF and
Debian's haproxy running deploy/haproxy.cfg (the operations guide's file), for the failover test and the
load test. Everything started here is stopped when the ``with`` block ends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.localhost import free_port, wait_http

REPO = Path(__file__).resolve().parents[1]
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"
SERVER_NAMES = ("llm1", "llm2")
"""The server lines of deploy/haproxy.cfg."""


@dataclass
class LLMServer:
    name: str
    port: int
    process: subprocess.Popen

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def busy(self, probe_seconds: float = 0.5) -> bool:
        """True while the server writes an answer: llama_cpp.server's /v1/models waits for the model lock."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models", timeout=probe_seconds):
                return False
        except TimeoutError:
            return True
        except OSError as exc:
            return isinstance(getattr(exc, "reason", None), TimeoutError)

    def kill(self) -> None:
        """Gone at once, as a crashed host would be (SIGKILL, no goodbye to open connections)."""
        self.process.kill()
        self.process.wait(timeout=30)


@dataclass
class LLMCluster:
    url: str
    """The balancer's OpenAI base URL (what ``llm.http_url`` points at)."""
    servers: list[LLMServer]
    balancer: subprocess.Popen

    @property
    def pids(self) -> dict[str, int]:
        return {s.name: s.process.pid for s in self.servers} | {"haproxy": self.balancer.pid}

    def busy_server(self, timeout: float = 60.0) -> LLMServer:
        """The first server found writing an answer (waits up to ``timeout`` seconds for one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for server in self.servers:
                if server.alive and server.busy():
                    return server
        raise TimeoutError(f"no LLM server became busy within {timeout} s")


def haproxy_path() -> str | None:
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/sbin/haproxy") if os.access(p, os.X_OK)), None
    )


def stop_process(proc: subprocess.Popen) -> None:
    """Stop ``proc`` (SIGTERM; SIGKILL after 30 s); also the app replicas' balancer (tests/e2e/test_replicas.py)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextmanager
def llm_cluster(model_path: Path, slots: int = 1, n_ctx: int = 4096, n_threads: int = 1,
                log_dir: Path | None = None) -> Iterator[LLMCluster]:
    """Two llama_cpp.server processes (``slots`` must be 1: it runs one request at a time) behind haproxy."""
    haproxy = haproxy_path()
    if haproxy is None:
        raise RuntimeError("haproxy is not installed: run `make balancer` (Debian's haproxy package)")
    with ExitStack() as stack:
        servers = []
        for name in SERVER_NAMES:
            port = free_port()
            out = open(log_dir / f"{name}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
            if log_dir:
                stack.callback(out.close)
            proc = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", "local",
                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(n_threads),
                 "--interrupt_requests", "false", "--verbose", "false"],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            )
            stack.callback(stop_process, proc)
            servers.append(LLMServer(name, port, proc))
        bind = f"127.0.0.1:{free_port()}"
        env = {**os.environ, "LB_BIND": bind, "LB_LLM_SLOTS": str(slots)}
        env.update({f"LB_{server.name.upper()}": f"127.0.0.1:{server.port}" for server in servers})
        for server in servers:
            wait_http(f"http://127.0.0.1:{server.port}/v1/models", timeout=180, proc=server.process)
        out = open(log_dir / "haproxy.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        if log_dir:
            stack.callback(out.close)
        balancer = subprocess.Popen([haproxy, "-db", "-f", str(HAPROXY_CFG)], env=env, cwd=REPO,
                                    stdout=out, stderr=subprocess.STDOUT)
        stack.callback(stop_process, balancer)
        wait_http(f"http://{bind}/v1/models", timeout=30, proc=balancer)
        time.sleep(2.5)  # the first health checks (rise 2, every second) mark both servers up
        yield LLMCluster(f"http://{bind}/v1", servers, balancer)
