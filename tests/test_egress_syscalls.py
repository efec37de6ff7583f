"""Zero egress at the OS level: a syscall trace of each journey's whole process tree, and the journeys run in a
network namespace that has only loopback.

The socket audit hook (tests/egress_probe.py) sees only Python-level socket calls. Here ``strace -f`` follows
every process and thread a journey starts (read-ahead workers, llama.cpp's and the embedder's native threads,
git) and records every ``connect``, ``sendto``, ``sendmsg``, ``sendmmsg`` and ``bind`` with its address
(tests/syscall_trace.py judges them: only AF_UNIX, netlink and loopback). The journeys: an ingest of several PDFs
with read-ahead workers (once more with the sentence-transformers embedder on torch), a question, an evaluation
run with the local judge, and the app served, signed into in Chromium and asked a question. Chromium itself is
traced apart and not judged (see ``test_the_app_serves_a_signed_in_page_over_loopback_only``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import CORPUS, EN_MD, JA_PDF, SAMPLES
from tests.e2e.conftest import CHROMIUM, PASSWORD
from tests.helpers import REPO, cli_env
from tests.syscall_trace import parse, parse_file, strace_prefix

QUESTION = "口座開設時の本人確認書類は？"
CORPUS_PDFS = ("ja/fsa_amlcft/211122_amlcft_guidelines.pdf", "ja/fsa_jsda_samples/jpx_public_comments/content.pdf")
NETNS = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "netns"]
FIGURES = REPO / "test-output" / "egress"


def _works(cmd: list[str]) -> str | None:
    """None when ``cmd`` runs, else why not."""
    if shutil.which(cmd[0]) is None:
        return f"{cmd[0]} is not installed (`make test` installs it with apt)"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return None if proc.returncode == 0 else f"{' '.join(cmd)} failed here: {proc.stderr.strip()[-300:]}"


def _need(cmd: list[str]) -> None:
    why = _works(cmd)
    if why:
        pytest.skip(why)


def _need_strace() -> None:
    _need(["strace", "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "--", "true"])


def _need_netns() -> None:
    _need(["ip", "-V"])
    _need([*NETNS, "true"])


def ingest_files() -> list[Path]:
    """Real PDFs (the corpus ones when present: 35 and 2 pages) and a Markdown file: more than one file, so the
    ingest reads the next ones ahead in its worker processes, a long PDF in page ranges."""
    corpus = [CORPUS / p for p in CORPUS_PDFS if (CORPUS / p).exists()]
    return [JA_PDF, *(corpus or [SAMPLES / "editions" / "ja_account_opening_manual_v2.pdf"]), EN_MD]


def journeys(data: Path) -> list[tuple[str, list[str], str | None, dict[str, str]]]:
    """(name, command, stdin, environment) of each CLI journey, in order, on the data dir ``data``."""
    py = sys.executable
    torch = {"CQA_DATA_DIR": str(data.with_name("data-torch")), "CQA_EMBEDDING__BACKEND": "sentence-transformers"}
    return [
        ("admin user", [py, "-m", "auth", "add", "admin1", "--role", "admin", "--password-stdin", "--no-must-change"],
         PASSWORD + "\n", {}),
        ("staff user", [py, "-m", "auth", "add", "staff1", "--role", "staff", "--password-stdin", "--no-must-change"],
         PASSWORD + "\n", {}),
        ("ingest", [py, "-m", "ingest", *map(str, ingest_files()), "--json"], None, {}),
        # the production profile's embedder family: sentence-transformers on torch (the packaged MiniLM), own store
        ("ingest, torch embedder", [py, "-m", "ingest", str(JA_PDF), str(EN_MD), "--json"], None, torch),
        ("question", [py, "-m", "qa", QUESTION, "--json"], None, {}),
        ("evaluation", [py, "-m", "eval", "run", "eval/testsets/sample.jsonl", "--ids", "ja-001", "--judge", "dev",
                        "--metrics", "answer_relevancy,ours", "--judge-max-tokens", "64",
                        "--judge-context-tokens", "200", "--ja-prompts", "fixed", "--json"], None, {}),
    ]


def run(cmd: list[str], data: Path, stdin: str | None = None, timeout: int = 600, **env: str):
    return subprocess.run(cmd, cwd=REPO, env=cli_env(data, **env), input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def check_outputs(results: dict[str, subprocess.CompletedProcess]) -> None:
    """Each journey did its work (not merely exited)."""
    for name, proc in results.items():
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    for name, files in (("ingest", len(ingest_files())), ("ingest, torch embedder", 2)):
        report = json.loads(results[name].stdout)
        assert len(report["documents"]) == files, report
        assert all(d["error"] is None and d["chunks"] > 0 for d in report["documents"]), report
    answer = json.loads(results["question"].stdout)
    assert answer["answer"].strip() and not answer["refused"], answer
    summary = json.loads(results["evaluation"].stdout.strip().splitlines()[-1])
    assert summary["samples"] == 1, summary


def app_journey(prefix: list[str], data: Path, server_prefix: list[str] = (), browser_prefix: list[str] = ()):
    import shlex

    cmd = [*prefix, sys.executable, "tests/egress_app_journey.py", "staff1", QUESTION,
           "--server-prefix", shlex.join(server_prefix), "--browser-prefix", shlex.join(browser_prefix)]
    proc = run(cmd, data, timeout=900)
    assert proc.returncode == 0, f"app journey failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the trace reader --------------------------------------------------------------------------------------


def test_the_trace_reader_allows_only_unix_netlink_and_loopback():
    lines = [
        '10 connect(3, {sa_family=AF_UNIX, sun_path="/tmp/x.sock"}, 110) = 0',
        '10 connect(4, {sa_family=AF_INET, sin_port=htons(8501), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '10 connect(5, {sa_family=AF_INET6, sin6_port=htons(8501), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28 <unfinished ...>',
        "11 sendto(6, [{nlmsg_len=20, nlmsg_type=RTM_GETADDR}, {ifa_family=AF_UNSPEC, ...}], 20, 0, "
        "{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 20",
        "10 <... connect resumed>) = -1 EINPROGRESS (Operation now in progress)",
        '11 sendto(5, "{sa_family=AF_INET, sin_port=htons(1)}", 37, 0, NULL, 0) = 37',
        '11 sendmsg(5, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="x", iov_len=1}], msg_iovlen=1, '
        "msg_controllen=0, msg_flags=0}, MSG_NOSIGNAL) = 1",
        '10 bind(7, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("0.0.0.0")}, 16) = 0',
        "12 +++ exited with 0 +++",
    ]
    trace = parse(lines)
    assert trace.findings == []
    assert trace.calls["connect"] == 3 and trace.calls["sendto"] == 2 and trace.calls["sendmsg"] == 1
    assert trace.loopback_ports() == {8501}
    assert [str(a) for a in trace.binds()] == ["0.0.0.0:0"]


@pytest.mark.parametrize("line", [
    '9 connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("192.0.2.1")}, 16) = 0',
    '9 connect(3, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
    'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH (Network unreachable)',
    '9 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
    '9 sendto(3, "\\1\\2", 2, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.1")}, 16) = 2',
    '9 sendmmsg(3, [{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(123), '
    'sin_addr=inet_addr("192.0.2.9")}, msg_namelen=16}, msg_len=48}], 1, 0) = 1',
    '9 connect(3, {sa_family=AF_UNIX, sun_path="/run/systemd/resolve/io.systemd.Resolve"}, 110) = 0',
    '9 connect(3, {sa_family=AF_PACKET, sll_protocol=htons(ETH_P_ALL)}, 20) = 0',
    "9 connect(3, 0x7ffd1234, 16) = -1 EFAULT (Bad address)",
    "9 sendto(3, 0x1, 2, 0, 0x7ffd1234, 16) = 2",
    "9 io_uring_setup(8, {flags=0}) = 3",
    "9 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3",
    "strace: Process 9 attached",
    "9 <... connect resumed>) = 0",
    "9 ???( <unfinished ...>",
])
def test_the_trace_reader_reports_other_destinations_and_lines_it_cannot_read(line):
    trace = parse([line])
    assert len(trace.findings) == 1, trace.findings


def test_a_call_strace_could_not_identify_is_a_finding_of_its_own_not_an_unread_line():
    """strace prints ``???`` for a call whose number it could not read, as when Chromium's threads are killed at
    the end of the app journey. It names no destination, so it is a finding (a judged trace fails on it), but the
    line is read: the browser's trace, which is checked only for lines it cannot read, passes."""
    trace = parse(["31302 ???( <unfinished ...>", "31302 <... ??? resumed>)                = ?",
                   "31302 +++ killed by SIGKILL +++"])
    assert len(trace.findings) == 1 and trace.findings[0].startswith("unidentified call"), trace.findings


