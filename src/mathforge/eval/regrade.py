"""Regrade an output file (ours or another harness's) with mathforge's answer extraction and grading.

`regrade_file` reads the raw completions of each row (see `formats` for the readers; the file's stored
predictions and verdicts are never used for grading, only kept for comparison), extracts and grades every
completion, and computes the runner's metrics plus agreement with the file's own verdicts.

Gold answers come from the file, or with `data_dir` from the registered benchmark: each row is matched to a
benchmark item by its question text, whitespace-normalised; failing that, by a looser key (Unicode NFKC,
case-folded, all whitespace removed); failing that, by the looser key of the text before a suffix the
harnesses append to questions ("(Yes or No)", "(True or False)", "Answer Choices: ..."). Ids are never used to
match, since harnesses number items differently (math-evaluation-harness numbers MATH-500 0..499, the
benchmark names it "test/algebra/1.json") and a wrong match would silently grade against another problem's
gold; they only break ties between items with the same text. A row whose question is not in the benchmark is
an error naming FILE:line.

Every completion is extracted with the benchmark's extractor (the one `mathforge eval` uses) and
`truncated=False`, except that our own rows' `finish_reasons` are honoured as the runner did (a completion cut
at the token budget needs a stated answer).

`workers` > 1 grades chunks of rows in that many processes; the rows come back in file order and equal those
of a single process.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import multiprocessing
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from mathforge import grading
from mathforge.benchmarks import BenchmarkSpec, Item, get_spec, load_items
from mathforge.errors import MathforgeError
from mathforge.eval.formats import READERS, SourceRow, detect_tool, load_source
from mathforge.eval.metrics import aggregate, default_ks
from mathforge.grading.normalize import normalize
from mathforge.grading.options import GradingOptions
from mathforge.grading.trajectory import PAL_ANSWER, pal_answer, pal_program
from mathforge.io import write_jsonl_atomic
from mathforge.records import ExecutionRecord, SampleRow
from mathforge.tool_kinds import TOOL_KINDS

__all__ = ["READERS", "RegradeOptions", "RegradeResult", "regrade", "regrade_file", "write_rows"]


@dataclass
class RegradeResult:
    path: Path
    benchmark: str
    format: str
    rows: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Task:
    """What grading one row needs (picklable, for the worker processes)."""

    completions: tuple[str, ...]
    truncated: tuple[bool, ...]
    gold: str
    question: str
    choices: tuple[str, ...] | None
    tool: str | None = None
    program_answers: tuple[str | None, ...] | None = None


TOOL_CHOICES = ("auto", "none", *TOOL_KINDS)


class RegradeOptions(GradingOptions):
    """The options of `mathforge regrade` (the file itself is its argument)."""

    cli_names: ClassVar[dict[str, str]] = {"fmt": "format", "json_output": "json"}
    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {
        "fmt": lambda: ("auto", *READERS),
        **GradingOptions.choices,
        "tool": lambda: TOOL_CHOICES,
    }

    bench: str = Field(description="Benchmark the file is for (see `mathforge benchmarks`)")
    fmt: str = Field("auto", description=f"auto, {', '.join(READERS)}")
    data_dir: Path | None = Field(
        None,
        description="Take gold answers (and choices) from the benchmark's files here, matching rows by question "
        "text; without it the golds come from the file",
    )
    out: Path | None = Field(
        None, description="Write the regraded rows here (a mathforge samples file) [default: not written]"
    )
    workers: int = Field(1, ge=1, description="Grade in this many processes")
    json_output: bool = Field(False, description="End stdout with the metrics as one JSON line")
    tool: str = Field(
        "auto",
        description="Tool-integrated outputs: "
        + "; ".join(f"{name} ({kind.description})" for name, kind in TOOL_KINDS.items())
        + "; none; or auto (from the file: recorded by mathforge, or the harness's file name such as "
        "test_tora_...)",
    )
    exec_timeout: float = Field(10.0, gt=0.0, description="pal: wall seconds per program run")


def regrade_file(
    path: str | Path,
    bench: str,
    fmt: str = "auto",
    data_dir: str | Path | None = None,
    workers: int = 1,
    rel_tol: float = 0.0,
    timeout: float | None = None,
    extractor: str | None = None,
    tool: str = "auto",
    exec_timeout: float = 10.0,
) -> RegradeResult:
    """Extract and grade every completion of the output file `path` as benchmark `bench`.

    `fmt`: "auto" or a name in `READERS`. `data_dir`: take golds (and choices) from the benchmark's files there,
    matching rows by question text. `rel_tol`, `timeout`: passed to `grading.grade`. `extractor`: one of
    `grading.EXTRACTORS` [default: the one `mathforge eval` uses for the benchmark]. `tool`: "pal" or "tora" for
    tool-integrated outputs, "none" for plain text, "auto" to tell from the file. ToRA answers come from the
    prose of the trajectory (code and outputs left out); PAL answers from running each program in the sandbox
    (`exec_timeout` seconds each), unless mathforge recorded the run.
    """
    options = RegradeOptions.build(  # the same checks and one-line errors as the command's flags
        bench=bench,
        fmt=fmt,
        data_dir=data_dir,
        workers=workers,
        rel_tol=rel_tol,
        grade_timeout=timeout,
        extractor=extractor,
        tool=tool,
        exec_timeout=exec_timeout,
    )
    return regrade(path, options)


def regrade(path: str | Path, options: RegradeOptions) -> RegradeResult:
    """`regrade_file` with its options validated already (what the command calls)."""
    started = time.perf_counter()
    path = Path(path)
    spec = get_spec(options.bench)
    fmt, data_dir, workers, tool = options.fmt, options.data_dir, options.workers, options.tool
    if data_dir is not None and not Path(data_dir).is_dir():
        raise MathforgeError(f"--data-dir: no such directory: {data_dir}")
    fmt, sources = load_source(path, fmt, spec, need_gold=data_dir is None)
    kind = detect_tool(path, sources) if tool == "auto" else (None if tool == "none" else tool)
    items = _match(sources, spec, path, data_dir) if data_dir is not None else [None] * len(sources)
    grading_spec = options.grading_spec(spec)

    # mathforge rows say which are tool-integrated; a harness file is one kind throughout.
    per_row = tool == "auto" and fmt == "mathforge"
    tasks = [
        _task(path, source, item, source.tool if per_row else kind)
        for source, item in zip(sources, items, strict=True)
    ]
    executions: dict[int, list[dict[str, Any]]] = {}
    if kind is not None and TOOL_KINDS[kind].answer_runs_program:
        tasks, executions = _run_programs(tasks, options.exec_timeout, workers)
    graded = _grade_all(tasks, grading_spec, workers)
    rows = [
        _output_row(source, item, task, result, executions.get(index))
        for index, (source, item, task, result) in enumerate(zip(sources, items, tasks, graded, strict=True))
    ]
    metrics = _metrics(rows, spec, fmt, path, data_dir, options.grade_timeout, grading_spec.extractor)
    if kind is not None:
        metrics["tool"] = kind
        if executions:
            metrics["executed"] = sum(len(runs) for runs in executions.values())
    metrics.update(workers=workers, seconds=round(time.perf_counter() - started, 3))
    return RegradeResult(path=path, benchmark=spec.name, format=fmt, rows=rows, metrics=metrics)


def prepare_out(path: str | Path) -> Path:
    """Check `--out` and create its missing folders, before any work is done (as `eval --out` does)."""
    path = Path(path)
    if path.is_dir():
        raise MathforgeError(f"--out: {path} is a directory; give a file name such as {path}/samples.jsonl")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise MathforgeError(f"--out: cannot create the folder {path.parent}: a file is in the way") from None
    except OSError as error:
        raise MathforgeError(f"--out: cannot create the folder {path.parent}: {error.strerror}") from None
    return path


def write_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write a samples file atomically: a temporary file beside `path`, fsynced, then renamed over it."""
    write_jsonl_atomic(prepare_out(path), rows)


