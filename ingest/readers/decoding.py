"""Bytes to text: byte-order marks, declared charsets, UTF-8, the Japanese legacy encodings (CP932, EUC-JP),
then charset-normalizer; binary data is refused."""

from __future__ import annotations

import codecs
import re

from core.errors import IngestError
from core.text import KANA_RE

_BOMS: list[tuple[bytes, str]] = [
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
]


def bom_encoding(data: bytes) -> str | None:
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return enc
    return None


_JA_CODECS = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "ms932": "cp932",
    "x-ms-cp932": "cp932",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "iso-2022-jp": "iso2022_jp_2",
}
META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
XML_ENCODING = re.compile(rb"""<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_\-.]+)""", re.I)


def codec_name(name: str) -> str | None:
    name = name.strip().lower()
    name = _JA_CODECS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def try_decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_text(data: bytes, declared: str | None = None) -> tuple[str, list[str]]:
    """Decode text bytes: BOM, declared charset, UTF-8, Japanese legacy encodings (CP932/EUC-JP), then
    charset-normalizer. Raises IngestError for binary data."""
    warnings: list[str] = []
    bom = bom_encoding(data)
    if bom:
        text = data.decode(bom, errors="replace")
        return _check_text(text), warnings
    if b"\x00" in data[:8192]:
        text = _decode_with_normalizer(data)
        if text is None:
            raise IngestError("unsupported file type: binary data", key="ingest_type_binary")
        return _check_text(text), warnings
    candidates = []
    declared_codec = codec_name(declared) if declared else None
    if declared_codec and not (declared_codec != "utf-8" and not data.isascii() and try_decode(data, "utf-8")):
        candidates.append(declared_codec)  # (non-ASCII bytes that are valid UTF-8 are UTF-8, whatever is declared)
    candidates.append("utf-8")
    for codec in candidates:
        text = try_decode(data, codec)
        if text is not None:
            if declared_codec and codec != declared_codec:
                warnings.append(_mislabelled(declared or "", codec))
            return _check_text(text), warnings
    best_ja: tuple[int, str, str] | None = None
    for codec in ("cp932", "euc_jp"):
        text = try_decode(data, codec)
        if text is not None:
            kana = len(KANA_RE.findall(text[:20000]))
            if kana >= 3 and (best_ja is None or kana > best_ja[0]):
                best_ja = (kana, text, codec)
    if best_ja is not None:
        if declared_codec:
            warnings.append(_mislabelled(declared or "", best_ja[2]))
        return _check_text(best_ja[1]), warnings
    text = _decode_with_normalizer(data)
    if text is None:
        text = data.decode(candidates[0], errors="replace")
        warnings.append("some characters could not be decoded and were replaced")
    return _check_text(text), warnings


_CODEC_NAMES = {"cp932": "Shift_JIS (CP932)", "euc_jp": "EUC-JP", "utf-8": "UTF-8"}


def _mislabelled(declared: str, codec: str) -> str:
    return (f"the file declares its encoding as {declared} but is {_CODEC_NAMES.get(codec, codec)}; "
            "it was read as what it is")


def _decode_with_normalizer(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - it is a pinned requirement
        return None
    best = from_bytes(data).best()
    if best is None:
        return None
    return str(best)


def _check_text(text: str) -> str:
    """Reject decoded 'text' that is really binary (many control characters or replacement marks)."""
    sample = text[:20000]
    if not sample:
        return text
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or ch == "\ufffd")
    if bad > max(8, len(sample) // 100):
        raise IngestError("unsupported file type: binary data", key="ingest_type_binary")
    return text
