"""Daily use in a real browser: a reload keeps the sign-in, the language and the conversation; the cited page is
shown in the app with the passage marked; a conversation is renamed, exported and deleted; and the same on a
phone's width (issue 17 items 1-3 and 8)."""

from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e.conftest import PASSWORD, ask, sign_in

pytestmark = pytest.mark.e2e

QUESTION = "口座開設時の本人確認書類は？"


def _main(page):
    return page.locator('[data-testid="stMainBlockContainer"]')


def _sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def test_a_reload_keeps_the_sign_in_the_language_and_the_conversation(page, app_url, browser, output_dir):
    sign_in(page, app_url, "staff1")
    box, counter = page.locator('[data-testid="stChatInputTextArea"]'), page.get_by_test_id("cqaQuestionCounter")
    box.fill("本人確認")
    expect(counter).to_have_text(re.compile(r"^4 / [\d,]+ 文字$"))
    page.get_by_test_id("stRadioGroup").get_by_text("English").click()
    page.get_by_text("Signed in as staff1").wait_for()
    box.fill("gifts")  # the counter follows the language switch without a reload
    expect(counter).to_have_text(re.compile(r"^5 / [\d,]+ characters$"))
    ask(page, "What gifts may staff accept?")
    page.wait_for_url(re.compile(r"\?c=[0-9a-f]{16}$"))
    conversation_url = page.url

    page.reload()
    page.get_by_text("Signed in as staff1").wait_for()  # signed in, in English, without the sign-in form
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_have_count(0)
    expect(_main(page).get_by_text("What gifts may staff accept?")).to_be_visible()
    page.locator('[data-testid="stFeedback"]').first.wait_for()
    expect(_sidebar(page).get_by_role("button", name="What gifts may staff accept?")).to_be_visible()
    page.screenshot(path=str(output_dir / "10-reload-keeps-conversation.png"), full_page=True)

    cookie = next(c for c in page.context.cookies() if c["name"] == "cqa_session")
    assert cookie["sameSite"] == "Strict"
    _sidebar(page).get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in", exact=True).wait_for()
    page.reload()
    page.get_by_role("button", name="Sign in", exact=True).wait_for()  # signing out ended it for good

    thief = browser.new_context()  # the same cookie value presented again after sign-out: refused
    try:
        thief.add_cookies([cookie])
        stolen = thief.new_page()
        stolen.goto(conversation_url)
        stolen.get_by_role("button", name=re.compile("^(Sign in|サインイン)$")).first.wait_for(timeout=60_000)
        assert "What gifts may staff accept?" not in _main(stolen).inner_text()
    finally:
        thief.close()


def _open_first_source(answer):
    chips = answer.locator('[data-testid="stButtonGroup"] button')
    chips.first.wait_for()
    label = chips.first.inner_text()
    assert label.startswith("[1] "), label
    chips.first.click()
    return label


def test_the_cited_page_is_shown_in_the_app_with_the_passage_marked(page, app_url, output_dir):
    sign_in(page, app_url, "staff1")
    answer = ask(page, QUESTION)
    assert re.search(r"\[1\]", answer.inner_text())
    label = _open_first_source(answer)
    assert " p." in label
    image = page.locator(".cqa-page img")
    image.wait_for()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    expect(_main(page).get_by_text(re.compile(r"PDF \d / 4 ページ"))).to_be_visible()
    page.screenshot(path=str(output_dir / "11-cited-page.png"), full_page=True)
    before = page.locator(".cqa-page img").get_attribute("src")
    page.get_by_role("button", name="次のページ").click()
    expect(page.get_by_text(re.compile(r"引用箇所は \d ページ目です"))).to_be_visible()
    assert page.locator(".cqa-page img").get_attribute("src") != before
    page.get_by_role("button", name="引用ページに戻る").click()
    expect(page.get_by_text(re.compile(r"引用箇所は"))).to_have_count(0)

    markdown_answer = ask(page, "What gifts may staff accept?")
    chips = markdown_answer.locator('[data-testid="stButtonGroup"] button')
    chips.first.wait_for()
    sections = [i for i in range(chips.count()) if " p." not in chips.nth(i).inner_text()]
    assert sections, "the answer cites no page-less (Markdown) source"
    chips.nth(sections[0]).click()  # the Markdown manual has no pages: its section is shown, the passage marked
    mark = page.locator(".cqa-section mark").first
    mark.wait_for()
    assert mark.inner_text().strip()
    assert "ページ -" not in _main(page).inner_text()
    page.screenshot(path=str(output_dir / "12-cited-section.png"), full_page=True)


