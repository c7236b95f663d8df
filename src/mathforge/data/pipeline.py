"""`mathforge curate`: rows through an ordered list of registered stages, with a funnel of what each dropped.

Read `curate` top to bottom: the stages are built from the pipeline (a YAML file's `stages:` list, `--stages`,
or Python dicts), the input is streamed in batches of `--batch-rows` (a file of any size holds one batch in
memory, plus the deduplication index), each batch goes through the stages in order, and the kept rows go to
OUT, the dropped ones to the rejects file with their stage, reason and input line. The funnel (rows in, kept,
dropped per reason, per stage) is checked to add up, saved beside OUT and returned.

`--workers N`: the stages whose verdict on a row depends on that row alone (`Stage.parallel`) run in N
processes, each batch split among them; the others (deduplication) run here, in input order, and may use the
same processes for their own parallel part (`StageContext.map`). Outputs are the same for any N.

The `dedup` and `decontam` commands are one-stage pipelines through the same code (`run_single`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from mathforge.config import ConfigFile, Options, resolve
from mathforge.data.stages import STAGES, Drop, Stage, StageContext, StageOptions, Verdict
from mathforge.errors import MathforgeError, did_you_mean
from mathforge.io import RowWriter, is_parquet, read_rows, write_json_atomic
from mathforge.progress import ItemProgress

FUNNEL_SUFFIX = ".funnel.json"


class CurateOptions(Options):
    """The options of `mathforge curate` (the input file is its argument); `--config` is the pipeline file."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json"}

    stages: list[Any] = Field(
        default_factory=list,
        description="The stages in order, from: " + ", ".join(STAGES) + ". Names (comma-separated) here, or "
        "in the --config file a YAML list of names and {name: {option: value}} mappings",
    )
    out: Path = Field(description="Output file of the kept rows (.jsonl, or .parquet)")
    rejects: Path | None = Field(
        None, description="Dropped rows with their stage and reason [default: OUT's stem + .rejects.jsonl]"
    )
    workers: int = Field(1, ge=1, le=256, description="Processes for the stages that judge rows one by one")
    data_dir: Path | None = Field(
        None, description="Benchmark data layout for decontamination [default: each benchmark's source]"
    )
    batch_rows: int = Field(1000, ge=1, description="Rows read and judged at a time")
    ray: bool = Field(
        False,
        description="Run the leading row-by-row stages on Ray Data, --workers actors (the cluster at "
        "RAY_ADDRESS, else a local one; pip install 'mathforge[ray]')",
    )
    json_output: bool = Field(False, description="Print the funnel as one JSON line instead of the table")
    quiet: bool = Field(False, description="No progress bar")
    # Where stage entries came from: (where, line) of each entry and its keys, for FILE:line errors.
    internal: ClassVar[tuple[str, ...]] = ("located",)
    located: list[Any] = Field(default_factory=list)

    @field_validator("stages")
    @classmethod
    def _some_stages(cls, stages: list[Any]) -> list[Any]:
        if not stages:
            raise ValueError("no stages: list them under `stages:` in the --config file, or with --stages")
        return stages

    @classmethod
    def load(cls, path: str | Path | None, flags: Any = None) -> CurateOptions:
        opts = super().load(path, flags)
        if path is not None and "stages" not in (flags or {}):
            opts.located = _stage_locations(Path(path))
        return opts

    def rejects_path(self) -> Path:
        return self.rejects if self.rejects is not None else sibling(self.out, ".rejects.jsonl")

    def funnel_path(self) -> Path:
        return sibling(self.out, FUNNEL_SUFFIX)


def sibling(path: Path, suffix: str) -> Path:
    """`out.jsonl` -> `out<suffix>` beside it (`.rejects.jsonl`, `.funnel.json`)."""
    return path.with_name(path.name.removesuffix(path.suffix) + suffix)


# --- the pipeline: stage entries to stage objects --------------------------------------------------------


