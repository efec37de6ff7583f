"""Generate the sample documents under ``samples/`` from the Markdown sources in ``samples/src/``.

The samples describe a fictional bank (さくら未来銀行 / Sakura Mirai Bank) and were written by
this project. Outputs:

- ``samples/ja_account_opening_manual.pdf``              Japanese manual, edition 1 (ingested by ``make run``)
- ``samples/en_gifts_and_aml_manual.md``                English manual, copied as is
- ``samples/editions/ja_account_opening_manual_v2.pdf``  Japanese manual, edition 2 (same title)
- ``samples/editions/en_gifts_and_aml_manual.docx``      English manual as DOCX (admin upload demo)

PDFs use reportlab's built-in Japanese CID fonts (nothing is embedded, no font files needed) and are
written with ``invariant=1``; the DOCX zip gets fixed timestamps, so re-running does not change bytes.
After writing, every PDF is read back with pypdf to check that each heading and each （１）/① item
starts a line, in document order.

Usage: python scripts/make_samples.py [--show-pages]
"""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from docx import Document
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate

from core.cli import ArgumentParser, run

PROG = "python -m scripts.make_samples"
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "samples" / "src"
OUT = ROOT / "samples"

AUTHOR_JA = "さくら未来銀行 コンプライアンス部（架空）"
AUTHOR_EN = "Sakura Mirai Bank Compliance Department (fictional)"
FIXED_TIME = datetime(2024, 4, 1, tzinfo=UTC)
ZIP_TIME = (2024, 4, 1, 0, 0, 0)

MIN_FONT, GOTHIC_FONT = "HeiseiMin-W3", "HeiseiKakuGo-W5"

# Line prefixes that start a sub-item: （１） / (1) and ① … ⑳.
ITEM_RE = re.compile(r"^(（[０-９]+）|\([0-9]+\))\s*")
LIST_RE = re.compile(r"^([\u2460-\u2473])\s*")


@dataclass(frozen=True)
class Block:
    kind: str
    """title | meta | note | h1 | h2 | item | list | bullet | para"""
    text: str


def parse_markdown(text: str) -> list[Block]:
    """The small Markdown subset the sources use: one block per non-blank line."""
    blocks: list[Block] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# "):
            blocks.append(Block("title", line[2:].strip()))
        elif line.startswith("## "):
            blocks.append(Block("h1", line[3:].strip()))
        elif line.startswith("### "):
            blocks.append(Block("h2", line[4:].strip()))
        elif line.startswith("> "):
            blocks.append(Block("note", line[2:].strip()))
        elif line.startswith("- "):
            blocks.append(Block("bullet", line[2:].strip()))
        elif ITEM_RE.match(line):
            blocks.append(Block("item", line))
        elif LIST_RE.match(line):
            blocks.append(Block("list", line))
        elif not any(b.kind.startswith("h") for b in blocks):
            blocks.append(Block("meta", line))
        else:
            blocks.append(Block("para", line))
    return blocks


# --------------------------------------------------------------------------------------------- PDF
#
# reportlab's Paragraph positions hanging indents with relative ``Td`` moves and ends every paragraph
# with ``T*``; pypdf turns those into stray spaces at line starts. So the PDFs are set with a small
# flowable that wraps Japanese text itself and draws every line as its own text object.

NO_LINE_START = set(
    "、。，．・：；？！）」』】〕｝〉》ー々ゝゞぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ,.:;!?)]"
)
NO_LINE_END = set("（「『【〔｛〈《([")
TOKEN_RE = re.compile(r"[!-~]+|\s+|.")
"""Latin runs (words, numbers such as 5,000) stay whole; anything else breaks between characters."""


@dataclass(frozen=True)
class TextStyle:
    font: str = MIN_FONT
    size: float = 10.5
    leading: float = 18
    space_before: float = 0
    space_after: float = 0
    align: str = "left"
    """left | center | right"""
    keep_with_next: bool = False
    gray: float = 0
    box: bool = False


BODY = TextStyle()
STYLES = {
    "title": TextStyle(font=GOTHIC_FONT, size=17, leading=26, align="center", space_after=10),
    "meta": TextStyle(size=9, leading=14, align="right"),
    "note": TextStyle(size=8.5, leading=13, gray=0.35, box=True, space_before=10, space_after=14),
    "h1": TextStyle(
        font=GOTHIC_FONT, size=14, leading=20, space_before=14, space_after=6, keep_with_next=True
    ),
    "h2": TextStyle(
        font=GOTHIC_FONT, size=11, leading=17, space_before=7, space_after=1, keep_with_next=True
    ),
}
BOX_PADDING = 5


