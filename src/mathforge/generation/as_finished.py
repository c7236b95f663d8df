"""Generation for callers that keep each prompt's result the moment it finishes (synth: a finished request is
never sent again, so a kill may lose only the requests in flight).

`generate_as_finished` yields groups of finished prompts; the caller keeps (writes) a group before it asks for
the next. An engine that serves requests concurrently (the openai engine: `workers` = its --concurrency) gets
each prompt as a call of its own on that many threads, and a thread takes its next prompt only once the caller
has kept its last result, so at most `workers` finished results are ever unkept. Other engines get batches, one
engine call each, as `generate` gives them. Sampling is seeded by each prompt's key, as in `generate`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from functools import partial
from queue import SimpleQueue

from mathforge.backends import Backend, Completion, SamplingParams

# The openai engine's daemon-thread pool: after Ctrl-C the process does not wait for the requests in flight.
from mathforge.backends.openai_api import in_threads
from mathforge.errors import MathforgeError, first_line


@dataclass(frozen=True)
class Finished:
    """A finished prompt: its key (the request number), its text and its completions."""

    index: int
    prompt: str
    completions: list[Completion]


def generate_as_finished(
    engine: Backend,
    indices: list[int],
    prompt_of: Callable[[int], str],
    params: SamplingParams,
    *,
    workers: int | None,
    batch_size: int,
) -> Generator[list[Finished], None, None]:
    """The prompts of `indices`, completed, in groups as they finish (sampling seeded by the index). The caller
    keeps (writes) a group before it asks for the next one.

    `workers`: an engine that serves requests concurrently gets each prompt as its own call, that many at
    once (`_one_by_one`); else batches of `batch_size` prompts, one engine call each.
    """
    if workers is not None:
        yield from _one_by_one(engine, indices, prompt_of, params, workers)
        return
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        prompts = [prompt_of(index) for index in chunk]
        with _engine_failures(engine):
            generations = engine.generate(prompts, params, seed_offsets=chunk)
        yield [Finished(i, p, g.completions) for i, p, g in zip(chunk, prompts, generations, strict=True)]


def _one_by_one(
    engine: Backend, indices: list[int], prompt_of: Callable[[int], str], params: SamplingParams, workers: int
) -> Generator[list[Finished], None, None]:
    """Each prompt as its own engine call on `workers` threads, handed back as soon as it finishes.

    A thread takes its next prompt only once the caller has kept the last one (asked for the next group), so at
    most `workers` finished prompts are ever unkept: a kill loses no more than the calls in flight. What finished
    meanwhile comes back as one group (one append, one fsync).
    """
    finished: SimpleQueue[tuple[Finished | BaseException, threading.Event]] = SimpleQueue()
    closing, handing_over = threading.Event(), threading.Lock()

    def one(index: int) -> None:
        kept = threading.Event()
        try:
            prompt = prompt_of(index)
            [generation] = engine.generate([prompt], params, seed_offsets=[index])
            result: Finished | BaseException = Finished(index, prompt, generation.completions)
        except BaseException as error:  # raised in the caller's thread, below
            result = error
        with handing_over:
            if closing.is_set():  # the caller has stopped reading
                return
            finished.put((result, kept))
        kept.wait()

    futures = in_threads([partial(one, index) for index in indices], workers)
    unkept: list[threading.Event] = []
    try:
        remaining = len(futures)
        while remaining:
            group = [finished.get()]
            while not finished.empty():
                group.append(finished.get_nowait())
            remaining -= len(group)
            unkept = [kept for _, kept in group]
            results = [result for result, _ in group]
            for result in results:
                if isinstance(result, BaseException):
                    with _engine_failures(engine):
                        raise result
            yield [result for result in results if isinstance(result, Finished)]
            for kept in unkept:  # the caller asked for more: it has kept these
                kept.set()
    finally:
        for future in futures:  # after a failure or Ctrl-C, the requests not yet sent are not sent
            future.cancel()
        with handing_over:  # no thread is left waiting for a keep that will not come
            closing.set()
            while not finished.empty():
                unkept.append(finished.get_nowait()[1])
        for kept in unkept:
            kept.set()


@contextlib.contextmanager
def _engine_failures(engine: Backend) -> Iterator[None]:
    """Engine failures (llama_decode, CUDA out of memory, vLLM) as one line that says the finished requests are
    kept (as the generation loop words them)."""
    try:
        yield
    except MathforgeError:
        raise
    except (RuntimeError, ValueError, IndexError, MemoryError) as error:
        raise MathforgeError(
            f"{engine.name} failed: {first_line(error)}; finished requests are saved, re-run the same command to "
            "resume"
        ) from None
