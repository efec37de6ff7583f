"""Claim-level checks: the specifics a sentence states must stand in the passage it cites.

Word overlap alone passes "records are kept for 1 year" against a passage that says "5 years". A specific is
a number (with its unit: an amount, a duration, a percentage, a date part), an article reference
(第十条第２項, Article 10(2)) or a named law or body (犯罪収益移転防止法, 金融庁, FATF, "the Bank Secrecy Act").
Both texts are put in one canonical form first: NFKC (full/half width), kanji numerals as digits (kanjize),
English number words as digits (text2num), 万/千/億 multiplied out, thousands separators dropped, unit spellings
unified. Negation is compared too: a claim that says "not" where the passage does not (or the reverse) is unsupported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from kanjize import kanji2number
from text_to_num import alpha2digit

_KANJI_NUMBER = re.compile(r"[〇一二三四五六七八九十百千]+(?:[万億][〇一二三四五六七八九十百千]*)*")
_ARABIC_MULTIPLIED = re.compile(r"(\d+(?:\.\d+)?)\s*([万億千])(?=[円件人社ドルユーロ]|$|\s|[^\d])")
_THOUSANDS = re.compile(r"(?<=\d)[, ](?=\d{3}(?!\d))")
_MARKERS = re.compile(r"[\[［【]\s*\d{1,2}(?:\s*[,，、]\s*\d{1,2})*\s*[\]］】]")
_UNITS = (
    (re.compile(r"(ヶ|ケ|カ|ヵ|箇|か)月"), "か月"),
    (re.compile(r"\b(years?|yrs?)\b"), "year"),
    (re.compile(r"\bmonths?\b"), "month"),
    (re.compile(r"\b(business|working) days?\b"), "businessday"),
    (re.compile(r"\bdays?\b"), "day"),
    (re.compile(r"\bhours?\b"), "hour"),
    (re.compile(r"\bweeks?\b"), "week"),
    (re.compile(r"\bper ?cent\b|パーセント|％"), "%"),
    (re.compile(r"\b(usd|us\$|dollars?)\b"), "usd"),
    (re.compile(r"\b(eur|euros?|€)\b"), "eur"),
)
_NUMBER_UNIT = re.compile(
    r"(\d+(?:\.\d+)?)\s*(か月|年|月|日|週間|時間|営業日|%|円|件|人|条|項|号|year|month|businessday|day|hour|week|usd|eur)?"
)
_ARTICLE = re.compile(
    r"第\s*\d+\s*条(?:\s*の\s*\d+)*(?:\s*第\s*\d+\s*項)?(?:\s*第\s*\d+\s*号)?|article\s+\d+[a-z]?(?:\s*\(\d+\))?"
)
_ORDINAL = re.compile(r"第\s*\d+\s*[一-龥]")
"""第3線, 第4次: an ordinal names one thing (the third line of defence), as an article number does."""
_JA_NAME = re.compile(
    r"[一-龥ァ-ヶー]{2,}(?:法律|法|施行令|施行規則|府令|庁|省|委員会|協会|機構|大臣)(?![人的令律務規上])|日本銀行")
_EN_NAME = re.compile(r"\b[A-Z]{2,}[a-z]?\b")
_EN_BODIES = tuple((re.compile(rf"\b{name}\b"), name.lower()) for name in ("Basel", "Wolfsberg", "Egmont", "FinCEN"))
"""Standard setters and bodies not spelled in capitals: "the Basel guidelines require…" stands only on a source
that is Basel's or names it."""
_EN_LAW = re.compile(
    r"((?:[A-Z][\w’'-]*\s+(?:(?:of|and|on)\s+)?){0,6}?)(Act|Regulations?|Directive|Ordinance)\b"
    r"((?:\s+(?:on|of|for|against)(?:\s+the)?(?:\s+(?:[A-Z][\w’'-]*|of|on|and|the|to|in)\b)+)?)"
)
"""An English law or instrument named by its words: "Japan's Act on Prevention of Transfer of Criminal Proceeds",
"the Money Laundering Regulations", "Bank Secrecy Act"."""
_LAW_FILLER = {"under", "the", "in", "per", "according", "by", "with", "its", "this", "that", "these", "as", "of",
               "on", "and", "to", "for", "against", "a", "an"}
