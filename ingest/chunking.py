"""Structure-aware chunking of a :class:`ParsedDocument` for Japanese and English regulatory text.

The chunker walks the document's lines once:

1. clean-up: page-number lines, running headers/footers and table-of-contents pages are recognised;
2. headings are recognised (Markdown, 第X編/章/節/款/目, 第X条, 附則, Ⅱ－２, （３）, （ⅴ）, ①, 1.2.3,
   Article/Chapter/Part/Section/Recommendation/Rule N, ADGM rule numbers) and kept on a stack of
   ``(family, depth)`` entries, which gives every line its section path;
3. the lines of a section are joined into paragraphs (PDF line breaks inside a sentence disappear),
   paragraphs are split into sentences, and sentences are packed into chunks of at most ``max_tokens``
   tokens with ``overlap_sentences`` sentences of overlap. A chunk never spans two sections.

A heading is recognised by its shape *and* its context: numbered headings must be short and must not read
like running text, markers such as （１） or ① inside a statute article are items, a run of same-kind
markers with nothing between them is a list, and a line that continues a wrapped PDF line is not a heading.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.document import ChunkDraft, ParsedDocument

_LABEL_MAX = 60
_KNUM = "一二三四五六七八九十百千〇零"
_NUM = f"[{_KNUM}0-9０-９]+"
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_RE = re.compile(f"[{_CJK}]")
_KANA_RE = re.compile(r"[\u3040-\u30ff]")
_DASH = "－\\-‐‑–—−ー"
_PARTICLES = tuple("のにをはがでとへやもより、。，．・）」』")
_TERMINATORS = "。．！？!?"
_CLOSERS = "）」』】〕］｝〉》)]}”’\"'"

# -- heading patterns ------------------------------------------------------------------------------------

_RE_MD = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
_RE_JP_STRUCT = re.compile(rf"^第 ?({_NUM}) ?(編|章|節|款|目)((?:の{_NUM})*)(.*)$")
_RE_ARTICLE = re.compile(rf"^(第 ?{_NUM} ?条(?:の{_NUM})*)(.*)$")  # "第 ８ 条": PDF spacing
_RE_CAPTION = re.compile(r"^[（(]([^（）()。、，]{1,30})[）)]")
_RE_CAPTION_LINE = re.compile(r"^[（(][^（）()。、，0-9０-９ⅰ-ⅿ]{1,30}[）)]$")
_RE_SUPPL = re.compile(r"^附[ \u3000]*則(?=$|[ \u3000（(抄])(.*)$")
_RE_APPENDIX = re.compile(rf"^(別表|別紙|別記|様式)(第{_NUM})?(?=$|[ \u3000（(])(.*)$")
_RE_ROMAN = re.compile(rf"^([ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ]{{1,3}})((?:[{_DASH}][0-9０-９]{{1,3}})*)[.．]?[ \u3000]*(.*)$")
_RE_ROMAN_ASCII = re.compile(r"^([IVX]{1,5})\.\s+([A-Z].*)$")
_RE_PAREN_NUM = re.compile(r"^[（(]([0-9０-９]{1,3})[）)][ \u3000]*(.*)$")
_RE_PAREN_ROMAN = re.compile(r"^[（(]([ⅰⅱⅲⅳⅴⅵⅶⅷⅸⅹⅺⅻ]{1,3}|[ivx]{1,5})[）)][ \u3000]*(.*)$")
_RE_CIRCLED = re.compile(r"^([①-⑳㉑-㉟㊱-㊿])[ \u3000]*(.*)$")
_RE_ADGM = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.(\(\w{1,4}\)|Guidance(?:\.\d{1,3}\.?)?)(?=\s|$)[ \t]*(.*)$")
_RE_DOTTED = re.compile(r"^([0-9０-９]{1,3}(?:[.．][0-9０-９]{1,3})*)([.．]?)(.*)$")
_RE_HYPHEN_NUM = re.compile(rf"^([0-9０-９]{{1,2}}(?:[{_DASH}][0-9０-９]{{1,3}})+)[ \u3000]+(.+)$")
_EN_DEPTH = {
    "part": 1, "annex": 2, "appendix": 2, "schedule": 2, "chapter": 2, "section": 3, "article": 4,
    "recommendation": 4, "rule": 4,
}  # fmt: skip
_RE_EN = re.compile(
    r"^(Part|Chapter|Section|Article|Recommendation|Rule|Annex|Appendix|Schedule)\s+"
    r"(\d{1,4}[A-Za-z]?(?:\.\d{1,3})*|[IVXLC]{1,7}|[A-Z])(?=$|[\s.:–—-])[\s.:–—-]*(.*)$",
    re.I,
)
_JP_DEPTH = {"編": 1, "章": 2, "節": 3, "款": 4, "目": 5}
_ARTICLE_DEPTH = 6

# -- other line shapes -----------------------------------------------------------------------------------

_RE_MARKER = re.compile(
    rf"^(?:[・•●○◆◇■□▪‣※＊*>|]|[-–—]\s|[（(][^\s（）()]{{1,4}}[）)]|[①-⑳㉑-㊿]|[a-zA-Zａ-ｚＡ-Ｚ][.．)）]\s"
    rf"|[0-9０-９]{{1,3}}[.．)）](?![0-9０-９])|[【〔［]|[{_KNUM}]{{1,4}}[ \u3000]"
    rf"|[イロハニホヘトチリヌルヲワカヨタレソツネナラムアウエオキクケコ](?:[ \u3000]|[.．](?![0-9０-９]))"
    rf"|[０-９]{{1,3}}[ \u3000]|[0-9]{{1,3}}\u3000|第{_NUM}[条章節款目編]|附[ \u3000]*則|[ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩⅪⅫ]|#)"
)
_RE_MARKER_ONLY = re.compile(
    rf"^(?:[０-９]{{1,3}}|[{_KNUM}]{{1,4}}|[①-⑳㉑-㊿]|[（(][0-9０-９ⅰ-ⅿa-zａ-ｚアイウエオカキクケコ]{{1,3}}[）)]"
    rf"|[イロハニホヘトチリヌルヲワカヨタレソツネナラム]|第{_NUM}[条章節款目編](?:の{_NUM})*)$"
)
_RE_PARA_NUM = re.compile(r"^([０-９]{1,3}|[0-9]{1,3}(?=\u3000))[ \u3000]")
_RE_PAGE_NO = re.compile(
    r"^(?:[-－–—‐]?\s*[0-9０-９]{1,4}\s*[-－–—‐]?|(?:page|p\.?)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"
    r"|\d{1,4}\s*/\s*\d{1,4}|[ivxlc]{1,6}|[0-9０-９]{1,4}\s*ページ)$",
    re.I,
)
_RE_DOT_LEADER = re.compile(r"(?:[.．…‥·・_]\s?){4,}\s*[-－–—]?\s*[0-9０-９ivxlcIVXLC]{0,5}\s*[-－–—]?\s*$")
_RE_TOC_TRAIL = re.compile(
    r"\S.*?\s[0-9]{1,4}(?:\.[0-9]{1,3})*(?:\s*[-–]\s*[0-9]{1,4}(?:\.[0-9]{1,3})*)?\s*$"
)
_RE_EGOV_TOC = re.compile(rf"^第{_NUM}[編章節款目](?:の{_NUM})*[ \u3000].*（第{_NUM}条[^）]*）$")
_RE_TOC_TITLE = re.compile(r"^(?:目[ \u3000]*次|contents|table of contents)$", re.I)
_RE_LINE_END = re.compile(rf"[{_TERMINATORS}.][{re.escape(_CLOSERS)}]*$")
_RE_DANGLING = re.compile(r"(?:[,，、;；]|\b(?:of|and|or|the|to|in|under|see|by|with|for|a|an|at|on))$")
_RE_CLAUSE = re.compile(r"[、，；;：]|[,:](?=\s)")
_ABBREVIATIONS = set(
    """e.g i.e no nos art arts u.s u.k mr mrs ms dr prof st co inc ltd corp vs cf para paras sec secs ch p pp
    fig reg regs rec vol ed eds op cit ibid approx dept est jan feb mar apr jun jul aug sep sept oct nov dec
    s ss r n al viz ref""".split()
)


def _norm_label(text: str) -> str:
    text = re.sub(r"[ \t\u3000]+", " ", text).strip()
    text = re.sub(r"^附 則", "附則", text)
    if len(text) > _LABEL_MAX:
        text = text[: _LABEL_MAX - 1].rstrip() + "…"
    return text


def _width(text: str) -> int:
    return sum(2 if ord(ch) >= 0x2E80 else 1 for ch in text)


def _is_cjk(ch: str) -> bool:
    return bool(ch) and ord(ch) >= 0x2E80 and bool(_CJK_RE.match(ch))


def _ends_unit(text: str) -> bool:
    return bool(_RE_LINE_END.search(text))


_VERBS = {"must", "should", "shall", "may", "will", "is", "are", "was", "were", "has", "have", "can", "does"}


def _sentence_like(title: str) -> bool:
    """English words that read like a sentence rather than a heading."""
    if title.endswith("?"):
        return False
    words = title.split()
    return len(words) > 10 or any(w.lower() in _VERBS for w in words)


def _looks_like_title(title: str, max_len: int = _LABEL_MAX, commas: bool = True) -> bool:
    """A heading's text: short, no sentence punctuation, not starting like the rest of a sentence
    (``commas=False``: a Japanese comma also disqualifies, for list-like markers such as （１） ①)."""
    if len(title) > max_len or "。" in title:
        return False
    if title.startswith(_PARTICLES) or title[:1].islower():
        return False
    if not commas and re.search(r"[、，,]", title) and _CJK_RE.search(title):
        return False
    if title.endswith((".", "：", ":", "、", ",", "，", ";")) and not title.endswith(("...", "…")):
        return False
    return True


# -- data ------------------------------------------------------------------------------------------------


@dataclass
class _Head:
    family: str
    depth: float
    label: str
    body: str = ""  # the whole line when its text continues after the number (article / rule lines)
    ambiguous: bool = False  # a list marker that may be a heading (（１） ① 1.)
    empty_title: bool = False  # only a number ("Article 12", "第一章"): the next short line may be the title
    article: str = ""  # 第十条 (for 項 paths)
    number: str = ""  # 1.2.3 of a numbered heading
    caption: str = ""  # （目的）


@dataclass
class _Line:
    text: str
    page: int | None
    kind: str = "body"  # body | blank | toc | code
    head: _Head | None = None


@dataclass
class _Unit:
    """A paragraph: joined lines, with the page where each line starts."""

    text: str = ""
    starts: list[int] = field(default_factory=list)
    pages: list[int | None] = field(default_factory=list)
    para: str | None = None

    def add(self, text: str, page: int | None, joiner: str) -> None:
        if self.text:
            self.text += joiner
        self.starts.append(len(self.text))
        self.pages.append(page)
        self.text += text

    def page_at(self, offset: int) -> int | None:
        return self.pages[max(0, bisect.bisect_right(self.starts, offset) - 1)]


@dataclass
class _Section:
    path: tuple[str, ...]
    article: str = ""
    caption: str = ""
    units: list[_Unit] = field(default_factory=list)
    open_unit: bool = False


@dataclass
class _Sentence:
    text: str
    tokens: int
    page_start: int | None
    page_end: int | None
    unit: int
    sep: str  # separator before it inside its unit ("" or " ")
    para: str | None


# -- line preparation ------------------------------------------------------------------------------------


def _prepare_lines(doc: ParsedDocument) -> list[_Line]:
    is_pdf = doc.format == "pdf"
    pages = [p for p in doc.pages if p.text and p.text.strip()]
    noise = _running_lines(pages) if is_pdf else set()
    lines: list[_Line] = []
    seen_noise: set[str] = set()
    in_fence = False
    for page in pages:
        raw = page.text.split("\n")
        nonblank = [i for i, t in enumerate(raw) if t.strip()]
        edge = set(nonblank[:2] + nonblank[-2:])
        page_lines: list[_Line] = []
        for i, text in enumerate(raw):
            text = text.strip(" \t\u3000\r").replace("\t", " ")
            if not text:
                page_lines.append(_Line("", page.number, "blank"))
                continue
            if doc.format == "markdown" and text.startswith(("```", "~~~")):
                in_fence = not in_fence
                page_lines.append(_Line(text, page.number, "code"))
                continue
            if in_fence:
                page_lines.append(_Line(text, page.number, "code"))
                continue
            if is_pdf and _RE_PAGE_NO.match(text):
                continue
            if i in edge and noise:
                key = _noise_key(text)
                if key in noise:
                    if key not in seen_noise and _match_heading(text, "pdf") is not None:
                        seen_noise.add(key)  # a running header repeating a heading: keep the heading itself
                    else:
                        continue
            page_lines.append(_Line(text, page.number))
        if is_pdf:  # blank lines at a page's edges are layout, not paragraph breaks
            while page_lines and page_lines[0].kind == "blank":
                page_lines.pop(0)
            while page_lines and page_lines[-1].kind == "blank":
                page_lines.pop()
        if is_pdf and _is_toc_page(page_lines, lines):
            for ln in page_lines:
                if ln.kind == "body":
                    ln.kind = "toc"
        lines.extend(page_lines)
        if is_pdf:
            lines.append(_Line("", page.number, "blank"))  # a page break ends a line, not a paragraph
            lines[-1].kind = "pagebreak"
    _merge_marker_only(lines)
    for ln in lines:
        if ln.kind == "body" and (
            _RE_DOT_LEADER.search(ln.text) or _RE_TOC_TITLE.match(ln.text) or _RE_EGOV_TOC.match(ln.text)
        ):
            ln.kind = "toc"
    return lines


def _noise_key(text: str) -> str:
    """Digits are ignored (page counters), except in heading-like lines: "第1章" and "第2章" differ."""
    compact = re.sub(r"\s+", "", text)
    if _match_heading(text.strip(), "pdf") is not None:
        return compact
    return re.sub(r"[0-9０-９]+", "#", compact)


def _running_lines(pages) -> set[str]:
    """Header/footer lines repeated on many pages (digits ignored)."""
    if len(pages) < 4:
        return set()
    counts: dict[str, int] = {}
    for page in pages:
        nonblank = [t.strip() for t in page.text.split("\n") if t.strip()]
        for key in {_noise_key(t) for t in nonblank[:2] + nonblank[-2:]}:
            counts[key] = counts.get(key, 0) + 1
    threshold = max(3, len(pages) // 2)
    return {k for k, n in counts.items() if n >= threshold and _width(k) <= 60}


def _is_toc_page(page_lines: list[_Line], previous: list[_Line]) -> bool:
    body = [ln.text for ln in page_lines if ln.kind == "body"]
    if len(body) < 5:
        return False
    leaders = sum(1 for t in body if _RE_DOT_LEADER.search(t))
    trailing = sum(1 for t in body if _RE_TOC_TRAIL.match(t) or _RE_DOT_LEADER.search(t))
    titled = any(_RE_TOC_TITLE.match(t) for t in body[:3])
    prev_toc = any(ln.kind == "toc" for ln in previous[-5:])
    if leaders >= 3 and leaders >= 0.3 * len(body):
        return True
    return (titled or prev_toc) and trailing >= 0.4 * len(body)


def _merge_marker_only(lines: list[_Line]) -> None:
    """A line holding only a number ("２", "一", "第一条", "（１）") belongs to the next text line."""
    for i, ln in enumerate(lines):
        if ln.kind != "body" or not _RE_MARKER_ONLY.match(ln.text):
            continue
        j = i + 1
        while j < len(lines) and lines[j].kind == "blank" and j - i <= 3:
            j += 1
        if j < len(lines) and lines[j].kind == "body" and not _RE_MARKER.match(lines[j].text):
            lines[j].text = ln.text + "\u3000" + lines[j].text
            lines[j].page = ln.page if ln.page is not None else lines[j].page
            ln.kind = "skip"


# -- heading recognition ---------------------------------------------------------------------------------


def _match_heading(text: str, fmt: str) -> _Head | None:  # noqa: C901 - one branch per numbering scheme
    if fmt != "pdf":
        m = _RE_MD.match(text)
        if m:
            title = m.group(2).strip()
            return _Head("md", len(m.group(1)), _norm_label(title or m.group(1)))
    m = _RE_ARTICLE.match(text)
    if m:
        number, rest = m.group(1).replace(" ", ""), m.group(2)
        caption = ""
        stripped = rest.lstrip(" \u3000")
        if rest and stripped == rest and not rest.startswith(("（", "(")):
            return None  # 第三条第一項, 第三条の規定, …: a reference, not an article
        cm = _RE_CAPTION.match(stripped)
        if cm and (len(stripped) == cm.end() or stripped[cm.end()] in " \u3000"):
            caption = "（" + cm.group(1) + "）"
            stripped = stripped[cm.end() :].lstrip(" \u3000")
        elif rest and rest == stripped:
            return None  # 第三条（第二項を除く。）…
        return _Head(
            "jp",
            _ARTICLE_DEPTH,
            number + caption,
            body=text if stripped else "",
            article=number,
            caption=caption,
        )
    m = _RE_JP_STRUCT.match(text)
    if m:
        title = m.group(4).strip(" \u3000")
        attached = m.group(4)[:1] not in " \u3000"
        if title and (not _looks_like_title(title) or (attached and re.match(r"[\u3040-\u309f第]", title))):
            return None
        if len(text) > _LABEL_MAX or _RE_EGOV_TOC.match(text):
            return None
        label = _norm_label(f"第{m.group(1)}{m.group(2)}{m.group(3)} {title}")
        return _Head("jp", _JP_DEPTH[m.group(2)], label, empty_title=not title)
    m = _RE_SUPPL.match(text)
    if m:
        if len(text) > _LABEL_MAX or "。" in text:
            return None
        return _Head("jp", 0, _norm_label(text))
    m = _RE_APPENDIX.match(text)
    if m:
        if len(text) > _LABEL_MAX or "。" in text:
            return None
        return _Head("jp", 0, _norm_label(text))
    m = _RE_ROMAN.match(text)
    if m:
        title = m.group(3)
        if title and (re.match(f"[（(0-9０-９{_DASH}]", title) or not _looks_like_title(title)):
            return None
        depth = 1 + len(re.findall(f"[{_DASH}]", m.group(2)))
        return _Head("roman", depth, _norm_label(text), empty_title=not title)
    m = _RE_ROMAN_ASCII.match(text)
    if m:
        if not _looks_like_title(m.group(2)):
            return None
        return _Head("roman", 1, _norm_label(text))
    m = _RE_PAREN_ROMAN.match(text)
    if m:
        title = m.group(2)
        if not title or not _looks_like_title(title, 40, commas=False):
            return None
        return _Head("paren-roman", 1, _norm_label(text), ambiguous=True)
    m = _RE_PAREN_NUM.match(text)
    if m:
        title = m.group(2)
        if not title or not _looks_like_title(title, 40, commas=False):
            return None
        return _Head("paren", 1, _norm_label(text), ambiguous=True)
    m = _RE_CIRCLED.match(text)
    if m:
        title = m.group(2)
        if not title or not _looks_like_title(title, 40, commas=False):
            return None
        return _Head("circled", 1, _norm_label(text), ambiguous=True)
    m = _RE_EN.match(text)
    if m and text[0].isupper():
        title = m.group(3).strip()
        if title and (not _looks_like_title(title, 80) or title.endswith(".") or _sentence_like(title)):
            return None
        if "." in text[m.end(2) : m.start(3)] and not title:
            return None  # "… see Appendix II." at the start of a wrapped line
        return _Head("en", _EN_DEPTH[m.group(1).lower()], _norm_label(text), empty_title=not title)
    m = _RE_ADGM.match(text)
    if m:
        number = m.group(1) + "." + m.group(2)
        depth = m.group(1).count(".") + 1 + len([x for x in m.group(2).split(".") if x])
        rest = m.group(3).strip()
        if not rest or (_looks_like_title(rest) and not rest.endswith(".")):
            return _Head("dotted", depth, _norm_label(text), number=number.rstrip("."))
        return _Head("dotted", depth, number.rstrip("."), body=text, number=number.rstrip("."))
    m = _RE_DOTTED.match(text)
    if m:
        number, dot, rest = m.group(1), m.group(2), m.group(3)
        levels = len(re.findall("[.．]", number)) + 1
        if rest and rest[0] not in " \t\u3000":
            if not dot or not _is_cjk(rest[0]) or rest[0] in "０１２３４５６７８９％":
                return None
        if levels == 1 and not dot:
            return None
        title = rest.strip(" \t\u3000")
        if title and len(title) < 3 and not _CJK_RE.search(title):
            return None  # "6.3.1 R": a rule reference in a margin note
        if not title:
            return _Head("dotted", levels, _norm_label(text), empty_title=True) if levels > 1 else None
        number = number.replace("．", ".")
        if _looks_like_title(title) and not title.endswith("."):
            return _Head("dotted", levels, _norm_label(text), ambiguous=levels == 1, number=number)
        if levels > 1 and (title[0].isupper() or _is_cjk(title[0]) or title[0] in "(（“\"'‘"):
            return _Head("dotted", levels, number, body=text, number=number)
        return None
    m = _RE_HYPHEN_NUM.match(text)
    if m and _looks_like_title(m.group(2)):
        return _Head("hyphen", 1 + len(re.findall(f"[{_DASH}]", m.group(1))), _norm_label(text))
    return None


# -- the walk --------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, doc: ParsedDocument) -> None:
        self.fmt = doc.format
        self.joinable = doc.format in ("pdf", "text", "markdown")
        self.lines = _prepare_lines(doc)
        for ln in self.lines:
            if ln.kind == "body":
                ln.head = _match_heading(ln.text, self.fmt)
        self._drop_title_heading(doc.title)
        self.full_width = self._full_width() if doc.format == "pdf" else None
        self.listy = self._list_runs()
        if doc.format != "pdf":
            self._toc_neighbours()
        ja = sum(1 for ln in self.lines[:400] if _KANA_RE.search(ln.text))
        self.toc_label = "目次" if ja >= 3 else "Contents"
        self.sections: list[_Section] = []
        self.stack: list[_Head] = []
        self._in_toc = False
        self.section = self._new_section(())

    # context ---------------------------------------------------------------------

    def _drop_title_heading(self, title: str) -> None:
        """A single level-1 Markdown heading at the top is the document's title, not a section: the
        caller prepends the title anyway."""
        heads = [ln for ln in self.lines if ln.head is not None and ln.head.family == "md"]
        ones = [ln for ln in heads if ln.head.depth == 1]
        if len(ones) == 1 and heads[0] is ones[0] and title:
            label, wanted = ones[0].head.label, _norm_label(title)
            if not (label == wanted or label in wanted or wanted in label):
                return
            ones[0].head = None
            ones[0].kind = "skip"  # the line is the title: not a section, not body text

    def _full_width(self) -> int | None:
        widths = sorted(_width(ln.text) for ln in self.lines if ln.kind == "body" and _width(ln.text) >= 20)
        if len(widths) < 20:
            return None
        return widths[int(len(widths) * 0.9)]

    def _wide(self, text: str) -> bool:
        return self.full_width is not None and _width(text) >= 0.85 * self.full_width

    def _neighbour(self, i: int, step: int, skip_blank: bool = True) -> _Line | None:
        j = i + step
        while 0 <= j < len(self.lines):
            ln = self.lines[j]
            if ln.kind in ("skip", "pagebreak") or (skip_blank and ln.kind == "blank"):
                j += step
                continue
            return ln
        return None

    def _list_runs(self) -> set[int]:
        """Indexes of ambiguous heading candidates that are really items of a list: the previous or next
        text line starts with a marker of the same kind."""
        keys: list[tuple[str, float] | None] = []
        for ln in self.lines:
            key = None
            if ln.kind == "body":
                key = _marker_key(ln.text)
            keys.append(key)
        result = set()
        text_idx = [i for i, ln in enumerate(self.lines) if ln.kind in ("body", "toc", "code")]
        for pos, i in enumerate(text_idx):
            head = self.lines[i].head
            if head is None or not (head.ambiguous or head.family == "en"):
                continue
            key = keys[i]
            prev_key = keys[text_idx[pos - 1]] if pos > 0 else None
            next_key = keys[text_idx[pos + 1]] if pos + 1 < len(text_idx) else None
            if key is not None and (key == prev_key or key == next_key):
                result.add(i)
        return result

    def _toc_neighbours(self) -> None:
        """Non-PDF tables of contents: a heading-like line between TOC lines (or a TOC line and a heading)
        is a TOC entry too (e-Gov: "第七章の三　株主", "附則")."""
        for i, ln in enumerate(self.lines):
            if ln.kind != "body" or ln.head is None:
                continue
            prev = self._neighbour(i, -1)
            nxt = self._neighbour(i, 1)
            if (
                prev is not None
                and prev.kind == "toc"
                and nxt is not None
                and (nxt.kind == "toc" or nxt.head is not None)
            ):
                ln.kind = "toc"
                ln.head = None

    def _long(self, text: str) -> bool:
        """Running text rather than a heading or a margin note."""
        if self.full_width is None:
            return _width(text) >= 60
        return _width(text) >= 0.6 * self.full_width

    def _accept(self, i: int, head: _Head) -> bool:
        if head.family == "md":
            return True
        ln = self.lines[i]
        prev = self._neighbour(i, -1, skip_blank=False)
        same_page = prev is not None and prev.page == ln.page
        if (
            self.fmt == "pdf"
            and prev is not None
            and prev.kind == "body"
            and prev.head is None
            and not _ends_unit(prev.text)
            and (
                self._wide(prev.text)
                or _RE_DANGLING.search(prev.text)
                or (same_page and head.family in ("en", "dotted") and self._long(prev.text))
            )
        ):
            return False  # the line continues a wrapped sentence
        nxt = self._neighbour(i, 1, skip_blank=False)
        next_continues = (
            self.fmt == "pdf"
            and nxt is not None
            and nxt.kind == "body"
            and nxt.head is None
            and not _RE_MARKER.match(nxt.text)
        )
        continues = next_continues and self._wide(ln.text)
        if (
            head.family == "dotted"
            and head.number
            and not head.body
            and not head.ambiguous
            and next_continues
        ):
            title = ln.text[len(head.number) :].strip(" .．\t\u3000")
            if continues or len(title.split()) >= 6 or (self._long(ln.text) and _sentence_like(title)):
                # "1.39 Senior management of … must appoint an" wrapped: a numbered paragraph, not a title
                head.label, head.body = head.number, ln.text
        if head.ambiguous:
            if any(h.article for h in self.stack) or (
                head.family != "dotted" and any(h.body for h in self.stack)
            ):
                return False  # （１） ① inside an article or a numbered rule are its items
            if i in self.listy:
                return False
            if continues:
                return False  # a wrapped list item
        return True

    # building --------------------------------------------------------------------

    def _new_section(self, path: tuple[str, ...], article: str = "", caption: str = "") -> _Section:
        section = _Section(path=path, article=article, caption=caption)
        self.sections.append(section)
        return section

    def _current_path(self) -> tuple[str, ...]:
        return tuple(h.label for h in self.stack)

    def _push(self, head: _Head) -> None:
        stack = self.stack
        if (
            head.family == "jp"
            and 1 <= head.depth <= 3
            and stack
            and stack[-1].family == "jp"
            and stack[-1].depth == 0
            and not self.section.units
        ):
            stack.pop()  # an empty 附則 line followed by 第一章: a TOC remnant
        same = [k for k, h in enumerate(stack) if h.family == head.family]
        if same:
            shallower = [k for k in same if stack[k].depth < head.depth]
            cut = shallower[-1] + 1 if shallower else same[0]
            del stack[cut:]
        stack.append(head)
        top = head if head.article else None
        self.section = self._new_section(
            self._current_path(), article=top.article if top else "", caption=top.caption if top else ""
        )

    def _add_text(self, text: str, page: int | None, new_unit: bool = False) -> None:
        section = self.section
        unit = section.units[-1] if section.units and section.open_unit else None
        if unit is not None and not new_unit and self.joinable and self._joins(unit.text, text):
            unit.add(text, page, _joiner(unit.text, text))
        else:
            unit = _Unit()
            para = _RE_PARA_NUM.match(text) if section.article else None
            if para and para.group(1) not in ("1", "１"):
                unit.para = para.group(1)
            elif section.units:
                unit.para = section.units[-1].para
            unit.add(text, page, "")
            section.units.append(unit)
            section.open_unit = True

    def _joins(self, current: str, text: str) -> bool:
        m = _RE_MARKER.match(text)
        if m and not text.startswith(tuple(_CLOSERS)) and not text[m.end() :].startswith(_PARTICLES):
            return False  # a new item (but "（１）において…" continues the sentence)
        if _ends_unit(current):
            return text[:1] in _CLOSERS or text[:1].islower()
        return True

    def _close_unit(self) -> None:
        self.section.open_unit = False

    def build(self) -> list[_Section]:
        lines = self.lines
        n = len(lines)
        pending_caption: _Line | None = None
        i = 0
        while i < n:
            ln = lines[i]
            if ln.kind in ("skip",):
                i += 1
                continue
            if ln.kind in ("blank",):
                self._close_unit()
                i += 1
                continue
            if ln.kind == "pagebreak":
                i += 1
                continue
            if ln.kind == "toc":
                if not self._in_toc:
                    self._in_toc = True
                    self.section = self._new_section((self.toc_label,))
                self._add_text(_RE_DOT_LEADER.sub("", ln.text).strip() or ln.text, ln.page, new_unit=True)
                i += 1
                continue
            if self._in_toc:
                self._in_toc = False
                self.section = self._new_section(self._current_path(), *self._article_of_stack())
            if ln.kind == "code":
                self._add_text(ln.text, ln.page, new_unit=True)
                i += 1
                continue
            head = ln.head
            if head is None and _RE_CAPTION_LINE.match(ln.text):
                nxt = self._neighbour(i, 1)
                if nxt is not None and nxt.head is not None and nxt.head.article:
                    pending_caption = ln
                    i += 1
                    continue
            if head is not None and self._accept(i, head):
                i = self._heading(i, head, pending_caption)
                pending_caption = None
                continue
            if pending_caption is not None:  # the article after it was not accepted: keep its text
                self._add_text(pending_caption.text, pending_caption.page, new_unit=True)
                pending_caption = None
            self._add_text(ln.text, ln.page)
            i += 1
        return [s for s in self.sections if s.units]

    def _article_of_stack(self) -> tuple[str, str]:
        if self.stack and self.stack[-1].article:
            return self.stack[-1].article, self.stack[-1].caption
        return "", ""

    def _heading(self, i: int, head: _Head, caption_line: _Line | None) -> int:
        """Push an accepted heading; returns the index of the next line to process."""
        lines = self.lines
        nxt_i = i + 1
        if head.article and caption_line is not None and not head.caption:
            caption = _norm_label(caption_line.text.replace("(", "（").replace(")", "）"))
            head.caption = caption
            head.label = head.article + caption
        elif not head.article and head.empty_title:
            # "Article 12" / "CHAPTER II" / "第一章" alone: the next short line is its title
            j = i + 1
            if j < len(lines) and lines[j].kind == "body" and lines[j].head is None:
                t = lines[j].text
                limit = 40 if _CJK_RE.search(t) else 80
                if (
                    len(t) <= limit
                    and not _ends_unit(t)
                    and not _RE_MARKER.match(t)
                    and _looks_like_title(t, 80)
                ):
                    head.label = _norm_label(head.label + " " + t)
                    nxt_i = j + 1
        elif self.fmt == "pdf" and not head.ambiguous and not head.body and self._wide(lines[i].text):
            # a long heading wrapped onto a second, short line
            j = i + 1
            if j < len(lines) and lines[j].kind == "body" and lines[j].head is None:
                t = lines[j].text
                after = self._neighbour(j, 1, skip_blank=False)
                if (
                    self.full_width
                    and _width(t) <= 0.6 * self.full_width
                    and "。" not in t
                    and not _RE_MARKER.match(t)
                    and (after is None or after.kind != "body" or after.head is not None)
                ):
                    head.label = _norm_label(head.label + t)
                    nxt_i = j + 1
        self._push(head)
        if head.body:
            self._add_text(head.body, lines[i].page, new_unit=True)
        return nxt_i


def _marker_key(text: str) -> tuple[str, float] | None:
    """(family, depth) of the numbering a line starts with, whether or not it is a heading."""
    if _RE_PAREN_ROMAN.match(text):
        return ("paren-roman", 1)
    if _RE_PAREN_NUM.match(text):
        return ("paren", 1)
    if _RE_CIRCLED.match(text):
        return ("circled", 1)
    m = re.match(r"^[0-9０-９]{1,3}[.．](?![0-9０-９A-Za-z])", text)
    if m:
        return ("dotted", 1)
    m = _RE_EN.match(text)
    if m and text[0].isupper():
        return ("en", _EN_DEPTH[m.group(1).lower()])
    return None


def _joiner(current: str, text: str) -> str:
    last = current[-1:]
    first = text[:1]
    if _is_cjk(last) or _is_cjk(first):
        return ""
    if last == "-" and len(current) > 1 and current[-2].isalpha() and first.islower():
        return ""  # a word hyphenated at the line end: keep the hyphen, drop the break
    return " "


# -- sentences -------------------------------------------------------------------------------------------

_OPEN = "（「『【［〔｛〈《([{“‘"
_CLOSE = "）」』】］〕｝〉》)]}”’"
_PAIR = dict(zip(_CLOSE, _OPEN, strict=True))
_BRACKET_RE = re.compile("[" + re.escape(_OPEN + _CLOSE) + "]")
_TERM_RE = re.compile(r"[。！？!?．.]")
_EN_NEXT = re.compile(rf"[{re.escape(_CLOSERS)}]*\s+(?=[A-Z0-9\"“‘'(\[{_CJK}])")


def _protected(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of matched bracket pairs; unmatched brackets are ignored."""
    stack: list[tuple[int, str]] = []
    spans = []
    for m in _BRACKET_RE.finditer(text):
        ch = m.group()
        if ch in _OPEN:
            stack.append((m.start(), ch))
            continue
        want = _PAIR[ch]
        for k in range(len(stack) - 1, max(-1, len(stack) - 4), -1):
            if stack[k][1] == want:
                spans.append((stack[k][0], m.start()))
                del stack[k:]
                break
    return spans


