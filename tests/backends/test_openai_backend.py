"""The openai backend against real servers on 127.0.0.1: llama-cpp-python's OpenAI-compatible server with the
packaged Gemma model, and small HTTP servers started here that misbehave on purpose (429, 503, 401, garbage,
dropped connections, refused connections, slow answers)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error

from mathforge.backends.base import SamplingParams
from mathforge.backends.openai_api import OpenAIBackend
from mathforge.errors import MathforgeError

N_CTX = 2048


def _free_port() -> int:
    """A port nothing listens on (the kernel hands out a free one; it is closed again at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mathforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, timeout=300
    )


# -- llama-cpp-python's real server -----------------------------------------------------------------------------


@dataclass
class LlamaServer:
    base_url: str
    model: str  # the id /v1/models gives: the GGUF path, as no --model_alias is set
    gguf: Path


@pytest.fixture(scope="module")
def llama_server(gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "stderr.log"
    threads = str(len(os.sched_getaffinity(0)))  # what the in-process llamacpp backend uses
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gemma_gguf), "--host", "127.0.0.1"]
            + [
                "--port",
                str(port),
                "--n_ctx",
                str(N_CTX),
                "--n_threads",
                threads,
                "--n_threads_batch",
                threads,
            ]
            + ["--n_gpu_layers", "-1", "--verbose", "False"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                    listing = json.load(answer)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
        [card] = listing["data"]
        yield LlamaServer(base_url, card["id"], gemma_gguf)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def in_process(llama_server: LlamaServer) -> Iterator[Any]:
    from mathforge.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(llama_server.gguf, n_ctx=N_CTX)
    yield backend
    backend.close()


@pytest.fixture
def served(llama_server: LlamaServer) -> Iterator[OpenAIBackend]:
    backend = OpenAIBackend(llama_server.model, base_url=llama_server.base_url)
    yield backend
    backend.close()


ARITH = (
    "Question: What is 12 + 7?\nAnswer: 12 + 7 = 19. The answer is 19.\n\nQuestion: What is 23 + 45?\nAnswer:"
)
STORY = "The capital of France is"


@pytest.mark.slow
def test_greedy_matches_the_in_process_engine(llama_server: LlamaServer, in_process: Any) -> None:
    # Both sides are llama.cpp with the same GGUF, context, threads and sampling chain (the backend switches off
    # the server's repeat_penalty 1.1 / min_p / top_k defaults), so greedy decoding gives the same tokens.
    # llama.cpp reuses the KV cache of the previous prompt's common prefix, which changes the float rounding of
    # what follows: exact equality needs the same history on both sides, hence this test runs first on both
    # engines and sends one request at a time, in the same order.
    served = OpenAIBackend(llama_server.model, base_url=llama_server.base_url, concurrency=1)
    params = SamplingParams(max_new_tokens=24, stop=("\nQuestion:",))
    ours = served.generate([ARITH, STORY], params, seed_offsets=[0, 1])
    served.close()
    reference = in_process.generate([ARITH, STORY], params, seed_offsets=[0, 1])
    assert ours == reference
    arith, story = (generation.completions[0] for generation in ours)
    assert "19" not in arith.text and arith.text.strip().startswith("23 + 45")
    assert "\nQuestion:" not in arith.text  # cut at the stop string
    assert arith.finish_reason == "stop" and arith.tokens < 24
    assert story.finish_reason == "length" and story.tokens == 24 and story.text


@pytest.mark.slow
def test_sampling_n3_and_small_budget(served: OpenAIBackend) -> None:
    params = SamplingParams(max_new_tokens=6, temperature=1.0, n=3, seed=7)
    [generation] = served.generate(["Once upon a time"], params, seed_offsets=[3])
    texts = [c.text for c in generation.completions]
    assert len(texts) == 3 and len(set(texts)) >= 2, texts  # three seeds, not one sample three times
    assert all(c.finish_reason == "length" and c.tokens == 6 for c in generation.completions)


@pytest.mark.slow
def test_chat_endpoint_through_the_template_marker(served: OpenAIBackend) -> None:
    messages = [{"role": "user", "content": "What is 2 + 3?"}]
    prompt = served.apply_chat_template(messages)
    assert messages[0]["content"] in prompt and not prompt.startswith("What")
    # The packaged base model tends to answer a fresh chat turn with EOS at once; whatever it says, it is a turn.
    [fresh] = served.generate([prompt], SamplingParams(max_new_tokens=8))
    assert fresh.completions[0].finish_reason in ("stop", "length")
    # Text appended after the marker (what tool-integrated reasoning does) becomes an assistant message to go on
    # from; llama-cpp-python's server has no continue_final_message, so it answers a new turn after it.
    [continued] = served.generate([prompt + "2 + 3 equals"], SamplingParams(max_new_tokens=8))
    completion = continued.completions[0]
    assert completion.text and completion.tokens == 8 and completion.finish_reason == "length"


@pytest.mark.slow
def test_model_name_from_the_server(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend("", base_url=llama_server.base_url + "/")
    try:
        assert backend.model == llama_server.model
        assert backend.identity() == {
            "backend": "openai",
            "model": llama_server.model,
            "path": llama_server.base_url,
            "id": llama_server.model,
            "owned_by": "me",
        }
    finally:
        backend.close()


def _rows(out: Path) -> list[dict[str, Any]]:
    [samples] = out.glob("*/*/samples.jsonl")
    return [json.loads(line) for line in samples.read_text().splitlines()]


@pytest.mark.slow
def test_cli_eval_gives_the_rows_of_a_llamacpp_run(llama_server: LlamaServer, tmp_path: Path) -> None:
    # Not streamed (--no-stop-on-loop): llama-cpp-python's server sends no usage in a stream and never sends the
    # held-back tokens of a stop string, so a streamed token count can fall short (test_openai_loops covers it).
    common = ["--bench", "arith", "--limit", "3", "--max-new-tokens", "32", "--quiet", "--no-stop-on-loop"]
    # One request at a time: llama.cpp reuses the KV cache of the common prefix with the previous prompt (here the
    # few-shot exemplars), which changes the float rounding of the rest, and greedy decoding of a 270M model
    # flips on such near-ties (item 0 of this run reads "<<59*7=367>>" instead of "<<59*7=36>>" when it comes
    # after item 1). Concurrent requests reach the server in any order; sent in order, the server sees the
    # prompts in the in-process engine's order and the rows are the same.
    served = _mathforge(
        "eval", "--backend", "openai", "--base-url", llama_server.base_url, "--model", llama_server.model,
        "--concurrency", "1", "--out", str(tmp_path / "openai"), *common,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    local = _mathforge(
        "eval", "--model", str(llama_server.gguf), "--n-ctx", str(N_CTX), "--out", str(tmp_path / "llamacpp"),
        *common,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    served_rows, local_rows = _rows(tmp_path / "openai"), _rows(tmp_path / "llamacpp")
    assert len(served_rows) == 3
    assert [sorted(row) for row in served_rows] == [sorted(row) for row in local_rows]
    for ours, theirs in zip(served_rows, local_rows, strict=True):
        assert {key: value for key, value in ours.items() if key != "seconds"} == {
            key: value for key, value in theirs.items() if key != "seconds"
        }
    [metrics] = (tmp_path / "openai").glob("*/*/metrics.json")
    identity = json.loads(metrics.read_text())["model_identity"]
    assert identity["backend"] == "openai" and identity["path"] == llama_server.base_url


# -- small misbehaving servers ----------------------------------------------------------------------------------

Answer = Callable[[BaseHTTPRequestHandler, int], None]


def _send(
    handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def completion_json(text: str = "42", finish_reason: str = "stop", tokens: int = 3) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": tokens, "total_tokens": 5 + tokens},
    }


def chat_json(text: str) -> dict[str, Any]:
    return {
        "id": "chat-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
    }


@dataclass
class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1: GET /v1/models lists `models`; POSTs go to `answer(handler, n)`,
    n counting POSTs from 0. The request bodies it saw are kept."""

    answer: Answer
    models: list[dict[str, Any]] = field(default_factory=lambda: [{"id": "fake", "owned_by": "tests"}])
    bodies: list[dict[str, Any]] = field(default_factory=list)
    gets: int = 0

    def __enter__(self) -> FakeServer:
        fake = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms Nagle / delayed-ACK stall between headers and body

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.gets += 1
                _send(self, 200, {"object": "list", "data": fake.models})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    count = len(fake.bodies)
                    fake.bodies.append(body | {"path": self.path})
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first
                    fake.answer(self, count)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def backend(self, model: str = "fake", **options: Any) -> OpenAIBackend:
        return OpenAIBackend(model, base_url=self.base_url, **options)


def _one_line(error: pytest.ExceptionInfo[MathforgeError]) -> str:
    message = str(error.value)
    assert "\n" not in message and message.startswith("openai backend: http://127.0.0.1:")
    return message


def test_requests_carry_the_sampling_settings_and_come_back_in_order() -> None:
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        body = fake.bodies[n]
        time.sleep(0.05 * (n % 3))  # answers finish out of order
        if body["path"].endswith("/chat/completions"):
            _send(handler, 200, chat_json(f"chat:{len(body['messages'])}"))
        else:
            # Like servers that return the stop string: the backend cuts it.
            _send(handler, 200, completion_json(f"{body['prompt']}|{body['seed']}\nQ: more", "length", 7))

    with FakeServer(answer) as fake:
        backend = fake.backend(concurrency=4)
        params = SamplingParams(
            max_new_tokens=9, temperature=0.5, top_p=0.9, top_k=5, n=2, seed=1, stop=("\nQ:",)
        )
        prompts = ["a", "b", backend.apply_chat_template([{"role": "user", "content": "hi"}]) + "partial"]
        generations = backend.generate(prompts, params, seed_offsets=[10, 11, 12])
        backend.close()
    assert len(fake.bodies) == 6
    seeds = {body["seed"] for body in fake.bodies}
    assert len(seeds) == 6  # one seed per (item, sample)
    for body in fake.bodies:
        assert body["n"] == 1 and body["max_tokens"] == 9 and body["temperature"] == 0.5
        assert (
            body["top_p"] == 0.9
            and body["top_k"] == 5
            and body["stop"] == ["\nQ:"]
            and body["model"] == "fake"
        )
        assert "min_p" not in body and "repeat_penalty" not in body  # an unrecognised server gets no extras
    for prompt, generation in zip(["a", "b"], generations[:2], strict=True):
        assert [c.text.split("|")[0] for c in generation.completions] == [prompt, prompt]
        assert all(c.finish_reason == "stop" and c.tokens == 7 for c in generation.completions)  # stop cut
    [chat, _] = [body for body in fake.bodies if "messages" in body]
    assert chat["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "partial"},
    ]
    assert chat["continue_final_message"] is True and chat["add_generation_prompt"] is False
    assert [c.text for c in generations[2].completions] == ["chat:2", "chat:2"]
    assert all(c.finish_reason == "length" and c.tokens == 4 for c in generations[2].completions)


def test_known_engines_get_their_defaults_switched_off() -> None:
    # vLLM would otherwise sample with the model's generation_config.json (repetition penalty, top_k, min_p).
    vllm = [{"id": "Qwen/Qwen2.5-Math-7B", "owned_by": "vllm", "root": "/models/qwen", "created": 1234}]
    with FakeServer(lambda handler, n: _send(handler, 200, completion_json()), models=vllm) as fake:
        backend = fake.backend("")
        backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.generate(["x"], SamplingParams(max_new_tokens=4, temperature=1.0, top_k=20))
        identity = backend.identity()
        backend.close()
    assert [(b["repetition_penalty"], b["min_p"], b["top_k"]) for b in fake.bodies] == [
        (1.0, 0.0, -1),
        (1.0, 0.0, 20),
    ]
    # `created` is when vLLM answered the listing, not a property of the model: kept out of the fingerprint.
    assert identity == {
        "backend": "openai",
        "model": "Qwen/Qwen2.5-Math-7B",
        "path": fake.base_url,
        "id": "Qwen/Qwen2.5-Math-7B",
        "root": "/models/qwen",
        "owned_by": "vllm",
    }


def test_retries_429_then_succeeds() -> None:
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        if n < 2:
            _send(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After-Ms": "20"})
        else:
            _send(handler, 200, completion_json("ok"))

    with FakeServer(answer) as fake:
        backend = fake.backend(max_retries=2)
        [generation] = backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    assert generation.completions[0].text == "ok" and len(fake.bodies) == 3


def test_503_forever_gives_up_after_max_retries() -> None:
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        _send(handler, 503, {"error": {"message": "overloaded"}}, {"Retry-After": "0.02"})

    with FakeServer(answer) as fake:
        backend = fake.backend(max_retries=3)
        with pytest.raises(MathforgeError) as error:
            backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    assert "answered 503 (overloaded) after 3 retries" in _one_line(error)
    assert len(fake.bodies) == 4


def test_401_fails_at_once() -> None:
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        _send(handler, 401, {"error": {"message": "Incorrect API key provided: sk-x***"}})

    with FakeServer(answer) as fake:
        backend = fake.backend(max_retries=5, api_key_env="MATHFORGE_TEST_KEY")
        with pytest.raises(MathforgeError) as error:
            backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    message = _one_line(error)
    assert "answered 401" in message and "$MATHFORGE_TEST_KEY" in message and "retries" not in message
    assert len(fake.bodies) == 1


def test_model_not_found_names_the_model() -> None:
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        _send(handler, 404, {"object": "error", "message": "The model `nope` does not exist.", "code": 404})

    with FakeServer(answer) as fake:
        backend = fake.backend("nope")
        with pytest.raises(MathforgeError) as error:
            backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    assert "answered 404 (The model `nope` does not exist.); check --model 'nope'" in _one_line(error)
    assert len(fake.bodies) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>Bad Gateway</html>", "not JSON: '<html>Bad Gateway</html>'"),
        (b'{"id": 1}', "JSON without a completion"),
    ],
)
def test_garbage_answers(body: bytes, expected: str) -> None:
    with FakeServer(lambda handler, n: _send(handler, 200, body)) as fake:
        backend = fake.backend()
        with pytest.raises(MathforgeError) as error:
            backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    assert expected in _one_line(error)


def _hang_up(handler: BaseHTTPRequestHandler, n: int) -> None:
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def test_dropped_connections_are_retried_then_reported() -> None:
    with FakeServer(_hang_up) as fake:
        backend = fake.backend(max_retries=2)  # the client's backoff: about 0.5 s then 1 s
        with pytest.raises(MathforgeError) as error:
            backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    assert "dropped the connection" in _one_line(error) and "after 2 retries" in str(error.value)
    assert len(fake.bodies) == 3


def test_a_dropped_connection_then_an_answer() -> None:
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        _hang_up(handler, n) if n == 0 else _send(handler, 200, completion_json("fine"))

    with FakeServer(answer) as fake:
        backend = fake.backend(max_retries=2)
        [generation] = backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    assert generation.completions[0].text == "fine" and len(fake.bodies) == 2


def test_slow_answers_time_out() -> None:
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        time.sleep(1.0)
        _send(handler, 200, completion_json())

    with FakeServer(answer) as fake:
        backend = fake.backend(max_retries=1, request_timeout=0.2)
        with pytest.raises(MathforgeError) as error:
            backend.generate(["x"], SamplingParams(max_new_tokens=4))
        backend.close()
    assert "did not answer within 0.2 s after 1 retry" in _one_line(error)
    assert len(fake.bodies) == 2


def test_connection_refused() -> None:
    port = _free_port()
    with pytest.raises(MathforgeError) as error:
        OpenAIBackend("x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=5)
    assert "cannot connect" in _one_line(error) and f":{port}/v1" in str(error.value)


def test_model_choice_from_the_listing() -> None:
    with FakeServer(lambda handler, n: None, models=[{"id": "a"}, {"id": "b"}]) as fake:
        with pytest.raises(MathforgeError) as error:
            fake.backend("")
        assert "serves several models (a, b); pass --model NAME" in _one_line(error)
        backend = fake.backend("b")  # named: no question asked
        assert backend.identity() == {"backend": "openai", "model": "b", "path": fake.base_url, "id": "b"}
        backend.close()


def test_no_address_and_no_key_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(MathforgeError, match="pass --base-url"):
        OpenAIBackend("x")
    monkeypatch.setenv("MATHFORGE_TEST_KEY", "sk-secret-value")
    with FakeServer(lambda handler, n: _send(handler, 200, completion_json())) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        backend = OpenAIBackend("fake", api_key_env="MATHFORGE_TEST_KEY")
        backend.generate(["x"], SamplingParams(max_new_tokens=4))
        assert "sk-secret-value" not in json.dumps(backend.identity())
        backend.close()


def test_a_run_writes_no_api_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # identity() is not all a run writes: run.json keeps the run's fingerprint, metrics.json the engine options
    # to repeat the run, samples.jsonl the rows; a real evaluation checks every file of the run directory.
    secret = "sk-secret-value-4f1c9e"
    monkeypatch.setenv("MATHFORGE_TEST_KEY", secret)
    keys: list[str] = []

    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        keys.append(handler.headers["Authorization"])
        _send(handler, 200, completion_json("The answer is 42."))

    with FakeServer(answer) as fake:
        result = _mathforge(
            "eval", "--backend", "openai", "--base-url", fake.base_url, "--model", "fake",
            "--api-key-env", "MATHFORGE_TEST_KEY", "--bench", "arith", "--limit", "2", "--quiet",
            "--out", str(tmp_path),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert keys and set(keys) == {f"Bearer {secret}"}  # the key was in play: the server got it
    assert secret not in result.stdout + result.stderr
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {"run.json", "metrics.json", "samples.jsonl"} <= {path.name for path in files}
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def test_cli_connection_refused_is_one_line(tmp_path: Path) -> None:
    port = _free_port()
    result = _mathforge(
        "eval", "--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "x",
        "--limit", "1", "--out", str(tmp_path),
    )  # fmt: skip
    assert_one_line_error(result, rf"openai backend: http://127\.0\.0\.1:{port}/v1: cannot connect")