def wrap_cjk(text: str, font: str, size: float, first: tuple[float, float], rest: tuple[float, float]):
    """Greedy line breaking by character width with simple kinsoku (禁則) rules.

    ``first`` / ``rest`` are (x offset, width) of the first and following lines. Returns [(x, line)].
    A closing mark that does not fit hangs past the margin (ぶら下げ) rather than start a line.
    """
    lines: list[tuple[float, str]] = []
    (x, limit), current, used, hung = first, [], 0.0, False
    for token in TOKEN_RE.findall(text):
        width = stringWidth(token, font, size)
        if token.isspace() and not current:
            continue
        if not current or used + width <= limit + 0.01:
            current.append(token)
            used += width
            continue
        if token in NO_LINE_START and not hung:
            current.append(token)
            used, hung = used + width, True
            continue
        carry = [] if token.isspace() else [token]
        if token in NO_LINE_START:  # second closer in a row: take the character before along
            while len(current) > 1 and current[-1] in NO_LINE_START:
                carry.insert(0, current.pop())
            if len(current) > 1:
                carry.insert(0, current.pop())
        while len(current) > 1 and current[-1] in NO_LINE_END:
            carry.insert(0, current.pop())
        lines.append((x, "".join(current).rstrip()))
        (x, limit), current, hung = rest, carry, False
        used = sum(stringWidth(t, font, size) for t in current)
    if current:
        lines.append((x, "".join(current).rstrip()))
    return lines


def draw_line(canvas, x: float, y: float, text: str, font: str, size: float) -> None:
    """``BT x y Tm (text) Tj ET``: unlike ``drawString`` no trailing ``T*``, which pypdf would read as a
    line move and then turn the next line's indentation into a leading space."""
    line = canvas.beginText(x, y)
    line.setFont(font, size)
    line.textOut(text)
    canvas.drawText(line)


class TextBlock(Flowable):
    """One paragraph; every line is its own text object at an absolute position (see ``draw_line``)."""

    def __init__(
        self,
        text: str,
        style: TextStyle,
        *,
        prefix: str = "",
        indent: float = 0.0,
        lines: list[tuple[float, str]] | None = None,
        outline_level: int | None = None,
    ):
        super().__init__()
        self.text, self.style, self.prefix, self.indent = text, style, prefix, indent
        self.lines = lines
        self.outline_level = outline_level
        self.keepWithNext = style.keep_with_next
        self.spaceBefore, self.spaceAfter = style.space_before, style.space_after

    def _layout(self, avail_width: float) -> None:
        if self.lines is not None:
            return
        s = self.style
        pad = BOX_PADDING if s.box else 0
        width = avail_width - 2 * pad
        if self.prefix:  # hanging indent: wrapped lines align after （１） / ①
            hang = self.indent + stringWidth(self.prefix, s.font, s.size)
            first, rest = (self.indent, width - self.indent), (hang, width - hang)
        elif s.align == "left" and not s.box and self.indent:  # paragraph: first line indented
            first, rest = (self.indent, width - self.indent), (0.0, width)
        else:
            first = rest = (0.0, width)
        lines = wrap_cjk(self.text, s.font, s.size, first, rest)
        if s.align != "left":
            shift = 0.5 if s.align == "center" else 1.0
            lines = [(x + shift * (width - x - stringWidth(t, s.font, s.size)), t) for x, t in lines]
        self.lines = [(x + pad, t) for x, t in lines]

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self._layout(avail_width)
        pad = BOX_PADDING if self.style.box else 0
        self.width = avail_width
        self.height = len(self.lines) * self.style.leading + 2 * pad
        return self.width, self.height

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        self._layout(avail_width)
        fit = int(avail_height // self.style.leading)
        if self.style.box or fit < min(2, len(self.lines)) or fit >= len(self.lines):
            return []
        head = TextBlock(
            self.text,
            replace(self.style, space_after=0),
            lines=self.lines[:fit],
            outline_level=self.outline_level,
        )
        tail = TextBlock(self.text, replace(self.style, space_before=0), lines=self.lines[fit:])
        return [head, tail]

    def draw(self) -> None:
        s, canvas = self.style, self.canv
        pad = BOX_PADDING if s.box else 0
        if s.box:
            canvas.setStrokeGray(0.5)
            canvas.setLineWidth(0.5)
            canvas.rect(0, 0, self.width, self.height)
        canvas.setFillGray(s.gray)
        for number, (x, line) in enumerate(self.lines, start=1):
            baseline = self.height - pad - number * s.leading + (s.leading - s.size) / 2 + 0.12 * s.size
            draw_line(canvas, x, baseline, line, s.font, s.size)


def _flowable(block: Block) -> TextBlock:
    size = BODY.size
    if block.kind == "item":
        return TextBlock(block.text, BODY, prefix=ITEM_RE.match(block.text).group(0))
    if block.kind == "list":
        return TextBlock(block.text, BODY, prefix=LIST_RE.match(block.text).group(0), indent=2 * size)
    if block.kind == "bullet":
        return TextBlock("・" + block.text, BODY, prefix="・", indent=size)
    if block.kind == "para":
        return TextBlock(block.text, BODY, indent=size)
    level = {"h1": 0, "h2": 1}.get(block.kind)
    return TextBlock(block.text, STYLES[block.kind], outline_level=level)


def build_pdf(blocks: list[Block], out: Path, *, subject: str, lang: str = "ja-JP") -> None:
    for name in (MIN_FONT, GOTHIC_FONT):
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(name))
    title = next(b.text for b in blocks if b.kind == "title")

    def footer(canvas, doc) -> None:
        # Drawn at page end so that text extraction returns it after the page body.
        canvas.saveState()
        label = f"- {doc.page} -"
        draw_line(canvas, (A4[0] - stringWidth(label, MIN_FONT, 9)) / 2, 12 * mm, label, MIN_FONT, 9)
        canvas.restoreState()

    class Doc(BaseDocTemplate):
        def afterFlowable(self, flowable) -> None:
            level = getattr(flowable, "outline_level", None)
            if level is not None:
                key = f"s{len(self.outline_keys)}"  # deterministic (no id())
                self.outline_keys.append(key)
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(flowable.text, key, level=level)

    doc = Doc(
        str(out),
        pagesize=A4,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=22 * mm,
        bottomMargin=24 * mm,
        title=title,
        author=AUTHOR_JA,
        subject=subject,
        creator="scripts/make_samples.py",
        lang=lang,
        invariant=1,
    )
    doc.outline_keys = []
    frame = Frame(
        doc.leftMargin,
        doc.bottomMargin,
        doc.width,
        doc.height,
        id="body",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPageEnd=footer)])
    doc.build([_flowable(block) for block in blocks])


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", text)