# --- matching rows to benchmark items


# What math-evaluation-harness and Qwen2.5-Math append to a question (in `_loose_key` form).
_HARNESS_SUFFIXES = ("(yesorno)", "(trueorfalse)", "answerchoices", "pleaseselectfromthefollowingoptions")


def _key(text: str) -> str:
    return " ".join(text.split())


def _loose_key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _match(sources: list[SourceRow], spec: BenchmarkSpec, path: Path, data_dir: str | Path) -> list[Item]:
    items = load_items(spec, "test", data_dir)
    exact: dict[str, list[Item]] = defaultdict(list)
    loose: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        exact[_key(item.question)].append(item)
        loose[_loose_key(item.question)].append(item)
    matched = []
    for source in sources:
        found = exact.get(_key(source.question)) or _find_loose(loose, _loose_key(source.question))
        if not found:
            raise MathforgeError(
                f"{path}:{source.line}: question of row '{source.id}' not found in benchmark '{spec.name}' "
                f"under {data_dir} (another benchmark's file, or its question text differs)"
            )
        matched.append(_pick(found, source, path, spec))
    return matched


def _find_loose(loose: dict[str, list[Item]], key: str) -> list[Item] | None:
    if key in loose:
        return loose[key]
    for suffix in _HARNESS_SUFFIXES:
        position = key.find(suffix)
        if position > 0 and key[:position] in loose:
            return loose[key[:position]]
    return None


