"""What a curation stage is: a class that looks at a batch of rows and says which to drop, and why.

Modelled on datatrove's pipeline steps: each stage is a class with its own options model (from the YAML
pipeline file or Python), is built once per process, and reports what it did through the funnel (rows in,
kept, dropped per reason). The same classes run in-process (`curate`, with `--workers` processes for the
stages that allow it) and on Ray Data (`data.ray_pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from mathforge.config import Options


@dataclass(frozen=True)
class Drop:
    """Why a stage drops a row.

    `reason` is a short key that the funnel counts (`no_answer`, `too_long`, `near_duplicate`); `detail` says
    what exactly, for a person reading the rejects file; `info` holds structured facts (JSON values) for
    programs: the line a duplicate repeats, the benchmark item a row overlaps.
    """

    reason: str
    detail: str = ""
    info: dict[str, Any] = field(default_factory=dict)


Verdict = Drop | None  # None: keep the row


class StageOptions(Options):
    """Base of every stage's options (a stage without options uses it as it is)."""


@dataclass
class StageContext:
    """What a stage may use besides its options.

    `source`: the file being curated (for `FILE:line` errors).
    `base_dir`: the folder relative paths in the stage's options are read from (the pipeline file's).
    `data_dir`: the benchmarks' --data-dir (decontamination), None for the registry's default sources.
    `workers`: processes this run may use; `pool`: an executor of that many processes, for stages that do not
    run in worker processes themselves but have a parallel part (MinHash signatures): `map` uses it.
    """

    source: Path = Path("<rows>")
    base_dir: Path = Path(".")
    data_dir: Path | None = None
    workers: int = 1
    show_progress: bool = False
    pool: Executor | None = None

    def path(self, value: str | Path) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def map(self, function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """`[function(item) for item in items]`, in the pool's processes when there is one (function and items
        must then pickle: a module-level function and plain data)."""
        if self.pool is None or len(items) < 2:
            return [function(item) for item in items]
        return list(self.pool.map(function, items))


class Stage:
    """One curation step. Subclasses set `name` (the key in a pipeline file), `options` (their options model,
    a `StageOptions`) and `check`.

    `parallel`: whether a row's verdict depends on that row alone. Such stages run in `--workers` processes
    (and as Ray Data tasks), each with its own instance; the others (deduplication: a row is a duplicate of an
    earlier one) see every row in input order, in one process.
    """

    name: ClassVar[str]
    options: ClassVar[type[StageOptions]] = StageOptions
    parallel: ClassVar[bool] = True

    def __init__(self, options: StageOptions, context: StageContext) -> None:
        self.opts = options
        self.context = context

    def setup(self) -> None:
        """Build what the stage needs before its first batch (an index, a model): once per process."""

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        """One verdict per row (None: keep); `lines` are the rows' 1-based input lines, for reports."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what `setup` took (a model, a pool)."""


STAGES: dict[str, type[Stage]] = {}
S = TypeVar("S", bound=type[Stage])


def register(cls: S) -> S:
    """Declare a stage: `@register` on its class makes it a pipeline-file key and a `curate` choice."""
    if cls.name in STAGES:
        raise ValueError(f"stage {cls.name!r} is declared twice")
    STAGES[cls.name] = cls
    return cls


def text_of(row: dict[str, Any], key: str) -> str:
    """A row's field as text: missing or null is empty, numbers are written out (an answer of 72)."""
    value = row.get(key)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def count_reasons(verdicts: Iterable[Verdict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for verdict in verdicts:
        if verdict is not None:
            counts[verdict.reason] = counts.get(verdict.reason, 0) + 1
    return counts