def test_a_send_on_a_connected_socket_killed_before_it_returned_is_read():
    """A thread killed inside ``sendto(fd, ..., NULL, 0`` never resumes; the call is judged as it was asked: a send on
    a connected socket, no new destination (seen once in the browser's trace of a fresh-clone run)."""
    trace = parse(['7288 sendto(31, "\\20\\0\\0\\0p", 112, MSG_NOSIGNAL, NULL, 0 <unfinished ...>',
                   "7288 +++ killed by SIGKILL +++"])
    assert trace.findings == [] and trace.calls["sendto"] == 1, trace.findings


def test_the_trace_reads_the_dns_names_a_process_asked_for():
    query = '"\\311\\262\\1\\0\\0\\1\\0\\0\\0\\0\\0\\0\\10accounts\\6google\\3com\\0\\0\\1\\0\\1"'
    trace = parse([f"9 sendmmsg(3, [{{msg_hdr={{msg_name=NULL, msg_namelen=0, msg_iov=[{{iov_base={query}, "
                   "iov_len=37}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=37}], 1, 0) = 1"])
    assert trace.findings == [] and dict(trace.dns_names) == {"accounts.google.com": 1}


NATIVE_CONNECT = """
import ctypes, multiprocessing, socket, struct

def connect_natively():
    # libc's connect() straight from ctypes: a UDP connect sends no packet, and no Python audit event names it
    libc = ctypes.CDLL(None, use_errno=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", 9, socket.inet_aton("192.0.2.1"))  # TEST-NET-1
    libc.connect(s.fileno(), ctypes.c_char_p(addr), len(addr))

if __name__ == "__main__":
    connect_natively()
    p = multiprocessing.get_context("spawn").Process(target=connect_natively)
    p.start()
    p.join()
"""


