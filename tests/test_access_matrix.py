"""Access scope, path by path: a user outside a document's group never receives its text, whichever path
returns it (retrieve, neighbours, answer, evaluation run, drafts, page PDF, evaluation reports and exports).
Each path is also run as a member of the group, so a path that returned nothing at all could not pass."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from core.schema import UNRESTRICTED, SearchFilter
from ingest.service import IngestOptions
from qa.service import Requester
from tests.conftest import EN_MD, JA_PDF, make_container
from tests.helpers import EVERYTHING, run_cli, run_json

QUESTION = "口座開設時の本人確認書類は？"
OUTSIDER = Requester(name="branch1", groups=("branch",))
MEMBER = Requester(name="board1", groups=("board",))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A data dir with the Japanese manual restricted to ``board`` and the English manual public, two users,
    an evaluation run by each through the CLI, and the restricted document's chunk texts (what must never reach
    an outsider)."""
    folder = tmp_path_factory.mktemp("matrix")
    data = folder / "data"
    container = make_container(data)
    [secret] = container.ingest.ingest([JA_PDF], IngestOptions(access=("board",)), actor="admin1").documents
    container.ingest.ingest([EN_MD], actor="admin1")
    payloads = container.store.chunks_by_index(secret.doc_id, 1, list(range(secret.chunks)),
                                               SearchFilter(access_groups=UNRESTRICTED))
    from auth.store import UserStore

    users = UserStore(data / "users.sqlite3")
    users.add_user("branch1", "a-long-enough-password-1", "compliance", ("branch",))
    users.add_user("board1", "a-long-enough-password-2", "compliance", ("board",))
    container.close()  # the CLI runs need the embedded store to themselves
    testset = folder / "cases.jsonl"
    testset.write_text(json.dumps({"id": "q1", "question": QUESTION}, ensure_ascii=False) + "\n", encoding="utf-8")
    runs = {}
    for user in ("branch1", "board1"):
        code, out = run_json("eval", "run", str(testset), "--metrics", "hit_at_k", "--user", user, "--json",
                             data_dir=data)
        assert code == 0, out
        runs[user] = out["run_id"]
    container = make_container(data)
    yield container, runs, secret.doc_id, [p["text"] for p in payloads]
    container.close()


