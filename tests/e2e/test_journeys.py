"""Each user's main journey in a real browser against the app started by `make run`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import SAMPLES
from tests.e2e.conftest import ask, choose, sign_in, upload
from tests.helpers import REPO

pytestmark = pytest.mark.e2e


def test_staff_asks_follows_up_is_refused_and_gives_feedback(page, app_url, output_dir):
    sign_in(page, app_url, "staff1")
    answer = ask(page, "口座開設時の本人確認書類は？")
    assert answer.inner_text().strip()
    chips = answer.locator('[data-testid="stButtonGroup"] button')
    chips.first.wait_for()
    chips.first.click()
    page.get_by_text(re.compile(r"PDF \d / 4 ページ")).first.wait_for()  # the cited page, shown in the app
    assert page.locator(".cqa-page img").first.get_attribute("src").startswith("data:image/png;base64,")
    assert "位置を特定できませんでした" not in page.locator('[data-testid="stChatMessage"]').last.inner_text()

    follow_up = ask(page, "その書類に顔写真がない場合は？")
    assert follow_up.inner_text().strip()

    refused = ask(page, "東京の今日の天気と株価の見通しを教えてください。")
    assert "提供された資料には" in refused.inner_text() or "回答を控えました" in refused.inner_text()

    feedback = refused.locator('[data-testid="stFeedbackButton"]')
    feedback.last.click()
    refused.get_by_label("コメント（任意）").fill("天気は対象外と分かりやすかった")
    refused.get_by_role("button", name="OK").click()
    page.get_by_text("フィードバックを記録しました。").wait_for()
    page.screenshot(path=str(output_dir / "1-staff-chat.png"), full_page=True)


def test_staff_cannot_open_admin_pages_or_read_restricted_documents(page, app_url, output_dir):
    sign_in(page, app_url, "staff1")
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "文書管理" not in sidebar and "評価" not in sidebar
    # The documents page's address, typed into the same browser: the signed session cookie keeps staff1 signed
    # in across the reload (one session, no second sign-in), and the role check still keeps the page closed.
    page.goto(f"{app_url}/documents")
    page.get_by_text("サインイン中: staff1").wait_for()
    assert page.get_by_role("button", name="サインイン", exact=True).count() == 0
    assert page.locator('[data-testid="stFileUploaderDropzone"]').count() == 0
    assert page.get_by_role("heading", name="文書管理").count() == 0
    refused = page.get_by_role("dialog")  # Streamlit's "Page not found": staff's navigation has no such page
    refused.wait_for()
    page.keyboard.press("Escape")
    refused.wait_for(state="hidden")
    answer = ask(page, "役員賞与の支給基準は？")
    text = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert "極秘の基準" not in text
    assert answer.inner_text().strip()
    page.screenshot(path=str(output_dir / "4-staff-restricted.png"), full_page=True)


def test_board_member_can_read_the_restricted_document(page, app_url):
    sign_in(page, app_url, "board1")
    ask(page, "役員賞与の支給基準は？")
    text = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert "[1] 取締役会議事メモ" in text  # the restricted document's title on the citation chip


def test_admin_uploads_documents_and_a_new_edition_and_sees_errors(page, app_url, output_dir, tmp_path):
    sign_in(page, app_url, "admin1")
    page.get_by_role("link", name="文書管理").click()
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.4\nbroken")
    zone = page.locator('[data-testid="stFileUploaderDropzone"]')  # Streamlit's own texts, in Japanese too
    expect(zone).to_contain_text("アップロード")
    expect(zone).to_contain_text("1 ファイル 100MB まで")
    expect(zone).not_to_contain_text("per file")
    upload(page, [SAMPLES / "editions" / "en_gifts_and_aml_manual.docx", corrupt])
    page.get_by_role("button", name="取り込む").click()
    page.get_by_text("broken.pdf: PDF が壊れているか、途中で切れています（ファイル末尾の印がありません）。").wait_for(
        timeout=300_000)
    table = page.locator('[data-testid="stTable"]').last
    table.wait_for()
    # the second file is read ahead in a worker spawned by the server (app.py is guarded); one that failed
    # to start or died would be logged
    assert "read-ahead worker died" not in (output_dir / "server.log").read_text(encoding="utf-8")

    # a renamed next edition is not merged on its title: the page suggests it, the admin confirms
    upload(page, [SAMPLES / "editions" / "ja_account_opening_manual_v2.pdf"])
    page.get_by_role("button", name="取り込む").click()
    page.get_by_role("button", name="新版として確定").wait_for(timeout=300_000)
    assert "本文の" in page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    page.get_by_role("button", name="新版として確定").click()
    page.get_by_text("第2版として登録しました").wait_for(timeout=120_000)
    # the notice is drawn before the table: wait for the run to end, or the table read is the one before it
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
    page.screenshot(path=str(output_dir / "2-admin-documents.png"), full_page=True)
    main = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    assert "旧版" in main  # the superseded edition, its status in Japanese


def test_compliance_runs_a_test_set_and_reads_the_report(page, app_url, output_dir, tmp_path):
    sign_in(page, app_url, "comp1")
    page.get_by_role("link", name="評価").click()
    cases = [line for line in (REPO / "eval" / "testsets" / "sample.jsonl").read_text(encoding="utf-8").splitlines()
             if '"id": "ja-006"' in line or '"id": "en-004"' in line]
    testset = tmp_path / "branch_check.jsonl"
    testset.write_text("\n".join(cases) + "\n", encoding="utf-8")
    upload(page, [testset])
    choose(page, "テストセット", "branch_check.jsonl")
    page.get_by_role("button", name="評価を開始").click()
    page.locator('[data-testid="stProgress"]').wait_for()

    page.locator('[data-testid="stDataFrame"]').wait_for(timeout=900_000)
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    choose(page, "詳細を表示する質問", "en-004")
    page.locator("strong", has_text="What is the bank's mortgage interest rate?").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="レポート（HTML）").click()
    report = download.value.path().read_text(encoding="utf-8")
    assert "en-004" in report and "ja-006" in report
    page.screenshot(path=str(output_dir / "3-compliance-evaluation.png"), full_page=True)
