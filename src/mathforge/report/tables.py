"""`mathforge report`: gather finished runs (metrics.json files) into one model x benchmark table.

The layout follows model-card tables (e.g. JiuZhang-8B): one row per model, one column per benchmark, and a
final Average column. Everything the table hides (duplicate runs, prompt choices, partial averages) is said in
notes under it, so the reader can tell what each number stands for.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeGuard

from pydantic import Field

from mathforge.config import Options
from mathforge.errors import MathforgeError
from mathforge.records import items_digest

METRICS_FILE = "metrics.json"


class ReportOptions(Options):
    """The options of `mathforge report` (the run directories are its arguments)."""

    cli_names: ClassVar[dict[str, str]] = {"fmt": "format"}

    fmt: str = Field("markdown", description="markdown or csv")
    best_of_prompts: bool = Field(
        False, description="Take the better of zero-shot and few-shot per benchmark"
    )
    metric: str = Field("acc", description="Metric to tabulate: acc, maj@K, pass@K")


FORMATS = ("markdown", "csv")
MISSING_MD = "–"
_NO_PROMPT = "default"  # label for runs whose metrics.json has no "prompt" (older runs)
_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Column:
    label: str
    benchmark: str
    prompt: str | None  # None: one column for the benchmark (single prompt format, or best-of-prompts)


@dataclass(frozen=True)
class Cell:
    value: float
    prompt: str
    path: Path


@dataclass
class Table:
    metric: str
    rows: list[str]  # model names
    columns: list[Column]  # the Average column is not listed: it is derived, see average()
    cells: dict[tuple[str, str], Cell]  # (model, column label) -> cell; absent = not run
    best_of_prompts: bool = False
    prompt_choices: list[str] = field(default_factory=list)  # "model / bench: few-shot (12.0) over ..."
    notes: list[str] = field(default_factory=list)

    def average(self, model: str) -> tuple[float | None, bool]:
        """Mean over the cells this model has, and whether it has all columns (else the mean is partial)."""
        values = [
            self.cells[model, col.label].value for col in self.columns if (model, col.label) in self.cells
        ]
        if not values:
            return None, False
        return sum(values) / len(values), len(values) == len(self.columns)


# --- finding runs ---------------------------------------------------------------------------------------


def find_runs(paths: list[Path]) -> list[dict[str, Any]]:
    """Every metrics.json at any depth under each path, parsed, with "path" set to its run directory."""
    files: list[Path] = []
    for root in paths:
        if not root.exists():
            raise MathforgeError(f"no such directory: {root}")
        if root.is_file():
            # Accept a metrics.json named directly (shell globs like runs/*/*/metrics.json).
            if root.name != METRICS_FILE:
                raise MathforgeError(f"not a directory or {METRICS_FILE}: {root}")
            files.append(root)
        else:
            files.extend(sorted(p for p in root.rglob(METRICS_FILE) if p.is_file()))
    runs: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for file in files:
        # Overlapping arguments (runs/ and runs/gemma/) must not count a run twice.
        key = file.resolve()
        if key in seen:
            continue
        seen.add(key)
        runs.append({**_read_metrics(file), "path": file.parent})
    if not runs:
        raise MathforgeError(f"no run directories ({METRICS_FILE}) under: {', '.join(str(p) for p in paths)}")
    return runs


def _read_metrics(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MathforgeError(
            f"{file}: malformed metrics.json ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except UnicodeDecodeError:
        raise MathforgeError(f"{file}: malformed metrics.json (not UTF-8 text)") from None
    except OSError as exc:
        raise MathforgeError(f"{file}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise MathforgeError(f"{file}: malformed metrics.json (expected a JSON object)")
    for key in ("model", "benchmark"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise MathforgeError(f"{file}: malformed metrics.json (no '{key}' name)")
    return data


# --- settings: what besides the model and the benchmark changes a run's number ------------------------------

# A run's settings, flattened: runs that differ in any of these are never one cell, never "duplicates", and
# --best-of-prompts compares prompts only among runs equal in all the others.
SETTINGS = ("prompt", "prompt_text", "sampling", "max_new_tokens", "items", "extractor", "judge", "tool")
# What --best-of-prompts compares: the prompt format and what it renders (shots, exemplars, template).
_PROMPT_SETTINGS = ("prompt", "prompt_text")


def run_settings(run: dict[str, Any]) -> dict[str, Any]:
    """The settings of one run, from its metrics.json (the fingerprint, else the config of older runs)."""
    fingerprint = run.get("fingerprint") or {}
    config = run.get("config") or {}
    sampling = fingerprint.get("sampling") or config
    temperature = float(sampling.get("temperature") or 0.0)
    judge = run.get("judge") or {}
    return {
        "prompt": _prompt(run),
        # What the prompt renders (--shots, the exemplar file, a template): another few-shot prompt is another run.
        "prompt_text": (fingerprint.get("prompt") or {}).get("sha256"),
        # Greedy decoding ignores top-p and top-k: they do not make another run.
        "sampling": (
            {"temperature": 0.0}
            if temperature == 0.0
            else {key: sampling.get(key) for key in ("n", "temperature", "top_p", "top_k")}
        ),
        "max_new_tokens": sampling.get("max_new_tokens"),
        "items": _item_set(run, config),
        "extractor": [fingerprint.get("extractor") or config.get("extractor"), fingerprint.get("rel_tol")],
        "judge": judge.get("model") if isinstance(judge, dict) else None,
        "tool": fingerprint.get("tool"),
    }


def _item_set(run: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Which items a run covers: their count and a digest of their ids (written by eval since the report
    compares them; for older runs read from the first rows of samples.jsonl, where the selected items are)."""
    items = run.get("items")
    if isinstance(items, dict) and "sha256" in items:
        return {"count": items.get("count"), "sha256": items["sha256"]}
    count = run.get("n")
    ids = _first_ids(Path(run["path"]) / "samples.jsonl", count) if isinstance(count, int) else None
    if ids is not None:
        return {"count": count, "sha256": items_digest(ids)}
    shuffled = bool(config.get("shuffle"))
    return {
        "count": count,
        "limit": config.get("limit"),
        "shuffle_seed": config.get("seed") if shuffled else None,
    }


