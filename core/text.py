"""Small text facts used across services: language and safe file names."""

import re
import unicodedata

_JA = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")


def detect_language(text: str) -> str:
    """``ja`` when the text contains kana or kanji, else ``en``."""
    return "ja" if _JA.search(text) else "en"


def safe_file_name(name: str, max_len: int = 150) -> str:
    """A file name with no directories, control characters or leading dots."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if not name:
        raise ValueError("file name is empty after removing unsafe characters")
    stem, dot, ext = name.rpartition(".")
    if len(name) > max_len:
        name = (stem[: max_len - len(ext) - 1] + "." + ext) if dot else name[:max_len]
    return name


def printable(text: str) -> str:
    """Text as it may be shown on a page or a terminal: control and format characters (escape sequences, bell,
    line breaks, bidi overrides, as in a hostile file name) written as visible escapes such as ``\\x1b``."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch)[0] == "C" else ch for ch in text
    )