def _pick(found: list[Item], source: SourceRow, path: Path, spec: BenchmarkSpec) -> Item:
    """One item among those with the row's question text: the only one, the one with the row's id, or any
    when they all have the same gold."""
    if len(found) == 1:
        return found[0]
    same_id = [item for item in found if item.id == source.id]
    if len(same_id) == 1:
        return same_id[0]
    if len({item.gold for item in found}) == 1:
        return found[0]
    raise MathforgeError(
        f"{path}:{source.line}: question of row '{source.id}' matches {len(found)} items of benchmark "
        f"'{spec.name}' with different golds ({', '.join(item.id for item in found[:5])})"
    )


# --- grading


def _run_programs(
    tasks: list[_Task], exec_timeout: float, workers: int
) -> tuple[list[_Task], dict[int, list[dict[str, Any]]]]:
    """Run the PAL programs that have no recorded answer; the file's own predictions are never used."""
    from mathforge.sandbox import Limits, Sandbox, SandboxPool

    todo = [(index, task) for index, task in enumerate(tasks) if task.program_answers is None]
    if not todo:
        return tasks, {}
    programs = [pal_program(text) for _, task in todo for text in task.completions]
    with SandboxPool(Sandbox(Limits(timeout=exec_timeout)), workers=max(workers, 2)) as pool:
        results = iter(pool.map(programs, answer_expr=PAL_ANSWER))
    program_texts = iter(programs)
    executions: dict[int, list[dict[str, Any]]] = {}
    tasks = list(tasks)
    for index, task in todo:
        runs = [(next(program_texts), next(results)) for _ in task.completions]
        executions[index] = [ExecutionRecord(0, code, result).to_json() for code, result in runs]
        answers = tuple(pal_answer(r.status, r.answer, r.stdout) for _, r in runs)
        tasks[index] = dataclasses.replace(task, program_answers=answers)
    return tasks, executions


def _task(path: Path, source: SourceRow, item: Item | None, tool: str | None = None) -> _Task:
    gold = item.gold if item is not None else source.gold
    if gold is None:  # a null gold field in the file, and no --data-dir to take one from
        raise MathforgeError(
            f"{path}:{source.line}: row '{source.id}' has no gold answer (null); pass --data-dir"
        )
    choices = item.choices if item is not None else source.choices
    return _Task(
        completions=tuple(source.completions),
        truncated=tuple(source.truncated or [False] * len(source.completions)),
        gold=gold,
        question=item.question if item is not None else source.question,
        choices=tuple(choices) if choices else None,
        tool=tool,
        program_answers=tuple(source.program_answers) if source.program_answers is not None else None,
    )


