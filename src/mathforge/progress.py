"""The progress bar of every long mathforge command: items done, tokens per second, ETA (rich, on stderr).

Generation (eval, and synth next), token scoring and curation share it, so that every command shows the same
bar, and only on a terminal: in a log file a bar is noise.
"""

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


class ItemProgress:
    """A bar over `total` items of which `done` were finished by an earlier run (resumed work).

    Items finished earlier count as done but not in the rate or the ETA.
    """

    def __init__(
        self, label: str, total: int, done: int = 0, enabled: bool = True, unit: str = "tok"
    ) -> None:
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
            disable=not (enabled and console.is_terminal),
        )
        self._task = self._progress.add_task(label, total=total, completed=done, rate="")
        self._unit = unit
        self._tokens = 0
        self._started = time.perf_counter()

    def advance(self, items: int, tokens: int = 0) -> None:
        self._tokens += tokens
        elapsed = time.perf_counter() - self._started
        rate = f"{self._tokens / elapsed:.1f} {self._unit}/s" if elapsed > 0 and self._tokens else ""
        self._progress.update(self._task, advance=items, rate=rate)

    def __enter__(self) -> ItemProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()
