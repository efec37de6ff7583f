"""The audit page and export on a big log: ``python -m bench.audit [--records 1000000] [--baseline 10000] [--json]``.

Fills a log with N synthetic records through a bulk path (one transaction, the same hashes and head
anchor lines that appends write): a realistic mix of answers with citations and contexts, sign-ins,
feedback and admin actions by 500 users over two years. Then it measures what the audit page and the
export do, each against a baseline run in the same process:

- **page**: every call one page view makes (the quick head check, the newest 200 records for each
  filter, the next page by keyset, the export count), p50/p95 over repeats, on the big log and on a
  small log of ``--baseline`` records: a ratio near 1 means a view does not grow with the log;
- **export**: the CSV export streamed to a file, against the bare cursor loop writing the same rows
  with the csv module (s, records/s, MB, growth of resident memory);
- **before**: what one page view cost before this change: the whole-chain verify and the whole log
  exported into memory, on every view;
- **verify** (the whole chain and the anchor, run on request and by the daily timer) and **append**
  (p50 on the big log against the small one).
"""

from __future__ import annotations

import csv
import functools
import gc
import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import core.offline  # noqa: F401
from audit.log import AUDIT_DB_NAME, GENESIS_HASH, AuditLog, canonical_json, format_ts, record_hash
from bench.memory import PeakRss
from core.cli import ArgumentParser, UsageError, run
from core.schema import SearchFilter

PROG = "python -m bench.audit"
BRANCH_READER = SearchFilter(access_groups=("branch",))
"""The page reads as its viewer: answers from documents outside their groups are withheld."""
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)
USERS = 500
PAGE_ROWS = 200  # as ui/pages/audit.py
REPEATS = 15


# --------------------------------------------------------------------------- the fill


def _record(rng: random.Random, i: int) -> tuple[str, str, dict]:
    user = f"user{rng.randrange(USERS):03d}"
    roll = rng.random()
    if roll < 0.80:
        refused = roll >= 0.72
        detail = {
            "question": f"口座開設時の本人確認書類は何ですか（{i}）",
            "standalone_question": None,
            "answer": "" if refused else "本人確認書類として運転免許証、マイナンバーカード等が必要です。[1]" * 4,
            "refused": refused,
            "citations": [] if refused else [
                {"n": k, "doc_id": f"d{rng.randrange(900):04d}", "version": 1, "source": "manual.pdf",
                 "page": rng.randrange(1, 200), "section": "第3条 本人確認", "verified": True}
                for k in range(1, 4)
            ],
            "contexts": [{"doc_id": f"d{rng.randrange(900):04d}", "version": 1, "chunk_id": f"c{rng.randrange(10**7)}"}
                         for _ in range(6)],
            "unsupported_sentences": [],
            "model": "qwen3-32b-q4_k_m",
            "prompt_version": "p7",
            "index_version": "2025-04-01T00:00:00",
            "timings": {"retrieve_ms": round(rng.uniform(5, 40), 1), "generate_ms": round(rng.uniform(800, 9000), 1)},
        }
        return user, ("refuse" if refused else "answer"), detail
    if roll < 0.95:
        return user, rng.choice(("login", "logout")), {"via": "password", "client": f"10.0.{i % 250}.{i % 7}"}
    action = rng.choice(("feedback", "ingest", "eval_run", "user_change", "login_failed", "settings_change"))
    return user, action, {"id": i, "comment": "参照条文が正しい", "positive": True}


def fill(log: AuditLog, n: int, seed: int = 7) -> None:
    """Append ``n`` records to an empty log in one transaction (the benchmark owns the log): the same
    records, hashes, head and anchor lines as ``n`` appends, at bulk speed."""
    rng = random.Random(seed)
    step = SPAN / max(n, 1)
    conn = sqlite3.connect(log.db_path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        if conn.execute("SELECT last_id FROM head").fetchone()[0]:
            raise ValueError("fill() needs an empty log")
        prev, ts, rows, lines = GENESIS_HASH, "", [], []
        for i in range(1, n + 1):
            ts = format_ts(START + step * i)
            user, action, detail = _record(rng, i)
            digest = record_hash(i, ts, user, action, detail, prev)
            rows.append((i, ts, user, action, canonical_json(detail), prev, digest))
            lines.append(log.anchor.encode(i, digest, ts))
            prev = digest
            if len(rows) == 20_000 or i == n:
                conn.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                log.anchor.write_lines(lines)
                rows.clear()
                lines.clear()
        conn.execute("UPDATE head SET count = ?, last_id = ?, last_hash = ?, last_ts = ? WHERE k = 1", (n, n, prev, ts))
        conn.execute("COMMIT")
    finally:
        conn.close()


# --------------------------------------------------------------------------- measuring


def _timed(fn, repeats: int = REPEATS) -> dict:
    fn()  # warm: the first read pulls pages into the OS cache for both logs alike
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2)}