def _grade_all(tasks: list[_Task], spec: grading.GradingSpec, workers: int) -> list[list[grading.Score]]:
    grade = functools.partial(_grade_chunk, spec=spec)
    workers = min(workers, len(tasks))
    if workers <= 1:
        return grade(tasks)
    # A few chunks per worker: long MATH rows and short GSM8K rows even out; map keeps the file's order.
    size = max(1, -(-len(tasks) // (workers * 4)))
    chunks = [tasks[start : start + size] for start in range(0, len(tasks), size)]
    # "spawn": a clean interpreter per worker, whatever threads and grading children this process holds.
    context = multiprocessing.get_context("spawn")
    try:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            return [result for chunk in pool.map(grade, chunks) for result in chunk]
    except concurrent.futures.process.BrokenProcessPool:
        raise MathforgeError("a grading worker process died (out of memory?); try fewer --workers") from None


def _grade_chunk(tasks: list[_Task], spec: grading.GradingSpec) -> list[list[grading.Score]]:
    """One `Score` per completion, per task."""
    return [
        [
            grading.score(
                text,
                task.gold,
                spec,
                tool=task.tool,
                question=task.question,
                choices=list(task.choices) if task.choices else None,
                truncated=truncated,
                program_answer=task.program_answers[number] if task.program_answers else None,
            )
            for number, (text, truncated) in enumerate(zip(task.completions, task.truncated, strict=True))
        ]
        for task in tasks
    ]


# --- rows and metrics


def _output_row(
    source: SourceRow,
    item: Item | None,
    task: _Task,
    scores: list[grading.Score],
    executions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    subsets = item.subsets if item is not None else source.subsets
    extra: dict[str, Any] = {
        "source_pred": source.source_pred,
        "source_score": source.source_score,
        "source_line": source.line,
    }
    if item is not None:
        extra["bench_id"] = item.id
        if source.gold is not None:
            extra["source_gold"] = source.gold
    row = SampleRow(
        id=source.id,
        question=task.question,
        gold=task.gold,
        completions=list(task.completions),
        tool=task.tool,
        executions=[[run] for run in executions] if executions is not None else None,
        choices=list(task.choices) if task.choices else None,
        subsets=subsets or None,
        extra=extra,
    )
    row.grade(scores)
    return row.to_json()


def _metrics(
    rows: list[dict[str, Any]],
    spec: BenchmarkSpec,
    fmt: str,
    path: Path,
    data_dir: str | Path | None,
    timeout: float | None,
    extractor: str,
) -> dict[str, Any]:
    n_samples = min(len(row["correct"]) for row in rows)
    answer_type = spec.answer_type
    scores = aggregate(
        rows,
        default_ks(n_samples),
        lambda a, b: grading.answers_equivalent(a, b, answer_type, timeout=timeout),
    )
    rules = [rule for row in rows for rule in row["grade_rules"]]
    metrics: dict[str, Any] = {
        "benchmark": spec.name,
        "format": fmt,
        "file": str(path),
        **scores,
        "extractor": extractor,
        "gold_from": str(data_dir) if data_dir is not None else "file",
        "timeouts": rules.count("timeout"),
        "grading_errors": rules.count("error"),
    }
    if data_dir is not None:
        metrics["gold_differs_from_file"] = sum(
            1 for row in rows if "source_gold" in row and _golds_differ(row["source_gold"], row["gold"])
        )
    # Agreement with the file's own verdicts, completion by completion, where it has one per completion.
    compared = agree = 0
    source_shares = []
    for row in rows:
        theirs = row["source_score"]
        if not isinstance(theirs, list) or len(theirs) != len(row["correct"]):
            continue
        flags = [bool(score) for score in theirs]
        compared += len(flags)
        agree += sum(mine == flag for mine, flag in zip(row["correct"], flags, strict=True))
        source_shares.append(sum(flags) / len(flags))
    if compared:
        metrics["compared_with_source"] = compared
        metrics["agree_with_source"] = agree
        metrics["agree_with_source_pct"] = round(100.0 * agree / compared, 4)
        if len(source_shares) == len(rows):
            metrics["source_acc"] = round(100.0 * sum(source_shares) / len(source_shares), 4)
    return metrics


def _golds_differ(file_gold: str, bench_gold: str) -> bool:
    """Whether --data-dir changed a row's gold: the grader's string normalisation (thousands separators,
    whitespace, math delimiters) tells a real change from another spelling of the same answer ("1,000" vs
    "1000"), which grades the same."""
    return normalize(file_gold) != normalize(bench_gold)
