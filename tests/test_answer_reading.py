"""An answer as a reader sees it: citations numbered from [1] without gaps, Markdown and the model's line
layout kept, chips with a short title and page, the copy with its [n] markers and sources."""

from __future__ import annotations

from core.schema import Answer, AnswerSentence, Citation, Timings
from qa.numbering import consecutive
from ui.answer_view import chip_label, copy_text, short_title
from ui.markup import answer_markdown

MANUAL = "さくら未来銀行 事務取扱要領 口座開設・本人確認編"


def _citation(n: int, page: int | None = 3, title: str = MANUAL) -> Citation:
    return Citation(n=n, doc_id=f"d{n}", source=f"doc{n}.pdf", page=page, section="第3条", quote=f"引用{n}",
                    title=title)


def _answer(text: str, citations: list[Citation], sentences: list[AnswerSentence] | None = None) -> Answer:
    return Answer(answer=text, citations=citations, refused=False, contexts=[], timings=Timings(),
                  sentences=sentences or [])


def test_citations_are_renumbered_from_one_in_the_order_the_answer_cites_them():
    answer = _answer("運転免許証が使えます[3]。パスポートも使えます[5][3]。住民票は補完書類です［9］。",
                     [_citation(3), _citation(5)])
    shown = consecutive(answer)
    assert shown.answer == "運転免許証が使えます[1]。パスポートも使えます[2][1]。住民票は補完書類です。"
    assert [(c.n, c.doc_id) for c in shown.citations] == [(1, "d3"), (2, "d5")]
    assert [c.n for c in answer.citations] == [3, 5]  # the stored answer keeps the service's numbers


def test_a_sentence_the_verifier_attributed_gets_its_marker():
    text = "個人顧客の口座開設にあたっては、本人確認書類の原本の提示を受ける。"
    answer = _answer(text, [_citation(3)], [AnswerSentence(text=text, markers=[3], verified=True)])
    assert consecutive(answer).answer == text + "[1]"


def test_markers_in_a_list_stay_with_their_items():
    answer = _answer("次のとおりです。\n\n- 運転免許証 [4]\n- パスポート [2, 4]", [_citation(2), _citation(4)])
    assert consecutive(answer).answer == "次のとおりです。\n\n- 運転免許証[1]\n- パスポート[2][1]"


def test_the_models_layout_survives_markdown():
    md = answer_markdown("次のとおりです。\n・運転免許証[1]\n・パスポート\n①補完書類\n補足の一行目\n補足の二行目")
    assert md.split("\n") == ["次のとおりです。", "- 運転免許証\\[1\\]", "- パスポート", "- ① 補完書類", "",
                              "補足の一行目  ", "補足の二行目"]
    assert answer_markdown("- a [1]\n- b\n\n1. c\n2. d") == "- a \\[1\\]\n- b\n\n1. c\n2. d"
    assert answer_markdown("![x](http://example.com/a.png) $x$") == "!\\[x\\](http://example.com/a.png) \\$x\\$"


def test_chips_show_a_short_title_and_the_page():
    assert chip_label(_citation(1), "ja") == "[1] さくら未来銀行 事務取扱要領 口… p.3"
    assert chip_label(_citation(2, page=None, title="Gifts manual"), "en") == "[2] Gifts manual"
    assert short_title("A" * 40) == "A" * 30 + "…"


def test_copy_with_sources_keeps_the_markers_and_lists_the_sources():
    shown = consecutive(_answer("運転免許証が使えます[3]。", [_citation(3)]))
    text = copy_text(shown, "ja")
    assert text.startswith("運転免許証が使えます[1]。")
    assert "[1] さくら未来銀行 事務取扱要領 口座開設・本人確認編 (doc3.pdf) p.3 第3条" in text
