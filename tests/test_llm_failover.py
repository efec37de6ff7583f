"""Two real llama_cpp.server processes behind HAProxy (deploy/haproxy.cfg) on loopback: a server killed
before an answer's first word costs no question (one retry, through the balancer, lands on the other);
one killed in the middle of an answer gives the clear ``llm_broke_off`` error, on the audit trail."""

from __future__ import annotations

import logging
import shutil
import threading

import pytest

from bench.llm_cluster import haproxy_path, llm_cluster
from core.errors import GenerationFailed
from core.schema import Requester
from llm.chat import GenerationOptions
from llm.presets import DEV_QWEN_05B, Sampling, get_preset
from settings import load_settings
from tests.helpers import EVERYTHING

GREEDY = Sampling(temperature=0.0, top_p=1.0, top_k=1)
PASSAGE = ("第十二条 金融機関は、顧客の本人確認を行うとき、運転免許証その他の書類の提示を受けなければならない。"
           "The bank keeps the records of the verification for seven years after the account is closed. ")

pytestmark = pytest.mark.skipif(haproxy_path() is None, reason="haproxy is not installed: run `make balancer`")


@pytest.fixture(scope="module")
def model_path():
    from llm.model_files import assemble_packaged

    return assemble_packaged(DEV_QWEN_05B, load_settings().model_dir)


@pytest.fixture
def cluster(model_path, tmp_path):
    with llm_cluster(model_path, log_dir=tmp_path) as running:
        yield running


def http_llm(url: str):
    return load_settings().llm.model_copy(update={"backend": "http", "http_url": url, "servers": 2})


def long_question(i: int) -> list[dict[str, str]]:
    """A prompt long enough (several seconds of prompt reading on CPU) to kill its server before the first word."""
    return [{"role": "system", "content": "Answer in one short sentence from the passage."},
            {"role": "user", "content": PASSAGE * 12 + f"\nQuestion {i}: how long are the records kept?"}]


def test_a_server_killed_before_the_first_word_costs_no_question(cluster, caplog):
    from llm.http_chat import HttpChat

    chat = HttpChat(http_llm(cluster.url), get_preset("dev-qwen2.5-0.5b"))
    answers: dict[int, str] = {}
    errors: list[BaseException] = []
    second_started = threading.Event()
    first_word = threading.Event()

    def ask_all() -> None:
        try:
            for i in range(4):
                if i == 1:
                    second_started.set()
                pieces = []
                for piece in chat.stream(long_question(i), GenerationOptions(max_tokens=24, sampling=GREEDY)):
                    if i == 1:
                        first_word.set()
                    pieces.append(piece)
                answers[i] = "".join(pieces)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    asker = threading.Thread(target=ask_all)
    with caplog.at_level(logging.INFO, logger="llm.http_chat"):
        asker.start()
        assert second_started.wait(300)
        victim = cluster.busy_server()
        assert not first_word.is_set(), "the prompt was read too fast to kill its server before the first word"
        victim.kill()
        asker.join(600)
    assert not asker.is_alive() and not errors, errors
    assert sorted(answers) == [0, 1, 2, 3] and all(a.strip() for a in answers.values()), answers
    assert any("retrying once" in r.getMessage() for r in caplog.records)
    assert sum(s.alive for s in cluster.servers) == 1


def test_a_server_killed_mid_answer_gives_the_clear_error(cluster):
    from llm.http_chat import HttpChat

    chat = HttpChat(http_llm(cluster.url), get_preset("dev-qwen2.5-0.5b"))
    messages = [{"role": "user", "content": "Write a long story about a bank clerk, in many paragraphs."}]
    stream = chat.stream(messages, GenerationOptions(max_tokens=400, sampling=GREEDY))
    shown = [next(stream), next(stream)]
    cluster.busy_server().kill()
    with pytest.raises(GenerationFailed) as failed:
        shown.extend(stream)
    assert failed.value.key == "llm_broke_off"
    assert "".join(shown).strip()


def test_the_answer_service_records_a_broken_answer(cluster, samples_data_dir, tmp_path, monkeypatch):
    """Through the QA service the app uses, configured for the balancer: the clear error reaches the caller
    and the question is on the audit trail as asked and not answered."""
    from qa.service import TokenEvent
    from tests.conftest import make_container

    data_dir = tmp_path / "data"
    shutil.copytree(samples_data_dir, data_dir)
    for key, value in {"BACKEND": "http", "HTTP_URL": cluster.url, "SERVERS": "2"}.items():
        monkeypatch.setenv(f"CQA_LLM__{key}", value)
    container = make_container(data_dir)
    try:
        events = container.answers.stream("口座開設時の本人確認書類は？", Requester("staff", ()))
        for event in events:
            if isinstance(event, TokenEvent):
                break
        else:
            pytest.fail("the service refused or answered without streaming a word")
        cluster.busy_server().kill()
        with pytest.raises(GenerationFailed) as failed:
            list(events)
        assert failed.value.key == "llm_broke_off"
        asked = container.audit.search(action="ask", reader=EVERYTHING)
        assert [(r.user, r.detail["answered"], r.detail["error"]) for r in asked] == [
            ("staff", False, "llm_broke_off")]
    finally:
        container.close()