def _split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of one paragraph. Japanese: 。！？ outside brackets; English: . ? ! + space + capital,
    not after abbreviations."""
    spans = _protected(text)
    depth_events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    out: list[tuple[int, int]] = []
    start = 0
    ev = 0
    depth = 0
    n = len(text)
    for m in _TERM_RE.finditer(text):
        p = m.start()
        if p < start:
            continue
        while ev < len(depth_events) and depth_events[ev][0] < p:
            depth += depth_events[ev][1]
            ev += 1
        if depth > 0:
            continue
        ch = m.group()
        end = p + 1
        if ch in "。！？":
            while end < n and text[end] in "！？!?":
                end += 1
        elif ch == "．":
            prev = text[p - 1 : p]
            if not prev or prev.isdigit() or (end < n and text[end].isdigit()) or not _is_cjk(prev):
                continue
        else:  # ASCII . ! ?
            if end < n and text[end] in ".!?":
                continue
            nm = _EN_NEXT.match(text, end)
            if end < n and nm is None:
                continue
            if ch == ".":
                word = re.search(r"(\S+)$", text[start:p])
                token = word.group(1).lstrip("(\"'“‘[").lower() if word else ""
                if token in _ABBREVIATIONS or "." in token or (len(token) == 1 and token.isalpha()):
                    continue
        while end < n and text[end] in _CLOSERS:
            end += 1
        out.append((start, end))
        start = end
        while start < n and text[start] in " \t\u3000":
            start += 1
    if start < n and text[start:].strip():
        out.append((start, n))
    return [(s, e) for s, e in out if text[s:e].strip()]


# -- packing ---------------------------------------------------------------------------------------------


class _Counter:
    def __init__(self, count_tokens: Callable[[str], int], max_tokens: int) -> None:
        self.count = count_tokens
        try:
            self.base = max(0, int(count_tokens("")))
        except Exception:  # noqa: BLE001 - a tokenizer that refuses empty input
            self.base = 0
        self.max_tokens = max_tokens
        self.budget = max(1, max_tokens - self.base)
        try:
            self.sep = max(0, int(count_tokens("\n")) - self.base)
        except Exception:  # noqa: BLE001
            self.sep = 0

    def tokens(self, text: str) -> int:
        return max(0, self.count(text) - self.base)

    def split_long(self, text: str) -> list[tuple[str, int]]:
        """A sentence longer than the budget: cut at clause boundaries (、 , ;), else hard by tokens."""
        pieces: list[str] = []
        last = 0
        for m in _RE_CLAUSE.finditer(text):
            pieces.append(text[last : m.end()])
            last = m.end()
        pieces.append(text[last:])
        out: list[tuple[str, int]] = []
        cur, cur_tok = "", 0
        for piece in (p for p in pieces if p):
            tok = self.tokens(piece)
            if tok > self.budget:
                if cur:
                    out.append((cur, cur_tok))
                    cur, cur_tok = "", 0
                out.extend(self._hard_split(piece))
                continue
            if cur and cur_tok + tok > self.budget:
                out.append((cur, cur_tok))
                cur, cur_tok = "", 0
            cur += piece
            cur_tok = self.tokens(cur) if cur_tok else tok
        if cur:
            out.append((cur, cur_tok))
        return [(t.strip(), k) for t, k in out if t.strip()]

    def _hard_split(self, text: str) -> list[tuple[str, int]]:
        out = []
        while text:
            tok = self.tokens(text)
            if tok <= self.budget:
                out.append((text, tok))
                break
            lo, hi = 1, len(text) - 1
            while lo < hi:  # longest prefix within the budget
                mid = (lo + hi + 1) // 2
                if self.tokens(text[:mid]) <= self.budget:
                    lo = mid
                else:
                    hi = mid - 1
            cut = lo
            space = text.rfind(" ", 0, cut)
            if space > cut // 2:
                cut = space + 1
            piece = text[:cut]
            out.append((piece, self.tokens(piece)))
            text = text[cut:]
        return out


def _sentences(section: _Section, counter: _Counter) -> list[_Sentence]:
    out: list[_Sentence] = []
    for u, unit in enumerate(section.units):
        text = unit.text
        prev_end = None
        for s, e in _split_sentences(text):
            raw = text[s:e]
            lead = len(raw) - len(raw.lstrip())
            s += lead
            body = text[s:e].rstrip()
            if not body:
                continue
            gap = text[prev_end:s] if prev_end is not None else ""
            sep = " " if any(c.isspace() for c in gap) else ""
            prev_end = s + len(body)
            tokens = counter.tokens(body)
            if tokens <= counter.budget:
                out.append(
                    _Sentence(
                        body, tokens, unit.page_at(s), unit.page_at(s + len(body) - 1), u, sep, unit.para
                    )
                )
                continue
            offset = s
            for k, (piece, ptok) in enumerate(counter.split_long(body)):
                found = text.find(piece, offset)
                ps = found if found >= 0 else offset
                offset = ps + len(piece) if found >= 0 else offset
                out.append(
                    _Sentence(
                        piece, ptok, unit.page_at(ps), unit.page_at(max(ps, ps + len(piece) - 1)), u,
                        sep if k == 0 else ("" if _is_cjk(piece[:1]) else " "), unit.para,
                    )
                )  # fmt: skip
    return out


def _render(sentences: list[_Sentence]) -> str:
    parts = []
    for k, s in enumerate(sentences):
        if k:
            parts.append("\n" if s.unit != sentences[k - 1].unit else s.sep)
        parts.append(s.text)
    return "".join(parts).strip()


def _path(section: _Section, first: _Sentence) -> str:
    path = list(section.path)
    if section.article and path and path[-1].startswith(section.article):
        para = f"第{first.para}項" if first.para else ""
        path[-1] = _norm_label(section.article + para + section.caption)
    return " > ".join(path)


def _pack(section: _Section, counter: _Counter, overlap: int) -> list[ChunkDraft]:
    sentences = _sentences(section, counter)
    chunks: list[ChunkDraft] = []
    sep = counter.sep

    def cost(items: list[_Sentence]) -> int:
        return sum(x.tokens for x in items) + sep * max(0, len(items) - 1)

    carry: list[_Sentence] = []  # overlap from the previous chunk
    qi, n = 0, len(sentences)
    while qi < n:
        head = list(carry)
        while head and cost(head) + sep + sentences[qi].tokens > counter.budget:
            head.pop(0)
        fresh = [sentences[qi]]
        qi += 1
        total = cost(head + fresh)
        while qi < n and total + sep + sentences[qi].tokens <= counter.budget:
            fresh.append(sentences[qi])
            total += sep + sentences[qi].tokens
            qi += 1
        while True:  # the sum of sentence counts is an estimate: check the real text
            items = head + fresh
            text = _render(items)
            if (len(fresh) == 1 and not head) or counter.count(text) <= counter.max_tokens:
                break
            if len(fresh) > 1:
                fresh.pop()
                qi -= 1
            else:
                head.pop(0)
        pages = [p for x in items for p in (x.page_start, x.page_end) if p is not None]
        chunks.append(
            ChunkDraft(
                text=text,
                section=_path(section, fresh[0]),
                page_start=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
            )
        )
        carry = items[-overlap:] if overlap > 0 else []
    return chunks


# -- public ----------------------------------------------------------------------------------------------


def chunk_document(
    doc: ParsedDocument,
    count_tokens: Callable[[str], int],
    max_tokens: int = 220,
    overlap_sentences: int = 1,
) -> list[ChunkDraft]:
    """Split a parsed document into chunks that follow its structure.

    Each chunk holds whole sentences of one section (a sentence longer than ``max_tokens`` is cut at
    clause boundaries, or hard by tokens), at most ``max_tokens`` tokens as counted by ``count_tokens``,
    repeats the last ``overlap_sentences`` sentences of the previous chunk of the same section, and carries
    its section path and the PDF pages its text spans.
    """
    counter = _Counter(count_tokens, max_tokens)
    sections = _Builder(doc).build()
    chunks: list[ChunkDraft] = []
    for section in sections:
        chunks.extend(_pack(section, counter, max(0, overlap_sentences)))
    return chunks
