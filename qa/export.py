"""A conversation exported with its citations, as Markdown and as PDF.

The export holds what its reader may see now (the messages after :func:`qa.conversations.recheck`), with the
citations numbered as the reader saw them ([1], [2], … per answer). The PDF embeds a Japanese font (IPAex
Gothic, a TrueType font from Debian's fonts-ipaexfont-gothic: ``make fonts``) as a subset, so it reads the same
on any viewer; without that font it falls back to reportlab's HeiseiKakuGo-W5, a CID font the viewer supplies,
and logs that it did. The words around the content (headings, labels) come from the caller, in the reader's
language."""

from __future__ import annotations

import html
import io
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.schema import Answer, Citation
from qa.conversations import ReopenedMessage, SourceCheck
from qa.numbering import consecutive, renumbering

log = logging.getLogger(__name__)

EMBEDDED_FONTS = (
    Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    Path("/usr/share/fonts/truetype/fonts-japanese-gothic.ttf"),
)
EMBEDDED_FONT_NAME = "IPAexGothic"
CID_FONT_NAME = "HeiseiKakuGo-W5"


@dataclass(frozen=True)
class ExportLabels:
    """The export's own words, in the reader's language."""

    exported: str
    """e.g. "Exported {time} by {user}"; formatted with ``time`` and ``user``."""
    question: str
    answer: str
    sources: str
    version: str
    page: str
    section: str
    withheld: str
    superseded: str
    """formatted with ``version`` (the version in force now)"""
    withdrawn: str
    as_of: str
    """formatted with ``date``"""


@dataclass(frozen=True)
class _Turn:
    question: str
    answer: Answer | None
    checks: dict[int, SourceCheck]
    withheld: bool


def _turns(messages: list[ReopenedMessage]) -> list[_Turn]:
    turns: list[_Turn] = []
    question = ""
    for m in messages:
        if m.message.role == "user":
            question = m.message.content
            continue
        answer = m.message.answer
        shown = consecutive(answer) if answer is not None and not m.withheld else None
        checks = {}
        if shown is not None and answer is not None:  # the checks are by the stored number, shown by the reader's
            checks = {new: m.checks[old] for old, new in renumbering(answer).items() if old in m.checks}
        turns.append(_Turn(question, shown, checks, m.withheld))
        question = ""
    if question:
        turns.append(_Turn(question, None, {}, False))
    return turns


def _source_line(c: Citation, check: SourceCheck | None, labels: ExportLabels) -> str:
    parts = [f"[{c.n}] {c.title or c.source} ({c.source})", f"{labels.version} {c.version}"]
    if c.page:
        parts.append(f"{labels.page} {c.page}")
    if c.section:
        parts.append(f"{labels.section}: {c.section}")
    line = " · ".join(parts)
    if check is not None and check.state == "superseded":
        line += f" ({labels.superseded.format(version=check.active_version)})"
    elif check is not None and check.state == "withdrawn":
        line += f" ({labels.withdrawn})"
    return line


def to_markdown(title: str, messages: list[ReopenedMessage], labels: ExportLabels, user: str,
                exported_at: datetime) -> str:
    out = [f"# {title}", "", labels.exported.format(time=exported_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
                                                     user=user), ""]
    for i, turn in enumerate(_turns(messages), start=1):
        out += [f"## {labels.question} {i}", "", turn.question, ""]
        if turn.withheld:
            out += [f"**{labels.answer}**", "", labels.withheld, ""]
            continue
        if turn.answer is None:
            continue
        out += [f"**{labels.answer}**", "", turn.answer.answer, ""]
        if turn.answer.citations:
            out += [f"**{labels.sources}**", ""]
            for c in turn.answer.citations:
                out.append(f"- {_source_line(c, turn.checks.get(c.n), labels)}")
                if c.quote:
                    out.append(f"  > {' '.join(c.quote.split())}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _font() -> tuple[str, bool]:
    """The registered font for Japanese text and whether it is embedded."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    registered = pdfmetrics.getRegisteredFontNames()
    if EMBEDDED_FONT_NAME in registered:
        return EMBEDDED_FONT_NAME, True
    for path in EMBEDDED_FONTS:
        if path.is_file():
            pdfmetrics.registerFont(TTFont(EMBEDDED_FONT_NAME, str(path)))
            return EMBEDDED_FONT_NAME, True
    log.warning("no IPAex Gothic font (make fonts): the PDF export uses %s, which the viewer must supply",
                CID_FONT_NAME)
    if CID_FONT_NAME not in registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT_NAME))
    return CID_FONT_NAME, False


def _para(text: str) -> str:
    """Plain text as a reportlab paragraph (its mini-markup escaped, line breaks kept)."""
    return "<br/>".join(html.escape(line) for line in text.split("\n"))


def to_pdf(title: str, messages: list[ReopenedMessage], labels: ExportLabels, user: str,
           exported_at: datetime) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    font, _ = _font()
    body = ParagraphStyle("body", fontName=font, fontSize=10, leading=16, wordWrap="CJK")
    small = ParagraphStyle("small", parent=body, fontSize=8.5, leading=13, textColor=colors.HexColor("#444444"))
    quote = ParagraphStyle("quote", parent=small, leftIndent=8 * mm, textColor=colors.HexColor("#555555"))
    heading = ParagraphStyle("heading", parent=body, fontSize=12.5, leading=19, spaceBefore=8, spaceAfter=4)
    story = [Paragraph(_para(title), ParagraphStyle("title", parent=body, fontSize=16, leading=24)),
             Paragraph(_para(labels.exported.format(time=exported_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
                                                    user=user)), small),
             Spacer(1, 6 * mm)]
    for i, turn in enumerate(_turns(messages), start=1):
        story += [Paragraph(_para(f"{labels.question} {i}"), heading), Paragraph(_para(turn.question), body),
                  Spacer(1, 3 * mm)]
        if turn.withheld:
            story += [Paragraph(_para(labels.answer), heading), Paragraph(_para(labels.withheld), body)]
            continue
        if turn.answer is None:
            continue
        story += [Paragraph(_para(labels.answer), heading), Paragraph(_para(turn.answer.answer), body)]
        if turn.answer.citations:
            story += [Spacer(1, 2 * mm), Paragraph(_para(labels.sources), small)]
            for c in turn.answer.citations:
                story.append(Paragraph(_para(_source_line(c, turn.checks.get(c.n), labels)), small))
                if c.quote:
                    story.append(Paragraph(_para(" ".join(c.quote.split())), quote))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, title=title, author=user, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=16 * mm, bottomMargin=16 * mm)
    doc.build(story)
    return buffer.getvalue()