def _download(page, button: str) -> bytes:
    """Click the sidebar's download button once the app is idle and return the file. A click while a rerun
    rebuilds the sidebar (after the rename, say) may hit the button being replaced and start no download:
    such a click is retried, a button that never downloads still fails the test."""
    for attempt in range(3):
        expect(page.locator('[data-testid="stStatusWidgetRunningIcon"]')).to_have_count(0)
        target = _sidebar(page).get_by_role("button", name=button)
        if not target.is_visible():
            _sidebar(page).get_by_text("この会話", exact=True).click()
        try:
            with page.expect_download(timeout=30_000) as download:
                target.click()
            return open(download.value.path(), "rb").read()
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def test_a_conversation_is_renamed_exported_and_deleted(page, app_url, output_dir):
    sign_in(page, app_url, "comp1")
    ask(page, QUESTION)
    manage = _sidebar(page).get_by_text("この会話", exact=True)
    manage.click()
    title = _sidebar(page).get_by_label("会話の名前")
    title.fill("本人確認のまとめ")
    title.press("Enter")
    _sidebar(page).get_by_role("button", name="名前を変更").click()
    expect(_sidebar(page).get_by_role("button", name="本人確認のまとめ")).to_be_visible()

    text = _download(page, "Markdown で書き出す").decode("utf-8")
    assert text.startswith("# 本人確認のまとめ") and QUESTION in text and "[1]" in text
    data = _download(page, "PDF で書き出す")
    assert data.startswith(b"%PDF")
    (output_dir / "13-conversation.pdf").write_bytes(data)
    pages = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "本人確認のまとめ" in pages and QUESTION in pages

    _sidebar(page).get_by_text("この会話を削除する").click()
    _sidebar(page).get_by_role("button", name="会話を削除").click()
    # the toast saying so fades after a few seconds: what stays is the conversation gone and an empty chat
    expect(_sidebar(page).get_by_role("button", name="本人確認のまとめ")).to_have_count(0)
    expect(_main(page).get_by_text("質問の例")).to_be_visible()


def _phone(browser, app_url: str, name: str):
    """A phone-sized browser signed in as ``name`` (the sidebar is folded away on a phone: signed in is the chat
    box showing)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(app_url)
    page.get_by_label("ユーザー名").fill(name)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="サインイン").click()
    page.locator('[data-testid="stChatInputTextArea"]').wait_for()
    return context, page


def _overflow(page) -> int:
    """How many pixels the page is wider than the phone (it scrolls sideways when > 1): the document, or the main
    area, which Streamlit scrolls by itself."""
    return page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]');
        return Math.max(document.documentElement.scrollWidth - window.innerWidth,
                        main ? main.scrollWidth - main.clientWidth : 0); }""")


def test_phone_width(browser, app_url, output_dir):
    context, page = _phone(browser, app_url, "board1")
    try:
        page.screenshot(path=str(output_dir / "14-phone-empty.png"), full_page=True)
        answer = ask(page, QUESTION)
        _open_first_source(answer)
        page.locator(".cqa-page img").wait_for()
        wide = _overflow(page)
        assert wide <= 1, f"the page is {wide}px wider than the phone"
        page.screenshot(path=str(output_dir / "15-phone-answer-and-page.png"), full_page=True)
        page.reload()
        page.locator('[data-testid="stFeedback"]').first.wait_for()  # still signed in, the conversation kept
        expect(page.get_by_role("button", name="サインイン", exact=True)).to_have_count(0)
    finally:
        context.close()


PHONE_PAGES = {  # user -> the pages of their role beyond the chat: (address, title, elements drawn near the end)
    "admin1": [("documents", "文書管理", "stFileUploaderDropzone"), ("users", "ユーザー管理", "stForm"),
               ("audit", "監査ログ", "stDataFrame"), ("settings", "設定", "stJson"),
               ("account", "アカウント", "stForm")],
    "comp1": [("evaluation", "評価", "stExpander"), ("feedback", "フィードバック", "stDataFrame, stAlert"),
              ("account", "アカウント", "stForm")],
}
DRAWING = '[data-testid="stStatusWidget"], [data-testid^="stSkeleton"], [data-testid="stAppSkeleton"]'


@pytest.mark.parametrize("name", list(PHONE_PAGES))
def test_every_page_fits_a_phone(browser, app_url, output_dir, name):
    """Each page of the role at 390 px, drawn in full: no sideways scrolling (a wide table scrolls in its box)."""
    context, page = _phone(browser, app_url, name)
    wider = {}
    try:
        for path, title, last in PHONE_PAGES[name]:
            page.goto(f"{app_url}/{path}")  # the session cookie keeps the sign-in
            page.locator("h1").filter(has_text=title).first.wait_for()
            page.locator(", ".join(f'[data-testid="{kind.strip()}"]' for kind in last.split(","))).first.wait_for()
            page.wait_for_function(f"() => !document.querySelector({DRAWING!r})")
            page.screenshot(path=str(output_dir / f"16-phone-{name}-{path}.png"), full_page=True)
            if (wide := _overflow(page)) > 1:
                wider[path] = wide
    finally:
        context.close()
    assert not wider, f"pages wider than the phone (px): {wider}"