_SECTORS = tuple((re.compile(pattern, re.IGNORECASE), key) for pattern, key in (
    (r"\bcasinos?\b|カジノ", "casino"), (r"\breal estate agents?\b", "real estate agent"),
    (r"\bdealers? in precious (metals|stones)", "dealer"), (r"\blawyers?\b", "lawyer"), (r"\bnotar(y|ies)\b", "notar"),
    (r"\baccountants?\b", "accountant"), (r"\btrust and company service providers?\b", "company service provider"),
    (r"\bvirtual asset service providers?\b", "asset service provider"),
    *((word, word) for word in ("宅地建物取引業者", "貴金属等売買業者", "弁護士", "司法書士", "行政書士", "公認会計士",
                                "税理士", "郵便物受取サービス業者", "電話受付代行業者", "暗号資産交換業者")),
))
"""The sectors whose rules differ (FATF's casinos at USD/EUR 3,000 against 15,000 for occasional transactions,
犯収法's 士業): a claim about one does not stand on a passage about another. Each with what its spellings share."""
_RECORDS = tuple((re.compile(pattern), key) for pattern, key in (
    (r"(?<!本人)確認記録", "確認記録"), (r"本人確認記録", "本人確認記録"), (r"取引記録", "取引記録")))
"""The records Japanese law keeps apart (犯収法's 確認記録 from the end of the contract, 取引記録 from the
transaction; 外為法's 本人確認記録): a claim about one does not stand on a sentence about another."""
_NOT_NAMES = {"AML", "CFT", "CDD", "EDD", "KYC", "STR", "SAR", "ID", "PEP", "PEPS", "ML", "TF", "OK", "USD", "EUR",
              "JPY", "FAQ", "QA", "IT", "AI", "CEO", "I", "II", "III", "IV", "V", "VI"}
_OBLIGATION = re.compile(r"(なければ(ならない|なりません|いけない|いけません)"
                         r"|なくては(ならない|なりません|いけない|いけません)"
                         r"|ないと(いけない|いけません|ならない|なりません)|なきゃ(いけない|ならない)|ねばならない"
                         r"|ざるを得ない|ざるをえない|のではないか|ではないか)")
"""Obligations ("must"), formal and spoken (しないといけない): not denials, although they contain ない."""
_BOUND = re.compile(r"\b(no|not) (higher|more|greater|larger|less|lower|fewer|later|earlier|longer|sooner) than\b"
                    r"|を?超えない")
"""Bounds ("no higher than USD/EUR 1,000", "not later than", 「百万円を超えない」): limits, not denials."""
_NEGATION = re.compile(r"(ない|ません|ず[、。にとも]|なくて(も)?(よい|良い|いい)|不要|禁止|拒否|拒絶|謝絶"
                       r"|\bnot\b|n't\b|\bno\b|\bnever\b"
                       r"|\bneither\b|\bnor\b|\bwithout\b|\bprohibit|\bforbid|\brefus(e|es|ed|ing)\b|\bdeclin(e|es|ed|ing)\b)")
_ASKS_ARTICLE = re.compile(r"何条|どの条(文|項)?|which (article|section|paragraph)|what article", re.IGNORECASE)
_ASKS_PERCENTAGE = re.compile(r"何\s*(%|％|パーセント|割)|what (\w+ )?(percentage|percent|share)\b", re.IGNORECASE)
_ASKS_AMOUNT = re.compile(
    r"いくら|何\s*(円|万円|億円)|how much\b(?!\s+(time|notice|longer|later|earlier))"
    r"|\b(what|which|maximum|minimum|max|min)\s+(\w+\s+){0,2}(amount|sum|fine|fee)s?\b"
    r"|\bin (euros?|dollars?|yen|usd|eur|jpy)\b|円で",
    re.IGNORECASE,
)
_ASKS_PERIOD = re.compile(
    r"何\s*年(?!目|に(?!\s*[一1]\s*(度|回)))|何\s*(か月|ヶ月|カ月|ケ月|箇月|月|週|日|営業日|時間|分)(?!目)"
    r"|how many (calendar |business |working )?(years|months|weeks|days|hours|minutes)\b|every how many",
    re.IGNORECASE,
)
_ASKS_NUMBER = re.compile(
    r"何\s*(回|件|人|名|本|点|社|歳|番|倍|度)"
    r"|how many|every how|what (\w+ ){0,2}(score|age|number)s?\b"
    r"|what(?: is the)? (minimum|maximum|max|min)\b|(by|on|in) what (date|year)|which year",
    re.IGNORECASE,
)
_ASKS = (("article", _ASKS_ARTICLE), ("percentage", _ASKS_PERCENTAGE), ("amount", _ASKS_AMOUNT),
         ("period", _ASKS_PERIOD), ("number", _ASKS_NUMBER))
"""The first kind whose pattern a question matches is the kind it asks for."""
_PERIOD_UNITS = {"か月", "年", "月", "日", "週間", "時間", "営業日",
                 "year", "month", "businessday", "day", "hour", "week"}
