"""Interface strings in Japanese and English, looked up by key."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "app_title": {"ja": "コンプライアンス Q&A", "en": "Compliance Q&A"},
    "chat": {"ja": "質問する", "en": "Ask"},
    "documents": {"ja": "文書管理", "en": "Documents"},
    "evaluation": {"ja": "評価", "en": "Evaluation"},
    "audit": {"ja": "監査ログ", "en": "Audit log"},
    "users": {"ja": "ユーザー管理", "en": "Users"},
    "language": {"ja": "表示言語", "en": "Language"},
    "ask_placeholder": {
        "ja": "質問を入力してください（例: 口座開設時の本人確認書類は？）",
        "en": "Ask a question (e.g. What ID documents are accepted?)",
    },
    "searching": {"ja": "資料を検索しています…", "en": "Searching the documents…"},
    "sources": {"ja": "出典", "en": "Sources"},
    "closest_passages": {"ja": "最も近い記載", "en": "Closest passages"},
    "refused": {
        "ja": "資料に回答の根拠が見つからなかったため、回答を控えました。",
        "en": "No supporting passage was found, so no answer was generated.",
    },
    "unsupported": {
        "ja": "根拠資料で確認できない文があります（赤線）。",
        "en": "Some sentences are not supported by their sources (marked).",
    },
    "page": {"ja": "ページ", "en": "page"},
    "section": {"ja": "章節", "en": "section"},
    "version": {"ja": "版", "en": "version"},
    "timings": {
        "ja": "検索 {r} ms ・ 最初の語 {f} ms ・ 合計 {t} ms",
        "en": "retrieval {r} ms · first token {f} ms · total {t} ms",
    },
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
    "status": {"ja": "状態", "en": "Status"},
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
    "sso_unknown_user": {"ja": "このアカウントは登録されていません。管理者に連絡してください。",
                         "en": "This account is not registered here. Contact an administrator."},
    "change_password": {"ja": "パスワードを変更", "en": "Change password"},
    "current_password": {"ja": "現在のパスワード", "en": "Current password"},
    "new_password": {"ja": "新しいパスワード", "en": "New password"},
    "session_expired": {"ja": "一定時間操作がなかったため、サインアウトしました。",
                        "en": "You were signed out after a period of inactivity."},
    "forbidden": {"ja": "このページを表示する権限がありません。", "en": "You are not allowed to open this page."},
    "open_page": {"ja": "{page}ページを開く（PDF）", "en": "Open page {page} (PDF)"},
    "signed_in_as": {"ja": "サインイン中: {name}", "en": "Signed in as {name}"},
}


def t(key: str, lang: str, **kwargs) -> str:
    entry = STRINGS.get(key)
    text = key if entry is None else entry.get(lang) or entry["en"]
    return text.format(**kwargs) if kwargs else text
