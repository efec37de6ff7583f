"""e-Gov law XML (Law / LawBody with Part, Chapter, Article, Paragraph, Item elements): one line per
provision, numbered as the statute prints it; ruby readings dropped; DTDs and entities refused."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import IngestError
from ingest.document import Page, ParsedDocument
from ingest.readers.cleanup import clean_inline, file_title, short_title
from ingest.readers.decoding import XML_ENCODING, bom_encoding, codec_name, decode_text, try_decode


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _xtext(el) -> str:
    """Text of an element without ruby readings (Rt)."""
    parts = [el.text or ""]
    for child in el:
        if _local(child.tag) != "Rt":
            parts.append(_xtext(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _child(el, name: str):
    for child in el:
        if _local(child.tag) == name:
            return child
    return None


_FW = "\u3000"
_STRUCT_TITLES = {
    "Part": "PartTitle",
    "Chapter": "ChapterTitle",
    "Section": "SectionTitle",
    "Subsection": "SubsectionTitle",
    "Division": "DivisionTitle",
}
_SKIP_XML = {"TOC", "LawNum", "LawTitle", "Rt", "Fig"}


class _EgovLines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str) -> None:
        text = clean_inline(text)
        if text:
            self.lines.append(text)

    def sentence(self, el) -> str:
        """ParagraphSentence / ItemSentence / SubitemNSentence: sentences joined, columns spaced."""
        if el is None:
            return ""
        columns = [c for c in el if _local(c.tag) == "Column"]
        if columns:
            return _FW.join(clean_inline(_xtext(c)) for c in columns)
        return clean_inline(_xtext(el))

    def emit(self, el) -> None:  # noqa: C901 - one branch per e-Gov element kind
        tag = _local(el.tag)
        if tag in _SKIP_XML:
            return
        if tag in _STRUCT_TITLES:
            title = _child(el, _STRUCT_TITLES[tag])
            if title is not None:
                self.add(_xtext(title))
            for child in el:
                if _local(child.tag) != _STRUCT_TITLES[tag]:
                    self.emit(child)
        elif tag == "Article":
            self.article(el)
        elif tag == "Paragraph":
            self.paragraph(el, prefix="")
        elif tag == "Item" or re.fullmatch(r"Subitem\d+", tag):
            self.item(el, tag)
        elif tag == "SupplProvision":
            label = _child(el, "SupplProvisionLabel")
            text = clean_inline(_xtext(label)) if label is not None else "附則"
            if el.get("AmendLawNum"):
                text += f"{_FW}（{el.get('AmendLawNum')}）"
            if el.get("Extract") == "true":
                text += f"{_FW}抄"
            self.add(text)
            for child in el:
                if _local(child.tag) != "SupplProvisionLabel":
                    self.emit(child)
        elif tag.startswith(("Appdx", "SupplProvisionAppdx")) and len(el):
            title = next((c for c in el if _local(c.tag).endswith("Title")), None)
            related = _child(el, "RelatedArticleNum")
            head = "".join(clean_inline(_xtext(x)) for x in (title, related) if x is not None)
            if head:
                self.add(head)
            for child in el:
                if child is not title and child is not related:
                    self.emit(child)
        elif tag in ("TableStruct", "Table"):
            for child in el:
                self.emit(child)
        elif tag == "TableRow":
            cells = [clean_inline(_xtext(c)) for c in el if _local(c.tag) == "TableColumn"]
            line = " | ".join(c for c in cells if c)
            if line:
                self.lines.append(line)
        elif tag in ("Sentence", "ParagraphSentence", "ItemSentence") or tag.endswith("Sentence"):
            self.add(self.sentence(el))
        elif len(el):
            for child in el:
                self.emit(child)
        else:
            self.add(_xtext(el))

    def article(self, el) -> None:
        title_el = _child(el, "ArticleTitle")
        caption_el = _child(el, "ArticleCaption")
        head = clean_inline(_xtext(title_el)) if title_el is not None else ""
        caption = clean_inline(_xtext(caption_el)) if caption_el is not None else ""
        if caption:
            head = f"{head}{_FW}{caption}" if head else caption
        first = True
        for child in el:
            name = _local(child.tag)
            if name in ("ArticleTitle", "ArticleCaption"):
                continue
            if name == "Paragraph" and first:
                self.paragraph(child, prefix=head)
                first = False
            else:
                if first and head:
                    self.add(head)
                    first = False
                self.emit(child)
        if first and head:
            self.add(head)

    def paragraph(self, el, prefix: str) -> None:
        num_el = _child(el, "ParagraphNum")
        num = clean_inline(_xtext(num_el)) if num_el is not None else ""
        caption_el = _child(el, "ParagraphCaption")
        caption = clean_inline(_xtext(caption_el)) if caption_el is not None else ""
        sentence = self.sentence(_child(el, "ParagraphSentence"))
        parts = [p for p in (prefix, num if not prefix else "", caption, sentence) if p]
        self.add(_FW.join(parts))
        for child in el:
            if _local(child.tag) not in ("ParagraphNum", "ParagraphCaption", "ParagraphSentence"):
                self.emit(child)

    def item(self, el, tag: str) -> None:
        title_el = _child(el, f"{tag}Title")
        sentence_el = _child(el, f"{tag}Sentence")
        title = clean_inline(_xtext(title_el)) if title_el is not None else ""
        sentence = self.sentence(sentence_el)
        self.add(_FW.join(p for p in (title, sentence) if p))
        for child in el:
            if _local(child.tag) not in (f"{tag}Title", f"{tag}Sentence"):
                self.emit(child)


def _xml_source(data: bytes) -> tuple[bytes | str, list[str]]:
    """The bytes for the XML parser, or, when they are not in the encoding they declare (UTF-8 when none),
    the text decoded from what they are, with a warning (the parser then ignores the declaration)."""
    if bom_encoding(data):
        return data, []
    m = XML_ENCODING.search(data[:1024])
    declared = m.group(1).decode("ascii", "ignore") if m else "UTF-8"
    codec = codec_name(declared)
    if codec is None or try_decode(data, codec) is not None:
        return data, []
    text, warnings = decode_text(data, declared)
    return text, warnings


def read_egov_xml(data: bytes, path: Path) -> ParsedDocument:
    from xml.etree.ElementTree import ParseError

    try:
        import defusedxml.ElementTree as safe_et
        from defusedxml import DefusedXmlException
    except ImportError:  # pragma: no cover - defusedxml is installed; lxml without entity resolution
        safe_et = None
        DefusedXmlException = ValueError  # noqa: N806
    source, warnings = _xml_source(data)
    try:
        if safe_et is not None:
            root = safe_et.fromstring(source)
        else:  # pragma: no cover
            from lxml import etree

            parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
            root = etree.fromstring(data, parser=parser)
            warnings = []
    except DefusedXmlException as exc:
        raise IngestError("XML file uses entity or DTD declarations, which are refused for safety",
                          key="ingest_xml_entities") from exc
    except (ParseError, ValueError, SyntaxError) as exc:
        raise IngestError(f"XML is malformed ({exc})"[:300], key="ingest_xml_malformed",
                          params={"detail": str(exc)[:200]}) from exc
    law = (
        root if _local(root.tag) == "Law" else next((e for e in root.iter() if _local(e.tag) == "Law"), None)
    )
    body = law if law is not None else next((e for e in root.iter() if _local(e.tag) == "LawBody"), None)
    if body is None:
        raise IngestError("unsupported file type: XML document (only e-Gov law XML is supported)",
                          key="ingest_xml_not_egov")
    title_el = next((e for e in body.iter() if _local(e.tag) == "LawTitle"), None)
    title = short_title(clean_inline(_xtext(title_el))) if title_el is not None else ""
    lines = _EgovLines()
    law_body = body if _local(body.tag) == "LawBody" else _child(body, "LawBody")
    for child in law_body if law_body is not None else body:
        lines.emit(child)
    text = "\n".join(lines.lines)
    if not text.strip():
        raise IngestError("no text found in the e-Gov law XML", key="ingest_no_text_egov_xml")
    return ParsedDocument(format="egov-xml", title=title or file_title(path), pages=[Page(None, text)],
                          warnings=warnings, page_count=0)