@dataclass(frozen=True)
class StageSpec:
    """One stage of a pipeline: its registry name and its options (`where`: the file lines, for errors)."""

    name: str
    values: dict[str, Any]
    where: ConfigFile | None = None
    label: str = ""  # "stage 3" or "FILE:line", where the entry itself is

    def build(self, context: StageContext) -> Stage:
        cls = STAGES[self.name]
        try:
            if self.where is not None:  # keys of a file: errors name their lines
                file = ConfigFile(self.where.path, self.values, self.where.lines)
                options = resolve(cls.options, file, {})
            else:
                options = resolve(cls.options, None, self.values)
        except MathforgeError as error:
            if self.where is not None and str(error).startswith(str(self.where.path)):
                raise
            raise MathforgeError(f"{self.label}: {self.name}: {error}") from None
        return cls(options, context)


def stage_specs(opts: CurateOptions) -> list[StageSpec]:
    """The pipeline's stages, each checked: a known name, and options its model takes."""
    located = opts.located if len(opts.located) == len(opts.stages) else [None] * len(opts.stages)
    specs = [
        _spec(entry, where, index)
        for index, (entry, where) in enumerate(zip(opts.stages, located, strict=True))
    ]
    for spec in specs:  # options checked now, before any row is read
        spec.build(StageContext())
    return specs


def _spec(entry: Any, where: tuple[str, int, ConfigFile | None] | None, index: int) -> StageSpec:
    label = f"{where[0]}:{where[1]}" if where else f"stage {index + 1}"
    values: Any = {}
    if isinstance(entry, str):
        name = entry
    elif isinstance(entry, dict) and len(entry) == 1:
        name, values = next(iter(entry.items()))
        values = {} if values is None else values
        if not isinstance(values, dict):
            raise MathforgeError(f"{label}: stage '{name}': expected a mapping of options, got {values!r}")
    else:
        raise MathforgeError(f"{label}: expected a stage name or {{name: {{options}}}}, got {entry!r}")
    if name not in STAGES:
        raise MathforgeError(
            f"{label}: unknown stage '{name}'{did_you_mean(name, STAGES)} (stages: {', '.join(STAGES)})"
        )
    return StageSpec(str(name), dict(values), where[2] if where else None, label)


