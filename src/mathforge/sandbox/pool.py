"""Many programs at once: a thread per running program (the work happens in the sandboxed processes)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from mathforge.sandbox.process import Sandbox
from mathforge.sandbox.types import ExecResult

T = TypeVar("T")
R = TypeVar("R")


class SandboxPool:
    """Runs programs in parallel, each in its own sandboxed process; results come back in order."""

    def __init__(self, sandbox: Sandbox | None = None, workers: int | None = None) -> None:
        self.sandbox = sandbox or Sandbox()
        self.workers = workers or len(os.sched_getaffinity(0))
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mathforge-sandbox")

    def map(self, programs: Sequence[str], *, answer_expr: str | None = None) -> list[ExecResult]:
        return list(
            self._executor.map(lambda code: self.sandbox.run(code, answer_expr=answer_expr), programs)
        )

    def each(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`work` over `items` on the pool's threads, in order: for work that runs programs its own way (in a
        trajectory's session, say) but should share the pool's limit on programs at once."""
        return list(self._executor.map(work, items))

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