_DATE = re.compile(r"(?:(?:平成|令和|昭和|大正|明治)\s*(?:元|\d+)|\d{4})\s*年(?:\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?")
"""A date (平成23年, 2013年4月1日): a number ("by what date"), not the period a 何年ごと / 何年間 question asks for."""
_MONEY = re.compile(r"(usd|eur|jpy|gbp|yen|[$€¥£])\s*\d|\d\s*(円|usd|eur|jpy|gbp|yen)")
_TENTHS = re.compile(r"\d\s*割")
_CIRCLED = r"[\u2460-\u249b\u2776-\u2793]"
_ENUMERATOR = re.compile(_CIRCLED + r"|^\s*[(（]?\d{1,2}[)）.．]\s", re.MULTILINE)
"""List item numbers (①, ⑵, "2. ") label a place in a list; they are not a value a question asks for."""
_LIST_LABEL = re.compile(_CIRCLED + r"|[(（]?(\d{1,2}|[a-zA-Z]|[イロハニホヘトチリヌ])[)）.．]")
_CONNECTIVE = re.compile(r"([:：]$|以下の(とおり|通り)|次の(とおり|通り)|as follows|the following)", re.IGNORECASE)


@dataclass(frozen=True)
class Specific:
    kind: str
    """number | article | ordinal | name | law (an English law's distinctive words, space-separated)"""
    text: str
    """As it stands in the canonical text (what is looked for in the passage)."""


def _kanji_to_digits(match: re.Match) -> str:
    try:
        return str(kanji2number(match.group(0)))
    except (ValueError, KeyError):
        return match.group(0)


def _multiply(match: re.Match) -> str:
    factor = {"万": 10_000, "億": 100_000_000, "千": 1_000}[match.group(2)]
    value = float(match.group(1)) * factor
    return str(int(value)) if value.is_integer() else str(value)


@lru_cache(maxsize=4096)
def canonical(text: str) -> str:
    """The text with numbers, units and widths in one form, so the same fact reads the same."""
    text = unicodedata.normalize("NFKC", text)
    text = _KANJI_NUMBER.sub(_kanji_to_digits, text)
    if re.search(r"[A-Za-z]{3,}", text):
        text = alpha2digit(text, "en")
    text = _THOUSANDS.sub("", text)
    text = _ARABIC_MULTIPLIED.sub(_multiply, text)
    text = text.lower()
    for pattern, unit in _UNITS:
        text = pattern.sub(unit, text)
    return re.sub(r"\s+", " ", text)


def specifics(sentence: str) -> list[Specific]:
    """The specifics a sentence states, in canonical form (citation markers are not specifics)."""
    sentence = _MARKERS.sub("", sentence)
    text = canonical(sentence)
    found = [Specific("article", re.sub(r"\s+", "", a)) for a in _ARTICLE.findall(text)]
    without_articles = _ARTICLE.sub(" ", text)
    found += [Specific("ordinal", re.sub(r"\s+", "", o)) for o in _ORDINAL.findall(without_articles)]
    for number, unit in _NUMBER_UNIT.findall(_ORDINAL.sub(" ", without_articles)):
        found.append(Specific("number", number + (unit or "")))
    raw = unicodedata.normalize("NFKC", sentence)
    found += [Specific("name", n.lower()) for n in _JA_NAME.findall(raw) if not _KANJI_NUMBER.search(n)]
    found += [Specific("name", n.lower()) for n in _EN_NAME.findall(raw) if n.upper() not in _NOT_NAMES]
    found += [Specific("name", key) for pattern, key in (*_SECTORS, *_RECORDS, *_EN_BODIES) if pattern.search(raw)]
    found += [Specific("law", words) for words in _law_names(raw)]
    return list(dict.fromkeys(found))


def _law_names(text: str) -> list[str]:
    """The English laws a text names, each as its words (jurisdiction, subject and the instrument, singular):
    "Under Japan's Act on Prevention of …" -> "japan act prevention transfer criminal proceeds"."""
    names = []
    for before, instrument, after in _EN_LAW.findall(text):
        words = [re.sub(r"[’']s$", "", w).lower() for w in f"{before} {after}".split()]
        words = [w for w in words if w not in _LAW_FILLER]
        if words:
            names.append(" ".join(dict.fromkeys([*words, instrument.lower().removesuffix("s")])))
    return names


def _states_law(words: str, passage: str) -> bool:
    """Whether the passage names the law: every one of its words, or its initials as a word ("BSA", "MLRs")."""
    found = set(re.findall(r"[a-z0-9]+", re.sub(r"[’']s\b", "", unicodedata.normalize("NFKC", passage).lower())))
    wanted = [w.removesuffix("s") for w in words.split()]
    initials = "".join(w[0] for w in wanted)
    return all(w in found or w + "s" in found for w in wanted) or initials in found or initials + "s" in found


