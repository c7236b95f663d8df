"""llama.cpp engine (llama-cpp-python): GGUF files on CPU or GPU, the default for laptops."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import Field

from mathforge.backends.base import (
    LOOP_CHECK_STRIDE,
    Completion,
    Generation,
    SamplingParams,
    TokenScores,
    sample_seed,
    scoring_pairs,
    scoring_sequence,
)
from mathforge.backends.identity import file_sha256
from mathforge.config import Options
from mathforge.errors import ContextOverflow, MathforgeError
from mathforge.grading.loops import stuck_in_a_loop

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage, CreateCompletionResponse


class LlamaCppOptions(Options):
    """Options of the llamacpp engine."""

    cli_names: ClassVar[dict[str, str]] = {"n_threads": "threads"}

    n_ctx: int = Field(4096, ge=256, description="llamacpp, vllm: context window (prompt and completion)")
    n_threads: int | None = Field(None, ge=1, description="llamacpp: CPU threads [default: all cores]")


class LlamaCppBackend:
    name = "llamacpp"
    options = LlamaCppOptions
    packages = ("llama-cpp-python",)
    default_batch_size = 1  # llama.cpp completes one prompt at a time
    stops_loops = True  # a stopping criterion inside generation (see _LoopWatch)
    score_batch_size = 16  # it scores one text at a time too: a batch only sets how often rows are written

    def __init__(
        self,
        model_path: str | Path,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = -1,
    ) -> None:
        try:
            from llama_cpp import Llama, StoppingCriteriaList
        except ImportError:
            raise MathforgeError(
                "the llamacpp backend needs llama-cpp-python: pip install 'mathforge[llamacpp]'"
            ) from None
        _route_llama_logs_to_errors_only()
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise MathforgeError(f"model file not found: {self.model_path}")
        try:
            with _signals_held():
                self.llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=n_ctx,
                    # llama-cpp-python defaults to half the cores; a dedicated eval wants all of them.
                    n_threads=n_threads or len(os.sched_getaffinity(0)),
                    n_gpu_layers=n_gpu_layers,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as error:
            raise MathforgeError(f"cannot load GGUF model {self.model_path}: {error}") from None
        self.n_ctx = n_ctx
        self.stopping_criteria = StoppingCriteriaList

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        offsets = seed_offsets or [0] * len(prompts)
        return [
            self._generate_one(prompt, params, offset)
            for prompt, offset in zip(prompts, offsets, strict=True)
        ]

    def _generate_one(self, prompt: str, params: SamplingParams, offset: int) -> Generation:
        prompt_tokens = len(self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
        budget = min(params.max_new_tokens, self.n_ctx - prompt_tokens)
        if budget <= 0:
            raise ContextOverflow(
                f"a prompt of {prompt_tokens} tokens does not fit the context window of {self.n_ctx}; "
                "raise --n-ctx or use fewer --shots"
            )
        if not params.greedy:
            # llama.cpp reuses the KV cache of the prefix this prompt shares with the previous one, and a prompt
            # evaluated in other pieces rounds differently: a resumed run would sample other completions than a
            # whole run. Sampled items start from an empty cache (greedy runs keep the speed: their argmax only
            # moves on a near-tie, and re-evaluating a few-shot prefix per item costs seconds on a CPU).
            self.llm.reset()
        generation = Generation()
        for sample in range(params.n):
            watch = _LoopWatch(self.llm, prompt_tokens) if params.stop_on_loop else None
            response = self.llm.create_completion(
                prompt,
                max_tokens=budget,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                # llama-cpp-python's defaults (min_p 0.05) would silently change the sampling distribution.
                min_p=0.0,
                repeat_penalty=1.0,
                seed=sample_seed(params.seed, offset, sample),
                stop=list(params.stop) or None,
                stopping_criteria=self.stopping_criteria([watch]) if watch is not None else None,
            )
            # Not streamed, so one response (the stubs' return type is a union with the streaming iterator).
            out = cast("CreateCompletionResponse", response)
            choice = out["choices"][0]
            generation.completions.append(
                Completion(
                    text=choice["text"],
                    tokens=out["usage"]["completion_tokens"],
                    finish_reason="loop" if watch and watch.stopped else choice["finish_reason"] or "stop",
                    prompt_tokens=prompt_tokens,
                )
            )
        return generation

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise MathforgeError(
                f"{self.model_path.name} has no chat template (a base model?); use --prompt few-shot or zero-shot"
            )
        bos, eos = self._token_text(self.llm.token_bos()), self._token_text(self.llm.token_eos())
        try:
            prompt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)(
                # Plain role/content dicts: the messages the stubs' TypedDicts describe.
                messages=cast("list[ChatCompletionRequestMessage]", messages)
            ).prompt
        except Exception as error:  # jinja2 errors and templates that raise on, e.g., a system message
            raise MathforgeError(
                f"{self.model_path.name}'s chat template rejected the messages: {error}"
            ) from None
        # llama.cpp adds BOS itself when tokenizing; a template that writes it too would double it.
        return prompt.removeprefix(bos) if bos else prompt

    def _token_text(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", "ignore") if token >= 0 else ""

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "path": str(self.model_path.resolve()),
            "sha256": file_sha256(self.model_path),
            "n_ctx": self.n_ctx,
        }

    def close(self) -> None:
        self.llm.close()

    # -- token scoring ----------------------------------------------------------------------------------------

    def score(self, texts: list[str], contexts: list[str] | None = None) -> list[TokenScores]:
        """See `Backend.score`.

        The context was created without `logits_all`, which `create_completion(echo=True, logprobs=...)` needs:
        generation reads only the last position's logits, and `logits_all` would make llama-cpp-python keep an
        n_ctx x vocabulary float array (4 GiB for Gemma 3's 262k vocabulary at n_ctx 4096) and copy every
        position's logits into it, for every generated token too. Flipping it on this object is no way out
        either (that array was sized for logits_all=False), and a second `Llama` with logits_all would hold that
        array besides a second KV cache. So scoring drives this same context through llama.cpp's own C API: each
        text is decoded in chunks whose `llama_batch.logits` flags ask for the logits of exactly the positions
        that predict a scored token, and each chunk's logits are read (`llama_get_logits`) before the next.
        The KV cache is cleared before each text, and llama-cpp-python's record of what it holds (from which
        `create_completion` reuses a prompt's prefix) is reset afterwards, so generation after scoring starts
        from an empty cache as it would otherwise.
        """
        llm = self.llm
        bos = llm.token_bos()
        adds_bos = bos >= 0 and llm.tokenize(b"1", add_bos=True, special=True)[:1] == [bos]
        sequences = []
        for text, context in scoring_pairs(texts, contexts):
            context_ids = self._encode(context) if context is not None else None
            ids, first = scoring_sequence(
                self._encode((context or "") + text), context_ids, bos if adds_bos else None
            )
            if len(ids) > self.n_ctx:
                raise ContextOverflow(
                    f"a text of {len(ids)} tokens does not fit the context window of {self.n_ctx}; raise --n-ctx"
                )
            sequences.append((ids, first))
        try:
            return [TokenScores(ids[first:], self._logprobs(ids, first)) for ids, first in sequences]
        finally:
            llm.reset()

    def _encode(self, text: str) -> list[int]:
        # special=True, as generation tokenizes prompts: control tokens written in a text are read as such.
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _logprobs(self, ids: list[int], first: int) -> list[float]:
        """Log-probabilities of ids[first:], each predicted by the logits at the position before it."""
        import llama_cpp
        import numpy as np

        if first >= len(ids):
            return []
        ctx = self.llm.ctx
        vocab = self.llm.n_vocab()
        # llama.cpp keeps a buffer for the logits one decode returns (outputs x vocabulary floats); bound it.
        step = max(1, min(self.llm.n_batch, _SCORE_LOGITS_FLOATS // vocab))
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        batch = llama_cpp.llama_batch_init(step, 0, 1)
        logprobs: list[float] = []
        try:
            # The last token predicts nothing that is scored, but it is decoded too (without logits): llama.cpp's
            # CPU matrix kernels round a position's values differently with the batch's shape, and decoding the
            # whole text matches what llama-cpp-python's own logits_all path (echo=True) returns for it.
            for start in range(0, len(ids), step):
                stop = min(start + step, len(ids))
                batch.n_tokens = stop - start
                for slot, position in enumerate(range(start, stop)):
                    batch.token[slot] = ids[position]
                    batch.pos[slot] = position
                    batch.n_seq_id[slot] = 1
                    batch.seq_id[slot][0] = 0
                    batch.logits[slot] = first - 1 <= position < len(ids) - 1
                code = llama_cpp.llama_decode(ctx, batch)
                if code != 0:
                    raise RuntimeError(
                        f"llama_decode returned {code} at position {start} of a {len(ids)}-token text"
                    )
                flagged = range(max(start, first - 1), min(stop, len(ids) - 1))
                if flagged:
                    # The flagged positions' logits, contiguous in batch order.
                    rows = np.ctypeslib.as_array(llama_cpp.llama_get_logits(ctx), shape=(len(flagged), vocab))
                    logprobs.extend(_logprobs_of(rows, ids[flagged.start + 1 : flagged.stop + 1]))
        finally:
            llama_cpp.llama_batch_free(batch)
        return logprobs


# Logits one scoring decode may return: 2**24 floats (64 MiB), that is 64 positions of Gemma 3's vocabulary.
_SCORE_LOGITS_FLOATS = 2**24


def _logprobs_of(rows: Any, targets: list[int]) -> list[float]:
    """log_softmax(row)[target] for each row (float32 logits), the normaliser summed in float64."""
    import numpy as np

    peak = rows.max(axis=1, keepdims=True)
    shifted = rows - peak  # a copy: `rows` is llama.cpp's own buffer
    np.exp(shifted, out=shifted)
    normaliser = peak[:, 0] + np.log(shifted.sum(axis=1, dtype=np.float64))
    return (rows[np.arange(len(targets)), targets] - normaliser).tolist()


_GGML_LOG_ERROR, _GGML_LOG_CONT = 4, 5
_log_callback = None  # kept referenced: llama.cpp holds a raw pointer to it


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them (a second one ends the process at once).

    While a model loads, llama.cpp calls the log callback below hundreds of times, and Python runs a signal's
    handler wherever it is: inside the callback, the KeyboardInterrupt it raises cannot cross ctypes, which
    prints and drops it, and the run goes on as if no signal had come.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return
    received: list[int] = []

    def hold(number: int, frame: object) -> None:
        if received:  # asked twice: nothing is computed yet (the model is loading), so leave at once
            os._exit(128 + number)
        received.append(number)

    held = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, hold) for number in held}
    try:
        yield
    finally:
        for number, handler in previous.items():  # None: a handler installed outside Python
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        if received:
            signal.raise_signal(received[0])


def _route_llama_logs_to_errors_only() -> None:
    """llama.cpp prints informational lines and warnings even with verbose=False; keep its errors only (and
    their continuation lines), so the progress bar and one-line error messages stay readable."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    in_error = False

    @llama_cpp.llama_log_callback
    def errors_only(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        nonlocal in_error
        # ggml.h: DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line).
        in_error = level == _GGML_LOG_ERROR or (level == _GGML_LOG_CONT and in_error)
        if in_error:
            sys.stderr.write(text.decode("utf-8", "replace"))

    _log_callback = errors_only
    llama_cpp.llama_log_set(errors_only, ctypes.c_void_p(0))


class _LoopWatch:
    """A llama-cpp-python stopping criterion that ends a completion stuck in a verbatim loop.

    llama-cpp-python calls it with the prompt and the tokens so far after each sampled token, and once more
    after generation with the same tokens as the last call; that repeat gets the last answer again, so that a
    completion that ended on EOS or the budget is never reported as stopped.
    """

    def __init__(self, llm: Any, prompt_tokens: int) -> None:
        self.llm = llm
        self.prompt_tokens = prompt_tokens
        self.seen = -1
        self.stopped = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        generated = len(input_ids) - self.prompt_tokens
        if generated == self.seen or generated <= 0 or generated % LOOP_CHECK_STRIDE:
            return self.stopped
        self.seen = generated
        ids = [int(token) for token in input_ids[self.prompt_tokens :]]
        text = self.llm.detokenize(ids, prev_tokens=[int(t) for t in input_ids[: self.prompt_tokens]])
        self.stopped = stuck_in_a_loop(text.decode("utf-8", errors="ignore"))
        return self.stopped