def _once(fn) -> tuple[object, float, float]:
    gc.collect()
    sampler = PeakRss()
    sampler.start()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    return result, round(seconds, 2), round(sampler.stop(), 1)


def page_calls(log: AuditLog) -> dict:
    """The calls of one audit-page view, by filter (the page's own arguments)."""
    last_id = log.head()[1]
    page = functools.partial(log.search, reader=BRANCH_READER)
    middle = page(limit=1, before_id=last_id // 2)[0].id
    day = (START + SPAN / 2).date()
    month = (day.replace(day=1), (day.replace(day=1) + timedelta(days=31)).replace(day=1) - timedelta(days=1))
    calls = {
        "head check": log.check_head,
        "newest, no filter": lambda: page(limit=PAGE_ROWS),
        "next page (keyset)": lambda: page(limit=PAGE_ROWS, before_id=last_id - PAGE_ROWS + 1),
        "page in the middle (keyset)": lambda: page(limit=PAGE_ROWS, before_id=middle),
        "user": lambda: page(user="user123", limit=PAGE_ROWS),
        "action, common (answer)": lambda: page(action="answer", limit=PAGE_ROWS),
        "action, rare (settings_change)": lambda: page(action="settings_change", limit=PAGE_ROWS),
        "one day": lambda: page(since=day, until=day, limit=PAGE_ROWS),
        "user + one month": lambda: page(user="user123", since=month[0], until=month[1], limit=PAGE_ROWS),
        "text, common": lambda: page(text="本人確認", limit=PAGE_ROWS),
        "text, absent (reads every record)": lambda: page(text="存在しない語", limit=PAGE_ROWS),
        "export count, all": lambda: log.count(),
        "export count, one month": lambda: log.count(*month),
    }
    return {name: _timed(fn, 3 if "absent" in name else REPEATS) for name, fn in calls.items()}


def _bare_export(log: AuditLog, out: Path) -> int:
    """Baseline: the cursor loop and csv module alone, no code of ours."""
    n = 0
    with open(out, "w", encoding="utf-8", newline="") as fh, sqlite3.connect(log.db_path) as conn:
        writer = csv.writer(fh)
        writer.writerow(("id", "ts", "user", "action", "detail_json", "prev_hash", "hash"))
        for row in conn.execute("SELECT id, ts, user, action, detail_json, prev_hash, hash FROM audit ORDER BY id"):
            writer.writerow(row)
            n += 1
    conn.close()
    return n


def _appends(big: AuditLog, small: AuditLog, count: int = 20) -> dict:
    """Appends to both logs in turn (so that both see the same load), p50 and max in ms."""
    times: dict[str, list[float]] = {"big": [], "small": []}
    for i in range(count):
        for name, log in (("small", small), ("big", big)):
            started = time.perf_counter()
            log.append("bench", "feedback", {"i": i})
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: {"p50_ms": round(statistics.median(t), 1), "max_ms": round(max(t), 1)} for name, t in times.items()}


def run_bench(records: int, baseline: int, before: bool = True, workdir: Path | None = None, log=print) -> dict:
    base = Path(tempfile.mkdtemp(prefix="cqa-bench-audit-", dir=workdir))
    started = time.perf_counter()
    try:
        small = AuditLog(base / "small" / AUDIT_DB_NAME)
        big = AuditLog(base / "big" / AUDIT_DB_NAME)
        result: dict = {"records": records, "baseline_records": baseline, "cpus": os.cpu_count(),
                        "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
        log(f"filling {baseline} and {records} records ...")
        fill(small, baseline)
        _, result["fill_s"], _ = _once(lambda: fill(big, records))
        result["db_mb"] = round(big.db_path.stat().st_size / 1e6, 1)
        result["anchor_mb"] = round(big.anchor.size() / 1e6, 1)

        log("page calls ...")
        small_calls, big_calls = page_calls(small), page_calls(big)
        result["page"] = {
            name: {"big": big_calls[name], "small": small_calls[name],
                   "ratio_p50": round(big_calls[name]["p50_ms"] / max(small_calls[name]["p50_ms"], 0.01), 2)}
            for name in big_calls
        }
        result["page_view_ms"] = round(sum(
            big_calls[k]["p50_ms"] for k in ("head check", "newest, no filter", "export count, all")), 1)

        log("export (baseline, ours, baseline, ours) ...")
        out = base / "export.csv"
        runs: dict[str, list[tuple]] = {"ours": [], "baseline": []}
        for _ in range(2):  # in turn, so that neither side alone finds the file in the OS cache
            runs["baseline"].append(_once(lambda: _bare_export(big, out)))
            runs["ours"].append(_once(lambda: big.export_csv(out, BRANCH_READER)))
        for side in ("ours", "baseline"):
            n, seconds, rss = min(runs[side], key=lambda r: r[1])
            result["export" if side == "ours" else "export_baseline"] = {
                "records": n, "seconds": seconds, "seconds_each": [r[1] for r in runs[side]],
                "records_per_s": round(n / seconds), "mb": round(out.stat().st_size / 1e6, 1),
                "rss_growth_mib": max(r[2] for r in runs[side]),
            }
        result["export_ratio"] = round(result["export"]["seconds"] / result["export_baseline"]["seconds"], 2)
        day = (START + SPAN / 2).date()
        month = (day.replace(day=1), day.replace(day=28))
        n, seconds, rss = _once(lambda: big.export_csv(io.StringIO(), BRANCH_READER, *month))
        result["export_month_in_memory"] = {"records": n, "seconds": seconds, "rss_growth_mib": rss}
        out.unlink()

        log("verify ...")
        verdict, seconds, rss = _once(big.verify)
        assert verdict.ok, verdict.reason  # type: ignore[attr-defined]
        result["verify"] = {"seconds": seconds, "records_per_s": round(records / seconds), "rss_growth_mib": rss}
        verdict, seconds, _ = _once(small.verify)
        result["verify_small_s"] = seconds

        log("appends ...")
        result["append"] = _appends(big, small)

        if before:
            log("a page view as it was before (verify + the whole log exported into memory) ...")

            def old_view() -> None:
                big.verify()
                buffer = io.StringIO()
                big.export_csv(buffer, BRANCH_READER)
                buffer.getvalue()

            _, seconds, rss = _once(old_view)
            result["before_page_view"] = {"seconds": seconds, "rss_growth_mib": rss}
            result["before_over_after"] = round(seconds * 1000 / max(result["page_view_ms"], 0.01))
        result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        result["seconds"] = round(time.perf_counter() - started, 1)
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)