def strip_specifics(sentence: str) -> str:
    """The sentence without its numbers, units and article references: what is left to check by words."""
    text = _ARTICLE.sub(" ", canonical(_MARKERS.sub("", sentence)))
    return _NUMBER_UNIT.sub(" ", text)


def missing_specifics(sentence: str, passage: str) -> list[Specific]:
    """The sentence's specifics that the passage does not state, or states fewer times than the sentence does
    (「第五十四条第四項の仮払金…第五十四条第四項の規定」 against a passage that has 第五十三条 first)."""
    text = canonical(passage)
    compact = re.sub(r"\s+", "", text)
    claimed = re.sub(r"\s+", "", canonical(_MARKERS.sub("", sentence)))
    numbers = {n + (u or "") for n, u in _NUMBER_UNIT.findall(_ARTICLE.sub(" ", text))}
    bare = {n for n, _ in _NUMBER_UNIT.findall(text)}
    missing = []
    for s in specifics(sentence):
        if s.kind == "number":
            ok = s.text in numbers or (s.text.isdigit() and s.text in bare) or _count_number(compact, s.text) > 0
        elif s.kind in ("article", "ordinal"):
            ok = s.text in compact
        elif s.kind == "law":
            ok = _states_law(s.text, passage)
        else:
            ok = s.text in text or s.text in compact or s.text in unicodedata.normalize("NFKC", passage).lower()
        counted = s.kind not in ("name", "law") and not s.text.isdigit()
        count = _count_number if s.kind == "number" else str.count
        if not ok or (counted and count(claimed, s.text) > count(compact, s.text)):
            missing.append(s)
    return missing


def _count_number(text: str, number: str) -> int:
    """How often ``text`` states ``number`` as a number of its own: "6" is not stated by "2006", nor "5年" by
    "15年" (the resolutions of 2006 are not Recommendation 6)."""
    tail = r"(?![\d.]\d|\d)" if number[-1].isdigit() else ""
    return len(re.findall(rf"(?<!\d)(?<!\d\.){re.escape(number)}{tail}", text))


def asked_specific(question: str) -> str | None:
    """The kind of specific a question explicitly asks for: ``article`` (何条, which article), ``percentage`` (何%,
    what percentage), ``amount`` of money (いくら, 何円, what amount, the maximum fine, in euros), ``period`` (何年,
    何営業日, how many days, every how many months), ``number`` (何回, how many, the maximum, by what date) or None.
    Only explicit asks count: いつ / when / how long can be answered by 直ちに or "before the relationship begins",
    so they ask for no specific kind."""
    text = unicodedata.normalize("NFKC", question)
    return next((kind for kind, pattern in _ASKS if pattern.search(text)), None)


def stated_kinds(claim: str) -> set[str]:
    """The kinds of specific a claim states, as :func:`asked_specific` names them (list item numbers excluded)."""
    claim = canonical(_ENUMERATOR.sub(" ", _MARKERS.sub("", claim)))
    found = specifics(_DATE.sub(" ", claim))
    kinds = {s.kind for s in found} | ({"number"} if _DATE.search(claim) else set())
    units = {re.sub(r"^[\d.]+", "", s.text) for s in found if s.kind == "number"}
    if units & _PERIOD_UNITS:
        kinds.add("period")
    if "%" in units or _TENTHS.search(claim):
        kinds.add("percentage")
    if _MONEY.search(claim):
        kinds.add("amount")
    return kinds


def states_asked_specific(questions: list[str], claims: list[str]) -> bool:
    """Whether the claims state the kind of specific each question asks for (any, when it asks for none): a
    follow-up is checked as typed and as rewritten, since a rewrite can lose the ask (何営業日 → どの営業日)."""
    stated = set().union(*(stated_kinds(claim) for claim in claims))
    return {asked_specific(q) for q in questions} - {None} <= stated


def is_list_label(text: str) -> bool:
    """A list item's label standing alone ("1.", "ロ.", "①"), as the sentence splitter leaves it: no claim."""
    return bool(_LIST_LABEL.fullmatch(text.strip()))


def is_connective(sentence: str) -> bool:
    """A sentence that only introduces what follows ("以下のとおりです：") and states nothing specific."""
    body = _MARKERS.sub("", sentence).strip()
    return bool(_CONNECTIVE.search(body)) and not specifics(body)


def negated(text: str) -> bool:
    """Whether the text denies something ("need not", "ません"); obligations ("なければならない") and bounds ("no
    higher than") are not denials."""
    text = unicodedata.normalize("NFKC", text).lower()
    return bool(_NEGATION.search(_BOUND.sub(" ", _OBLIGATION.sub("", text))))
