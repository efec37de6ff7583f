"""Streamlit's file uploader in the user's language. Its own texts (the "Upload" button, "100MB per file", "Drag
and drop files here" while a file is dragged over it) are English in Streamlit 1.67, with no option to change them
(streamlit/streamlit#13500): a small script rewrites those text nodes, and rewrites them back for English."""

from __future__ import annotations

import json

import streamlit as st

from ui.i18n import t

# Streamlit's text -> our key; "per file" carries the size limit, which the script keeps
UPLOADER_TEXTS = {
    "Upload": "uploader_button",
    "Drag and drop files here": "uploader_drop_files",
    "Drag and drop a file here": "uploader_drop_file",
}


def uploader_script(lang: str) -> str:
    """The script that puts the uploader's texts in ``lang`` (installed once per browser page; each run tells it
    the language again, so switching back to English undoes the Japanese)."""
    pairs = [[english, t(key, "ja")] for english, key in UPLOADER_TEXTS.items()]
    limit = t("uploader_limit", "ja", size="$1").split("$1")
    return (
        "<script>(() => {"
        f"window.cqaUploaderLang = {json.dumps(lang)};"
        f"const pairs = {json.dumps(pairs, ensure_ascii=False)}, limit = {json.dumps(limit, ensure_ascii=False)};"
        "const esc = (s) => s.replace(/[.*+?^${}()|[\\]\\\\]/g, '\\\\$&');"
        "const jaLimit = new RegExp('^' + esc(limit[0]) + '(.+?)' + esc(limit[1]) + '$');"
        "const say = (text) => {"
        "  const ja = window.cqaUploaderLang === 'ja';"
        "  for (const [en, jp] of pairs) { if (text === (ja ? en : jp)) return ja ? jp : en; }"
        "  const m = ja ? text.match(/^(.+) per file$/) : text.match(jaLimit);"
        "  if (m) return ja ? limit[0] + m[1] + limit[1] : m[1] + ' per file';"
        "  return null;"
        "};"
        "const fix = () => {"
        "  for (const zone of document.querySelectorAll('[data-testid=\"stFileUploaderDropzone\"]')) {"
        "    const walk = document.createTreeWalker(zone, NodeFilter.SHOW_TEXT);"
        "    for (let node = walk.nextNode(); node; node = walk.nextNode()) {"
        "      const said = say(node.nodeValue);"
        "      if (said !== null && said !== node.nodeValue) node.nodeValue = said;"
        "    }"
        "  }"
        "};"
        "if (!window.cqaUploaderFix) {"
        "  window.cqaUploaderFix = fix;"
        "  new MutationObserver(fix).observe(document.body, {childList: true, subtree: true, characterData: true});"
        "}"
        "window.cqaUploaderFix();"
        "})();</script>"
    )


def file_uploader(label: str, lang: str, **kwargs):
    """``st.file_uploader`` with Streamlit's own texts in ``lang`` (see the module's docstring)."""
    st.html(uploader_script(lang), unsafe_allow_javascript=True)
    return st.file_uploader(label, **kwargs)
