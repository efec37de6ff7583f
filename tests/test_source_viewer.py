"""The source panel's reads: a cited PDF page rendered by PDFium with the passage marked where its characters
stand, the printed page number, the section of a non-PDF passage, and both only for readers of the document."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.schema import SearchFilter
from ingest.page_view import printed_number, quote_span, render_page
from ingest.service import IngestOptions
from ingest.viewer import SECTION_RADIUS
from retrieval.store.base import hit_from_payload
from tests.conftest import JA_PDF, corpus_path, make_container
from tests.helpers import EVERYTHING

PURPOSE = ("本要領は、さくら未来銀行（以下「当行」という。）の営業店における口座開設時の本人確認、疑わしい取引の届出、"
           "海外送金ならびに贈答・接待の取扱いについて、事務の手順と留意事項を定めることを目的とする。")
BOARD = SearchFilter(access_groups=("board",))
BRANCH = SearchFilter(access_groups=("branch",))


def _marked_pixels(png: bytes, box: tuple[int, int, int, int] | None = None) -> int:
    """Pixels of the mark's fill colour (yellow over white paper) in ``box`` of the image."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if box:
        image = image.crop(box)
    r, g, b = np.asarray(image).astype(int).transpose(2, 0, 1)
    return int(((r > 240) & (g > 200) & (g < 245) & (b < 180)).sum())


def test_a_cited_passage_is_marked_where_it_stands_on_the_page():
    marked = render_page(JA_PDF, 1, PURPOSE, scale=1.0)
    plain = render_page(JA_PDF, 1, "", scale=1.0)
    assert marked is not None and plain is not None
    assert marked.marked and not plain.marked
    assert plain.mark_top is None and 0.1 < marked.mark_top < 0.33  # 第1条 stands in the top third
    assert (marked.page, marked.page_count) == (1, 4)
    assert _marked_pixels(plain.png) == 0
    # the purpose clause (第1条) stands in the top third of page 1: the marks are there and nowhere else
    top = (0, 0, marked.width, marked.height // 3)
    rest = (0, marked.height // 3, marked.width, marked.height)
    assert _marked_pixels(marked.png, top) > 2000
    assert _marked_pixels(marked.png, rest) == 0


def test_a_passage_not_on_the_page_leaves_the_page_unmarked_rather_than_missing():
    page = render_page(JA_PDF, 2, PURPOSE, scale=1.0)
    assert page is not None and not page.marked and page.png.startswith(b"\x89PNG")
    assert render_page(JA_PDF, 99, PURPOSE) is None
    assert render_page(JA_PDF, 0, PURPOSE) is None


def test_zoom_renders_larger_within_bounds():
    small, large = render_page(JA_PDF, 1, "", scale=1.0), render_page(JA_PDF, 1, "", scale=2.0)
    assert large.width == pytest.approx(2 * small.width, abs=2)
    huge = render_page(JA_PDF, 1, "", scale=50)
    assert huge.width == pytest.approx(4 * small.width, abs=4)  # capped at MAX_SCALE


def test_a_quote_extracted_differently_is_still_placed():
    page = ("第3条（本人確認書類）\n（１）個人顧客の口座開設にあたっては、次のいずれかの\n"
            "本人確認書類の原本の提示を受ける。")
    quote = "（1）個人顧客の口座開設にあたっては、次のいずれかの本人確認書類の原本の提示を受ける。"
    span = quote_span(page, quote)
    assert "".join(page[i] for i in span).startswith("（１）個人顧客")
    assert page[span[-1]] == "。"
    assert quote_span(page, "まったく関係のない文章で、どこにも書かれていない内容です。") == []


def test_the_printed_page_number_is_read_from_the_header_or_footer():
    assert printed_number("- 15 -\n（ⅴ） 疑わしい取引の届出\n本文") == "15"
    assert printed_number("本文\n本文の続き\n１２") == "12"
    assert printed_number("Introduction\ntext\n(iii)") == "iii"
    assert printed_number("Ⅰ 基本的考え方......... - 1 -\n本文\n第3条") == ""
    assert render_page(JA_PDF, 1, "").label == "1"  # the sample prints "- 1 -" at its foot


def test_the_fsa_guideline_page_17_is_printed_15():
    path = corpus_path("ja", "fsa_amlcft", "211122_amlcft_guidelines.pdf")
    page = render_page(path, 17, "疑わしい取引の届出は、犯収法に定める法律上の義務であり")
    assert page.label == "15" and page.marked and page.page_count == 35


@pytest.fixture(scope="module")
def restricted(tmp_path_factory):
    """The Japanese PDF restricted to ``board``; a public Markdown rulebook with a section of several chunks."""
    folder = tmp_path_factory.mktemp("viewer")
    rules = folder / "transfer_rules.md"
    long_section = " ".join(f"Rule {n}: a transfer of type {n} needs the branch manager's check number {n}."
                            for n in range(1, 80))
    rules.write_text(f"# Transfer rules\n\n## Scope\n\nThese rules cover transfers.\n\n## Checks\n\n{long_section}\n\n"
                     "## Records\n\nKeep every transfer record for seven years.\n", encoding="utf-8")
    container = make_container(folder / "data")
    [pdf] = container.ingest.ingest([JA_PDF], IngestOptions(access=("board",))).documents
    [md] = container.ingest.ingest([rules]).documents
    yield container, pdf, md
    container.close()


def test_only_readers_of_the_document_see_its_page(restricted):
    container, pdf, _ = restricted
    viewer = container.viewer
    assert viewer.page_image(pdf.doc_id, 1, 1, BRANCH, PURPOSE) is None
    assert viewer.pdf_path(pdf.doc_id, 1, BRANCH) is None
    page = viewer.page_image(pdf.doc_id, 1, 1, BOARD, PURPOSE)
    assert page is not None and page.marked
    assert viewer.page_image("no-such-document", 1, 1, BOARD) is None
    assert [d.doc_id for d in viewer.documents(BOARD)] != [d.doc_id for d in viewer.documents(BRANCH)]
    assert pdf.doc_id not in {d.doc_id for d in viewer.documents(BRANCH)}


def test_a_markdown_passage_shows_its_section_for_readers_only(restricted):
    container, pdf, md = restricted
    payloads = container.store.chunks_by_index(md.doc_id, 1, list(range(md.chunks)), EVERYTHING)
    hits = [hit_from_payload(p, 0.0) for p in payloads]
    by_section: dict[str, list] = {}
    for h in hits:
        by_section.setdefault(h.section, []).append(h)
    section, members = max(by_section.items(), key=lambda kv: len(kv[1]))
    assert len(members) >= 2, "the sample needs a section of several chunks"
    middle = members[len(members) // 2]
    near = [m for m in members if abs(m.chunk_index - middle.chunk_index) <= SECTION_RADIUS]
    shown = container.viewer.section(middle, BRANCH)  # public document: any reader
    assert shown is not None and shown.chunks == len(near) > 1
    assert all(m.text in shown.text for m in near)
    other = [h for h in hits if h.section != section]
    assert not any(o.text in shown.text for o in other if o.text not in members[0].text)
    secret = container.store.chunks_by_index(pdf.doc_id, 1, [0], EVERYTHING)
    assert container.viewer.section(hit_from_payload(secret[0], 0.0), BRANCH) is None
    assert container.viewer.section(hit_from_payload(secret[0], 0.0), BOARD) is not None