def _stage_locations(path: Path) -> list[Any]:
    """(file, line, the entry's options as a ConfigFile with each key's line) for each `stages:` entry."""
    import yaml

    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return []
    node = next((value for key, value in root.value if key.value == "stages"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    located = []
    for entry in node.value:
        options = None
        if isinstance(entry, yaml.MappingNode) and len(entry.value) == 1:
            inner = entry.value[0][1]
            if isinstance(inner, yaml.MappingNode):
                lines = {str(key.value): key.start_mark.line + 1 for key, _ in inner.value}
                options = ConfigFile(path, {}, lines)
        located.append((str(path), entry.start_mark.line + 1, options))
    return located


# --- running it ----------------------------------------------------------------------------------------


@dataclass
class StageCount:
    name: str
    rows_in: int = 0
    kept: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(self.reasons.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.rows_in,
            "kept": self.kept,
            "dropped": self.dropped,
            "reasons": dict(sorted(self.reasons.items(), key=lambda item: -item[1])),
        }


@dataclass
class Funnel:
    """What each stage saw, kept and dropped; `as_json` is the funnel file and `--json` line."""

    input: str
    out: str
    rejects: str
    stages: list[StageCount]
    rows: int = 0

    @property
    def kept(self) -> int:
        return self.stages[-1].kept if self.stages else self.rows

    @property
    def dropped(self) -> int:
        return sum(stage.dropped for stage in self.stages)

    def check(self) -> None:
        """The numbers add up: each stage keeps or drops every row it gets, and passes its kept rows on."""
        expected = self.rows
        for stage in self.stages:
            if stage.rows_in != expected or stage.kept + stage.dropped != stage.rows_in:
                raise AssertionError(f"funnel does not add up at stage {stage.name}: {stage.as_json()}")
            expected = stage.kept
        assert self.kept + self.dropped == self.rows

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "out": self.out,
            "rejects": self.rejects,
            "rows": self.rows,
            "stages": [stage.as_json() for stage in self.stages],
            "kept": self.kept,
            "dropped": self.dropped,
        }


@dataclass
class Dropped:
    """A dropped row as the rejects file and the one-stage commands report it."""

    line: int
    stage: str
    drop: Drop


def curate(path: str | Path, opts: CurateOptions, on_drop: Any = None) -> Funnel:
    """Run the pipeline of `opts` over the rows of `path`; write OUT, the rejects file and the funnel file.

    `on_drop(Dropped)`: called for each dropped row (the one-stage commands collect what they report).
    """
    path = Path(path)
    specs = stage_specs(opts)
    _check_paths(path, opts)
    context = StageContext(
        source=path,
        base_dir=_base_dir(opts),
        data_dir=opts.data_dir,
        workers=opts.workers,
        show_progress=not opts.quiet,
    )
    funnel = Funnel(str(path), str(opts.out), str(opts.rejects_path()), [StageCount(s.name) for s in specs])
    with ExitStack() as stack:
        pool = stack.enter_context(_pool(specs, context)) if opts.workers > 1 else None
        context.pool = pool
        stages = stack.enter_context(curate_stages(specs, context, in_workers=pool is not None))
        kept_out = stack.enter_context(RowWriter(opts.out))
        rejects_out = stack.enter_context(RowWriter(opts.rejects_path()))
        bar = stack.enter_context(
            ItemProgress("curate", total=_count_rows(path), enabled=not opts.quiet, unit="rows")
        )
        for lines, rows in _batches(read_rows(path), opts.batch_rows):
            funnel.rows += len(rows)
            kept = run_batch(stages, funnel.stages, lines, rows, rejects_out, pool, opts.workers, on_drop)
            kept_out.write_all(kept)
            bar.advance(len(rows), len(rows))
    funnel.check()
    write_json_atomic(opts.funnel_path(), funnel.as_json())
    return funnel


@contextmanager
def curate_stages(
    specs: Sequence[StageSpec], context: StageContext, in_workers: bool = False
) -> Iterator[list[Stage]]:
    """The stages built and set up here (the parallel ones only when no worker processes run them), closed
    on the way out."""
    stages: list[Stage] = []
    try:
        for spec in specs:
            stage = spec.build(context)
            stages.append(stage)
            if not (in_workers and stage.parallel):
                stage.setup()
        yield stages
    finally:
        for stage in stages:
            stage.close()


def run_batch(
    stages: Sequence[Stage],
    counts: Sequence[StageCount],
    lines: list[int],
    rows: list[dict[str, Any]],
    rejects: RowWriter,
    pool: Executor | None = None,
    workers: int = 1,
    on_drop: Any = None,
) -> list[dict[str, Any]]:
    """One batch through the stages, counted; the dropped rows are written to `rejects`, the kept returned."""
    for index, (stage, count) in enumerate(zip(stages, counts, strict=True)):
        count.rows_in += len(rows)
        verdicts = _judge(stage, index, rows, lines, pool, workers)
        lines, rows = _split(stage.name, lines, rows, verdicts, count, rejects, on_drop)
        count.kept += len(rows)
    return rows


def _judge(
    stage: Stage,
    index: int,
    rows: list[dict[str, Any]],
    lines: list[int],
    pool: Executor | None,
    workers: int,
) -> list[Verdict]:
    if not rows:
        return []
    if pool is None or not stage.parallel:  # (in workers, the parallel stages are set up there only)
        verdicts = stage.check(rows, lines)
    else:
        size = -(-len(rows) // workers)
        parts = [(index, rows[i : i + size], lines[i : i + size]) for i in range(0, len(rows), size)]
        verdicts = [verdict for part in pool.map(_check_in_worker, parts) for verdict in part]
    if len(verdicts) != len(rows):
        raise AssertionError(f"stage {stage.name} gave {len(verdicts)} verdicts for {len(rows)} rows")
    return verdicts


def _split(
    name: str,
    lines: list[int],
    rows: list[dict[str, Any]],
    verdicts: list[Verdict],
    count: StageCount,
    rejects: RowWriter,
    on_drop: Any,
) -> tuple[list[int], list[dict[str, Any]]]:
    kept_lines, kept_rows = [], []
    for line, row, verdict in zip(lines, rows, verdicts, strict=True):
        if verdict is None:
            kept_lines.append(line)
            kept_rows.append(row)
            continue
        count.reasons[verdict.reason] = count.reasons.get(verdict.reason, 0) + 1
        rejects.write({**row, "rejected": rejection(name, line, verdict)})
        if on_drop is not None:
            on_drop(Dropped(line, name, verdict))
    return kept_lines, kept_rows


def rejection(stage: str, line: int, drop: Drop) -> dict[str, Any]:
    """What a rejects row says of its drop (under the key `rejected`, beside the row's own fields)."""
    return {"stage": stage, "reason": drop.reason, "detail": drop.detail, "line": line, **drop.info}


def _batches(
    rows: Iterator[tuple[int, dict[str, Any]]], size: int
) -> Iterator[tuple[list[int], list[dict[str, Any]]]]:
    lines: list[int] = []
    batch: list[dict[str, Any]] = []
    for line, row in rows:
        lines.append(line)
        batch.append(row)
        if len(batch) == size:
            yield lines, batch
            lines, batch = [], []
    if batch:
        yield lines, batch


def _count_rows(path: Path) -> int:
    """Rows in the file, for the bar's total, without parsing them (a newline count; Parquet's metadata)."""
    if is_parquet(path):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(str(path)).metadata.num_rows)
    count = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _check_paths(path: Path, opts: CurateOptions) -> None:
    if not path.is_file():
        raise MathforgeError(f"cannot read {path}: no such file")
    outputs = {"--out": opts.out, "--rejects": opts.rejects_path(), "the funnel file": opts.funnel_path()}
    for option, output in outputs.items():
        if output.resolve() == path.resolve():
            raise MathforgeError(f"{option} {output} is the input file; pass another --out")
        if not output.parent.is_dir():
            raise MathforgeError(f"{option}: no such directory: {output.parent}")
    if opts.rejects_path().resolve() == opts.out.resolve():
        raise MathforgeError(f"--rejects {opts.rejects_path()} is --out; pass another")


def _base_dir(opts: CurateOptions) -> Path:
    """Relative paths in stage options (a seed file) are read from the pipeline file's folder."""
    return Path(opts.located[0][0]).parent if opts.located else Path(".")


# --- worker processes: each builds the parallel stages once ------------------------------------------------

_WORKER_STAGES: list[Stage | None] = []


@contextmanager
def _pool(specs: Sequence[StageSpec], context: StageContext) -> Iterator[Executor]:
    """`workers` processes (spawned: no inherited threads or engines), each holding the parallel stages."""
    worker_context = StageContext(context.source, context.base_dir, context.data_dir, workers=1)
    pool = ProcessPoolExecutor(
        max_workers=context.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(list(specs), worker_context),
    )
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


_WORKER_ERROR: list[MathforgeError] = []


def _start_worker(specs: list[StageSpec], context: StageContext) -> None:
    _WORKER_STAGES.clear()
    try:
        for spec in specs:
            stage = spec.build(context) if STAGES[spec.name].parallel else None
            if stage is not None:
                stage.setup()
            _WORKER_STAGES.append(stage)
    except MathforgeError as error:  # said by the first batch (an initializer that raises breaks the pool)
        _WORKER_ERROR.append(error)


def _check_in_worker(part: tuple[int, list[dict[str, Any]], list[int]]) -> list[Verdict]:
    if _WORKER_ERROR:
        raise _WORKER_ERROR[0]
    index, rows, lines = part
    stage = _WORKER_STAGES[index]
    assert stage is not None, "a stage that is not parallel was sent to a worker"
    return stage.check(rows, lines)


def run_single(path: str | Path, stage: dict[str, Any], **options: Any) -> tuple[Funnel, list[Dropped]]:
    """A one-stage pipeline (the `dedup` and `decontam` commands): the funnel and every dropped row."""
    dropped: list[Dropped] = []
    opts = CurateOptions.build(stages=[stage], **options)
    funnel = curate(path, opts, on_drop=dropped.append)
    return funnel, dropped


__all__ = [
    "CurateOptions",
    "Dropped",
    "Funnel",
    "StageCount",
    "StageOptions",
    "StageSpec",
    "curate",
    "rejection",
    "run_single",
    "stage_specs",
]
