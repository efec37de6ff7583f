"""ObliQA (ADGM regulations, English): the dev questions with their gold passages, against the 40 rulebooks or the
AML rulebook alone; scored per chunk against the gold passages."""

from __future__ import annotations

import json
from pathlib import Path

from eval.datasets.labelled_set import Dataset, Query
from eval.passages import GoldPassage

OBLIQA_PUBLISHED = [
    {
        "system": "LeSeR (fine-tuned retriever, Gokhan et al. 2025)",
        "split": "test",
        "recall@10": 0.820,
        "map@10": 0.666,
    }
]


def obliqa_titles(folder: Path) -> dict[str, str]:
    titles = {}
    path = folder / "document_map.tsv"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            parts = line.split("\t")
            if len(parts) >= 4:
                titles[parts[1]] = parts[3].replace("\\'96", "-")
    return titles


def load_obliqa(name: str, corpus: Path, corpus_variant: str) -> Dataset:
    folder = corpus / "en" / "obliqa"
    if not (folder / "ObliQA_dev.json").is_file():
        raise FileNotFoundError(f"ObliQA not found at {folder} (the shared corpus is needed)")
    raw = json.loads((folder / "ObliQA_dev.json").read_text(encoding="utf-8"))
    if name == "obliqa-aml":
        raw = [q for q in raw if q["Passages"] and all(p["DocumentID"] == 1 for p in q["Passages"])]
    queries = []
    skipped = 0
    for q in raw:
        gold = [GoldPassage(f"{p['DocumentID']}:{p['PassageID']}", p["Passage"]) for p in q["Passages"]]
        gold = [g for g in gold if g.tokens]
        if not gold:
            skipped += 1
            continue
        queries.append(Query(q["QuestionID"], q["Question"], gold=gold))
    titles = obliqa_titles(folder)
    txt = folder / "regulatory_documents_txt"
    whole = name == "obliqa-dev" or corpus_variant == "all"

    def files(workdir: Path) -> list[Path]:
        return [txt] if whole else [txt / "AML_VER09.211223.txt"]

    def typed_options(path: Path) -> dict:
        return {"title": titles.get(path.stem, path.stem), "doc_key": f"obliqa-{path.stem}"}

    notes = ["published figure: ObliQA test split; ours: dev split"]
    if skipped:
        notes.append(f"{skipped} questions without a non-empty gold passage left out")
    return Dataset(
        name=name,
        corpus_id="obliqa-all" if whole else "obliqa-aml",
        corpus_label="all 40 ADGM documents" if whole else "AML rulebook only (AML_VER09.211223.txt)",
        level="passage",
        queries=queries,
        files=files,
        published=OBLIQA_PUBLISHED,
        notes=notes,
        typed_options=typed_options,
    )