def leaked(secret_texts: list[str], payload) -> list[str]:
    """Restricted passages (by a distinctive 40-character piece of each) found in ``payload``."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
    pieces = [t.strip()[:40] for t in secret_texts if len(t.strip()) >= 40]
    return [p for p in pieces if p in text]


def test_retrieve_and_neighbours(world):
    container, _, doc_id, secret = world
    outsider = container.retrieval.retrieve(QUESTION, OUTSIDER.search_filter(), k=20)
    member = container.retrieval.retrieve(QUESTION, MEMBER.search_filter(), k=20)
    assert all(h.doc_id != doc_id for h in outsider) and not leaked(secret, [h.text for h in outsider])
    restricted = [h for h in member if h.doc_id == doc_id]
    assert restricted and restricted[0].access == ["board"]
    indexes = list(range(len(secret)))  # what neighbours() reads: chunks by index, under the same filter
    assert len(container.store.chunks_by_index(doc_id, 1, indexes, MEMBER.search_filter())) == len(secret)
    assert container.store.chunks_by_index(doc_id, 1, indexes, OUTSIDER.search_filter()) == []
    for h in restricted:
        assert container.retrieval.neighbours(h, OUTSIDER.search_filter(), len(secret)) == []


def test_answer_and_its_source_panel(world):
    container, _, doc_id, secret = world
    outsider = container.answers.ask(QUESTION, OUTSIDER)
    assert all(h.doc_id != doc_id for h in outsider.contexts) and not leaked(secret, outsider.model_dump())
    member = container.answers.ask(QUESTION, MEMBER)
    assert any(h.doc_id == doc_id for h in member.contexts) and leaked(secret, member.model_dump())


def test_audit_page_and_export(world, tmp_path):
    """The answers above are on the audit trail: read as the outsider (the audit page reads as its viewer, the
    CLI as --as NAME or public documents only), the member's answer comes with its text withheld; the CLI's
    --unrestricted export is complete and is itself audited."""
    from core.schema import WITHHELD

    container, _, doc_id, secret = world
    answers = [r for r in container.audit.search(user="board1", reader=MEMBER.search_filter())
               if r.action in ("answer", "refuse")]
    contexts = [c for r in answers for c in r.detail["contexts"]]
    assert contexts and all(c["access"] for c in contexts)
    hidden = container.audit.search(user="board1", reader=OUTSIDER.search_filter())
    hidden_answers = [r for r in hidden if r.action in ("answer", "refuse")]
    assert hidden_answers and all(r.detail["answer"] == WITHHELD for r in hidden_answers)
    assert not leaked(secret, [r.to_json() for r in hidden])
    said = answers[0].detail["answer"][:8]  # searching the answers' text tells nothing of the withheld ones
    assert any(r.user == "board1" for r in container.audit.search(text=said, reader=MEMBER.search_filter()))
    assert all(r.user != "board1" for r in container.audit.search(text=said, reader=OUTSIDER.search_filter()))
    out = tmp_path / "audit.csv"
    data = container.settings.data_dir
    for reader in (("--as", "branch1"), ()):
        proc = run_cli("audit", "export", "--out", str(out), *reader, data_dir=data)
        assert proc.returncode == 0, proc.stderr
        assert WITHHELD in out.read_text(encoding="utf-8")
    proc = run_cli("audit", "export", "--out", str(out), "--unrestricted", data_dir=data)
    assert proc.returncode == 0 and WITHHELD not in out.read_text(encoding="utf-8")
    [read] = container.audit.search(action="unrestricted_scope", text="audit export", reader=MEMBER.search_filter())
    assert read.user.startswith("cli:")


def test_cited_page_pdf(world):
    container, _, doc_id, _ = world
    assert container.ingest.page_pdf(doc_id, 1, 1, OUTSIDER.search_filter()) is None
    assert container.ingest.page_pdf(doc_id, 1, 1, MEMBER.search_filter())


def test_drafted_questions(world):
    from eval.drafts import draft_questions

    container, _, doc_id, secret = world
    drafted = draft_questions(container, OUTSIDER.search_filter(), n=2)
    assert not leaked(secret, [c.model_dump() for c in drafted])
    assert drafted and all(g.source != JA_PDF.name for c in drafted for g in c.gold_sources)


def test_evaluation_run_and_its_reports(world, tmp_path):
    """A run answers within its user's scope; its report, opened by someone outside the group, withholds
    the restricted contexts and what was derived from them (CLI export, page rows, page downloads)."""
    from eval.jobs import EvalJobs
    from eval.withholding import WITHHELD

    container, runs, doc_id, secret = world
    data = container.settings.data_dir
    jobs = EvalJobs(container)
    as_outsider, as_member = OUTSIDER.search_filter(), MEMBER.search_filter()
    assert not leaked(secret, [vars(s) for s in jobs.samples(runs["branch1"], as_member)])

    board_run = runs["board1"]
    [member_row] = jobs.samples(board_run, as_member)
    assert leaked(secret, member_row.contexts), "the control: the run's own scope reads its contexts"
    [outsider_row] = jobs.samples(board_run, as_outsider)
    assert not leaked(secret, vars(outsider_row)) and outsider_row.answer == WITHHELD
    for kind in ("html", "csv"):
        assert not leaked(secret, jobs.report(board_run, kind, as_outsider).decode("utf-8-sig"))
    exported = tmp_path / "report.html"
    for reader in (("--user", "branch1"), ()):  # the CLI without --user reads public documents only
        proc = run_cli("eval", "export", board_run, "--html", str(exported), *reader, data_dir=data)
        assert proc.returncode == 0, proc.stderr
        report = exported.read_text(encoding="utf-8")
        assert not leaked(secret, report) and WITHHELD in report


def test_a_stored_context_without_its_groups_is_read_only_within_the_run_scope():
    from eval.withholding import WITHHELD, withhold

    record = {"answer": {"answer": "秘密の答え", "contexts": [{"doc_id": "d", "text": "秘密", "source": "s.pdf"}],
                         "citations": [{"doc_id": "d", "quote": "秘密", "source": "s.pdf"}]},
              "metrics": {"faithfulness": {"value": 1.0, "status": "ok", "details": {"statements": ["秘密"]}}}}
    assert withhold(record, SearchFilter(access_groups=("board",)), ["board"]) is record
    for reader, run_groups in ((SearchFilter(access_groups=()), ["board"]),
                               (SearchFilter(access_groups=("board",)), None)):
        hidden = withhold(record, reader, run_groups)
        assert "秘密" not in json.dumps(hidden, ensure_ascii=False) and hidden["answer"]["answer"] == WITHHELD
        assert hidden["metrics"]["faithfulness"]["value"] == 1.0


def test_unrestricted_reads_are_admin_only_and_audited(world):
    """Edition matching reads every chunk of a stored document: the read is on the audit trail."""
    container, _, _, _ = world
    copy = Path(container.settings.data_dir).parent / "gifts_manual_2025.md"
    copy.write_text(EN_MD.read_text(encoding="utf-8") + "\nRevised 2025.\n", encoding="utf-8")
    container.ingest.ingest([copy], actor="admin1")  # same title, other path: its text is compared
    records = [r for r in container.audit.search(user="admin1", reader=EVERYTHING) if r.action == "unrestricted_scope"]
    assert records and records[-1].detail["purpose"] == "edition matching"


PRODUCTION = ("core", "ingest", "retrieval", "qa", "eval", "auth", "audit", "llm", "ui", "settings", "scripts")
ALLOWED_UNRESTRICTED = {
    "core/schema.py": "defines it",
    "ingest/service.py": "edition matching, audited",
    "retrieval/migrate.py": "copies every point into a Qdrant server, audited",
    "eval/retrieval_quality.py": "the retrieval harness, on its own data dir of public benchmark corpora",
    "eval/retrieval_index.py": "the retrieval harness's index build (chunk count), on its own data dir",
    "audit/__main__.py": "python -m audit export/search --unrestricted, audited",
}


def _uses_unrestricted(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.Name) and node.id == "UNRESTRICTED" for node in ast.walk(tree))


def test_no_other_code_uses_the_unrestricted_scope():
    root = Path(__file__).resolve().parent.parent
    users = {str(p.relative_to(root)) for package in PRODUCTION for p in (root / package).rglob("*.py")
             if _uses_unrestricted(p)}
    assert users <= set(ALLOWED_UNRESTRICTED), f"new use of UNRESTRICTED: {sorted(users - set(ALLOWED_UNRESTRICTED))}"
