"""OpenAI-compatible servers (vLLM, SGLang, llama.cpp, TGI, hosted APIs) through the official `openai` client.

Plain prompts go to the completions endpoint. Chat prompts cannot be rendered here (the chat template lives on
the server), so `apply_chat_template` returns a private marker that carries the messages, and `generate` sends
those to the chat endpoint (see `_CHAT_MARKER`). Every (prompt, sample) pair is one request with n=1, its own
seed and its own token count; a thread pool keeps `concurrency` of them in flight on one shared client.

Retries are the `openai` client's own: it retries 408, 409, 429 and 5xx answers, timeouts and connection errors
(refused, reset, closed without an answer) with exponential backoff (0.5 s doubling up to 8 s, less up to 25%
jitter) and honours `Retry-After` / `retry-after-ms` up to two minutes (openai/_base_client.py, `request`,
`_should_retry`, `_calculate_retry_timeout`). Every other failure, and a retry budget spent, becomes a one-line
`MathforgeError` naming the server's address.

With `stop_on_loop` the completion is streamed (server-sent events) and its text tested with `stuck_in_a_loop`
every few chunks; a loop closes the stream, which makes llama.cpp's server and vLLM abort the request. A stream
lost midway is sent again with the same backoff, as the client does not retry once the headers are in.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from pydantic import Field

from mathforge.backends.base import (
    CUT_SHORT,
    LOOP_CHECK_STRIDE,
    Completion,
    Generation,
    SamplingParams,
    TokenScores,
    cut_at_stop,
    sample_seed,
    scoring_pairs,
)
from mathforge.config import Options
from mathforge.errors import MathforgeError
from mathforge.grading.loops import stuck_in_a_loop

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

# `apply_chat_template` returns this prefix + the messages as JSON. Text that a caller appends after the JSON
# (tool-integrated reasoning appends the model's partial answer and a program's output) is sent as a final
# assistant message for the server to continue. NUL never occurs in rendered prompts, so a plain prompt
# cannot be mistaken for a chat one.
_CHAT_MARKER = "\x00mathforge-chat:"
# vLLM's parameters for "continue the last assistant message instead of opening a new turn". Servers that do
# not know them (llama.cpp's, hosted APIs) ignore or reject them; the ones that ignore them answer a fresh turn.
_CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}
# Engines fill unset sampling knobs with their own defaults: vLLM (its default `--generation-config auto`) takes
# repetition_penalty, top_k and min_p from the model's generation_config.json, llama-cpp-python's server uses
# repeat_penalty 1.1, min_p 0.05 and top_k 40, llama.cpp's llama-server min_p 0.05 and top_k 40. mathforge's
# other engines decode with none of these, so they are switched off for the servers recognised by their
# /v1/models `owned_by` (SGLang takes vLLM's names). Other servers (hosted APIs, which reject unknown
# parameters) get the standard parameters only, and top_k when one is asked for.
_NEUTRAL_SAMPLING: dict[str, dict[str, Any]] = {
    "vllm": {"repetition_penalty": 1.0, "min_p": 0.0, "top_k": -1},
    "sglang": {"repetition_penalty": 1.0, "min_p": 0.0, "top_k": -1},
    "me": {"repeat_penalty": 1.0, "min_p": 0.0, "top_k": 0},  # llama-cpp-python's server says "me"
    "llamacpp": {"repeat_penalty": 1.0, "min_p": 0.0, "top_k": 0},  # llama.cpp's llama-server
}
_LISTING_TIMEOUT = 30.0  # seconds for the /v1/models request at start-up
_CONNECT_TIMEOUT = 10.0
# Waits before retrying a stream lost midway: 0.5 s doubling up to 8 s, as the client's own retries (no jitter).
_BACKOFF = 0.5
_BACKOFF_MAX = 8.0


class OpenAIOptions(Options):
    """Options of the openai engine (any OpenAI-compatible server)."""

    base_url: str | None = Field(
        None,
        description="openai: the server's address, e.g. http://127.0.0.1:8000/v1 [default: $OPENAI_BASE_URL]",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai: environment variable that holds the API key"
    )
    concurrency: int = Field(8, ge=1, le=1024, description="openai: requests in flight at once")
    max_retries: int = Field(
        5,
        ge=0,
        description="openai: retries (exponential backoff) on 429, 5xx, timeouts, dropped connections",
    )
    request_timeout: float = Field(600.0, gt=0.0, description="openai: seconds per request")


class OpenAIBackend:
    options = OpenAIOptions
    packages = ("openai",)
    serves_model = True  # --model is a name the server knows, not weights mathforge loads
    name = "openai"
    stops_loops: ClassVar[bool] = True  # with stop_on_loop, completions are streamed and tested as they grow

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        request_timeout: float = 600.0,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise MathforgeError(
                "the openai backend needs the openai client: pip install 'mathforge[openai]'"
            ) from None
        self.openai = openai
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise MathforgeError(
                "the openai backend needs the server's address: pass --base-url http://HOST:PORT/v1 "
                "(or set OPENAI_BASE_URL)"
            )
        self.base_url = base_url.rstrip("/")
        self.concurrency = max(1, concurrency)
        # A few rounds of --concurrency requests per batch keep the server busy.
        self.default_batch_size = 4 * self.concurrency
        self.score_batch_size = 8 * self.concurrency
        self.max_retries = max(0, max_retries)
        self.request_timeout = request_timeout
        self.api_key_env = api_key_env
        # Local servers need no key, but the client insists on one; the key is never written anywhere.
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",
            max_retries=self.max_retries,
            timeout=openai.Timeout(request_timeout, connect=min(request_timeout, _CONNECT_TIMEOUT)),
        )
        self.model = model
        try:
            self.model, cards = self._served(model)
        except BaseException:
            self.client.close()
            raise
        self.served = next((card for card in cards if card["id"] == self.model), {})
        # The engine behind the address (see _NEUTRAL_SAMPLING): llama-cpp-python's server answers any model name
        # with its one model, so a name missing from the listing still tells which engine this is.
        owners = {str(card["owned_by"]) for card in cards if card.get("owned_by")}
        self.owned_by = self.served.get("owned_by") or (owners.pop() if len(owners) == 1 else None)

    # -- start-up ---------------------------------------------------------------------------------------------

    def _served(self, model: str) -> tuple[str, list[dict[str, Any]]]:
        """The model to ask for (`model`, or the server's only one when it is "") and the server's listing."""
        cards = self._listing(required=not model)
        if model:
            return model, cards
        if not cards:
            raise MathforgeError(f"openai backend: {self.base_url}/models lists no model; pass --model NAME")
        if len(cards) > 1:
            names = ", ".join(str(card["id"]) for card in cards)
            raise MathforgeError(
                f"openai backend: {self.base_url} serves several models ({names}); pass --model NAME"
            )
        return str(cards[0]["id"]), cards

    def _listing(self, required: bool) -> list[dict[str, Any]]:
        """The models /v1/models lists; [] when it cannot tell and `required` is False (--model names one).

        Asked once, without retries: a refused connection or a bad key fails at once. A server without the
        listing (or one that lists other names) is still used when --model names the model.
        """
        timeout = min(self.request_timeout, _LISTING_TIMEOUT)
        client = self.client.with_options(max_retries=0, timeout=timeout)
        try:
            listing = json.loads(client.models.with_raw_response.list().http_response.text)
            return [card for card in listing["data"] if isinstance(card, dict) and "id" in card]
        except self.openai.APITimeoutError:
            raise MathforgeError(
                f"openai backend: {self.base_url}/models did not answer within {timeout:g} s; check the server"
            ) from None
        except self.openai.APIConnectionError as error:
            raise self._error(error, retried=False) from None
        except self.openai.APIStatusError as error:
            if error.status_code in (401, 403):
                raise self._error(error, retried=False) from None
            if not required:
                return []
            detail = _server_message(error.response)
            raise MathforgeError(
                f"openai backend: {self.base_url}/models answered {error.status_code}"
                + (f" ({detail})" if detail else "")
                + "; pass --model NAME"
            ) from None
        except (ValueError, KeyError, TypeError) as error:  # not JSON, or JSON without a model list
            if not required:
                return []
            raise MathforgeError(
                f"openai backend: {self.base_url}/models gave no model list ({_short(str(error))}); pass --model NAME"
            ) from None

    # -- generation -------------------------------------------------------------------------------------------

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        offsets = seed_offsets or [0] * len(prompts)
        jobs = [
            (index, prompt, sample_seed(params.seed, offset, sample))
            for index, (prompt, offset) in enumerate(zip(prompts, offsets, strict=True))
            for sample in range(params.n)
        ]
        generations = [Generation() for _ in prompts]
        if not jobs:
            return generations
        futures = in_threads(
            [partial(self._complete, prompt, params, seed) for _, prompt, seed in jobs], self.concurrency
        )
        try:
            for (index, _, _), future in zip(jobs, futures, strict=True):
                generations[index].completions.append(future.result())
        finally:
            for future in futures:  # after a failure or Ctrl-C, the requests not yet sent are not sent
                future.cancel()
        return generations

    def _complete(self, prompt: str, params: SamplingParams, seed: int) -> Completion:
        chat = _parse_chat(prompt)
        if params.stop_on_loop:
            return self._complete_streamed(prompt, chat, params, seed)
        response = self._send(prompt, chat, params, seed)
        return self._completion(response, params, chat=chat is not None)

    def _send(
        self,
        prompt: str,
        chat: tuple[list[dict[str, str]], str] | None,
        params: SamplingParams,
        seed: int,
        **streaming: Any,
    ) -> Any:
        """The server's HTTP response to one completion request (`streaming`: stream=True and its options)."""
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "n": 1,
            "seed": seed,
            **streaming,
        }
        if params.stop:
            # All of them: vLLM and llama.cpp take any number (OpenAI's own API takes 4 and answers 400 to more).
            request["stop"] = list(params.stop)
        extra = dict(_NEUTRAL_SAMPLING.get(str(self.owned_by), {}))
        if params.top_k > 0:
            extra["top_k"] = params.top_k
        try:
            if chat is None:
                raw = self.client.completions.with_raw_response.create(
                    prompt=prompt, extra_body=extra, **request
                )
            else:
                messages, tail = chat
                if tail:
                    messages = [*messages, {"role": "assistant", "content": tail}]
                    extra.update(_CONTINUE)
                raw = self.client.chat.completions.with_raw_response.create(
                    # Plain role/content dicts: the messages the client's TypedDicts describe.
                    messages=cast("list[ChatCompletionMessageParam]", messages),
                    extra_body=extra,
                    **request,
                )
        except self.openai.OpenAIError as error:
            raise self._error(error) from None
        return raw.http_response

    def _completion(self, response: Any, params: SamplingParams, chat: bool) -> Completion:
        body = self._json(response.text, "answered something")
        try:
            choice = body["choices"][0]
            text = _text(choice, chat, streamed=False)
            # A server that reports no usage leaves the count unknown: 0, as for an empty completion.
            reason = choice.get("finish_reason")
            completion = _finished(text, reason, _usage(body) or 0, params, _prompt_usage(body))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise self._malformed("answered JSON", response.text) from None
        return completion

    # -- streamed generation (stop_on_loop) -------------------------------------------------------------------

    def _complete_streamed(
        self, prompt: str, chat: tuple[list[dict[str, str]], str] | None, params: SamplingParams, seed: int
    ) -> Completion:
        """Stream the completion to test it for a loop as it grows. A connection lost mid-stream is retried like
        one lost before the answer (the client's own retries end once the response's headers are in)."""
        for attempt in itertools.count():
            response = self._send(
                prompt, chat, params, seed, stream=True, stream_options={"include_usage": True}
            )
            try:
                return self._read_stream(response, params, chat=chat is not None)
            except self.openai.APIConnectionError as error:  # timeouts too: see `_lines`
                if attempt >= self.max_retries:
                    raise self._error(error) from None
            finally:
                # Closing a stream before its end closes the connection: llama.cpp's server and vLLM then abort
                # the request, so a loop stops costing the server as soon as it is seen.
                response.close()
            time.sleep(min(_BACKOFF_MAX, _BACKOFF * 2**attempt))
        raise AssertionError("unreachable")  # itertools.count() has no end

    def _read_stream(self, response: Any, params: SamplingParams, chat: bool) -> Completion:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            with self._reading(response):  # a server that does not stream answers in one piece
                response.read()
            return self._completion(response, params, chat)
        partial = _Partial()
        for delta in self._deltas(response, chat):
            if delta is None:  # [DONE]
                break
            # Not on the chunk that finishes the completion: it ended by itself, whatever its text looks like.
            if partial.add(*delta) and partial.reason is None and stuck_in_a_loop(partial.text):
                return _finished(partial.text, "loop", partial.tokens, params, partial.prompt_tokens)
        else:
            if partial.reason is None:
                raise MathforgeError(
                    f"openai backend: {self.base_url} ended the stream before the completion"
                )
        return _finished(partial.text, partial.reason, partial.tokens, params, partial.prompt_tokens)

    def _deltas(self, response: Any, chat: bool) -> Iterator[tuple[str, str | None, int | None, int] | None]:
        """(text, finish reason, completion tokens, prompt tokens) of each chunk of a server-sent event stream,
        then None at its [DONE]. An error the server reports in the stream raises."""
        for line in self._lines(response):
            field, _, value = line.partition(":")
            value = value.strip()
            if field == "data" and value == "[DONE]":
                yield None
                return
            if field not in ("data", "error"):  # comments (keep-alives), event names and ids, blank lines
                continue
            # vLLM and OpenAI send {"error": ...} (older vLLM {"object": "error", ...}), llama.cpp "error: {...}".
            chunk = self._json(value, "sent a stream chunk") if field == "data" else {"error": value}
            if isinstance(chunk, dict) and ("error" in chunk or chunk.get("object") == "error"):
                raise MathforgeError(
                    f"openai backend: {self.base_url} reported an error mid-stream ({_error_message(value)})"
                )
            try:
                choices = chunk["choices"]  # empty in the usage chunk at the end
                text = _text(choices[0], chat, streamed=True) if choices else ""
                reason = choices[0].get("finish_reason") if choices else None
                yield text, reason, _usage(chunk), _prompt_usage(chunk)
            except (KeyError, IndexError, TypeError, AttributeError, ValueError):
                raise self._malformed("sent a stream chunk", value) from None

    def _lines(self, response: Any) -> Iterator[str]:
        with self._reading(response):
            yield from response.iter_lines()

    @contextlib.contextmanager
    def _reading(self, response: Any) -> Iterator[None]:
        """Around reads of a streamed response: the HTTP library's errors (the openai client leaves those raised
        after the response's headers as httpx's own) become the client's APITimeoutError or APIConnectionError,
        which `_complete_streamed` retries and `_error` words."""
        # The openai client's HTTP library (httpx, or httpx2 in recent clients), whichever made this response.
        http = importlib.import_module(type(response).__module__.partition(".")[0])
        try:
            yield
        except http.TimeoutException as error:
            raise self.openai.APITimeoutError(request=response.request) from error
        except (http.TransportError, http.StreamError) as error:  # a dropped connection, a broken stream
            raise self.openai.APIConnectionError(request=response.request) from error

    def _json(self, text: str, sent: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise MathforgeError(
                f"openai backend: {self.base_url} {sent} that is not JSON: {_short(text)!r}"
            ) from None

    def _malformed(self, sent: str, text: str) -> MathforgeError:
        return MathforgeError(
            f"openai backend: {self.base_url} {sent} without a completion: {_short(text)!r}"
        )

    def _error(self, error: Exception, retried: bool = True) -> MathforgeError:
        """One line: what the server at base_url did, and after how many retries when they were spent."""
        openai = self.openai
        retries = f"{self.max_retries} retr{'y' if self.max_retries == 1 else 'ies'}"
        after = f" after {retries}" if retried and self.max_retries else ""
        where = f"openai backend: {self.base_url}"
        if isinstance(error, openai.APITimeoutError):
            return MathforgeError(
                f"{where} did not answer within {self.request_timeout:g} s{after}; raise --request-timeout "
                "or check the server"
            )
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__
            reason = _short(str(cause)) if cause is not None and str(cause) else type(cause or error).__name__
            if type(cause).__name__ == "ConnectError":
                return MathforgeError(
                    f"{where}: cannot connect ({reason}){after}; is the server running? check --base-url"
                )
            return MathforgeError(f"{where} dropped the connection ({reason}){after}")
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            detail = _server_message(error.response)
            hint = {
                401: f"; check the API key in ${self.api_key_env}",
                403: f"; check the API key in ${self.api_key_env}",
                404: f"; check --model '{self.model}' and --base-url",
            }.get(status, "")
            retried_status = status in (408, 409, 429) or status >= 500
            return MathforgeError(
                f"{where} answered {status}"
                + (f" ({detail})" if detail else "")
                + (after if retried_status else "")
                + hint
            )
        return MathforgeError(f"{where}: {type(error).__name__}: {_short(str(error))}")

    # -- the rest of the protocol -----------------------------------------------------------------------------

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return _CHAT_MARKER + json.dumps(messages, ensure_ascii=False)

    def identity(self) -> dict[str, Any]:
        # `created` is left out: vLLM and SGLang stamp it with the time of the request, which would make every run
        # a different run. `path` is the address, which the runner leaves out of fingerprints.
        served: dict[str, Any] = {
            key: self.served[key] for key in ("id", "root", "max_model_len") if key in self.served
        }
        owner = {"owned_by": self.owned_by} if self.owned_by else {}
        return {"backend": self.name, "model": self.model, "path": self.base_url, **served, **owner}

    def close(self) -> None:
        self.client.close()

    # -- token scoring ----------------------------------------------------------------------------------------

    def score(self, texts: list[str], contexts: list[str] | None = None) -> list[TokenScores]:
        """See `Backend.score`, through the completions endpoint: `echo=True` with `logprobs` returns the
        prompt's tokens with their log-probabilities (`max_tokens=1`: some servers must generate a token, and
        llama-cpp-python reads 0 as "until the context is full"; the generated token is left out).

        The server tokenizes, so the tokens are its token strings, and BOS is whatever the server adds. The
        first token of an echoed prompt has a null log-probability in the OpenAI format: where the server shows
        BOS (vLLM) that is BOS and every text token is scored; where it hides BOS (llama-cpp-python's server) the
        text's first token is the null one and is left out, so such a server scores one token fewer per text
        than the in-process engines. A context is sent on its own as well, to find where its tokens end (the
        same rule as the other engines, on token strings). Requests run `concurrency` at a time.
        """
        pairs = scoring_pairs(texts, contexts)
        prompts = [(context or "") + text for text, context in pairs]
        prompts += [context for _, context in pairs if context is not None]
        futures = in_threads(
            [partial(self._prompt_logprobs, prompt) for prompt in prompts], self.concurrency
        )
        try:
            answers = [future.result() for future in futures]
        finally:
            for future in futures:  # after a failure or Ctrl-C, the requests not yet sent are not sent
                future.cancel()
        context_answers = iter(answers[len(pairs) :])
        results = []
        for (_, context), entries in zip(pairs, answers[: len(pairs)], strict=True):
            start = next(
                (index for index, (_, value) in enumerate(entries) if value is not None), len(entries)
            )
            if context is not None:
                context_tokens = [token for token, _ in next(context_answers)]
                common = 0
                for (token, _), theirs in zip(entries, context_tokens, strict=False):
                    if token != theirs:
                        break
                    common += 1
                start = max(start, common)
            scored = entries[start:]
            values = [float(value) for _, value in scored if value is not None]
            # A null after the first entry (`_prompt_logprobs` lets one through) would misalign the scores.
            if len(values) < len(scored):
                raise MathforgeError(
                    f"openai backend: {self.base_url} answered a null log-probability inside the prompt"
                )
            results.append(TokenScores([token for token, _ in scored], values))
        return results

    def _prompt_logprobs(self, prompt: str) -> list[tuple[str, float | None]]:
        """(token, log-probability or None) for each token of the echoed prompt."""
        unsupported = f"openai backend: {self.base_url} does not return prompt log-probabilities"
        try:
            raw = self.client.completions.with_raw_response.create(
                model=self.model, prompt=prompt, max_tokens=1, temperature=0.0, echo=True, logprobs=1
            )
        except self.openai.APIStatusError as error:
            if error.status_code in (
                400,
                422,
                501,
            ):  # the server refuses echo or logprobs (OpenAI's own API does)
                detail = _server_message(error.response)
                raise MathforgeError(
                    f"{unsupported} (completions with echo and logprobs answered {error.status_code}"
                    + (f": {detail})" if detail else ")")
                ) from None
            raise self._error(error) from None
        except self.openai.OpenAIError as error:
            raise self._error(error) from None
        try:
            body = json.loads(raw.http_response.text)
            choice = body["choices"][0]
            logprobs = choice.get("logprobs") or {}
            tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
            generated = int((body.get("usage") or {}).get("completion_tokens", 1))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise MathforgeError(
                f"openai backend: {self.base_url} answered without a completion: {_short(raw.http_response.text)!r}"
            ) from None
        if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
            raise MathforgeError(f"{unsupported} (no token_logprobs in its answer to echo and logprobs)")
        entries = list(zip(tokens, values, strict=True))[: len(tokens) - generated]
        known = [value for _, value in entries if value is not None]
        # An echo that was ignored leaves only the generated token; a server that echoes without computing the
        # prompt's log-probabilities leaves them null. The first entry alone may be null (OpenAI's format).
        if (prompt and not entries) or (len(entries) > 1 and len(known) < len(entries) - 1):
            raise MathforgeError(f"{unsupported} (its answer to echo and logprobs has none for the prompt)")
        return [(str(token), value) for token, value in entries]


_Result = TypeVar("_Result")


def in_threads(calls: list[Callable[[], _Result]], workers: int) -> list[Future[_Result]]:
    """Run `calls` on up to `workers` threads; one future per call, in order.

    Not a ThreadPoolExecutor: its workers are joined when the interpreter exits, so after Ctrl-C the process
    would wait for every request in flight (up to --request-timeout, 10 minutes by default). These threads are
    daemons; a cancelled future's call is skipped.
    """
    futures: list[Future[_Result]] = [Future() for _ in calls]
    queue: SimpleQueue[tuple[Future[_Result], Callable[[], _Result]]] = SimpleQueue()
    for item in zip(futures, calls, strict=True):
        queue.put(item)

    def work() -> None:
        while True:
            try:
                future, call = queue.get_nowait()
            except Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as error:  # handed to the caller by future.result()
                future.set_exception(error)

    for number in range(min(workers, len(calls))):
        threading.Thread(target=work, name=f"mathforge-openai-{number}", daemon=True).start()
    return futures


def _parse_chat(prompt: str) -> tuple[list[dict[str, str]], str] | None:
    """(messages, text appended after them) for a prompt made by `apply_chat_template`, None for plain text."""
    if not prompt.startswith(_CHAT_MARKER):
        return None
    try:
        messages, end = json.JSONDecoder().raw_decode(prompt, len(_CHAT_MARKER))
    except ValueError:
        raise MathforgeError(
            "openai backend: a chat prompt was altered before generation (its messages do not parse)"
        ) from None
    return messages, prompt[end:]


def _text(choice: dict[str, Any], chat: bool, streamed: bool) -> str:
    """The text of a choice: `text`, or for chat the message's content (a streamed chunk's delta, which may have
    none: the first carries the role, the last may carry only the finish reason)."""
    if not chat:
        text = choice["text"] or ""
    else:
        text = (choice["delta"].get("content") if streamed else choice["message"]["content"]) or ""
    if not isinstance(text, str):
        raise TypeError("the completion is not a string")
    return text


def _usage(body: dict[str, Any]) -> int | None:
    """The completion's token count in an answer or stream chunk; None where it gives none."""
    return int((body.get("usage") or {}).get("completion_tokens") or 0) or None


def _prompt_usage(body: dict[str, Any]) -> int:
    """The prompt's token count in an answer or stream chunk; 0 where it gives none."""
    return int((body.get("usage") or {}).get("prompt_tokens") or 0)


def _finished(
    text: str, reason: str | None, tokens: int, params: SamplingParams, prompt_tokens: int = 0
) -> Completion:
    # Some servers return the stop string, or ignore stops beyond their limit: cut like the other engines.
    text, stopped = cut_at_stop(text, params.stop)
    finish_reason = reason if reason in CUT_SHORT and not stopped else "stop"
    return Completion(text=text, tokens=tokens, finish_reason=finish_reason, prompt_tokens=prompt_tokens)


@dataclass
class _Partial:
    """A streamed completion so far."""

    text: str = ""
    pieces: int = 0  # chunks that carried text
    usage: int | None = None
    reason: str | None = None
    prompt_tokens: int = 0  # the server's count, in the usage chunk at the end

    def add(self, text: str, reason: str | None, usage: int | None, prompt_tokens: int = 0) -> bool:
        """Take one chunk's (text, finish reason, token count, prompt token count); whether the text is due a
        loop test (every LOOP_CHECK_STRIDE chunks with text)."""
        self.usage = usage or self.usage
        self.prompt_tokens = prompt_tokens or self.prompt_tokens
        self.reason = reason or self.reason
        if not text:
            return False
        self.text += text
        self.pieces += 1
        return self.pieces % LOOP_CHECK_STRIDE == 0

    @property
    def tokens(self) -> int:
        # The server's count where it sent one (at the end, asked for with stream_options include_usage). A stream
        # closed before its end has none, nor has llama-cpp-python's server: each chunk with text is one token on
        # llama.cpp's server and vLLM, so the chunks are counted. Tokens whose text never comes on its own (part of
        # a UTF-8 character, sent with the next; a stop string, held back and dropped) are missed: the count can
        # fall a little short of the tokens generated.
        return self.usage if self.usage is not None else self.pieces


def _server_message(response: Any) -> str:
    """The error message in a server's answer (see `_error_message`)."""
    try:
        text = response.text
    except Exception:  # a streamed body that could not be read
        return ""
    return _error_message(text)


def _error_message(text: str) -> str:
    """The error message in a server's answer or stream chunk: OpenAI's {"error": {"message"}}, vLLM's
    {"message"}, FastAPI's {"detail"}, or the start of the text."""
    try:
        body = json.loads(text)
    except ValueError:
        return _short(text)
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        message = message or body.get("message") or body.get("detail")
        if message:
            return _short(message if isinstance(message, str) else json.dumps(message))
    return _short(text)


def _short(text: str, limit: int = 200) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."
