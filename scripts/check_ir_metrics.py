"""Check that the library-based ranking metrics give the figures the hand-written ones gave.

``python -m scripts.check_ir_metrics [--queries 3000] [RUNS.sqlite3 ...]``

The reference functions below are the hand-written definitions the evaluation used before ir-measures
(eval/retrieval_metrics.py, eval/page_retrieval.py, eval/metrics.py and the latency percentile), kept here
only as the oracle. They are compared, value by value, with what the product computes now:

- on synthetic rankings (seeded): documents (recall@1/5/10, mrr@10, ndcg@10), passages (recall, any,
  mrr, ndcg, map; up to 14 gold passages so that map@10's min(R, k) matters), page units (page_hit@k,
  mrr@10), per-sample hit_at_k / mrr over contexts, and latency percentiles;
- on stored evaluation runs (``<data_dir>/eval/runs.sqlite3``, opened read-only): every sample's
  hit_at_k and mrr recomputed from its stored case and contexts, against the stored value (computed by
  the code of that run) and the reference.

Prints one line per family (comparisons, exactly equal, largest difference); exit status 1 when a value
differs by more than 1e-12.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from pathlib import Path

from core.cli import ArgumentParser, run
from core.schema import Answer, Hit
from eval.metrics import hit_at_k, matches_gold, mrr, percentile
from eval.page_retrieval import Unit, score_units, unit_matches
from eval.passages import GoldPassage, chunk_hits_passage
from eval.retrieval_metrics import KS, score_docs, score_passages
from eval.testset import GoldSource, TestCase

PROG = "python -m scripts.check_ir_metrics"
TOLERANCE = 1e-12

# -- the hand-written definitions (the oracle) -------------------------------------------------------------


def _dcg(rels: list[int]) -> float:
    return sum(r / math.log2(i + 2) for i, r in enumerate(rels))


def ref_docs(ranked: list[str], relevant: list[str], k: int) -> dict[str, float]:
    rel = set(relevant)
    out: dict[str, float] = {}
    for cut in sorted({*KS, k}):
        out[f"recall@{cut}"] = len(rel & set(ranked[:cut])) / len(rel)
    first = next((i for i, d in enumerate(ranked[:k]) if d in rel), None)
    out[f"mrr@{k}"] = 0.0 if first is None else 1.0 / (first + 1)
    out[f"ndcg@{k}"] = _dcg([1 if d in rel else 0 for d in ranked[:k]]) / _dcg([1] * min(len(rel), k))
    return out


def ref_passages(hit_sets: list[set[int]], n_gold: int, k: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for cut in sorted({*KS, k}):
        found = set().union(*hit_sets[:cut]) if hit_sets[:cut] else set()
        out[f"recall@{cut}"] = len(found) / n_gold
        out[f"any@{cut}"] = 1.0 if found else 0.0
    first = next((i for i, s in enumerate(hit_sets[:k]) if s), None)
    out[f"mrr@{k}"] = 0.0 if first is None else 1.0 / (first + 1)
    seen: set[int] = set()
    rels = []
    for s in hit_sets[:k]:
        rels.append(1 if s - seen else 0)
        seen |= s
    out[f"ndcg@{k}"] = _dcg(rels) / _dcg([1] * min(n_gold, k))
    precision_sum, found_n = 0.0, 0
    for i, r in enumerate(rels):
        if r:
            found_n += 1
            precision_sum += found_n / (i + 1)
    out[f"map@{k}"] = precision_sum / min(n_gold, k)
    return out


def ref_units(units: list[Unit], gold: list[GoldSource], ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    first = next((i for i, u in enumerate(units[: max(ks)], 1) if any(unit_matches(u, g) for g in gold)), None)
    scores = {f"page_hit@{k}": float(first is not None and first <= k) for k in ks}
    scores["mrr@10"] = 1.0 / first if first is not None and first <= 10 else 0.0
    return scores


def ref_rank(case: TestCase, contexts: list[Hit], k: int | None) -> int | None:
    top = contexts[:k] if k else contexts
    if case.gold_sources:
        hits = (any(matches_gold(h, g) for g in case.gold_sources) for h in top)
    else:
        passages = [GoldPassage("", p) for p in case.reference_contexts]
        hits = (any(chunk_hits_passage(h.text, g) for g in passages) for h in top)
    return next((rank for rank, hit in enumerate(hits, start=1) if hit), None)


def ref_sample(rank: int | None) -> dict[str, float]:
    """hit_at_k and mrr as Score.ok stores them (rounded to 9 decimals)."""
    return {"hit_at_k": 1.0 if rank else 0.0, "mrr": round(1.0 / rank, 9) if rank else 0.0}


def ref_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -- comparing ---------------------------------------------------------------------------------------------


class Tally:
    def __init__(self, name: str, tolerance: float = TOLERANCE) -> None:
        self.name, self.n, self.equal, self.max_diff, self.first_bad = name, 0, 0, 0.0, None
        self.tolerance = tolerance

    def add(self, where: str, ref: dict[str, float], got: dict[str, float]) -> None:
        if ref.keys() != got.keys():
            raise SystemExit(f"{self.name} {where}: keys differ: {sorted(ref)} vs {sorted(got)}")
        for key, value in ref.items():
            self.n += 1
            diff = abs(value - got[key])
            self.equal += value == got[key]
            if diff > self.max_diff:
                self.max_diff = diff
                if diff > self.tolerance and self.first_bad is None:
                    self.first_bad = f"{where} {key}: {value} vs {got[key]}"

    @property
    def ok(self) -> bool:
        return self.max_diff <= self.tolerance

    def line(self) -> str:
        bad = f"  FIRST DIFFERENCE {self.first_bad}" if self.first_bad else ""
        return f"{self.name:<28} {self.n:>7} values, {self.equal:>7} exactly equal, max |diff| {self.max_diff:.3g}{bad}"


def _hit(source: str, pages: list[int], text: str, i: int) -> Hit:
    return Hit(doc_id="d", source=source, title="t", page=pages[0] if pages else None, pages=pages, section="s",
               text=text, score=1.0 - i / 100, chunk_id=f"c{i}")


def synthetic(n: int, seed: int = 7) -> list[Tally]:
    rng = random.Random(seed)
    docs, passages, units, samples, pct = (Tally(x) for x in (
        "documents", "passages", "page units", "hit_at_k / mrr (samples)", "percentiles (2 decimals)"))
    raw_pct = Tally("percentiles (unrounded)", tolerance=1e-9)
    pool = [f"doc{i}" for i in range(60)]
    files = [f"/corpus/ja/{d}/file{j}.pdf" for d in ("a", "b") for j in range(4)]
    for q in range(n):
        k = rng.choice((10, 10, 10, 5, 20))
        ranked = rng.sample(pool, rng.randint(0, 40))
        relevant = rng.sample(pool, rng.randint(1, 14))
        docs.add(f"q{q}", ref_docs(ranked, relevant, k), score_docs(ranked, relevant, k))

        n_gold = rng.randint(1, 14)
        hit_sets = [set(rng.sample(range(n_gold), min(n_gold, rng.choice((0, 0, 0, 1, 1, 2)))))
                    for _ in range(rng.randint(0, 40))]
        passages.add(f"q{q}", ref_passages(hit_sets[:k], n_gold, k), score_passages(hit_sets[:k], n_gold, k))

        cand = [Unit(f, p) for f in files for p in range(1, 6)]
        ranked_units = rng.sample(cand, rng.randint(0, 25))
        gold = [GoldSource(source=f.removeprefix("/corpus/"), pages=rng.sample(range(1, 6), rng.randint(0, 2)))
                for f in rng.sample(files, rng.randint(1, 2))]
        units.add(f"q{q}", ref_units(ranked_units, gold), score_units(ranked_units, gold))

        case = TestCase.model_validate({"id": f"c{q}", "question": "q?",
                                        "gold_sources": [g.model_dump() for g in gold]})
        contexts = [_hit(u.source_path.rsplit("/", 1)[-1], [u.page], "text", i) for i, u in enumerate(ranked_units[:8])]
        for cut in (1, 3, 5):
            want = ref_sample(ref_rank(case, contexts, cut))["hit_at_k"]
            samples.add(f"q{q} k={cut}", {"hit_at_k": want}, {"hit_at_k": hit_at_k(case, contexts, cut).value})
        for cut in (None, 5):
            want = ref_sample(ref_rank(case, contexts, cut))["mrr"]
            samples.add(f"q{q} k={cut}", {"mrr": want}, {"mrr": mrr(case, contexts, cut).value})

        values = [rng.lognormvariate(3, 1) for _ in range(rng.randint(1, 60))]
        for p in (50, 95, 99):  # as reports show them (ms, 2 decimals); unrounded: ulp-level differences
            pct.add(f"q{q} p{p}", {"p": round(ref_percentile(values, p), 2)}, {"p": round(percentile(values, p), 2)})
            raw_pct.add(f"q{q} p{p}", {"p": ref_percentile(values, p)}, {"p": percentile(values, p)})
    return [docs, passages, units, samples, pct, raw_pct]


def stored_runs(paths: list[Path]) -> list[Tally]:
    vs_stored, vs_ref = Tally("stored runs: vs stored"), Tally("stored runs: vs reference")
    for path in paths:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            configs = {run_id: json.loads(config) for run_id, config in con.execute("SELECT run_id, config FROM runs")}
            rows = con.execute("SELECT run_id, case_id, record FROM samples").fetchall()
        finally:
            con.close()
        for run_id, case_id, raw in rows:
            record = json.loads(raw)
            if not record.get("answer"):
                continue
            k = int(configs.get(run_id, {}).get("hit_k") or 5)
            case, answer = TestCase.model_validate(record["case"]), Answer.model_validate(record["answer"])
            where = f"{path}:{run_id}:{case_id}"
            scores = {"hit_at_k": hit_at_k(case, answer.contexts, k), "mrr": mrr(case, answer.contexts, k)}
            stored = (record.get("metrics") or {})
            for name, score in scores.items():
                if name in stored and stored[name]["status"] != score.status:
                    raise SystemExit(f"{where} {name}: status {stored[name]['status']} stored, {score.status} now")
            got = {n: s.value for n, s in scores.items() if s.status == "ok"}
            if not got:
                continue  # n/a (no gold), as stored
            vs_stored.add(where, {n: stored[n]["value"] for n in got if n in stored}, {n: got[n] for n in got
                                                                                       if n in stored})
            rank = ref_rank(case, answer.contexts, k)
            vs_ref.add(where, {n: v for n, v in ref_sample(rank).items() if n in got}, got)
    return [vs_stored, vs_ref]


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", type=Path, help="runs.sqlite3 files of stored evaluation runs")
    p.add_argument("--queries", type=int, default=3000, help="synthetic queries (default 3000)")
    args = p.parse_args(argv)
    tallies = synthetic(args.queries) + stored_runs(args.runs)
    for t in tallies:
        print(t.line())
    return 0 if all(t.ok for t in tallies) else 1


if __name__ == "__main__":
    run(PROG, main)
