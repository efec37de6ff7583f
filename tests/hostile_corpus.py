"""A corpus of hostile uploads, generated at test time (nothing large is committed): zip and entity bombs in
DOCX and e-Gov XML, deeply nested and tag-flooded HTML, a PDF with JavaScript, an opening action and an
embedded file, a 200 MB (sparse) file, wrong extensions, mislabelled encodings, control characters in a file
name; and good files to go with them in the same batch.

Each case says what a per-file error must match (``error``), or that the file is ingested, with the warning it
must carry (``warning``) and a phrase of its text that must then be searchable (``phrase``)."""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    tries: str
    error: str | None = None
    warning: str | None = None
    phrase: str | None = None


def _docx(paragraph: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _rewrite_docx(src: bytes, target: Path, document_xml) -> None:
    """A copy of a DOCX whose word/document.xml is written by ``document_xml(original, fh)``."""
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename == "word/document.xml":
                with zout.open("word/document.xml", "w", force_zip64=True) as fh:
                    document_xml(zin.read(info), fh)
            else:
                zout.writestr(info, zin.read(info))


def docx_zip_bomb(target: Path, unpacked_mb: int = 1024) -> Path:
    """A real DOCX whose document.xml inflates to ``unpacked_mb`` MB (blanks between its tags): ~1 MB packed."""
    def write(xml: bytes, fh) -> None:
        head, tail = xml.split(b"<w:body>", 1)
        fh.write(head + b"<w:body>")
        blanks = b" " * MB
        for _ in range(unpacked_mb):
            fh.write(blanks)
        fh.write(tail)

    _rewrite_docx(_docx("爆弾"), target, write)
    return target


LAUGHS = "".join(
    [f'<!ENTITY l0 "{"ha" * 5}">']
    + [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
)


def docx_entity_bomb(target: Path) -> Path:
    """A DOCX whose document.xml declares billion laughs (10^9 expansions) and uses them."""
    def write(xml: bytes, fh) -> None:
        declaration, rest = xml.split(b"?>", 1)
        fh.write(declaration + b"?>" + f"<!DOCTYPE w:document [{LAUGHS}]>".encode())
        fh.write(rest.replace("笑い".encode(), b"&l9;"))

    _rewrite_docx(_docx("笑い"), target, write)
    return target


def _law(title: str, sentence: str, encoding: str = "UTF-8", doctype: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>{doctype}<Law><LawBody><LawTitle>{title}</LawTitle>'
        "<MainProvision><Article><ArticleTitle>第一条</ArticleTitle><Paragraph><ParagraphSentence>"
        f"<Sentence>{sentence}</Sentence></ParagraphSentence></Paragraph></Article></MainProvision></LawBody></Law>"
    )


def pdf_with_active_content(target: Path, lines: list[str]) -> Path:
    """A text PDF that also carries document JavaScript, a JavaScript opening action, a link annotation that
    runs JavaScript, and an embedded executable."""
    import pypdf
    from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, TextStringObject

    from tests.test_readers import make_pdf

    plain = make_pdf(target.with_suffix(".plain"), [lines])
    writer = pypdf.PdfWriter(clone_from=str(plain))
    with warnings.catch_warnings():  # deprecated in favour of add_open_action, which is not document JavaScript
        warnings.simplefilter("ignore", DeprecationWarning)
        writer.add_js("app.alert('pwned'); this.exportDataObject({cName: 'payload.exe', nLaunch: 2});")
    writer.add_attachment("payload.exe", b"MZ\x90\x00" + b"\x00" * 200)
    run_js = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("app.launchURL('http://example.invalid/x');")})
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(run_js)
    link = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([FloatObject(50), FloatObject(700), FloatObject(300), FloatObject(720)]),
        NameObject("/A"): writer._add_object(run_js),
    })
    writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(link)])
    writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): writer._add_object(run_js)})
    with target.open("wb") as fh:
        writer.write(fh)
    plain.unlink()
    return target