def test_the_trace_sees_a_native_connect_in_a_spawned_worker_that_the_audit_hook_misses(tmp_path):
    """Why the OS-level trace: a connect made by native code in a worker process."""
    _need_strace()
    script = tmp_path / "native_connect.py"
    script.write_text(NATIVE_CONNECT, encoding="utf-8")
    log = tmp_path / "audit.log"
    audited = subprocess.run([sys.executable, "tests/egress_probe.py", str(log), "-m", "native_connect"], cwd=REPO,
                             env=cli_env(tmp_path, PYTHONPATH=f"{REPO}:{tmp_path}"), capture_output=True, timeout=120)
    assert audited.returncode == 0, audited.stderr
    assert not log.exists() or log.read_text() == ""  # the audit hook saw nothing
    out = tmp_path / "trace"
    traced = subprocess.run([*strace_prefix(out), sys.executable, str(script)], cwd=REPO, capture_output=True,
                            timeout=120)
    assert traced.returncode == 0, traced.stderr
    findings = parse_file(out).findings
    # one from the script's own process, one from the worker it spawned
    assert len(findings) == 2 and all("connect to 192.0.2.1:9" in f for f in findings), findings
    assert len({f.split(": ", 1)[1].split()[0] for f in findings}) == 2  # two processes


# --- the journeys under strace -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> dict:
    """Every journey run once under ``strace -f`` on a fresh data dir; the app journey with its server and
    Chromium under separate traces. Figures go to test-output/egress/figures.json."""
    _need_strace()
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (`make test` installs it)")
    base = tmp_path_factory.mktemp("egress-trace")
    data = base / "data"
    results, traces, seconds = {}, {}, {}
    for i, (name, cmd, stdin, env) in enumerate(journeys(data)):
        out, started = base / f"{i}.trace", time.monotonic()
        results[name] = run([*strace_prefix(out), *cmd], data, stdin, **env)
        seconds[name] = round(time.monotonic() - started, 1)
        traces[name] = parse_file(out)
    check_outputs(results)
    started = time.monotonic()
    app = app_journey([], data, strace_prefix(base / "server.trace"), strace_prefix(base / "browser.trace"))
    seconds["app"] = round(time.monotonic() - started, 1)
    traces["app server"], traces["browser"] = parse_file(base / "server.trace"), parse_file(base / "browser.trace")
    write_figures("traced.json", {
        **{name: t.summary() for name, t in traces.items()}, "seconds": seconds,
        "page requests": dict(Counter(f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in app["requested"])),
    })
    return {"traces": traces, "app": app}


