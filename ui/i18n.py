"""Interface strings in Japanese and English, looked up by key."""

from __future__ import annotations

from ui.i18n_chat import CHAT_STRINGS
from ui.i18n_eval import COMPARE_STRINGS, REASON_STRINGS
from ui.i18n_ingest import INGEST_ERROR_STRINGS
from ui.i18n_pages import ERROR_STRINGS, PAGE_STRINGS

STRINGS: dict[str, dict[str, str]] = {
    "app_title": {"ja": "コンプライアンス Q&A", "en": "Compliance Q&A"},
    "chat": {"ja": "質問する", "en": "Ask"},
    "documents": {"ja": "文書管理", "en": "Documents"},
    "evaluation": {"ja": "評価", "en": "Evaluation"},
    "audit": {"ja": "監査ログ", "en": "Audit log"},
    "audit_head_ok": {"ja": "最新の記録 {id} は外部のヘッドアンカーと一致しています（{n} 件）。",
                      "en": "The newest record {id} matches the head anchor ({n} records)."},
    "audit_tampered": {"ja": "改ざんの疑い: {reason}", "en": "Possible tampering: {reason}"},
    "audit_verify_all": {"ja": "全件を検証", "en": "Verify the whole chain"},
    "audit_verifying": {"ja": "ハッシュチェーンを検証しています…", "en": "Verifying the hash chain…"},
    "audit_verified": {"ja": "全 {n} 件を検証しました（{seconds:.1f} 秒）: {reason}",
                       "en": "Verified all {n} records in {seconds:.1f} s: {reason}"},
    "audit_user": {"ja": "ユーザー", "en": "User"},
    "audit_action": {"ja": "操作", "en": "Action"},
    "audit_text": {"ja": "内容に含む文字列", "en": "Text in the detail"},
    "audit_from": {"ja": "開始日（UTC）", "en": "From (UTC)"},
    "audit_to": {"ja": "終了日（UTC）", "en": "To (UTC)"},
    "audit_newest": {"ja": "最新へ", "en": "Newest"},
    "audit_older": {"ja": "さらに古い記録", "en": "Older"},
    "audit_none": {"ja": "該当する記録はありません。", "en": "No matching records."},
    "audit_export": {"ja": "CSV（期間内の {n} 件）", "en": "CSV ({n} records in the dates)"},
    "audit_export_too_many": {
        "ja": "期間内の {n} 件はブラウザでのダウンロードには多すぎます（上限 {max} 件）。期間を絞るか、サーバーで "
              "python -m audit export --from … --to … --out ファイル を実行してください。",
        "en": "{n} records in the dates are too many for a browser download (at most {max}). Narrow the dates, or "
              "run python -m audit export --from … --to … --out FILE on the server.",
    },
    "settings": {"ja": "設定", "en": "Settings"},
    "settings_caption": {
        "ja": "稼働中の設定（読み取り専用、秘密情報は伏せ字）。"
              "変更は設定ファイルか CQA_ 環境変数で行い、再起動します。",
        "en": "Settings in effect (read-only, secrets masked). "
              "Change them in the settings file or CQA_ environment variables and restart.",
    },
    "users": {"ja": "ユーザー管理", "en": "Users"},
    "language": {"ja": "表示言語", "en": "Language"},
    "ask_placeholder": {
        "ja": "質問を入力してください（例: 口座開設時の本人確認書類は？）",
        "en": "Ask a question (e.g. What ID documents are accepted?)",
    },
    "searching": {"ja": "資料を検索しています…", "en": "Searching the documents…"},
    "sources": {"ja": "出典", "en": "Sources"},
    "closest_passages": {"ja": "最も近い記載", "en": "Closest passages"},
    "refused_no_relevant_passage": {
        "ja": "資料に関連する記載が見つからなかったため、回答を控えました。",
        "en": "No relevant passage was found, so no answer was generated.",
    },
    "refused_not_stated": {
        "ja": "関連する資料はありますが、お尋ねの点は記載されていません。",
        "en": "Related passages were found, but they do not state what was asked.",
    },
    "refused_only_unsupported": {
        "ja": "生成された内容を資料で確認できなかったため、回答を控えました。",
        "en": "Nothing the model wrote could be verified in the documents, so no answer is shown.",
    },
    "unsupported": {
        "ja": "資料で確認できなかった文は回答から除外しました。",
        "en": "Sentences the documents do not support were removed from the answer.",
    },
    "removed_claims": {
        "ja": "資料で確認できなかった内容（{n}件、回答から除外）",
        "en": "Not found in the documents ({n}, removed from the answer)",
    },
    "page": {"ja": "ページ", "en": "page"},
    "section": {"ja": "章節", "en": "section"},
    "version": {"ja": "版", "en": "version"},
    "feedback_comment": {"ja": "コメント（任意）", "en": "Comment (optional)"},
    "feedback_thanks": {"ja": "フィードバックを記録しました。", "en": "Feedback recorded."},
    "copy_answer": {"ja": "出典付きで回答をコピー", "en": "Copy answer with sources"},
    "new_chat": {"ja": "新しい会話", "en": "New conversation"},
    "no_documents": {
        "ja": "まだ文書が登録されていません。管理者が文書を取り込んでください。",
        "en": "No documents are indexed yet. An admin must ingest documents first.",
    },
    "upload": {"ja": "ファイルをアップロード", "en": "Upload files"},
    "doc_type": {"ja": "文書種別", "en": "Document type"},
    "effective_from": {"ja": "施行日・適用開始日", "en": "Effective from"},
    "access_groups": {
        "ja": "閲覧グループ（カンマ区切り、空欄は全員）",
        "en": "Access groups (comma-separated, empty = everyone)",
    },
    "ingest_button": {"ja": "取り込む", "en": "Ingest"},
    "withdraw": {"ja": "取り下げ", "en": "Withdraw"},
    "delete": {"ja": "削除", "en": "Delete"},
    "delete_document": {"ja": "削除する文書（全版）", "en": "Document to delete (every version)"},
    "delete_confirm": {
        "ja": "この文書の全版を索引と台帳から削除します（監査ログには残ります）",
        "en": "Remove every version of this document from the index and the registry (the audit log keeps it)",
    },
    "sync_folder": {
        "ja": "またはサーバー上のフォルダーを再取り込み（新規・変更は取り込み、無くなった文書は取り下げ）",
        "en": "Or re-ingest a folder on the server (new and changed files ingested, missing ones withdrawn)",
    },
    "status": {"ja": "状態", "en": "Status"},
    "replaces": {"ja": "置き換えた版", "en": "Replaces"},
    "suggestions": {"ja": "新版の候補（確認待ち）", "en": "Suggested new editions (awaiting confirmation)"},
    "suggestion_text": {
        "ja": "「{new}」（{source}）は「{old}」第{version}版の新版のようです（{reason}、本文の{overlap}が共通）。",
        "en": "\"{new}\" ({source}) looks like a new edition of \"{old}\" v{version} ({reason}, {overlap} of the "
              "text in common).",
    },
    "confirm_edition": {"ja": "新版として確定", "en": "Confirm as new edition"},
    "dismiss": {"ja": "別の文書として残す", "en": "Keep as a separate document"},
    "edition_confirmed": {"ja": "「{title}」を第{version}版として登録しました。",
                          "en": "\"{title}\" is now version {version}."},
    "restore": {"ja": "以前の版に戻す", "en": "Restore an earlier version"},
    "restore_version": {"ja": "有効に戻す版", "en": "Version to make active again"},
    "restored": {"ja": "「{title}」第{version}版を有効に戻しました。", "en": "\"{title}\" v{version} is active again."},
    "sign_in": {"ja": "サインイン", "en": "Sign in"},
    "sign_out": {"ja": "サインアウト", "en": "Sign out"},
    "user_name": {"ja": "ユーザー名", "en": "User name"},
    "password": {"ja": "パスワード", "en": "Password"},
    "password_again": {"ja": "パスワード（確認）", "en": "Password (again)"},
    "passwords_differ": {"ja": "パスワードが一致しません。", "en": "The passwords differ."},
    "first_admin": {"ja": "最初の管理者アカウントを作成してください（初期パスワードはありません）。",
                    "en": "Create the first administrator account (there is no default password)."},
    "create_admin": {"ja": "管理者を作成", "en": "Create administrator"},
    "admin_created": {"ja": "管理者を作成しました。サインインしてください。",
                      "en": "Administrator created. Please sign in."},
    "sign_in_sso": {"ja": "シングルサインオンでサインイン", "en": "Sign in with single sign-on"},
    "sso_unknown_user": {"ja": "このアカウントには、このアプリの利用権限がありません。管理者に連絡してください。",
                         "en": "Your single sign-on account has no access to this app. Ask an administrator."},
    "your_groups": {"ja": "閲覧グループ: {groups}", "en": "Access groups: {groups}"},
    "change_password": {"ja": "パスワードを変更", "en": "Change password"},
    "current_password": {"ja": "現在のパスワード", "en": "Current password"},
    "new_password": {"ja": "新しいパスワード", "en": "New password"},
    "session_expired": {"ja": "一定時間操作がなかったため、サインアウトしました。",
                        "en": "You were signed out after a period of inactivity."},
    "forbidden": {"ja": "このページを表示する権限がありません。", "en": "You are not allowed to open this page."},
    "open_page": {"ja": "{page}ページを開く（PDF）", "en": "Open page {page} (PDF)"},
    "ocr_source": {"ja": "OCR: スキャンされたページから文字認識で読み取った文です。ページの画像で確かめてください。",
                   "en": "OCR: this text was read from a scanned page by OCR; check it against the page image."},
    "ocr_pages": {"ja": "{name}: 文字認識 {done} / {total} ページ（残り {left}）",
                  "en": "{name}: OCR page {done} of {total} ({left} left)"},
    "ocr_estimating": {"ja": "見積もり中", "en": "estimating"},
    "ocr_chip": {"ja": "OCR", "en": "OCR"},
    "ocr_skipped": {"ja": "{name}: 文字のないスキャンページがありますが、OCR（Tesseract）が使えないため"
                          "読み取っていません（make ocr で導入できます）。",
                    "en": "{name}: its scanned pages were not read: OCR (Tesseract) is not available here "
                          "(make ocr installs it)."},
    "eval_new_run": {"ja": "新しい評価を実行", "en": "Start a new evaluation"},
    "eval_upload_testset": {"ja": "テストセットをアップロード（JSONL / CSV / Excel）",
                            "en": "Upload a test set (JSONL / CSV / Excel)"},
    "eval_testset": {"ja": "テストセット", "en": "Test set"},
    "eval_judge": {"ja": "評価モデル", "en": "Judge"},
    "eval_limit": {"ja": "質問数の上限", "en": "Question limit"},
    "eval_start": {"ja": "評価を開始", "en": "Start evaluation"},
    "eval_no_runs": {"ja": "まだ評価の実行記録がありません。", "en": "No evaluation runs yet."},
    "eval_run": {"ja": "実行", "en": "Run"},
    "eval_questions": {"ja": "質問ごとの結果", "en": "Per-question results"},
    "eval_details": {"ja": "詳細を表示する質問", "en": "Question details"},
    "eval_compare": {"ja": "実行の比較", "en": "Compare runs"},
    "eval_compare_with": {"ja": "比較対象（前回）", "en": "Compare with (earlier run)"},
    "eval_worse": {"ja": "悪化した質問", "en": "Questions that got worse"},
    "eval_download_html": {"ja": "レポート（HTML）", "en": "Report (HTML)"},
    "eval_download_csv": {"ja": "結果（CSV）", "en": "Results (CSV)"},
    "eval_metrics": {"ja": "評価指標", "en": "Metrics"},
    "eval_drafts": {"ja": "テスト質問の下書きを作成してレビュー", "en": "Draft test questions and review them"},
    "eval_draft_count": {"ja": "下書きの数", "en": "Number of drafts"},
    "eval_draft_generate": {"ja": "文書から下書きを作成", "en": "Draft from the documents"},
    "eval_draft_keep": {"ja": "採用", "en": "Keep"},
    "eval_draft_target": {"ja": "保存先テストセット", "en": "Save to test set"},
    "eval_draft_save": {"ja": "採用した質問を保存", "en": "Save the kept questions"},
    "eval_draft_saved": {"ja": "{n}件を {name} に保存しました（計{total}件）。",
                         "en": "Saved {n} questions to {name} ({total} in total)."},
    "signed_in_as": {"ja": "サインイン中: {name}", "en": "Signed in as {name}"},
}

STRINGS.update(ERROR_STRINGS)
STRINGS.update(PAGE_STRINGS)
STRINGS.update(CHAT_STRINGS)
STRINGS.update(INGEST_ERROR_STRINGS)
STRINGS.update(REASON_STRINGS)
STRINGS.update(COMPARE_STRINGS)


def t(key: str, lang: str, **kwargs) -> str:
    entry = STRINGS.get(key)
    text = key if entry is None else entry.get(lang) or entry["en"]
    return text.format(**kwargs) if kwargs else text


def code_label(prefix: str, code: str, lang: str) -> str:
    """The ``lang`` label of a code the services use (a status, a stage, a reason): key ``<prefix>_<code>``, or the
    code itself when this build has no label for it."""
    key = f"{prefix}_{code}"
    return t(key, lang) if key in STRINGS else code


def reason_text(reason: str | None, lang: str) -> str:
    """A stored score reason (English, eval/reasons.py) in ``lang``; one this build does not know as it is."""
    from eval.reasons import reason_message

    message = reason_message(reason)
    if message is None or f"reason_{message[0]}" not in STRINGS:
        return reason or ""
    key, params = message
    return t(f"reason_{key}", lang, **params)