def sparse_file(target: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (a PDF header, then a hole)."""
    with target.open("wb") as fh:
        fh.write(b"%PDF-1.7\n")
        fh.truncate(size)
    return target


CONTROL_NAME = "窓口\x1b[31m案内\x07\r.md"
"""A file name with an escape sequence, a bell and a carriage return."""

CASES = [
    # good files, ingested in the same batch as the bad ones
    Case("good_exchange_hours.md", "an ordinary Markdown manual",
         phrase="外貨両替の受付は平日の午前10時から午後2時まで"),
    Case("good_wire_limits.txt", "an ordinary text file",
         phrase="Outbound wires above 30 million yen need two approvers"),
    Case(CONTROL_NAME, "control characters in the file name", phrase="窓口の案内板は毎朝確認する"),
    Case("active_content.pdf", "a PDF with JavaScript, an opening action, a JavaScript link and an embedded .exe",
         warning=r"PDF contains JavaScript and an action run on opening \(JavaScript\) and 1 embedded file",
         phrase="貸金庫の利用申込は本人が来店して行う"),
    Case("sjis_declared_utf8.html", "Shift_JIS bytes under <meta charset=utf-8>",
         warning="declares its encoding as utf-8 but is Shift_JIS", phrase="両替手数料は一件につき五百円とする"),
    Case("sjis_declared_utf8.xml", "Shift_JIS bytes under <?xml encoding=UTF-8?> (e-Gov law XML)",
         warning="declares its encoding as UTF-8 but is Shift_JIS", phrase="この政令は外貨両替の届出について定める"),
    # bad files: one clear error each
    Case("hello.pdf", "a text file renamed .pdf",
         error=r"^file name says a PDF \(\.pdf\) but the content is plain text"),
    Case("report.docx", "a PDF named .docx",
         error=r"^file name says a Word document \(\.docx\) but the content is a PDF"),
    Case("minutes.pdf", "a Word document named .pdf",
         error=r"^file name says a PDF \(\.pdf\) but the content is a Word document"),
    Case("bomb.docx", "DOCX whose document.xml inflates to 1 GB (zip bomb)",
         error=r"^Word document unpacks to 1,02\d MB, more than the limit of 256 MB"),
    Case("dense_bomb.docx", "DOCX whose document.xml inflates 100 MB from about 100 KB (under the size limit)",
         error=r"^Word document part word/document.xml is packed [\d,]+:1, more than 200:1"),
    Case("laughs.docx", "billion laughs inside a DOCX", error="^Word document contains DTD or entity declarations"),
    Case("laughs.xml", "billion laughs in e-Gov law XML", error="uses entity or DTD declarations, which are refused"),
    Case("xxe.xml", "an external entity (file:///etc/passwd) in e-Gov law XML",
         error="uses entity or DTD declarations, which are refused"),
    Case("deep.html", "HTML nested 100,000 levels deep", error="^HTML page is nested more than 500 levels deep"),
    Case("tag_flood.html", "HTML with 300,000 tags (1 GB in BeautifulSoup per million)",
         error=r"^HTML page has 300,00\d tags, more than the limit of 200,000"),
    Case("huge.pdf", "a 200 MB file (sparse)", error=r"^file is larger than the limit of 100 MB$"),
    Case("scan.pdf", "a PNG image named .pdf", error="^unsupported file type: PNG image$"),
]

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def build(folder: Path) -> dict[str, Path]:
    """Every case's file in ``folder``, by case name."""
    from tests.test_readers import make_pdf

    folder.mkdir(parents=True, exist_ok=True)
    phrase = {c.name: c.phrase for c in CASES}
    files: dict[str, Path] = {}

    def put(name: str, data: bytes | str) -> None:
        path = folder / name
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        files[name] = path

    put("good_exchange_hours.md", f"# 外貨両替の手引き\n\n{phrase['good_exchange_hours.md']}。\n")
    put("good_wire_limits.txt", f"Wire transfer desk rules\n\n{phrase['good_wire_limits.txt']}.\n")
    put(CONTROL_NAME, f"# 窓口の手順\n\n{phrase[CONTROL_NAME]}。\n")
    files["active_content.pdf"] = pdf_with_active_content(
        folder / "active_content.pdf", ["貸金庫規程", phrase["active_content.pdf"] + "。"])
    put("sjis_declared_utf8.html", (
        '<html><head><meta charset="utf-8"><title>両替手数料規程</title></head>'
        f"<body><p>{phrase['sjis_declared_utf8.html']}。</p></body></html>").encode("cp932"))
    put("sjis_declared_utf8.xml", _law("外貨両替令", phrase["sjis_declared_utf8.xml"] + "。").encode("cp932"))

    put("hello.pdf", "hello\nworld\n")
    put("report.docx", make_pdf(folder / "report.tmp", [["月次報告"]]).read_bytes())
    (folder / "report.tmp").unlink()
    put("minutes.pdf", _docx("議事録"))
    files["bomb.docx"] = docx_zip_bomb(folder / "bomb.docx")
    files["dense_bomb.docx"] = docx_zip_bomb(folder / "dense_bomb.docx", unpacked_mb=100)
    files["laughs.docx"] = docx_entity_bomb(folder / "laughs.docx")
    put("laughs.xml", _law("&l9;", "笑い", doctype=f"<!DOCTYPE Law [{LAUGHS}]>"))
    put("xxe.xml", _law("&xxe;", "外部実体", doctype='<!DOCTYPE Law [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'))
    depth = 100_000
    put("deep.html", "<html><body>" + "<div>" * depth + "深い入れ子" + "</div>" * depth + "</body></html>")
    put("tag_flood.html", "<html><body>" + "<i>x</i>" * 300_000 + "</body></html>")
    files["huge.pdf"] = sparse_file(folder / "huge.pdf", 200 * MB)
    put("scan.pdf", PNG)
    assert set(files) == {c.name for c in CASES}
    return files
