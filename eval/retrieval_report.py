"""The retrieval harness's result as text: metrics, latency, the target, the plain-BM25 floor and the published
figures next to ours."""

from __future__ import annotations


def format_report(r: dict) -> str:
    m = r["metrics"]
    lines = [
        f"dataset {r['dataset']} ({r['queries']}/{r['queries_total']} queries) · corpus: {r['corpus']}"
        f" · mode {r['mode']}",
        f"index: {r['index']['chunks']} chunks from {r['index']['files']} files"
        f" ({r['index']['failed']} failed), {'reused' if r['index']['reused'] else 'built'}"
        f" in {r['index']['ingest_seconds']} s · {r['index']['path']}",
        "settings: " + ", ".join(f"{key}={val}" for key, val in r["settings"].items() if key != "overrides"),
        "",
        f"{'metric':<12} {'ours':>8}",
    ]
    for name, value in m.items():
        lines.append(f"{name:<12} {value:>8.4f}")
    lat = r["latency_ms"]
    lines.append(f"latency ms   p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  (load average {lat['load_avg']})")
    t = r["target"]
    lines.append(f"target       {t['metric']} >= {t['value']}: {'met' if t['met'] else 'NOT met'}")
    if "floor" in r:
        f = r["floor"]
        lines.append("")
        lines.append(f"floor: {f['system']} ({f['units']} units)")
        for name, value in f["metrics"].items():
            lines.append(f"{name:<12} {m[name]:>8.4f} ours  {value:>8.4f} floor")
        lines.append(f"first page right by ours only: {len(f['ours_only_at_1'])}, by the floor only: "
                     f"{len(f['floor_only_at_1'])} ({', '.join(f['floor_only_at_1'][:12])})")
    if r["published"]:
        lines.append("")
        lines.append("published (for comparison; other split and/or system):")
        metric = "ndcg@10" if r["level"] == "doc" else "recall@10"
        ours = m.get(metric, 0.0)
        lines.append(f"  {'ours (this run)':<36} {metric} {ours:.4f}")
        for p in r["published"]:
            extra = f"  map@10 {p['map@10']:.3f}" if "map@10" in p else ""
            lines.append(f"  {p['system']:<36} {metric} {p[metric]:.4f}  ({p['split']} split){extra}")
    for note in r["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)

