"""ingest.readers on real files built in tmp_path (PDF via reportlab, DOCX via python-docx) and on the
shared corpus (skipped when absent)."""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

import pytest

from core.errors import IngestError
from ingest.readers import read_document
from ingest.readers.pdf_engines import PdfiumText, PypdfText, open_pdf_text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_file(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared corpus not available at {path} (integration test)")
    return path


# -- fixtures built at test time -------------------------------------------------------------------------


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    """A PDF with one page per list of lines (an empty list gives a page without any text)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiMin-W3"))  # built-in Japanese CID font, no font file
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    if title is not None:
        c.setTitle(title)
    for lines in pages:
        y = 800
        c.setFont("HeiseiMin-W3", 10.5)
        for line in lines:
            c.drawString(50, y, line)
            y -= 16
        if not lines:
            c.rect(100, 100, 200, 200)  # a drawing but no text: like a scanned page
        c.showPage()
    c.save()
    return path


def encrypt_pdf(src: Path, dst: Path, user_password: str, algorithm: str = "AES-256") -> Path:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=str(src))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    with dst.open("wb") as fh:
        writer.write(fh)
    return dst


JA_PAGE_1 = [
    "マネー・ローンダリング対策に関する社内規程",
    "Ⅱ－２ 態勢整備",
    "（３）顧客管理",
    "疑わしい取引の届出は、犯収法に定める法律上の義務であり、同法の",
    "「特定事業者」に該当する金融機関等が届出を行う。",
]
EN_PAGE = ["Article 12", "Simplified due diligence", "Member States may allow obliged entities to apply it."]
JA_PAGE_3 = ["第一条　（目的）　この規程は、当行の業務の適正を確保することを目的とする。"]


@pytest.fixture
def sample_pdf(tmp_path: Path) -> Path:
    return make_pdf(tmp_path / "guide.pdf", [JA_PAGE_1, EN_PAGE, JA_PAGE_3])


# -- PDF -------------------------------------------------------------------------------------------------


def test_pdf_pages_are_read_one_by_one_with_japanese_text_kept(sample_pdf: Path) -> None:
    doc = read_document(sample_pdf)
    assert doc.format == "pdf"
    assert doc.page_count == 3
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "Ⅱ－２ 態勢整備" in doc.pages[0].text
    assert "（３）顧客管理" in doc.pages[0].text  # full-width numbering is not NFKC-folded
    assert "犯収法に定める法律上の義務であり、同法の\n「特定事業者」" in doc.pages[0].text  # line breaks kept
    assert "Article 12" in doc.pages[1].text and "Simplified due diligence" in doc.pages[1].text
    assert doc.pages[2].text.startswith("第一条")
    assert doc.warnings == []
    # no metadata title: the first line of page 1
    assert doc.title == "マネー・ローンダリング対策に関する社内規程"


def test_pdf_title_comes_from_metadata_when_meaningful(tmp_path: Path) -> None:
    doc = read_document(make_pdf(tmp_path / "a.pdf", [JA_PAGE_1], title="AML 事務取扱要領"))
    assert doc.title == "AML 事務取扱要領"
    doc = read_document(make_pdf(tmp_path / "b.pdf", [JA_PAGE_1], title="Microsoft Word - draft3.docx"))
    assert doc.title == "マネー・ローンダリング対策に関する社内規程"


def test_pdf_text_is_normalised_but_not_folded(tmp_path: Path) -> None:
    lines = ["Customer   due    diligence   ", "ﬁnancial institutions", "（１）　全角の番号　ＡＢＣ"]
    doc = read_document(make_pdf(tmp_path / "n.pdf", [lines]))
    text = doc.pages[0].text
    assert "Customer due diligence" in text  # runs of spaces collapsed
    assert not any(line.endswith(" ") for line in text.split("\n"))
    assert "financial institutions" in text  # ligature replaced
    assert "（１）　全角の番号　ＡＢＣ" in text  # full-width characters and the ideographic space kept


def test_pdf_page_without_text_layer_is_counted_and_warned(tmp_path: Path) -> None:
    doc = read_document(make_pdf(tmp_path / "scan.pdf", [JA_PAGE_1, [], JA_PAGE_3]))
    assert doc.page_count == 3
    assert doc.warnings == ["page 2 has no text layer (needs OCR)"]
    assert doc.pages[1].number == 2 and doc.pages[1].text == ""


def test_pdf_without_any_text_needs_ocr(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"no extractable text \(scanned PDF\? needs OCR\)"):
        read_document(make_pdf(tmp_path / "scan.pdf", [[], []]))


def test_pdf_with_unknown_password_is_refused(sample_pdf: Path, tmp_path: Path) -> None:
    locked = encrypt_pdf(sample_pdf, tmp_path / "locked.pdf", user_password="s3cret")
    with pytest.raises(IngestError, match="PDF is encrypted with a password"):
        read_document(locked)


@pytest.mark.parametrize("algorithm", ["AES-256", "AES-128", "RC4-128"])
def test_pdf_encrypted_with_empty_user_password_reads(
    sample_pdf: Path, tmp_path: Path, algorithm: str
) -> None:
    doc = read_document(encrypt_pdf(sample_pdf, tmp_path / "enc.pdf", user_password="", algorithm=algorithm))
    assert doc.page_count == 3
    assert "Ⅱ－２ 態勢整備" in doc.pages[0].text


def test_truncated_pdf_is_reported_as_damaged(sample_pdf: Path, tmp_path: Path) -> None:
    data = sample_pdf.read_bytes()
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="PDF is damaged"):
        read_document(broken)
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7\n" + b"not a pdf body " * 50 + b"\n%%EOF\n")
    with pytest.raises(IngestError, match="PDF is damaged"):
        read_document(junk)


def test_pdfium_reads_pdfs_by_default(sample_pdf: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ingest.readers.pdf_engines"):
        assert open_pdf_text(sample_pdf.read_bytes(), sample_pdf.name).engine == "pdfium"
    assert caplog.records == []


def test_a_pdf_pdfium_cannot_open_is_read_with_pypdf_and_the_log_says_why(
    sample_pdf: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A trailer that lost its /Root entry: PDFium refuses the file; pypdf finds the catalogue by scanning."""
    data = sample_pdf.read_bytes()
    assert data.count(b"/Root") == 1
    broken = tmp_path / "no_root.pdf"
    broken.write_bytes(data.replace(b"/Root", b"/Roox"))
    with pytest.raises(IngestError, match="PDF is damaged and cannot be read .*PDFium: Data format error"):
        PdfiumText(broken.read_bytes())
    with caplog.at_level(logging.WARNING, logger="ingest.readers.pdf_engines"):
        doc = read_document(broken)
    assert doc.page_count == 3 and [p.number for p in doc.pages] == [1, 2, 3]
    assert "Ⅱ－２ 態勢整備" in doc.pages[0].text and doc.pages[2].text.startswith("第一条")
    assert [r.getMessage() for r in caplog.records] == [
        "pdf no_root.pdf: read with pypdf because pdfium cannot open it (PDF is damaged and cannot be read "
        "(Failed to load document (PDFium: Data format error).))"
    ]


def test_a_pdf_with_a_garbled_xref_table_is_read_by_pdfium(sample_pdf: Path, tmp_path: Path) -> None:
    """pypdf, the reader before PDFium, refused this file; PDFium rebuilds the cross-reference table."""
    data = re.sub(rb"xref\n.*?trailer", b"xref\ngarbage garbage\ntrailer", sample_pdf.read_bytes(), flags=re.S)
    garbled = tmp_path / "garbled_xref.pdf"
    garbled.write_bytes(data)
    with pytest.raises(IngestError, match="PDF is damaged and cannot be read"):
        PypdfText(data)
    doc = read_document(garbled)
    assert doc.page_count == 3 and "Article 12" in doc.pages[1].text


# -- HTML ------------------------------------------------------------------------------------------------

SJIS_HTML = """<!DOCTYPE html>
<html><head>
<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">
<title>犯罪収益移転防止規程</title>
<style>body { color: red; }</style>
<script>var secret = "スクリプトの中身";</script>
</head><body>
<nav>トップ | サイトマップ</nav>
<h1>第一章　総則</h1>
<div class="arttitle">（目的）</div>
<div class="item"><b>第一条</b>
　この規程は、疑わしい取引の届出に
関する事務を定める。</div>
<div class="item"><b>２</b>
　前項の届出は、速やかに行う。
<div class="number"><b>一</b>　銀行</div>
<div class="number"><b>二</b>　信用金庫</div>
</div>
<h2>様式</h2>
<table><tr><th>項目</th><th>内容</th></tr><tr><td>届出先</td><td>所管行政庁</td></tr></table>
<p>①②③　髙橋（ＮＥＣ特殊文字）</p>
</body></html>
"""


def test_shift_jis_html_is_decoded_and_structured(tmp_path: Path) -> None:
    path = tmp_path / "kitei.html"
    path.write_bytes(SJIS_HTML.encode("cp932"))
    doc = read_document(path)
    assert doc.format == "html"
    assert doc.title == "犯罪収益移転防止規程"
    assert len(doc.pages) == 1 and doc.pages[0].number is None
    lines = doc.pages[0].text.split("\n")
    assert "# 第一章　総則" in lines
    assert "（目的）" in lines
    # a source line break inside Japanese text is not a space; the <b> number and the text stay on one line
    assert "第一条　この規程は、疑わしい取引の届出に関する事務を定める。" in lines
    assert "２　前項の届出は、速やかに行う。" in lines
    assert lines[lines.index("２　前項の届出は、速やかに行う。") + 1] == "一　銀行"
    assert "## 様式" in lines
    assert "項目 | 内容" in lines and "届出先 | 所管行政庁" in lines
    assert "①②③　髙橋（ＮＥＣ特殊文字）" in lines  # CP932 extensions decode
    text = doc.pages[0].text
    assert "スクリプト" not in text and "color" not in text and "サイトマップ" not in text


def test_html_without_declared_charset_and_title_uses_detection_and_h1(tmp_path: Path) -> None:
    html = (
        "<html><body><h1>顧客管理の手引き</h1>"
        "<p>取引時確認は、口座開設の際に行わなければならない。</p></body></html>"
    )
    path = tmp_path / "page.htm"
    path.write_bytes(html.encode("cp932"))
    doc = read_document(path)
    assert doc.title == "顧客管理の手引き"
    assert "取引時確認は、口座開設の際に行わなければならない。" in doc.pages[0].text


# -- text and Markdown -----------------------------------------------------------------------------------


def test_markdown_title_and_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "manual.md"
    path.write_bytes("\ufeff# Compliance Manual\n\n## 1. Purpose\n\nStaff must  follow it.   \n".encode())
    doc = read_document(path)
    assert doc.format == "markdown"
    assert doc.title == "Compliance Manual"
    assert doc.pages[0].text == "# Compliance Manual\n\n## 1. Purpose\n\nStaff must follow it."


def test_plain_text_in_cp932_is_detected(tmp_path: Path) -> None:
    text = "本人確認事務の手引き\n口座開設時には、本人確認書類の原本の提示を受けること。\n"
    path = tmp_path / "tebiki.txt"
    path.write_bytes(text.encode("cp932"))
    doc = read_document(path)
    assert doc.format == "text"
    assert doc.title == "本人確認事務の手引き"
    assert "本人確認書類の原本の提示を受けること。" in doc.pages[0].text


def test_the_type_comes_from_the_content_and_a_disagreeing_extension_is_refused(
    tmp_path: Path, sample_pdf: Path
) -> None:
    """A text file renamed .pdf was once ingested as an active document titled "hello"."""
    hello = tmp_path / "hello.pdf"
    hello.write_text("hello\nworld\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"^file name says a PDF \(\.pdf\) but the content is plain text"):
        read_document(hello)
    disguised = tmp_path / "really_a_pdf.txt"
    disguised.write_bytes(sample_pdf.read_bytes())
    with pytest.raises(IngestError, match=r"says plain text \(\.txt\) but the content is a PDF"):
        read_document(disguised)
    html_as_txt = tmp_path / "page.txt"
    html_as_txt.write_text("<!doctype html><html><body><p>本文です。</p></body></html>", encoding="utf-8")
    with pytest.raises(IngestError, match=r"says plain text \(\.txt\) but the content is an HTML page"):
        read_document(html_as_txt)
    no_extension = tmp_path / "AML_VER09"
    no_extension.write_bytes(sample_pdf.read_bytes())
    with pytest.raises(IngestError, match="^file name has no extension but the content is a PDF"):
        read_document(no_extension)
    notes = tmp_path / "notes.log"  # another extension: accepted for plain text
    notes.write_text("窓口業務の記録\n本文です。", encoding="utf-8")
    assert read_document(notes).format == "text"
    assert read_document(sample_pdf).format == "pdf"


# -- DOCX ------------------------------------------------------------------------------------------------


def test_docx_headings_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("第1章 総則", level=1)
    document.add_paragraph("本要領は、口座開設時の本人確認について定める。")
    document.add_heading("1.1 適用範囲", level=2)
    document.add_paragraph("本要領は全営業店に適用する。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "書類"
    table.cell(0, 1).text = "確認事項"
    table.cell(1, 0).text = "運転免許証"
    table.cell(1, 1).text = "氏名・住居・生年月日"
    document.add_paragraph("以上")
    path = tmp_path / "youryou.docx"
    document.save(str(path))

    doc = read_document(path)
    assert doc.format == "docx"
    assert doc.title == "第1章 総則"  # no core title: the first heading
    assert doc.pages[0].text.split("\n") == [
        "# 第1章 総則",
        "本要領は、口座開設時の本人確認について定める。",
        "## 1.1 適用範囲",
        "本要領は全営業店に適用する。",
        "書類 | 確認事項",
        "運転免許証 | 氏名・住居・生年月日",
        "以上",
    ]

    document.core_properties.title = "口座開設事務要領"
    document.save(str(path))
    assert read_document(path).title == "口座開設事務要領"


# -- e-Gov law XML ---------------------------------------------------------------------------------------

EGOV_XML = """<?xml version="1.0" encoding="UTF-8"?>
<DataRoot><Result><Code>0</Code></Result><ApplData><LawFullText>
<Law Era="Heisei" Lang="ja" LawType="Act" Num="022" Year="19">
  <LawNum>平成十九年法律第二十二号</LawNum>
  <LawBody>
    <LawTitle>犯罪による収益の移転防止に関する法律</LawTitle>
    <TOC><TOCLabel>目次</TOCLabel><TOCChapter Num="1"><ChapterTitle>第一章　総則</ChapterTitle>
      <ArticleRange>（第一条―第三条）</ArticleRange></TOCChapter></TOC>
    <MainProvision>
      <Chapter Num="1">
        <ChapterTitle>第一章　総則</ChapterTitle>
        <Article Num="1">
          <ArticleCaption>（目的）</ArticleCaption>
          <ArticleTitle>第一条</ArticleTitle>
          <Paragraph Num="1"><ParagraphNum/>
            <ParagraphSentence><Sentence Num="1">この法律は、犯罪による収益の移転を防止することを目的と
する。</Sentence>
            </ParagraphSentence>
          </Paragraph>
        </Article>
        <Article Num="2">
          <ArticleCaption>（定義）</ArticleCaption>
          <ArticleTitle>第二条</ArticleTitle>
          <Paragraph Num="1"><ParagraphNum/>
            <ParagraphSentence><Sentence>この法律において「犯罪による収益」とは、犯罪収益等をいう。</Sentence></ParagraphSentence>
          </Paragraph>
          <Paragraph Num="2"><ParagraphNum>２</ParagraphNum>
            <ParagraphSentence><Sentence>この法律において「特定事業者」とは、次に掲げる者をいう。</Sentence></ParagraphSentence>
            <Item Num="1"><ItemTitle>一</ItemTitle>
              <ItemSentence><Sentence>銀行</Sentence></ItemSentence></Item>
            <Item Num="2"><ItemTitle>二</ItemTitle><ItemSentence>
              <Column><Sentence>信用金庫</Sentence></Column><Column><Sentence>信用金庫連合会を含む。</Sentence></Column>
            </ItemSentence>
              <Subitem1 Num="1"><Subitem1Title>イ</Subitem1Title>
                <Subitem1Sentence><Sentence><Ruby>貸<Rt>かし</Rt></Ruby>金業者</Sentence></Subitem1Sentence>
              </Subitem1>
            </Item>
          </Paragraph>
        </Article>
      </Chapter>
    </MainProvision>
    <SupplProvision Extract="true">
      <SupplProvisionLabel>附　則</SupplProvisionLabel>
      <Article Num="1"><ArticleCaption>（施行期日）</ArticleCaption><ArticleTitle>第一条</ArticleTitle>
        <Paragraph Num="1"><ParagraphNum/>
          <ParagraphSentence><Sentence>この法律は、公布の日から施行する。</Sentence>
        </ParagraphSentence></Paragraph>
      </Article>
    </SupplProvision>
  </LawBody>
</Law></LawFullText></ApplData></DataRoot>
"""


def test_egov_xml_keeps_the_statute_structure(tmp_path: Path) -> None:
    path = tmp_path / "content.xml"
    path.write_text(EGOV_XML, encoding="utf-8")
    doc = read_document(path)
    assert doc.format == "egov-xml"
    assert doc.title == "犯罪による収益の移転防止に関する法律"
    assert doc.pages[0].text.split("\n") == [
        "第一章　総則",
        "第一条　（目的）　この法律は、犯罪による収益の移転を防止することを目的とする。",
        "第二条　（定義）　この法律において「犯罪による収益」とは、犯罪収益等をいう。",
        "２　この法律において「特定事業者」とは、次に掲げる者をいう。",
        "一　銀行",
        "二　信用金庫　信用金庫連合会を含む。",
        "イ　貸金業者",  # ruby reading dropped
        "附　則　抄",
        "第一条　（施行期日）　この法律は、公布の日から施行する。",
    ]


def test_xml_with_entity_declarations_is_refused(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE Law [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>\n'
        "<Law><LawBody><LawTitle>&b;</LawTitle></LawBody></Law>\n"
    )
    path = tmp_path / "bomb.xml"
    path.write_text(bomb, encoding="utf-8")
    with pytest.raises(IngestError, match="refused for safety"):
        read_document(path)


def test_other_xml_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text('<?xml version="1.0"?><rss><channel><title>x</title></channel></rss>', encoding="utf-8")
    with pytest.raises(IngestError, match="unsupported file type: XML"):
        read_document(path)


# -- refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(IngestError, match="^empty file$"):
        read_document(path)


def test_png_is_unsupported_whatever_its_name(tmp_path: Path) -> None:
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
        b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    path = tmp_path / "scan.pdf"
    path.write_bytes(png)
    with pytest.raises(IngestError, match="unsupported file type: PNG image"):
        read_document(path)


def test_zip_that_is_not_docx_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "archive.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(IngestError, match=r"unsupported file type: ZIP archive"):
        read_document(path)


def test_binary_junk_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(IngestError, match="unsupported file type"):
        read_document(path)


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * (1024 * 1024 + 1))
    with pytest.raises(IngestError, match="^file is larger than the limit of 1 MB$"):
        read_document(path, max_bytes=1024 * 1024)
    assert read_document(path, max_bytes=2 * 1024 * 1024).format == "text"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot read file"):
        read_document(tmp_path / "nope.pdf")


# -- the shared corpus -----------------------------------------------------------------------------------


@pytest.mark.corpus
def test_corpus_aes_encrypted_jmlsg_reads() -> None:
    path = corpus_file("en", "aml_regulatory", "jmlsg", "JMLSG-Part-I.pdf")
    doc = read_document(path)  # about 10-15 s: 216 pages of AES-encrypted PDF
    assert doc.format == "pdf"
    assert doc.page_count > 200
    assert "Joint Money Laundering Steering Group" in doc.title
    text = "\n".join(p.text for p in doc.pages)
    assert "money laundering" in text.lower()
    assert "MLRO" in text


@pytest.mark.corpus
def test_corpus_fsa_guideline_pdf() -> None:
    doc = read_document(corpus_file("ja", "fsa_amlcft", "211122_amlcft_guidelines.pdf"))
    assert doc.page_count == 35
    assert doc.title == "マネー・ローンダリング及びテロ資金供与対策に関するガイドライン"
    assert "（ⅴ） 疑わしい取引の届出" in doc.pages[16].text
    assert doc.warnings == []


@pytest.mark.corpus
def test_corpus_shift_jis_statute_html() -> None:
    name = "犯罪による収益の移転防止に関する法律.html"
    doc = read_document(corpus_file("ja", "egov_laws_2013", "html", name))
    assert doc.format == "html"
    assert doc.title == "犯罪による収益の移転防止に関する法律"
    lines = doc.pages[0].text.split("\n")
    assert any(line.startswith("第一条　この法律は、犯罪による収益が") for line in lines)
    assert "一　銀行" in lines
