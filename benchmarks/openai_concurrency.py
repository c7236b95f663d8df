"""The openai backend's request concurrency: the same requests at --concurrency 1 and 8, in the same run.

    .venv/bin/python benchmarks/openai_concurrency.py [--requests 40] [--latency 0.25] [--rounds 2]
        [--llama-requests 40] [--max-new-tokens 16]

Part 1, a fixed-latency server: a small OpenAI-compatible completions server (below, on 127.0.0.1) that answers
every request after `--latency` seconds, many at once (ThreadingHTTPServer), like a batching server (vLLM,
SGLang) that is far from saturated. `OpenAIBackend.generate` sends `--requests` prompts through it with
concurrency 1 and 8. Ideal: concurrency 1 takes requests x latency, concurrency 8 an eighth of that.

Part 2, the real llama.cpp server: llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`)
with the packaged Gemma 3 270M GGUF, greedy, `--max-new-tokens`, on the first `--llama-requests` arith prompts
(the default few-shot prompt). That server runs one request at a time, so concurrency cannot help there; the
figure shows what it costs (nothing, or close).

Rounds alternate concurrency 1 / 8 so that machine drift hits both; the best round of each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mathforge.backends import packaged_model_path
from mathforge.backends.base import SamplingParams
from mathforge.backends.openai_api import OpenAIBackend
from mathforge.benchmarks import get_spec, load_items
from mathforge.prompts import PromptConfig, build_prompter


def fixed_latency_server(latency: float) -> ThreadingHTTPServer:
    """An OpenAI-compatible server on 127.0.0.1 that answers each completion after `latency` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms Nagle / delayed-ACK stall between headers and body

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # /v1/models
            self._send({"object": "list", "data": [{"id": "fixed-latency", "owned_by": "benchmark"}]})

        def do_POST(self) -> None:  # /v1/completions
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency)
            text = f" echo of {len(body['prompt'])} characters"
            self._send(
                {
                    "id": "cmpl",
                    "object": "text_completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6},
                }
            )

        def _send(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.request_queue_size = 64
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def llama_cpp_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    threads = str(len(os.sched_getaffinity(0)))
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
            + ["--port", str(port), "--n_ctx", "4096", "--n_threads", threads, "--n_threads_batch", threads]
            + ["--verbose", "False"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            sys.exit(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return process, base_url
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                sys.exit(f"llama_cpp.server did not start within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)


def timed(base_url: str, concurrency: int, prompts: list[str], params: SamplingParams) -> dict[str, Any]:
    backend = OpenAIBackend("", base_url=base_url, concurrency=concurrency)
    started = time.perf_counter()
    generations = backend.generate(prompts, params, seed_offsets=list(range(len(prompts))))
    seconds = time.perf_counter() - started
    backend.close()
    completions = [g.completions[0] for g in generations]
    tokens = sum(c.tokens for c in completions)
    return {
        "seconds": round(seconds, 3),
        "requests_per_second": round(len(prompts) / seconds, 2),
        "tokens": tokens,
        "texts": [c.text for c in completions],
    }


def compare(base_url: str, prompts: list[str], params: SamplingParams, rounds: int) -> dict[str, Any]:
    runs: dict[int, list[dict[str, Any]]] = {1: [], 8: []}
    for _ in range(rounds):
        for concurrency in (1, 8):
            runs[concurrency].append(timed(base_url, concurrency, prompts, params))
    best = {c: min(r, key=lambda run: run["seconds"]) for c, r in runs.items()}
    same = sum(a == b for a, b in zip(best[1]["texts"], best[8]["texts"], strict=True))
    figures = {f"concurrency_{c}": {k: v for k, v in run.items() if k != "texts"} for c, run in best.items()}
    return figures | {
        "all_rounds_seconds": {f"concurrency_{c}": [r["seconds"] for r in rs] for c, rs in runs.items()},
        "speedup_8_over_1": round(best[1]["seconds"] / best[8]["seconds"], 2),
        "identical_completions": f"{same}/{len(prompts)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--llama-requests", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()

    server = fixed_latency_server(args.latency)
    fixed_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    fixed = compare(
        fixed_url,
        [f"prompt {i}" for i in range(args.requests)],
        SamplingParams(max_new_tokens=args.max_new_tokens),
        args.rounds,
    )
    server.shutdown()
    server.server_close()

    spec = get_spec("arith")
    prompter = build_prompter(spec, PromptConfig(format=spec.default_prompt))
    prompts = [prompter.render(item) for item in load_items(spec)[: args.llama_requests]]
    params = SamplingParams(max_new_tokens=args.max_new_tokens, stop=prompter.stop)
    log = Path(tempfile.mkdtemp(prefix="mf-llama-server-")) / "stderr.log"
    process, llama_url = llama_cpp_server(packaged_model_path(), log)
    try:
        llama = compare(llama_url, prompts, params, args.rounds)
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
                "fixed_latency_server": {
                    "requests": args.requests,
                    "latency_seconds": args.latency,
                    "ideal_seconds_at_1": round(args.requests * args.latency, 2),
                    **fixed,
                },
                "llama_cpp_server": {
                    "requests": len(prompts),
                    "max_new_tokens": args.max_new_tokens,
                    "model": "packaged Gemma 3 270M Q4_K_M",
                    **llama,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
