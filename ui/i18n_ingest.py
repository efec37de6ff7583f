"""Why a file could not be ingested, in Japanese and English: the sentences for the readers' and the ingest
service's error keys (``err_ingest_<what>``, ``IngestItem.error_key``). ui/i18n.py merges them into its table."""

from __future__ import annotations

# file types the readers refuse (ingest/readers/sniffing.py, decoding.py): key ``err_ingest_type_<code>``
_TYPES: dict[str, tuple[str, str]] = {
    "png": ("PNG 画像", "a PNG image"),
    "jpeg": ("JPEG 画像", "a JPEG image"),
    "gif": ("GIF 画像", "a GIF image"),
    "tiff": ("TIFF 画像", "a TIFF image"),
    "webp": ("WebP 画像", "a WebP image"),
    "office_legacy": ("旧形式の Office ファイル（.doc/.xls/.ppt）またはパスワード付きの Office 文書",
                      "a legacy Microsoft Office file (.doc/.xls/.ppt) or a password-protected Office document"),
    "rtf": ("RTF 文書", "an RTF document"),
    "postscript": ("PostScript 文書", "a PostScript document"),
    "gzip": ("gzip 圧縮ファイル", "a gzip archive"),
    "7z": ("7-Zip 圧縮ファイル", "a 7-Zip archive"),
    "rar": ("RAR 圧縮ファイル", "a RAR archive"),
    "bzip2": ("bzip2 圧縮ファイル", "a bzip2 archive"),
    "xz": ("xz 圧縮ファイル", "an xz archive"),
    "zstd": ("zstd 圧縮ファイル", "a zstd archive"),
    "executable": ("実行ファイル（プログラム）", "an executable program"),
    "sqlite": ("SQLite データベース", "an SQLite database"),
    "media": ("動画・音声ファイル", "a video or audio file"),
    "mp3": ("MP3 音声", "MP3 audio"),
    "ogg": ("Ogg 音声・動画", "Ogg audio or video"),
    "binary": ("バイナリデータ", "binary data"),
    "zip_damaged": ("壊れた ZIP ファイル", "a damaged ZIP archive"),
    "xlsx": ("Excel ブック（.xlsx）", "an Excel workbook (.xlsx)"),
    "pptx": ("PowerPoint プレゼンテーション（.pptx）", "a PowerPoint presentation (.pptx)"),
    "opendocument": ("OpenDocument ファイル", "an OpenDocument file"),
    "zip": ("ZIP ファイル（Word の .docx 文書ではありません）", "a ZIP archive (not a Word .docx document)"),
}
# what a file's content is when its name says otherwise (sniffing.check_extension): ``_mismatch_<code>``
_KINDS: dict[str, tuple[str, str]] = {
    "pdf": ("PDF", "a PDF"),
    "docx": ("Word 文書", "a Word document"),
    "html": ("HTML ページ", "an HTML page"),
    "egov_xml": ("e-Gov 法令 XML", "e-Gov law XML"),
    "text": ("テキスト", "plain text"),
}
_READABLE = {"ja": "取り込めるのは PDF、Word（.docx）、HTML、e-Gov 法令 XML、Markdown とテキストのファイルです。",
             "en": "PDF, Word (.docx), HTML, e-Gov law XML, Markdown and text files can be ingested."}