def verify_pdf(path: Path, blocks: list[Block], *, show_pages: bool = False) -> int:
    """Read ``path`` back with pypdf and return its page count.

    Every heading, （１） item and ① item must start an extracted line (no leading space), in document
    order; all other text must be present (line breaks aside); the metadata title must be set.
    """
    reader = PdfReader(path)
    lines: list[tuple[int, str]] = []
    for number, page in enumerate(reader.pages, start=1):
        lines += [(number, line) for line in page.extract_text().splitlines() if line.strip()]
    body = _norm("".join(text for _, text in lines))

    errors, cursor = [], 0
    for block in blocks:
        if block.kind not in ("title", "h1", "h2", "item", "list"):
            if _norm(block.text) not in body:
                errors.append(f"text not found: {block.text[:30]}")
            continue
        for index in range(cursor, len(lines)):
            page, line = lines[index]
            if line.startswith(block.text[: min(10, len(line))]):
                cursor = index + 1
                if show_pages and block.kind in ("h1", "h2"):
                    print(f"    p.{page}  {block.text}")
                break
        else:
            errors.append(f"not at a line start (or out of order): {block.text[:30]}")
    if reader.metadata is None or reader.metadata.title != blocks[0].text:
        errors.append("metadata title missing or wrong")
    if errors:
        raise SystemExit(f"{path}: " + "; ".join(errors))
    return len(reader.pages)


# -------------------------------------------------------------------------------------------- DOCX


def build_docx(blocks: list[Block], out: Path) -> None:
    document = Document()
    style_for = {
        "title": "Title",
        "h1": "Heading 1",
        "h2": "Heading 2",
        "note": "Quote",
        "bullet": "List Bullet",
    }
    for block in blocks:
        document.add_paragraph(block.text, style=style_for.get(block.kind, "Normal"))

    props = document.core_properties
    props.title = next(b.text for b in blocks if b.kind == "title")
    props.author = props.last_modified_by = AUTHOR_EN
    props.subject = "Edition 1"
    props.language = "en-US"
    props.created = props.modified = FIXED_TIME
    props.revision = 1

    buffer = io.BytesIO()
    document.save(buffer)
    _write_stable_zip(buffer.getvalue(), out)


def _write_stable_zip(data: bytes, out: Path) -> None:
    """Rewrite a zip with fixed entry timestamps so identical content gives identical bytes."""
    target = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    out.write_bytes(target.getvalue())


# -------------------------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--show-pages", action="store_true", help="print the page of every heading")
    args = parser.parse_args(argv)

    (OUT / "editions").mkdir(parents=True, exist_ok=True)
    ja_v1 = parse_markdown((SRC / "ja_account_opening_manual.md").read_text(encoding="utf-8"))
    ja_v2 = parse_markdown((SRC / "ja_account_opening_manual_v2.md").read_text(encoding="utf-8"))
    en = parse_markdown((SRC / "en_gifts_and_aml_manual.md").read_text(encoding="utf-8"))

    pdfs = [
        (ja_v1, OUT / "ja_account_opening_manual.pdf", "第1版"),
        (ja_v2, OUT / "editions" / "ja_account_opening_manual_v2.pdf", "第2版"),
    ]
    for blocks, path, subject in pdfs:
        build_pdf(blocks, path, subject=subject)
        pages = verify_pdf(path, blocks, show_pages=args.show_pages)
        print(f"{path.relative_to(ROOT)}: {pages} pages, {path.stat().st_size:,} bytes")

    md_out = OUT / "en_gifts_and_aml_manual.md"
    shutil.copyfile(SRC / "en_gifts_and_aml_manual.md", md_out)
    print(f"{md_out.relative_to(ROOT)}: {md_out.stat().st_size:,} bytes")

    docx_out = OUT / "editions" / "en_gifts_and_aml_manual.docx"
    build_docx(en, docx_out)
    print(f"{docx_out.relative_to(ROOT)}: {docx_out.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    run(PROG, main)
