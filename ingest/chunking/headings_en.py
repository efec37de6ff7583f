"""English heading rules: Part/Chapter/Section/Article/Recommendation/Rule/Annex N, "IV. Title", and the ADGM
rulebooks' rule numbers (3.2.1.(a), 8.3.6.Guidance.1.).

Each rule takes the line and its regex match and returns a :class:`Head`, or None when the line has the
shape but is not a heading (a sentence that starts with "Article 5 requires …")."""

from __future__ import annotations

import re

from ingest.chunking.heading_text import Head, looks_like_title, norm_label, sentence_like

RE_ROMAN_ASCII = re.compile(r"^([IVX]{1,5})\.\s+([A-Z].*)$")
RE_DIVISION = re.compile(
    r"^(Part|Chapter|Section|Article|Recommendation|Rule|Annex|Appendix|Schedule)\s+"
    r"(\d{1,4}[A-Za-z]?(?:\.\d{1,3})*|[IVXLC]{1,7}|[A-Z])(?=$|[\s.:–—-])[\s.:–—-]*(.*)$",
    re.I,
)
DIVISION_DEPTH = {
    "part": 1, "annex": 2, "appendix": 2, "schedule": 2, "chapter": 2, "section": 3, "article": 4,
    "recommendation": 4, "rule": 4,
}  # fmt: skip
RE_FATF_PART = re.compile(
    r"^(?:INTERPRETIVE NOTES? TO (?:THE FATF )?RECOMMENDATIONS?\b.*|GENERAL GLOSSARY"
    r"|LEGAL BASIS OF REQUIREMENTS ON .+)$"
)
"""The parts of the FATF Recommendations after the 40 (and of the FATF papers that reprint them), in capitals:
"INTERPRETIVE NOTE TO RECOMMENDATION 16 (WIRE TRANSFERS)", "GENERAL GLOSSARY"."""
RE_ADGM = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.(\(\w{1,4}\)|Guidance(?:\.\d{1,3}\.?)?)(?=\s|$)[ \t]*(.*)$")


def match_division(text: str) -> re.Match[str] | None:
    """"Article 12 …" with a capital first letter ("article 12 of the Act" continues a sentence)."""
    m = RE_DIVISION.match(text)
    return m if m and text[0].isupper() else None


def roman(text: str, m: re.Match[str]) -> Head | None:
    """IV. Customer Due Diligence"""
    if not looks_like_title(m.group(2)):
        return None
    return Head("roman", 1, norm_label(text))


def division(text: str, m: re.Match[str]) -> Head | None:
    """Chapter 2 Scope, Recommendation 10, Article 12 (its title may follow on the next line)."""
    title = m.group(3).strip()
    if title and (not looks_like_title(title, 80) or title.endswith(".") or sentence_like(title)):
        return None
    if "." in text[m.end(2) : m.start(3)] and not title:
        return None  # "… see Appendix II." at the start of a wrapped line
    return Head("en", DIVISION_DEPTH[m.group(1).lower()], norm_label(text), empty_title=not title)


def adgm_rule(text: str, m: re.Match[str]) -> Head | None:
    """3.2.1.(a) / 8.3.6.Guidance.1.: a rule number; a title after it, or the rule's text."""
    number = m.group(1) + "." + m.group(2)
    depth = m.group(1).count(".") + 1 + len([x for x in m.group(2).split(".") if x])
    rest = m.group(3).strip()
    if not rest or (looks_like_title(rest) and not rest.endswith(".")):
        return Head("dotted", depth, norm_label(text), number=number.rstrip("."))
    return Head("dotted", depth, number.rstrip("."), body=text, number=number.rstrip("."))


def fatf_part(text: str, m: re.Match[str]) -> Head | None:
    """INTERPRETIVE NOTE TO RECOMMENDATION 16, GENERAL GLOSSARY: above the numbered recommendations and paragraphs
    (depth 0 of their family), so it ends the last recommendation's section ("40. Other forms of international
    cooperation" used to run on over the 80 pages after it) and numbered paragraphs nest under it."""
    return Head("dotted", 0, norm_label(text))