INGEST_ERROR_STRINGS: dict[str, dict[str, str]] = {
    **{f"err_ingest_type_{code}": {"ja": f"対応していないファイル形式です（{ja}）。{_READABLE['ja']}",
                                   "en": f"Unsupported file type: {en}. {_READABLE['en']}"}
       for code, (ja, en) in _TYPES.items()},
    **{f"err_ingest_mismatch_{code}": {
        "ja": f"ファイル名の拡張子は {{ext}} ですが、中身は{ja}です。名前を直すか、意図したファイルをアップロードして"
              "ください。",
        "en": f"The file name ends in {{ext}} but the content is {en}: rename it or upload the intended file."}
       for code, (ja, en) in _KINDS.items()},
    **{f"err_ingest_no_extension_{code}": {
        "ja": f"ファイル名に拡張子がありませんが、中身は{ja}です。正しい拡張子を付けてください。",
        "en": f"The file name has no extension but the content is {en}: give it the right extension."}
       for code, (ja, en) in _KINDS.items()},
    "err_ingest_xml_not_egov": {"ja": "対応していない XML ファイルです（e-Gov 法令 XML ではありません）。"
                                      + _READABLE["ja"],
                                "en": "Unsupported file type: an XML document (only e-Gov law XML is supported)."},
    "err_ingest_xml_entities": {"ja": "XML ファイルにエンティティまたは DTD の宣言があるため、安全のため取り込み"
                                      "ません。",
                                "en": "The XML file uses entity or DTD declarations, which are refused for safety."},
    "err_ingest_xml_malformed": {"ja": "XML の形式が正しくありません（{detail}）。",
                                 "en": "The XML is malformed ({detail})."},
    "err_ingest_no_text_egov_xml": {"ja": "e-Gov 法令 XML に本文がありません。",
                                    "en": "No text was found in the e-Gov law XML."},
    "err_ingest_no_text_html": {"ja": "HTML 文書に本文がありません。", "en": "No text was found in the HTML document."},
    "err_ingest_no_text_docx": {"ja": "Word 文書に本文がありません。", "en": "No text was found in the Word document."},
    "err_ingest_empty": {"ja": "ファイルが空です。", "en": "The file is empty."},
    "err_ingest_too_large": {"ja": "ファイルが上限の {mb} MB を超えています。",
                             "en": "The file is larger than the limit of {mb} MB."},
    "err_ingest_unreadable": {"ja": "ファイルを読み込めません（{detail}）。", "en": "Cannot read the file ({detail})."},
    "err_ingest_no_upload_folder": {"ja": "アップロードの保存先フォルダーが設定されていません。管理者に連絡して"
                                          "ください。",
                                    "en": "This server has no upload folder; ask an administrator."},
    "err_ingest_no_such_file": {"ja": "ファイルが見つかりません。", "en": "There is no such file."},
    "err_ingest_no_chunks": {"ja": "本文を分割した結果、索引に登録できる文がありませんでした。",
                             "en": "No text was left to index after chunking."},
    "err_ingest_read_failed": {"ja": "ファイルを読み込めませんでした（{detail}）。",
                               "en": "The file could not be read ({detail})."},
    "err_ingest_html_too_many_tags": {
        "ja": "HTML ページのタグが {tags} 個あり、上限の {max} 個を超えています（メモリを守るため取り込みません）。",
        "en": "The HTML page has {tags} tags, more than the limit of {max}: refused to keep memory bounded."},
    "err_ingest_html_unparsable": {"ja": "HTML を解析できませんでした（{detail}）。",
                                   "en": "The HTML could not be parsed ({detail})."},
    "err_ingest_html_too_deep": {"ja": "HTML ページの入れ子が {max} 段を超えているため取り込みません（実際のページには"
                                       "ない深さです）。",
                                 "en": "The HTML page is nested more than {max} levels deep: refused (no real page "
                                       "is)."},
    "err_ingest_pdf_truncated": {"ja": "PDF が壊れているか、途中で切れています（ファイル末尾の印がありません）。",
                                 "en": "The PDF is damaged or truncated (its end-of-file marker is missing)."},
    "err_ingest_pdf_password": {"ja": "PDF がパスワードで暗号化されています。パスワードを外してからアップロードし直して"
                                      "ください。",
                                "en": "The PDF is encrypted with a password; remove the password and upload it again."},
    "err_ingest_pdf_encryption": {"ja": "この PDF の暗号化方式には対応していません（{detail}）。",
                                  "en": "The PDF uses an encryption this installation cannot open ({detail})."},
    "err_ingest_pdf_damaged": {"ja": "PDF が壊れていて読み込めません（{detail}）。",
                               "en": "The PDF is damaged and cannot be read ({detail})."},
    "err_ingest_pdf_no_pages": {"ja": "PDF が壊れていて読み込めません（ページがありません）。",
                                "en": "The PDF is damaged and cannot be read (it has no pages)."},
    "err_ingest_pdf_no_page_text": {"ja": "PDF が壊れていて、どのページからも文字を取り出せませんでした。",
                                    "en": "The PDF is damaged: no page's text could be extracted."},
    "err_ingest_pdf_no_text": {"ja": "PDF から文字を取り出せません。スキャンした PDF のようです（文字認識（OCR）が"
                                     "必要です）。",
                               "en": "The PDF has no extractable text (a scanned PDF? It needs OCR)."},
    "err_ingest_pdf_no_text_no_ocr": {
        "ja": "PDF から文字を取り出せません。スキャンしたページですが、文字認識（OCR）が使えないため読み取れません"
              "でした（make ocr で導入できます）。",
        "en": "The PDF has no extractable text: its pages are scanned and OCR (Tesseract) is not available here "
              "(make ocr installs it)."},
    "err_ingest_pdf_no_text_after_ocr": {"ja": "PDF から文字を取り出せません。文字認識（OCR）でも文字を読み取れません"
                                               "でした。",
                                         "en": "The PDF has no extractable text: OCR found none on its scanned pages."},
    "err_ingest_word_unpacks_too_large": {
        "ja": "Word 文書を展開すると {mb} MB になり、上限の {max} MB を超えます（zip 爆弾の疑い）。取り込みません。",
        "en": "The Word document unpacks to {mb} MB, more than the limit of {max} MB (a zip bomb?): refused."},
    "err_ingest_word_packed_too_tight": {
        "ja": "Word 文書の部品 {part} の圧縮率が {ratio}:1 で、上限の {max}:1 を超えます（zip 爆弾の疑い）。"
              "取り込みません。",
        "en": "Word document part {part} is packed {ratio}:1, more than {max}:1 (a zip bomb?): refused."},
    "err_ingest_word_entities": {"ja": "Word 文書に DTD またはエンティティの宣言があるため、安全のため取り込みません。",
                                 "en": "The Word document contains DTD or entity declarations, which are refused "
                                       "for safety."},
    "err_ingest_word_damaged": {"ja": "Word 文書が壊れていて読み込めません（{detail}）。",
                                "en": "The Word document is damaged and cannot be read ({detail})."},
}
