"""The openai backend with stop_on_loop: completions are streamed (server-sent events) and a verbatim loop closes
the stream. Against small HTTP servers on 127.0.0.1 that stream a scripted completion chunk by chunk and note
whether the client hung up before the end, and against llama-cpp-python's real server."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from typing import Any

import backends.test_openai_backend as openai_tests
import pytest
from backends.test_openai_backend import (
    ARITH,
    FakeServer,
    LlamaServer,
    _one_line,
    _send,
    completion_json,
)

from mathforge.backends.base import LOOP_CHECK_STRIDE, Completion, SamplingParams
from mathforge.backends.openai_api import OpenAIBackend
from mathforge.errors import MathforgeError
from mathforge.grading.loops import stuck_in_a_loop

# The real llama-cpp-python server of the openai backend's tests (a module fixture: this module starts its own).
llama_server = openai_tests.llama_server

PREAMBLE = ["We", " need", " 3", " +", " 4", ".", "\n"]
LOOP = PREAMBLE + [" Let", " me", " check", " again", ".", "\n"] * 100  # 607 chunks if nobody stops it
STORY = ["3", " +", " 4", " =", " 7", ".", " The", " answer", " is", " 7", "."]


@dataclass
class Script:
    """A FakeServer answer: for a streamed request, SSE chunks of `pieces` (one piece per chunk, `delay` apart, in
    HTTP chunked encoding like the real servers) ending in `finish`; for any other request, the same completion as
    one JSON answer. Chat requests get chat chunks. `usage`: whether it honours stream_options include_usage.

    Misbehaviour on purpose: `hang_up_at` closes the connection after that many pieces, `garbage_at` sends a
    chunk of that text instead of the piece, `stall_at` waits 1 s there, `no_finish` ends the stream (properly)
    without a finish reason or [DONE]; `faulty` says which requests (by number) misbehave.
    """

    pieces: list[str]
    finish: str = "stop"
    tokens: int | None = None  # the usage it reports: len(pieces) unless set
    usage: bool = True
    delay: float = 0.002
    hang_up_at: int | None = None
    garbage_at: tuple[int, str] | None = None
    stall_at: int | None = None
    no_finish: bool = False
    faulty: set[int] = field(default_factory=lambda: {0})
    # What happened to the last streamed request:
    sent: int = 0  # pieces written
    disconnected: bool = False  # the client hung up before the end
    done: threading.Event = field(default_factory=threading.Event)
    fake: FakeServer = field(init=False)  # the server it answers for (`serve`)

    def __call__(self, handler: BaseHTTPRequestHandler, n: int) -> None:
        body = self.fake.bodies[n]
        chat = body["path"].endswith("/chat/completions")
        tokens = len(self.pieces) if self.tokens is None else self.tokens
        if not body.get("stream"):
            text = "".join(self.pieces)
            _send(
                handler,
                200,
                _chat_json(text, self.finish, tokens) if chat else completion_json(text, self.finish, tokens),
            )
            return
        self.sent, self.disconnected = 0, False
        self.done.clear()
        try:
            self._stream(handler, chat, tokens, body, n in self.faulty)
        except (BrokenPipeError, ConnectionResetError):
            self.disconnected = True
        finally:
            self.done.set()

    def _stream(
        self, handler: BaseHTTPRequestHandler, chat: bool, tokens: int, body: dict[str, Any], faulty: bool
    ) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if chat:
            _event(handler, _chunk({"role": "assistant", "content": ""}, None, chat))
        for index, piece in enumerate(self.pieces):
            if faulty and index == self.hang_up_at:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if faulty and index == self.stall_at:
                time.sleep(1.0)
            if faulty and self.garbage_at and index == self.garbage_at[0]:
                _write(handler, f"{self.garbage_at[1]}\n\n".encode())
            else:
                _event(handler, _chunk({"content": piece} if chat else piece, None, chat))
            self.sent += 1
            time.sleep(self.delay)
        if not (faulty and self.no_finish):
            _event(handler, _chunk({} if chat else "", self.finish, chat))
            if self.usage and body.get("stream_options", {}).get("include_usage"):
                _event(handler, {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": tokens}})
            _write(handler, b"data: [DONE]\n\n")
        _write(handler, b"")  # the last chunk of the chunked encoding

    def serve(self, **options: Any) -> FakeServer:
        self.fake = FakeServer(self, **options)
        return self.fake


def _chunk(delta: Any, finish: str | None, chat: bool) -> dict[str, Any]:
    choice = {"index": 0, "finish_reason": finish}
    choice |= {"delta": delta} if chat else {"text": delta, "logprobs": None}
    return {
        "id": "c-1",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "choices": [choice],
    }


def _chat_json(text: str, finish: str, tokens: int) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    return {
        "id": "chat-1",
        "object": "chat.completion",
        "choices": [choice],
        "usage": {"completion_tokens": tokens},
    }


def _event(handler: BaseHTTPRequestHandler, data: dict[str, Any]) -> None:
    _write(handler, f"data: {json.dumps(data)}\n\n".encode())


def _write(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def _generate(fake: FakeServer, prompt: str, **params: Any) -> Completion:
    backend = fake.backend(**params.pop("backend", {}))
    try:
        [generation] = backend.generate([prompt], SamplingParams(**params))
    finally:
        backend.close()
    [completion] = generation.completions
    return completion


def _streamed_and_not(script: Script, prompt: str = "x", **params: Any) -> tuple[Completion, Completion]:
    with script.serve() as fake:
        streamed = _generate(fake, prompt, stop_on_loop=True, **params)
        assert script.done.wait(5)
        plain = _generate(fake, prompt, stop_on_loop=False, **params)
    assert [body.get("stream", False) for body in fake.bodies] == [True, False]
    return streamed, plain


def _chat_prompt() -> str:
    with FakeServer(lambda handler, n: None) as fake:
        backend = fake.backend()
        prompt = backend.apply_chat_template([{"role": "user", "content": "What is 3 + 4?"}])
        backend.close()
    return prompt


def test_the_engine_says_it_stops_loops() -> None:
    assert OpenAIBackend.stops_loops is True


@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_a_loop_is_stopped_and_the_stream_closed(chat: bool) -> None:
    script = Script(LOOP, finish="length", usage=True, delay=0.003)
    prompt = _chat_prompt() + "Let me think." if chat else "What is 3 + 4?"
    with script.serve() as fake:
        completion = _generate(fake, prompt, max_new_tokens=700, stop_on_loop=True)
        assert script.done.wait(5), "the server is still streaming"
    assert completion.finish_reason == "loop" and stuck_in_a_loop(completion.text)
    # The text is what the server sent, piece by piece; a closed stream has no usage, so each piece counts one.
    assert completion.text == "".join(LOOP[: completion.tokens])
    assert completion.tokens % LOOP_CHECK_STRIDE == 0  # tested every LOOP_CHECK_STRIDE pieces
    assert not stuck_in_a_loop(
        "".join(LOOP[: completion.tokens - LOOP_CHECK_STRIDE])
    )  # stopped at the first test
    assert script.disconnected  # the client hung up, which is what makes real servers abort the request
    assert script.sent < 400 < len(LOOP), script.sent  # stopped near the start (a loaded machine adds a few)
    [body] = fake.bodies
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["path"].endswith("/chat/completions" if chat else "/completions")
    if chat:
        assert body["messages"][-1] == {"role": "assistant", "content": "Let me think."}
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_a_sound_completion_streams_to_its_end_as_without_streaming() -> None:
    script = Script(
        STORY, finish="stop", tokens=9
    )  # usage differs from the 11 pieces: the server's count wins
    streamed, plain = _streamed_and_not(script, max_new_tokens=64)
    assert streamed == plain == Completion(text="".join(STORY), tokens=9, finish_reason="stop")
    assert not script.disconnected and script.sent == len(STORY)


def test_the_requests_are_the_same_but_for_streaming() -> None:
    # vLLM (by its owned_by) gets the neutral sampling extras; seeds, stops and top_k go as without streaming.
    script = Script(STORY)
    params = SamplingParams(
        max_new_tokens=9, temperature=0.5, top_p=0.9, top_k=5, n=2, seed=1, stop=("\nQ:",)
    )
    with script.serve(models=[{"id": "fake", "owned_by": "vllm"}]) as fake:
        backend = fake.backend(concurrency=1)
        for stop_on_loop in (True, False):
            backend.generate(["a", "b"], replace(params, stop_on_loop=stop_on_loop), seed_offsets=[3, 4])
        backend.close()
    streamed, plain = fake.bodies[:4], fake.bodies[4:]
    for body in streamed:
        assert body.pop("stream") is True and body.pop("stream_options") == {"include_usage": True}
    assert streamed == plain
    assert plain[0]["min_p"] == 0.0 and plain[0]["top_k"] == 5 and len({body["seed"] for body in plain}) == 4


def test_length_finish_and_no_usage() -> None:
    # A server that ignores stream_options sends no usage: the pieces are counted.
    script = Script(STORY, finish="length", usage=False)
    streamed, plain = _streamed_and_not(script, max_new_tokens=11)
    assert streamed == Completion(text="".join(STORY), tokens=len(STORY), finish_reason="length")
    assert (plain.text, plain.finish_reason) == (streamed.text, streamed.finish_reason)


def test_stop_strings_cut_as_without_streaming() -> None:
    # The server ignores the stop string and runs to its budget; both paths cut it off and say "stop".
    pieces = [*STORY, "\n", "Question", ":", " more", "?"]
    streamed, plain = _streamed_and_not(Script(pieces, finish="length"), stop=("\nQuestion:",))
    assert streamed == plain == Completion(text="".join(STORY), tokens=len(pieces), finish_reason="stop")


def test_a_loop_after_a_stop_string_is_cut_at_the_stop_string() -> None:
    script = Script(["The", " answer", " is", " 7", ".", "\nQ:", *LOOP], finish="length", usage=False)
    with script.serve() as fake:
        completion = _generate(fake, "x", max_new_tokens=700, stop=("\nQ:",), stop_on_loop=True)
        assert script.done.wait(5)
    assert completion.text == "The answer is 7." and completion.finish_reason == "stop"
    assert script.disconnected and completion.tokens < 100


def test_chat_streams_as_without_streaming() -> None:
    script = Script(STORY, finish="length")
    streamed, plain = _streamed_and_not(script, _chat_prompt(), max_new_tokens=11)
    assert streamed == plain == Completion(text="".join(STORY), tokens=len(STORY), finish_reason="length")


def test_a_server_that_does_not_stream_is_read_whole() -> None:
    with FakeServer(lambda handler, n: _send(handler, 200, completion_json("42", "length", 4))) as fake:
        completion = _generate(fake, "x", stop_on_loop=True)
    assert completion == Completion(text="42", tokens=4, finish_reason="length")


def _stream_error(script: Script, **backend: Any) -> str:
    with script.serve() as fake, pytest.raises(MathforgeError) as error:
        _generate(fake, "x", stop_on_loop=True, backend=backend)
    return _one_line(error)


@pytest.mark.parametrize(
    ("misbehaviour", "expected"),
    [
        ({"hang_up_at": 5}, "dropped the connection ("),
        ({"garbage_at": (5, "data: {oops")}, "sent a stream chunk that is not JSON: '{oops'"),
        ({"garbage_at": (5, 'data: {"choices": 7}')}, "sent a stream chunk without a completion"),
        (
            {"garbage_at": (5, 'data: {"error": {"message": "engine died"}}')},
            "reported an error mid-stream (engine died)",
        ),
        (
            {"garbage_at": (5, 'error: {"code": 500, "message": "slot gone"}')},
            "reported an error mid-stream (slot gone)",
        ),
        ({"no_finish": True}, "ended the stream before the completion"),
    ],
    ids=["hang-up", "not-json", "no-choices", "vllm-error", "llamacpp-error", "no-finish"],
)
def test_errors_mid_stream_are_one_line(misbehaviour: dict[str, Any], expected: str) -> None:
    assert expected in _stream_error(Script(STORY, **misbehaviour), max_retries=0)


def test_a_stream_that_stalls_times_out() -> None:
    message = _stream_error(Script(STORY, stall_at=3), max_retries=0, request_timeout=0.3)
    assert "did not answer within 0.3 s; raise --request-timeout" in message


def test_a_stream_lost_midway_is_retried() -> None:
    script = Script(STORY, hang_up_at=4, faulty={0, 1})
    message = _stream_error(script, max_retries=1)
    assert "dropped the connection" in message and "after 1 retry" in message
    assert len(script.fake.bodies) == 2
    script = Script(STORY, hang_up_at=4, faulty={0})
    with script.serve() as fake:
        completion = _generate(fake, "x", stop_on_loop=True, backend={"max_retries": 1})
    assert completion.text == "".join(STORY) and len(fake.bodies) == 2
    assert fake.bodies[0] == fake.bodies[1]  # the same request again, seed and all


def test_errors_before_the_stream_are_retried_by_the_client() -> None:
    script = Script(STORY)

    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        if n == 0:
            _send(handler, 503, {"error": {"message": "busy"}}, {"Retry-After-Ms": "10"})
        else:
            script(handler, n)

    with FakeServer(answer) as fake:
        script.fake = fake
        completion = _generate(fake, "x", stop_on_loop=True, backend={"max_retries": 1})
    assert completion.text == "".join(STORY) and len(fake.bodies) == 2


# -- llama-cpp-python's real server -----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_server_streams_as_it_answers(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(llama_server.model, base_url=llama_server.base_url, concurrency=1)
    params = SamplingParams(max_new_tokens=24, stop=("\nQuestion:",))
    try:
        # llama.cpp reuses the KV cache of the previous prompt, which changes the rounding of what follows (see
        # test_greedy_matches_the_in_process_engine): the two compared requests both come after the same prompt.
        backend.generate([ARITH], params)
        [plain] = backend.generate([ARITH], params)
        [streamed] = backend.generate([ARITH], replace(params, stop_on_loop=True))
        [looped] = backend.generate(["1\n" * 60], SamplingParams(max_new_tokens=200, stop_on_loop=True))
    finally:
        backend.close()
    [plain_completion], [streamed_completion] = plain.completions, streamed.completions
    assert (streamed_completion.text, streamed_completion.finish_reason) == (plain_completion.text, "stop")
    # llama-cpp-python's server sends no usage in a stream; the tokens of the stop string are never sent.
    assert 0 < streamed_completion.tokens <= plain_completion.tokens
    [completion] = looped.completions
    assert completion.finish_reason == "loop" and completion.tokens < 200, completion
