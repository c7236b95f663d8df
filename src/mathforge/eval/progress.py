"""A progress bar for evaluation: items done, generated tokens per second, ETA (rich, on stderr)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class EvalProgress:
    def __init__(self, benchmark: str, total: int, done: int, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            # In a log file a bar is noise: show it on terminals only.
            disable=not (enabled and console.is_terminal),
        )
        # Items finished by an earlier run count as done but not in the rate or the ETA.
        self._task = self._progress.add_task(benchmark, total=total, completed=done, rate="")
        self._tokens = 0
        self._started = time.perf_counter()

    def advance(self, items: int, tokens: int) -> None:
        self._tokens += tokens
        elapsed = time.perf_counter() - self._started
        rate = f"{self._tokens / elapsed:.1f} tok/s" if elapsed > 0 else ""
        self._progress.update(self._task, advance=items, rate=rate)

    def __enter__(self) -> EvalProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()
