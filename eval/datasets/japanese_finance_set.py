"""JFinTEB (Japanese financial retrieval): the Wikinews and Wikipedia validation queries, one ``.txt`` file per
document, scored per document; the published nDCG@10 figures read from the corpus's leaderboard.md."""

from __future__ import annotations

from pathlib import Path

from eval.datasets.labelled_set import Dataset, Query, pick, read_jsonl


def load_jfinteb(name: str, corpus: Path, max_docs: int | None = None, limit: int | None = None) -> Dataset:
    sub = name.split("-", 1)[1]
    folder = corpus / "ja" / "jfinteb" / sub
    if not folder.is_dir():
        raise FileNotFoundError(f"JFinTEB set not found at {folder} (the shared corpus is needed)")
    docs = read_jsonl(folder / "docs.jsonl")
    # The ingest service stores a text once (content hash): a document whose text repeats an earlier
    # one's is represented by that earlier document, and counts as relevant wherever it is.
    first: dict[str, str] = {}
    canonical: dict[str, str] = {}
    for doc in docs:
        canonical[str(doc["docid"])] = first.setdefault(doc["text"], str(doc["docid"]))
    queries = [
        Query(str(i), q["query"], relevant_docs=sorted({canonical.get(str(d), str(d)) for d in q["relevant_docs"]}))
        for i, q in enumerate(read_jsonl(folder / "query-validation.jsonl"))
    ]
    duplicates = sum(1 for d in docs if d["text"].strip()) - sum(1 for t in first if t.strip())
    keep: set[str] | None = None
    corpus_id, label = name, f"JFinTEB {sub} docs.jsonl (one .txt file per document)"
    if max_docs:
        # A smaller corpus for quick runs: the relevant documents of the evaluated queries, then the
        # other documents in file order up to max_docs. Easier than the full set: not comparable.
        queries = pick(queries, limit)
        keep = {d for q in queries for d in q.relevant_docs}
        for doc in docs:
            docid = str(doc["docid"])
            if len(keep) >= max_docs:
                break
            if doc["text"].strip() and canonical[docid] == docid:
                keep.add(docid)
        corpus_id = f"{name}-q{len(queries)}-d{max_docs}"
        label = f"JFinTEB {sub}: SAMPLE of {len(keep)} documents (relevant ones + first in file order)"

    def files(workdir: Path) -> list[Path]:
        target = workdir / "docs"
        target.mkdir(parents=True, exist_ok=True)
        for doc in docs:
            docid = str(doc["docid"])
            if not doc["text"].strip() or canonical[docid] != docid:
                continue  # empty documents cannot be ingested; repeated texts are stored once
            if keep is not None and docid not in keep:
                continue
            (target / f"{docid}.txt").write_text(doc["text"] + "\n", encoding="utf-8")
        return [target]

    return Dataset(
        name=name,
        corpus_id=corpus_id,
        corpus_label=label,
        level="doc",
        queries=queries,
        files=files,
        published=jfinteb_published(corpus / "ja" / "jfinteb" / "leaderboard.md", sub),
        notes=[
            "queries: validation split; published figures: test split (nDCG@10, dense embedders alone)",
            f"{duplicates} documents repeat an earlier document's text: stored once, either copy counts as relevant",
        ],
    )


def jfinteb_published(leaderboard: Path, sub: str) -> list[dict]:
    """The Retrieval table of leaderboard.md: nDCG@10 per model for Wikinews / Wikipedia."""
    if not leaderboard.is_file():
        return []
    text = leaderboard.read_text(encoding="utf-8")
    section = text.split("## Retrieval", 1)[-1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines() if "|" in line]
    if len(rows) < 3:
        return []
    header = [h.lower() for h in rows[0]]
    col = header.index(sub) if sub in header else -1
    out = []
    for row in rows[2:]:
        if col < 0 or col >= len(row):
            continue
        value = row[col].strip("*")
        try:
            out.append({"system": row[0], "split": "test", "ndcg@10": round(float(value) / 100, 4)})
        except ValueError:
            continue
    return sorted(out, key=lambda r: -r["ndcg@10"])

