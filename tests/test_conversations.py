"""Stored conversations: each user's own, renamed, deleted and purged after the retention period (both on the
audit trail); reopening re-checks every citation against the reader's access and the versions now in force;
exported with its citations as Markdown and as a PDF with an embedded Japanese font."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest

from audit.log import AuditLog
from core.schema import Answer, Citation, Hit, SearchFilter, Timings
from ingest.service import IngestOptions
from qa.conversations import ConversationNotFound, ConversationStore, Message, recheck
from qa.export import EMBEDDED_FONT_NAME, EMBEDDED_FONTS, ExportLabels, to_markdown, to_pdf
from tests.conftest import EN_MD, JA_PDF, make_container
from tests.helpers import EVERYTHING

T0 = 1_800_000_000.0
DAY = 86400.0
LABELS = ExportLabels(exported="{time} に {user} が書き出し", question="質問", answer="回答", sources="出典",
                      version="版", page="ページ", section="章節", withheld="閲覧できない出典を含むため表示しません。",
                      superseded="現在は第{version}版", withdrawn="取り下げ済み", as_of="{date} 時点")


@pytest.fixture
def store(tmp_path, state_target):
    """The store and its audit log, on SQLite and on PostgreSQL."""
    audit = AuditLog(state_target("audit"), anchor_path=tmp_path / "audit-anchor.jsonl")
    return ConversationStore(state_target("conversations"), audit.append, retention_days=90), audit


def _answer(text: str, citations: list[Citation], contexts: list[Hit] | None = None) -> Answer:
    return Answer(answer=text, citations=citations, refused=False, contexts=contexts or [], timings=Timings(),
                  question="q")


def test_each_user_sees_only_their_own_conversations(store):
    conversations, _ = store
    mine = conversations.start("staff1", "口座開設時の本人確認書類は？" * 5, now=T0)
    conversations.add(mine, "staff1", Message("user", "口座開設時の本人確認書類は？"), now=T0)
    conversations.add(mine, "staff1", Message("assistant", "運転免許証[1]", _answer("運転免許証[1]", []),
                                              as_of=date(2024, 4, 1)), now=T0 + 5)
    theirs = conversations.start("staff2", "贈答品は？", now=T0 + 10)
    [summary] = conversations.conversations("staff1")
    assert summary.id == mine and summary.messages == 2 and summary.updated_at == T0 + 5
    assert summary.title.endswith("…") and len(summary.title) == 40
    stored = conversations.messages(mine, "staff1")
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].answer.answer == "運転免許証[1]" and stored[1].as_of == date(2024, 4, 1)
    for call in (lambda: conversations.messages(theirs, "staff1"), lambda: conversations.rename(theirs, "staff1", "x"),
                 lambda: conversations.delete(theirs, "staff1"),
                 lambda: conversations.add(theirs, "staff1", Message("user", "x")),
                 lambda: conversations.messages("no-such-id", "staff1")):
        with pytest.raises(ConversationNotFound):
            call()
    assert [c.id for c in conversations.conversations("staff2")] == [theirs]


def test_rename_and_delete_are_the_owners_and_delete_is_audited(store):
    conversations, audit = store
    cid = conversations.start("staff1", "最初の質問", now=T0)
    conversations.add(cid, "staff1", Message("user", "最初の質問"), now=T0)
    conversations.rename(cid, "staff1", "  本人確認の  まとめ ")
    assert conversations.title(cid, "staff1") == "本人確認の まとめ"
    with pytest.raises(Exception, match="title"):
        conversations.rename(cid, "staff1", "   ")
    conversations.delete(cid, "staff1")
    assert conversations.conversations("staff1") == []
    [record] = audit.search(action="conversation", reader=EVERYTHING)
    assert record.user == "staff1" and record.detail == {"op": "delete", "conversation": cid, "messages": 1}


def test_conversations_past_the_retention_period_are_purged_and_audited(store):
    conversations, audit = store
    old = conversations.start("staff1", "古い質問", now=T0)
    conversations.add(old, "staff1", Message("user", "古い質問"), now=T0)
    kept = conversations.start("staff1", "続けている質問", now=T0)
    conversations.add(kept, "staff1", Message("user", "続けている質問"), now=T0 + 60 * DAY)
    assert conversations.purge(now=T0 + 90 * DAY + 1) == 1
    assert [c.id for c in conversations.conversations("staff1")] == [kept]
    assert conversations.purge(now=T0 + 90 * DAY + 2) == 0
    records = [r.detail for r in audit.search(action="conversation", reader=EVERYTHING)]
    assert records == [{"op": "purge", "conversations": 1, "messages": 1, "retention_days": 90}]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The Japanese manual restricted to ``board`` and the English manual public, the latter in two versions."""
    folder = tmp_path_factory.mktemp("reopen")
    container = make_container(folder / "data")
    [secret] = container.ingest.ingest([JA_PDF], IngestOptions(access=("board",))).documents
    copy = folder / EN_MD.name
    copy.write_text(EN_MD.read_text(encoding="utf-8"), encoding="utf-8")
    [public] = container.ingest.ingest([copy]).documents
    yield container, secret, public, copy
    container.close()