def _first_ids(samples: Path, count: int) -> list[str] | None:
    ids: list[str] = []
    try:
        with samples.open(encoding="utf-8") as handle:
            for line in handle:
                if len(ids) == count:
                    break
                if line.strip():
                    ids.append(str(json.loads(line)["id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ids if len(ids) == count else None


def _key(settings: dict[str, Any], without: tuple[str, ...] = ()) -> str:
    return json.dumps({k: v for k, v in settings.items() if k not in without}, sort_keys=True)


def _describe(name: str, value: Any, varying: list[dict[str, Any]]) -> str:
    """How a column label names one setting that differs between runs of the same benchmark."""
    if name == "prompt":
        return str(value)
    if name == "prompt_text":
        return f"prompt {str(value)[:6]}"
    if name == "sampling":
        if not value.get("temperature"):
            return "greedy"
        text = f"{value.get('n')} samples, T={value['temperature']:g}"
        if value.get("top_p") not in (None, 1.0):
            text += f", top-p {value['top_p']:g}"
        return text + (f", top-k {value['top_k']}" if value.get("top_k") else "")
    if name == "max_new_tokens":
        return f"{value} tokens"
    if name == "items":
        # Another set of as many items: the count alone would not tell the two columns apart.
        same_count = len({_key(other) for other in varying if other.get("count") == value.get("count")}) > 1
        if not same_count:
            return f"n={value.get('count')}"
        if "sha256" in value:
            return f"n={value['count']}, items {value['sha256'][:6]}"
        return f"n={value.get('count')}, limit {value.get('limit')}, shuffle seed {value.get('shuffle_seed')}"
    if name == "extractor":
        extractor, rel_tol = value
        return f"{extractor or 'default'} extractor" + (f", rel_tol {rel_tol:g}" if rel_tol else "")
    if name == "judge":
        return f"judge {value}" if value else "no judge"
    if name == "tool":
        return "tool " + ", ".join(f"{k} {v}" for k, v in (value or {}).items())
    return f"{name} {value}"


# --- building the table ---------------------------------------------------------------------------------


@dataclass
class _Group:
    """The runs of one benchmark that share every setting (or every one but the prompt: --best-of-prompts)."""

    benchmark: str
    settings: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)  # every model's
    label: str = ""


def build_table(runs: list[dict[str, Any]], best_of_prompts: bool = False, metric: str = "acc") -> Table:
    """Models x (benchmark, settings) of `metric` (a percentage key of metrics.json: acc, pass@k, maj@k, ...)."""
    notes: list[str] = []
    runs = _with_items(runs, notes)
    scored = [run for run in runs if _metric_value(run, metric) is not None]
    if not scored:
        available = sorted({k for run in runs for k, v in run.items() if _is_number(v)} - _NON_METRICS)
        raise MathforgeError(
            f"no run has the metric '{metric}'; metrics found: {', '.join(available) or 'none'}"
        )
    skipped = [run for run in runs if _metric_value(run, metric) is None]
    if skipped:
        # e.g. maj@4 asked for, but greedy runs only have acc: leave them out rather than mix metrics.
        notes.append(f"{len(skipped)} run(s) without '{metric}' left out: {_paths(skipped)}")

    for run in scored:
        run["settings"] = run_settings(run)
    latest = _dedupe(scored, notes)  # (model, benchmark, settings key) -> run
    models = sorted({model for model, _, _ in latest}, key=str.casefold)
    ignored = _PROMPT_SETTINGS if best_of_prompts else ()
    groups = _groups(latest.values(), ignored)

    cells: dict[tuple[str, str], Cell] = {}
    columns: list[Column] = []
    choices: list[str] = []
    for group in groups:
        column = Column(group.label, group.benchmark, None if best_of_prompts else group.settings["prompt"])
        columns.append(column)
        prompts = {run["settings"]["prompt"] for run in group.runs}
        for model in models:
            candidates = [_cell(run, metric) for run in group.runs if run["model"] == model]
            candidates.sort(key=lambda c: _prompt_key(c.prompt))
            if not candidates:
                continue
            # max() keeps the first of equal values, so ties go to the earlier prompt in PROMPT_FORMATS.
            best = max(candidates, key=lambda c: c.value)
            cells[model, column.label] = best
            # A model with one of the column's prompts still gets a "Prompt used" line.
            if best_of_prompts and len(prompts) > 1:
                choices.append(_choice_line(model, column.label, best, candidates))

    table = Table(metric, models, columns, cells, best_of_prompts, choices, notes)
    partial = []
    for model in models:
        missing = [col.label for col in columns if (model, col.label) not in cells]
        if missing:
            partial.append(f"{model} (missing {', '.join(missing)})")
    if partial:
        # A mean over fewer benchmarks is not comparable with a full one: flag it instead of hiding it.
        notes.insert(0, f"* average over the columns present only: {'; '.join(partial)}")
    if len(columns) > len({column.benchmark for column in columns}):
        notes.append("Average is over every column: a benchmark with several columns counts once for each")
    if metric != "acc":
        notes.insert(0, f"values are {metric} (%)")
    return table


def _with_items(runs: list[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """The runs that measured something: a run over no items has no number, only a misleading 0.0."""
    empty = [run for run in runs if run.get("n") == 0]
    if empty:
        notes.append(f"{len(empty)} run(s) over no items (n 0) left out: {_paths(empty)}")
    return [run for run in runs if run.get("n") != 0]


def _groups(runs: Any, ignored: tuple[str, ...]) -> list[_Group]:
    """One column per benchmark and distinct settings, labelled by the settings that differ within the
    benchmark; benchmarks in registry order, prompts in registry order, then by label."""
    by_key: dict[tuple[str, str], _Group] = {}
    for run in runs:
        key = (run["benchmark"], _key(run["settings"], ignored))
        by_key.setdefault(key, _Group(run["benchmark"], run["settings"])).runs.append(run)
    ordered: list[_Group] = []
    for bench in _benchmark_order({group.benchmark for group in by_key.values()}):
        groups = [group for group in by_key.values() if group.benchmark == bench]
        for group in groups:
            group.label = _label(group, groups, ignored)
        groups.sort(key=lambda g: _column_order(g, ignored))
        _unique_labels(groups)
        ordered += groups
    return ordered


def _unique_labels(groups: list[_Group]) -> None:
    """Number columns whose labels would still read alike (settings the labels do not spell out)."""
    seen: dict[str, int] = defaultdict(int)
    for group in groups:
        seen[group.label] += 1
        if seen[group.label] > 1:
            group.label = f"{group.label} #{seen[group.label]}"


def _column_order(group: _Group, ignored: tuple[str, ...]) -> tuple[Any, ...]:
    """Prompts in registry order; then greedy before sampled, fewer samples first, fewer items first."""
    settings = group.settings
    sampling, items = settings["sampling"], settings["items"]
    return (
        _prompt_key(settings["prompt"]) if "prompt" not in ignored else (0, ""),
        bool(sampling.get("temperature")),
        sampling.get("n") or 1,
        items.get("count") or 0,
        group.label,
    )


def _label(group: _Group, siblings: list[_Group], ignored: tuple[str, ...]) -> str:
    varying = [name for name in SETTINGS if name not in ignored and _varies(name, siblings)]
    parts = [_describe(name, group.settings[name], [g.settings[name] for g in siblings]) for name in varying]
    return f"{group.benchmark} ({'; '.join(parts)})" if parts else group.benchmark


def _varies(name: str, siblings: list[_Group]) -> bool:
    """Whether the columns of a benchmark differ in a setting (the prompt's text: within one prompt format, as
    formats differ in their text anyway)."""
    if name == "prompt_text":
        texts: dict[str, set[Any]] = defaultdict(set)
        for group in siblings:
            texts[group.settings["prompt"]].add(group.settings["prompt_text"])
        return any(len(found) > 1 for found in texts.values())
    return len({json.dumps(group.settings[name], sort_keys=True) for group in siblings}) > 1


# Numeric keys of metrics.json that are not scores, for the "metrics found" hint.
_NON_METRICS = {"n", "samples_per_item", "tokens_generated", "wall_seconds", "tokens_per_second"}


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _metric_value(run: dict[str, Any], metric: str) -> float | None:
    value = run.get(metric)
    return float(value) if _is_number(value) and metric not in _NON_METRICS else None


def _cell(run: dict[str, Any], metric: str) -> Cell:
    value = _metric_value(run, metric)
    assert value is not None  # runs without the metric were filtered out before
    return Cell(value, _prompt(run), run["path"])


def _prompt(run: dict[str, Any]) -> str:
    return str(run.get("prompt") or _NO_PROMPT)


def _prompt_key(prompt: str) -> tuple[int, str]:
    """Registry order (mathforge.prompts.PROMPT_FORMATS), then unknown formats alphabetically."""
    from mathforge.prompts import PROMPT_FORMATS

    order = list(PROMPT_FORMATS)
    return (order.index(prompt) if prompt in order else len(order), prompt)


def _finished(run: dict[str, Any]) -> datetime:
    """finished_at as an aware datetime; runs without a readable one count as oldest."""
    try:
        when = datetime.fromisoformat(str(run["finished_at"]))
    except (KeyError, ValueError):
        return _OLDEST
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _dedupe(runs: list[dict[str, Any]], notes: list[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """One run per (model, benchmark, settings): the most recent one; the others are named in a note."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[run["model"], run["benchmark"], _key(run["settings"])].append(run)
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for key, group in groups.items():
        # Path breaks ties between equal timestamps so that the choice does not depend on walk order.
        group.sort(key=lambda run: (_finished(run), str(run["path"])), reverse=True)
        latest[key] = group[0]
        if len(group) > 1:
            model, bench, _ = key
            notes.append(
                f"{len(group)} runs of {model} / {bench} with identical settings ({_prompt(group[0])}): kept the "
                f"most recent, {group[0]['path']}; ignored {_paths(group[1:])}"
            )
    return latest


def _paths(runs: list[dict[str, Any]]) -> str:
    return ", ".join(str(run["path"]) for run in runs)


def _benchmark_order(names: set[str]) -> list[str]:
    """Registry order (the canonical one), then unknown benchmarks alphabetically."""
    from mathforge.benchmarks import REGISTRY

    known = list(REGISTRY)
    return [name for name in known if name in names] + sorted(names - set(known))


def _choice_line(model: str, column: str, best: Cell, candidates: list[Cell]) -> str:
    others = [c for c in candidates if c is not best]
    if not others:
        return f"{model} / {column}: {best.prompt} ({best.value:.1f}), the only prompt run"
    rest = ", ".join(f"{c.prompt} ({c.value:.1f})" for c in others)
    return f"{model} / {column}: {best.prompt} ({best.value:.1f}) over {rest}"


# --- rendering ------------------------------------------------------------------------------------------


def render(table: Table, fmt: str = "markdown") -> str:
    if fmt == "markdown":
        return _markdown(table)
    if fmt == "csv":
        return _csv(table)
    raise MathforgeError(f"--format must be markdown or csv, got '{fmt}'")


def _markdown(table: Table) -> str:
    header = ["Model", *(col.label for col in table.columns), "Average"]
    body: list[list[str]] = []
    for model in table.rows:
        cells = [table.cells.get((model, col.label)) for col in table.columns]
        mean, complete = table.average(model)
        avg = MISSING_MD if mean is None else f"{mean:.1f}" + ("" if complete else "*")
        body.append([model, *(MISSING_MD if c is None else _shown(c, table) for c in cells), avg])
    grid = [[_md_escape(text) for text in row] for row in [header, *body]]
    widths = [max(3, *(len(row[i]) for row in grid)) for i in range(len(header))]

    def line(row: list[str]) -> str:
        # The model column reads left to right; numbers line up on the right.
        padded = [
            row[0].ljust(widths[0]),
            *(text.rjust(w) for text, w in zip(row[1:], widths[1:], strict=True)),
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "| :" + "-" * (widths[0] - 1) + " | " + " | ".join("-" * (w - 1) + ":" for w in widths[1:]) + " |"
    out = [line(grid[0]), rule, *(line(row) for row in grid[1:])]
    if table.prompt_choices:
        out += ["", "Prompt used:", *(f"- {text}" for text in table.prompt_choices)]
    if table.notes:
        out += ["", "Notes:", *(f"- {text}" for text in table.notes)]
    return "\n".join(out) + "\n"


def _shown(cell: Cell, table: Table) -> str:
    """A cell's value; with --best-of-prompts, the prompt that won too."""
    return f"{cell.value:.1f} ({cell.prompt})" if table.best_of_prompts else f"{cell.value:.1f}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _csv(table: Table) -> str:
    """Plain numbers (no asterisks, no notes) so that spreadsheets and pandas read it as is."""
    header = ["model"]
    for col in table.columns:
        header.append(col.label)
        if table.best_of_prompts:
            header.append(f"{col.label} prompt")
    header.append("Average")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for model in table.rows:
        row = [model]
        for col in table.columns:
            cell = table.cells.get((model, col.label))
            row.append("" if cell is None else f"{cell.value:.1f}")
            if table.best_of_prompts:
                row.append("" if cell is None else cell.prompt)
        mean, _ = table.average(model)
        row.append("" if mean is None else f"{mean:.1f}")
        writer.writerow(row)
    return buffer.getvalue()


def build_report(
    paths: list[Path], fmt: str = "markdown", best_of_prompts: bool = False, metric: str = "acc"
) -> str:
    # Check the format first: a typo should not cost a walk over a large runs/ tree.
    if fmt not in FORMATS:
        raise MathforgeError(f"--format must be markdown or csv, got '{fmt}'")
    return render(build_table(find_runs(paths), best_of_prompts=best_of_prompts, metric=metric), fmt)
