"""The data commands of the `mathforge` CLI: synth, curate, dedup, decontam (a thin layer over `mathforge.data`).

`cli.py` calls `add_data_commands` with its command registrar, so that these commands are built exactly as
the evaluation commands are (flags from the options models, `--config`, one-line errors).
"""

# No `from __future__ import annotations`: the commands' parameter annotations are read by typer through
# cli.py's registrar, where names of this module (InputFile) would not resolve from strings.
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mathforge.config import Options


def _synth_options() -> type[Options]:
    from mathforge.data.synth import SynthOptions

    return SynthOptions


def _curate_options() -> type[Options]:
    from mathforge.data.pipeline import CurateOptions

    return CurateOptions


def _dedup_options() -> type[Options]:
    from mathforge.data.commands import DedupOptions

    return DedupOptions


def _decontam_options() -> type[Options]:
    from mathforge.data.commands import DecontamOptions

    return DecontamOptions


InputFile = Annotated[Path, typer.Argument(help="Input rows: a JSONL or Parquet file")]


def add_data_commands(options_command: Callable[..., Any], console: Callable[[], Any]) -> None:
    @options_command("synth", _synth_options)
    def _synth(opts: Any) -> None:
        """Write new problems with a teacher model, prompted with seed problems; re-running resumes."""
        from mathforge.data.synth import synthesize

        summary = synthesize(opts, show_progress=not opts.quiet)
        emit_result(summary, opts.json_output, _print_synth, console)

    @options_command("curate", _curate_options)
    def _curate(opts: Any, file: InputFile) -> None:
        """Run rows through a pipeline of stages (--config pipeline.yaml); print the funnel of what each dropped."""
        from mathforge.data.pipeline import curate

        if opts.ray:
            from mathforge.data.ray_pipeline import curate_on_ray

            funnel = curate_on_ray(file, opts).as_json()
        else:
            funnel = curate(file, opts).as_json()
        emit_result(funnel, opts.json_output, _print_funnel, console)

    @options_command("dedup", _dedup_options)
    def _dedup(opts: Any, file: InputFile) -> None:
        """Drop near-duplicate (or exact duplicate) rows, keeping the first of each cluster in input order."""
        from mathforge.data.commands import dedup_file

        report = dedup_file(file, opts)
        emit_result(report, opts.json_output, _print_dedup, console)

    @options_command("decontam", _decontam_options)
    def _decontam(opts: Any, file: InputFile) -> None:
        """Find rows that overlap benchmark test items (n-grams, numbers changed, short items)."""
        from mathforge.data.commands import decontam_file

        report = decontam_file(file, opts)
        emit_result(report, opts.json_output, _print_decontam, console)


def emit_result(
    result: dict[str, Any],
    as_json: bool,
    printer: Callable[[Any, dict[str, Any]], None],
    console: Callable[[], Any],
) -> None:
    """--json: the result as one JSON line (the last on stdout); else the command's table."""
    if as_json:
        print(json.dumps(result, ensure_ascii=False), flush=True)
    else:
        printer(console(), result)


def titled_table(title: str, *columns: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", no_wrap=index == 0)
    return table


def _print_synth(console: Any, summary: dict[str, Any]) -> None:
    table = titled_table("mathforge synth", "", "count")
    for key in ("requested", "accepted", "rejected", "sent", "prompt_tokens", "completion_tokens"):
        table.add_row(key.replace("_", " "), str(summary.get(key, "-")))
    if summary.get("cost") is not None:
        table.add_row("estimated cost", f"{summary['cost']:.4f}")
    console.print(table)
    for key in ("out", "rejects"):
        if summary.get(key):
            console.print(f"{key}: {summary[key]}", soft_wrap=True, highlight=False)


def _print_funnel(console: Any, funnel: dict[str, Any]) -> None:
    table = titled_table("mathforge curate", "stage", "in", "kept", "dropped", "reasons")
    for stage in funnel["stages"]:
        reasons = ", ".join(f"{reason} {count}" for reason, count in stage["reasons"].items())
        table.add_row(stage["name"], str(stage["in"]), str(stage["kept"]), str(stage["dropped"]), reasons)
    kept = funnel["kept"]
    share = f" ({100 * kept / funnel['rows']:.1f}%)" if funnel["rows"] else ""
    table.add_row(
        "total", str(funnel["rows"]), f"{kept}{share}", str(funnel["dropped"]), "", end_section=True
    )
    console.print(table)
    for key in ("out", "rejects"):
        console.print(f"{key}: {funnel[key]}", soft_wrap=True, highlight=False)


def _print_dedup(console: Any, report: dict[str, Any]) -> None:
    table = titled_table(f"mathforge dedup ({report['method']})", "", "rows")
    for key in ("rows", "kept", "dropped"):
        table.add_row(key, str(report[key]))
    console.print(table)
    console.print(f"out: {report['out']}", soft_wrap=True, highlight=False)


def _print_decontam(console: Any, report: dict[str, Any]) -> None:
    table = titled_table("mathforge decontam", "benchmark", "flagged rows")
    for benchmark, count in report["by_benchmark"].items():
        table.add_row(benchmark, str(count))
    table.add_row("total", f"{len(report['flagged'])} of {report['rows']}", end_section=True)
    console.print(table)
    for overlap in report["overlaps"][:20]:
        console.print(
            f"line {overlap['line']}: {overlap['benchmark']} {overlap['item']} ({overlap['match']}, "
            f"score {overlap['score']}): {overlap['ngram']!r}",
            soft_wrap=True,
            highlight=False,
        )
    if len(report["overlaps"]) > 20:
        console.print(f"... {len(report['overlaps']) - 20} more (--json lists all)", highlight=False)
    if report["out"]:
        console.print(f"out: {report['out']}", soft_wrap=True, highlight=False)