def _citing(doc_id: str, version: int, n: int, page: int | None = None) -> Citation:
    return Citation(n=n, doc_id=doc_id, source="s", page=page, section="§", quote=f"quote {n}", version=version,
                    title=f"title {n}")


def test_reopening_withholds_answers_citing_what_the_reader_may_no_longer_read(library):
    container, secret, public, _ = library
    both = _answer("A [2]. B [4].", [_citing(secret.doc_id, 1, 2, page=1), _citing(public.doc_id, 1, 4)],
                   [Hit(doc_id=secret.doc_id, source="s", title="t", page=1, pages=[1], section="", text="secret",
                        score=1.0)])
    only_public = _answer("B [1].", [_citing(public.doc_id, 1, 1)])
    messages = [Message("user", "q1"), Message("assistant", both.answer, both),
                Message("user", "q2"), Message("assistant", only_public.answer, only_public)]
    outsider = recheck(messages, SearchFilter(access_groups=("branch",)), container.document_state)
    assert outsider[1].withheld and outsider[1].message.answer.answer == "" and outsider[1].message.content == ""
    assert outsider[1].message.answer.citations == [] and outsider[1].message.answer.contexts == []
    assert outsider[1].checks[2].state == "withheld" and outsider[1].checks[4].state == "current"
    assert not outsider[3].withheld and outsider[3].message.answer.answer == "B [1]."
    assert [m.message.content for m in outsider[::2]] == ["q1", "q2"]
    member = recheck(messages, SearchFilter(access_groups=("board",)), container.document_state)
    assert not member[1].withheld and member[1].message.answer.answer == "A [2]. B [4]."
    deleted = recheck([Message("assistant", "x", _answer("x [1]", [_citing("gone", 1, 1)]))],
                      SearchFilter(access_groups=("board",)), container.document_state)
    assert deleted[0].withheld


def test_reopening_says_when_a_cited_version_was_superseded(library, tmp_path):
    container, _, public, copy = library
    messages = [Message("user", "q"), Message("assistant", "B [1].", _answer("B [1].", [_citing(public.doc_id, 1, 1)]))]
    before = recheck(messages, SearchFilter(access_groups=()), container.document_state)
    assert before[1].checks[1].state == "current"
    copy.write_text(copy.read_text(encoding="utf-8") + "\n\n## Addendum\n\nA new rule applies from 2025.\n",
                    encoding="utf-8")
    [item] = container.ingest.ingest([copy]).documents
    assert item.version == 2
    after = recheck(messages, SearchFilter(access_groups=()), container.document_state)
    assert after[1].checks[1].state == "superseded" and after[1].checks[1].active_version == 2
    markdown = to_markdown("会話", after, LABELS, "staff1", datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert "現在は第2版" in markdown


def _reopened(library) -> list:
    container, secret, public, _ = library
    answer = _answer("次のとおりです。\n- 運転免許証 [3]\n- Gifts up to JPY 5,000 [5]",
                     [_citing(secret.doc_id, 1, 3, page=1), _citing(public.doc_id, 1, 5)])
    messages = [Message("user", "本人確認書類と贈答品の上限は？"), Message("assistant", answer.answer, answer),
                Message("user", "役員賞与は？"),
                Message("assistant", "x", _answer("x [1]", [_citing(secret.doc_id, 1, 1)]))]
    board = recheck(messages, SearchFilter(access_groups=("board",)), container.document_state)
    board[3] = recheck(messages[3:], SearchFilter(access_groups=()), container.document_state)[0]
    return board


def test_markdown_export_keeps_the_readers_numbers_and_the_sources(library):
    text = to_markdown("本人確認と贈答品", _reopened(library), LABELS, "board1",
                       datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    assert text.startswith("# 本人確認と贈答品\n")
    assert "- 運転免許証[1]\n- Gifts up to JPY 5,000[2]" in text
    assert "- [1] title 3 (s) · 版 1 · ページ 1 · 章節: §" in text and "  > quote 3" in text
    assert "- [2] title 5 (s) · 版 1 · 章節: §" in text
    assert "## 質問 2\n\n役員賞与は？\n\n**回答**\n\n閲覧できない出典を含むため表示しません。" in text


def test_pdf_export_embeds_a_japanese_font_and_reads_back(library):
    if not any(p.is_file() for p in EMBEDDED_FONTS):
        pytest.fail("IPAex Gothic is not installed: run make fonts (the PDF would not embed its font)")
    pdf = to_pdf("本人確認と贈答品", _reopened(library), LABELS, "board1", datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(page.extract_text() for page in reader.pages)
    assert "本人確認と贈答品" in text and "運転免許証[1]" in text and "閲覧できない出典を含むため表示しません" in text
    fonts = [f.get_object() for page in reader.pages for f in page["/Resources"]["/Font"].values()]
    embedded = [f for f in fonts if EMBEDDED_FONT_NAME in str(f["/BaseFont"])]
    assert embedded, [str(f["/BaseFont"]) for f in fonts]
    descriptor = embedded[0]["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object() \
        if "/DescendantFonts" in embedded[0] else embedded[0]["/FontDescriptor"].get_object()
    assert "/FontFile2" in descriptor  # the TrueType program is in the file