def write_figures(name: str, figures: dict) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / name).write_text(json.dumps(figures, ensure_ascii=False, indent=1), encoding="utf-8")


@pytest.mark.parametrize("journey", ["admin user", "staff user", "ingest", "ingest, torch embedder", "question",
                                     "evaluation"])
def test_cli_journeys_use_only_local_sockets(traced, journey):
    trace = traced["traces"][journey]
    assert trace.findings == [], "\n".join(trace.findings[:50])
    assert trace.calls["execve"] >= 1  # the trace followed the journey's process


def test_the_app_serves_a_signed_in_page_over_loopback_only(traced):
    """The server's trace holds only local sockets and it listens on loopback only; the browser reached it
    through a traced loopback connect, signed in and got an answer; every request the page made went to the
    app's own origin (the favicon used to come from fonts.gstatic.com).

    Chromium is traced but not judged: even with --disable-background-networking and the other flags of the
    e2e suite it looks up Google service names of its own (tests record them in figures.json). The browser is
    the bank's desktop software under its browser policy; what we claim is that the app's page asks it for
    nothing outside the app."""
    server, browser, app = traced["traces"]["app server"], traced["traces"]["browser"], traced["app"]
    assert server.findings == [], "\n".join(server.findings[:50])
    binds = server.binds()
    assert binds and all(a.allowed() for a in binds), binds
    assert app["port"] in {a.port for a in binds}
    assert server.calls["sendto"] > 0  # it answered the browser
    assert app["port"] in browser.loopback_ports(), "the browser's connection to the app was not traced"
    unparsed = [f for f in browser.findings if f.startswith("unparsed")]
    assert unparsed == [], "\n".join(unparsed[:50])
    origins = {urlsplit(u).netloc for u in app["requested"] if urlsplit(u).scheme not in ("data", "blob")}
    assert origins == {f"127.0.0.1:{app['port']}"}, app["requested"]
    assert app["answer"].strip()


# --- the journeys in a network namespace with loopback only -------------------------------------------------


def test_the_journeys_work_in_a_network_namespace_with_only_loopback(tmp_path):
    _need_netns()
    data = tmp_path / "data"
    inside = run([*NETNS, "ip", "-o", "link"], data)
    assert inside.returncode == 0 and [line.split(":")[1].strip() for line in inside.stdout.splitlines()] == ["lo"]
    results, seconds = {}, {}
    for name, cmd, stdin, env in journeys(data):
        started = time.monotonic()
        results[name] = run([*NETNS, *cmd], data, stdin, **env)
        seconds[name] = round(time.monotonic() - started, 1)
        assert results[name].returncode == 0, f"{name} failed:\n{results[name].stderr[-3000:]}"
    check_outputs(results)
    started = time.monotonic()
    app = app_journey(NETNS, data)
    seconds["app"] = round(time.monotonic() - started, 1)
    assert app["answer"].strip()
    assert {urlsplit(u).netloc for u in app["requested"]} == {f"127.0.0.1:{app['port']}"}
    write_figures("netns.json", {"interfaces": inside.stdout.split("\n")[:-1], "seconds": seconds})
