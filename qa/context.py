"""Context assembly: de-duplicate, keep relevance order, fit the model's token budget."""

from __future__ import annotations

import re
from collections.abc import Callable

from core.schema import Hit


def source_header(n: int, hit: Hit) -> str:
    """``[n]`` and the innermost heading: enough for the model to refer to the passage;
    titles and pages are shown by the UI, not copied by the model."""
    heading = hit.section.split(" > ")[-1] if hit.section else ""
    return f"[{n}]（{heading}）" if heading else f"[{n}]"


_FENCE_TAG = re.compile(r"<\s*/?\s*sources\s*>", re.IGNORECASE)


def _defenced(text: str) -> str:
    """A document cannot close the <sources> fence early: its own tags become look-alikes."""
    return _FENCE_TAG.sub(lambda m: m.group(0).replace("<", "＜").replace(">", "＞"), text)


def format_sources(hits: list[Hit]) -> str:
    return "\n\n".join(f"{source_header(n, h)}\n{_defenced(h.text)}" for n, h in enumerate(hits, start=1))


def _after_overlap(previous: str, text: str) -> str:
    """``text`` without its opening that repeats the end of ``previous``: the chunker starts a chunk with the
    previous chunk's last sentence, which a merged passage would otherwise show twice."""
    for k in range(min(len(previous), len(text)), _MIN_OVERLAP - 1, -1):
        if previous.endswith(text[:k]):
            return text[k:].lstrip()
    return text


_MIN_OVERLAP = 8
"""Characters a repeated opening needs to be taken for the overlap rather than a coincidence."""


def merge_neighbours(hit: Hit, neighbours: list[Hit]) -> Hit:
    """One hit whose text runs over its adjacent chunks, in document order, each overlap once."""
    parts = sorted([hit, *neighbours], key=lambda h: h.chunk_index)
    pages = sorted({p for h in parts for p in h.pages})
    texts = [parts[0].text]
    for before, part in zip(parts, parts[1:], strict=False):
        texts.append(_after_overlap(before.text, part.text))
    kept = [(part, text) for part, text in zip(parts, texts, strict=True) if text]
    return hit.model_copy(
        update={
            "text": "\n".join(text for _, text in kept),
            "pages": pages,
            "page": pages[0] if pages else hit.page,
            "page_marks": _merged_page_marks(kept),
        }
    )


def _merged_page_marks(kept: list[tuple[Hit, str]]) -> list[tuple[int, int]]:
    """Where each page starts in the merged text: each part's own marks (its text is a suffix of the part's,
    the overlap cut from its front), moved to where the part stands in the merged text."""
    marks: list[tuple[int, int]] = []
    at = 0
    for part, text in kept:
        cut = len(part.text) - len(text)
        own = part.page_marks or ([(0, part.page)] if part.page is not None else [])
        for offset, page in own:
            place = at + max(0, offset - cut)
            if marks and marks[-1][0] == place:
                marks[-1] = (place, page)  # a mark inside the cut overlap: the page the kept text opens on
            elif not marks or marks[-1][1] != page:
                marks.append((place, page))
        at += len(text) + 1
    return marks if len({page for _, page in marks}) > 1 else []


def fit_budget(hits: list[Hit], budget_tokens: int, count_tokens: Callable[[str], int]) -> list[Hit]:
    """Keep hits in relevance order until the budget is spent; never drop the best one,
    trimming its text instead when it alone is too long."""
    kept: list[Hit] = []
    seen: set[str] = set()
    used = 0
    for n, hit in enumerate(hits, start=1):
        if hit.chunk_id in seen:
            continue
        cost = count_tokens(f"{source_header(n, hit)}\n{hit.text}") + 2
        if used + cost > budget_tokens:
            if not kept and budget_tokens > 0:
                ratio = budget_tokens / cost
                kept.append(hit.model_copy(update={"text": hit.text[: max(1, int(len(hit.text) * ratio * 0.9))]}))
            break
        kept.append(hit)
        seen.add(hit.chunk_id)
        used += cost
    return kept
