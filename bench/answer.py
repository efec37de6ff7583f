"""Answer latency on this machine: `python -m bench.answer [--runs 3] [--json]`.

Prints, for the dev model, our overhead before the LLM starts (retrieval + context
assembly), time to first token in-process and through llama-cpp-python's HTTP server,
decode tokens/s, and the baseline: llama.cpp's own prompt-processing time for the same
prompt (a bare ``eval`` of its tokens), so TTFT can be read as a ratio of pure prefill.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import core.offline  # noqa: F401  (the offline switches, before the libraries below load)

# isort: split
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from core.cli import ArgumentParser, run
from core.localhost import free_port, wait_http
from core.schema import SearchFilter
from core.text import detect_language
from llm.chat import GenerationOptions
from llm.http_chat import HttpChat
from llm.presets import Sampling, get_preset
from prompts import load_prompts
from qa.context import format_sources
from settings import load_settings
from wiring import Container

PROG = "python -m bench.answer"
REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "口座開設時の本人確認書類は？",
    "海外送金で留意すべき点は？",
    "What is the limit for gifts from customers?",
]
GREEDY = Sampling(temperature=0.0, top_p=1.0, top_k=1)


def _ingested_container(data_dir: Path):
    container = Container(load_settings(data_dir=data_dir))
    container.ingest.ingest(
        [REPO / "samples" / "ja_account_opening_manual.pdf", REPO / "samples" / "en_gifts_and_aml_manual.md"]
    )
    return container


def _messages(container, question: str) -> tuple[list[dict], float]:
    """The exact messages the answer service sends, and the time it took to build them."""
    service = container.answers
    started = time.perf_counter()
    prompts = load_prompts(detect_language(question))
    flt = SearchFilter(access_groups=())
    hits = service.retrieval.retrieve(question, flt)
    sources = service._assemble(hits, flt, prompts, question, service.llm)
    messages = [
        {"role": "system", "content": prompts.system_prompt(service.prompt_style)},
        {"role": "user", "content": prompts.user.format(sources=format_sources(sources), question=question)},
    ]
    return messages, (time.perf_counter() - started) * 1000


def _stream_timing(model, messages: list[dict], max_tokens: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = None
    pieces = 0
    for _ in model.stream(messages, GenerationOptions(max_tokens=max_tokens, sampling=GREEDY)):
        if first is None:
            first = time.perf_counter()
        pieces += 1
    end = time.perf_counter()
    ttft = ((first or end) - started) * 1000
    decode_s = max(end - (first or end), 1e-6)
    return ttft, decode_s, pieces


def _prefill_baseline_ms(llama, messages: list[dict]) -> tuple[float, int]:
    """llama.cpp's own prompt processing for the same chat-formatted prompt, cold cache."""
    template = llama.metadata["tokenizer.chat_template"]
    formatter = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="")
    prompt = formatter(messages=messages).prompt
    tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    llama.reset()
    started = time.perf_counter()
    llama.eval(tokens)
    return (time.perf_counter() - started) * 1000, len(tokens)


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog=PROG)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        container = _ingested_container(Path(tmp) / "data")
        model = container.answers.llm
        rows = []
        for question in QUESTIONS[: args.runs]:
            messages, overhead_ms = _messages(container, question)
            prefill_ms, n_tokens = _prefill_baseline_ms(model._llama, messages)
            model._llama.reset()
            cold_ttft, decode_s, pieces = _stream_timing(model, messages, args.max_tokens)
            warm_ttft, _, _ = _stream_timing(model, messages[:1] + [messages[1]], args.max_tokens)
            rows.append(
                {
                    "question": question,
                    "prompt_tokens": n_tokens,
                    "overhead_ms": round(overhead_ms, 1),
                    "prefill_baseline_ms": round(prefill_ms, 1),
                    "ttft_in_process_ms": round(cold_ttft, 1),
                    "ttft_ratio": round(cold_ttft / prefill_ms, 2),
                    "ttft_repeat_ms": round(warm_ttft, 1),
                    "decode_tokens_per_s": round(pieces / decode_s, 1),
                }
            )
        model_path = Path(model.model_path)
        container.close()
    http = _http_figures(model_path, [r["question"] for r in rows], Path(tmp), args.max_tokens)
    summary = {
        "rows": rows,
        "overhead_ms_p50": statistics.median(r["overhead_ms"] for r in rows),
        "ttft_ratio_p50": statistics.median(r["ttft_ratio"] for r in rows),
        "prefill_tokens_per_s": round(
            sum(r["prompt_tokens"] for r in rows) / sum(r["prefill_baseline_ms"] for r in rows) * 1000, 1
        ),
        "http": http,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    header = ("question", "tokens", "overhead", "prefill", "TTFT", "ratio", "repeat", "tok/s")
    print("{:34} {:>6} {:>9} {:>8} {:>8} {:>6} {:>8} {:>6}".format(*header))
    for r in rows:
        print(
            f"{r['question'][:34]:34} {r['prompt_tokens']:6} {r['overhead_ms']:7.0f}ms "
            f"{r['prefill_baseline_ms']:6.0f}ms {r['ttft_in_process_ms']:6.0f}ms {r['ttft_ratio']:6.2f} "
            f"{r['ttft_repeat_ms']:6.0f}ms {r['decode_tokens_per_s']:6.1f}"
        )
    print(
        f"prefill {summary['prefill_tokens_per_s']} tokens/s; overhead p50 {summary['overhead_ms_p50']} ms; "
        f"TTFT / prefill p50 {summary['ttft_ratio_p50']}"
    )
    print(
        f"HTTP server: TTFT p50 {http['ttft_ms_p50']} ms, decode {http['decode_tokens_per_s_p50']} tokens/s "
        f"(in-process decode p50 {statistics.median(r['decode_tokens_per_s'] for r in rows)})"
    )
    return 0


def _http_figures(model_path: Path, questions: list[str], tmp: Path, max_tokens: int) -> dict:
    """The same prompts through `python -m llama_cpp.server` on 127.0.0.1."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--verbose",
            "false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", proc=server)
        with tempfile.TemporaryDirectory() as data:
            container = _ingested_container(Path(data) / "data")
            llm = load_settings().llm.model_copy(update={"http_url": f"http://127.0.0.1:{port}/v1"})
            client = HttpChat(llm, get_preset("dev-qwen2.5-0.5b"))
            ttfts, rates = [], []
            for q in questions:
                messages, _ = _messages(container, q)
                ttft, decode_s, pieces = _stream_timing(client, messages, max_tokens)
                ttfts.append(ttft)
                rates.append(pieces / decode_s)
            container.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "ttft_ms_p50": round(statistics.median(ttfts), 1),
        "decode_tokens_per_s_p50": round(statistics.median(rates), 1),
    }


if __name__ == "__main__":
    run(PROG, main)
