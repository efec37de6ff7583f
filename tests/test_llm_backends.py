"""Both LLM backends behave the same: streamed text, GGUF chat template, JSON-constrained
output; the HTTP one talks to a real llama_cpp.server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from llm.chat import GenerationOptions, complete, strip_thinking
from llm.presets import DEV_QWEN_05B, Sampling, get_preset
from settings import load_settings
from tests.helpers import REPO, free_port, wait_http

GREEDY = Sampling(temperature=0.0, top_p=1.0, top_k=1)


@pytest.fixture(scope="module")
def model_path():
    from llm.model_files import assemble_packaged

    return assemble_packaged(DEV_QWEN_05B, load_settings().model_dir)


@pytest.fixture(scope="module")
def in_process(model_path):
    from llm.llamacpp_chat import LlamaCppChat

    return LlamaCppChat(model_path, get_preset("dev-qwen2.5-0.5b"), load_settings().llm)


@pytest.fixture(scope="module")
def http_server(model_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--verbose", "false"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", proc=proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def over_http(http_server, model_path):
    from llm.http_chat import HttpChat

    llm = load_settings().llm.model_copy(update={"backend": "http", "http_url": http_server, "model_path": model_path})
    return HttpChat(llm, get_preset("dev-qwen2.5-0.5b"))


@pytest.fixture(params=["in_process", "over_http"])
def backend(request):
    return request.getfixturevalue(request.param)


def test_streams_an_answer_through_the_gguf_chat_template(backend):
    messages = [{"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What is the capital of Japan?"}]
    pieces = list(backend.stream(messages, GenerationOptions(max_tokens=24, sampling=GREEDY)))
    assert len(pieces) > 1
    assert "Tokyo" in "".join(pieces)
    assert "<|im_start|>" not in "".join(pieces)


def test_json_schema_constrained_output_always_parses(backend):
    schema = {"type": "object", "properties": {"verdict": {"type": "integer", "enum": [0, 1]},
                                                "reason": {"type": "string"}}, "required": ["verdict", "reason"]}
    messages = [{"role": "user", "content": "Is 'Tokyo is in Japan' true? Reply as JSON with verdict and reason."}]
    text = complete(backend, messages, GenerationOptions(max_tokens=60, sampling=GREEDY, json_schema=schema))
    data = json.loads(text)
    assert data["verdict"] in (0, 1) and isinstance(data["reason"], str)


def test_cancel_stops_generation(backend):
    cancel = threading.Event()
    messages = [{"role": "user", "content": "Count from 1 to 200, one number per line."}]
    pieces = []
    for piece in backend.stream(messages, GenerationOptions(max_tokens=300, sampling=GREEDY, cancel=cancel)):
        pieces.append(piece)
        if len(pieces) == 5:
            cancel.set()
    assert len(pieces) <= 6


def test_token_counts_agree(in_process, over_http):
    text = "口座開設時の本人確認書類は運転免許証です。"
    assert in_process.count_tokens(text) == over_http.count_tokens(text) > 5


def test_think_blocks_are_stripped_even_when_split_across_tokens():
    pieces = ["<th", "ink>\nreasoning", " here</th", "ink>\n\n答え", "です。"]
    assert "".join(strip_thinking(pieces)) == "答えです。"
    assert "".join(strip_thinking(["a <b> c", "<", "think>x</think>d"])) == "a <b> cd"