def format_table(r: dict) -> str:
    lines = [
        f"audit log of {r['records']:,} records ({r['db_mb']:,.0f} MB database, {r['anchor_mb']:,.0f} MB head anchor;"
        f" bulk fill {r['fill_s']:.0f} s), baseline log of {r['baseline_records']:,} records",
        "",
        f"{'page call':<36} | {'p50 ms':>8} {'p95 ms':>8} | {'small p50':>9} | {'ratio':>6}",
    ]
    for name, e in r["page"].items():
        lines.append(f"{name:<36} | {e['big']['p50_ms']:>8.2f} {e['big']['p95_ms']:>8.2f} | "
                     f"{e['small']['p50_ms']:>9.2f} | {e['ratio_p50']:>5.1f}x")
    ex, eb, em = r["export"], r["export_baseline"], r["export_month_in_memory"]
    lines += [
        "",
        f"one page view (head check + newest page + export count): {r['page_view_ms']:.1f} ms",
        f"export, all {ex['records']:,} records to a file: {ex['seconds']:.1f} s ({ex['records_per_s']:,}/s,"
        f" {ex['mb']:,.0f} MB), RSS +{ex['rss_growth_mib']:.0f} MiB;"
        f" bare cursor + csv baseline {eb['seconds']:.1f} s (RSS +{eb['rss_growth_mib']:.0f} MiB):"
        f" ratio {r['export_ratio']:.2f}",
        f"export, one month ({em['records']:,} records) into memory as the page does: {em['seconds']:.2f} s,"
        f" RSS +{em['rss_growth_mib']:.0f} MiB",
        f"verify, whole chain and anchor: {r['verify']['seconds']:.1f} s ({r['verify']['records_per_s']:,} records/s,"
        f" RSS +{r['verify']['rss_growth_mib']:.0f} MiB); small log {r['verify_small_s']:.2f} s",
        f"append p50: {r['append']['big']['p50_ms']:.1f} ms on the big log, {r['append']['small']['p50_ms']:.1f} ms"
        " on the small one",
    ]
    if "before_page_view" in r:
        b = r["before_page_view"]
        lines.append(f"a page view before this change (verify + whole log into memory): {b['seconds']:.1f} s,"
                     f" RSS +{b['rss_growth_mib']:.0f} MiB: {r['before_over_after']:,}x the view now")
    lines.append(f"{r['cpus']} CPUs, load average {r['load_avg_start'][0]} at start, {r['load_avg_end'][0]} at end;"
                 f" total {r['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog=PROG, description="Audit page and export on a big log.")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--baseline", type=int, default=10_000, help="records in the small log the page is compared with")
    p.add_argument("--no-before", action="store_true", help="skip timing a page view as it was before (slow)")
    p.add_argument("--workdir", type=Path, help="where the temporary logs go (default: system temp)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.records < 1000 or args.baseline < 1000 or args.baseline > args.records:
        raise UsageError("--records and --baseline must be at least 1000, --baseline at most --records")
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    result = run_bench(args.records, args.baseline, not args.no_before, args.workdir, log=say)
    print(json.dumps(result) if args.json else format_table(result))
    return 0


__all__ = ["fill", "run_bench"]


if __name__ == "__main__":
    run(PROG, main)
