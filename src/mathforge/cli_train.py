"""The training commands of the `mathforge` CLI: `train sft`, `merge`, `export`, `compare` (a thin layer over
`mathforge.train`).

`cli.py` calls `add_train_commands` with its app and command registrar, so these commands are built exactly as
the evaluation and data commands are (flags from the options models, `--config`, one-line errors).
"""

# No `from __future__ import annotations`: the commands' parameter annotations are read by typer through
# cli.py's registrar, where names of this module would not resolve from strings.
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mathforge.cli_data import emit_result, titled_table
from mathforge.config import Options
from mathforge.errors import MathforgeError


def _merge_options() -> type[Options]:
    from mathforge.train.merge import MergeOptions

    return MergeOptions


def _export_options() -> type[Options]:
    from mathforge.train.export import ExportOptions

    return ExportOptions


def _compare_options() -> type[Options]:
    from mathforge.train.compare import CompareOptions

    return CompareOptions


def add_train_commands(
    app: typer.Typer, options_command: Callable[..., Any], console: Callable[[], Any]
) -> None:
    from mathforge.train.kinds import TRAINING_KINDS

    train = typer.Typer(
        name="train",
        help=f"Train models: {', '.join(TRAINING_KINDS)}.",
        no_args_is_help=True,
    )
    app.add_typer(train, name="train")
    for kind in TRAINING_KINDS.values():
        _add_kind(kind, train, options_command, console)

    @options_command("merge", _merge_options)
    def _merge(opts: Any) -> None:
        """Merge a LoRA adapter into its 16-bit (or fp32) base, then check the merged logits against base+adapter."""
        from mathforge.train.merge import merge_adapter

        report = merge_adapter(opts, show_progress=not opts.quiet)
        emit_result(report, opts.json_output, _print_merge, console)
        if not report[
            "verified"
        ]:  # the model is kept (nothing computed is lost); the exit status says it failed
            raise MathforgeError(
                f"merge check failed: {report['warning']}; the model is kept in {report['out']}"
            )

    @options_command("export", _export_options)
    def _export(
        opts: Any,
        model_dir: Annotated[
            Path, typer.Argument(help="A transformers model directory (merge or full fine-tune)")
        ],
        out: Annotated[Path, typer.Argument(help="The GGUF file to write")],
    ) -> None:
        """Convert a model directory to GGUF with llama.cpp's own converter, then quantise (--quant Q4_K_M ...)."""
        from mathforge.train.export import export_gguf

        report = export_gguf(model_dir, out, opts, show_progress=not opts.quiet)
        emit_result(report, opts.json_output, _print_export, console)

    @options_command("compare", _compare_options)
    def _compare(
        opts: Any,
        before: Annotated[
            Path, typer.Argument(help="eval run directory (or a folder of runs): the baseline")
        ],
        after: Annotated[
            Path, typer.Argument(help="eval run directory (or a folder of runs): the new model")
        ],
    ) -> None:
        """Before/after accuracy per benchmark on the same items, with McNemar's exact test and a bootstrap CI."""
        from mathforge.train.compare import compare_runs, render_comparison

        result = compare_runs(before, after, opts)
        if opts.json_output:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print(render_comparison(result, opts.fmt))


def _add_kind(
    kind: Any, group: typer.Typer, options_command: Callable[..., Any], console: Callable[[], Any]
) -> None:
    """`mathforge train KIND`, from its registry entry."""

    def command(opts: Any) -> None:
        result = kind.run(opts, not opts.quiet)
        if not result.get("main_process", True):  # `accelerate launch`: the main process reports
            return
        printer = _print_dry_run if result.get("dry_run") else _print_trained
        emit_result(result, opts.json_output, printer, console)

    command.__doc__ = kind.description
    options_command(kind.name, kind.options, group=group)(command)


def _print_trained(console: Any, summary: dict[str, Any]) -> None:
    table = titled_table(f"mathforge train {summary['kind']}", "", "")
    for key in ("examples", "trainable_tokens", "steps", "epochs", "train_loss", "final_loss", "seconds"):
        value = summary.get(key)
        shown = f"{value:.4f}" if isinstance(value, float) and key.endswith("loss") else str(value)
        table.add_row(key.replace("_", " "), shown)
    console.print(table)
    console.print(f"result: {summary['result']}", soft_wrap=True, highlight=False)
    comparison = summary.get("comparison")
    if comparison:
        from mathforge.train.compare import render_comparison

        console.print(render_comparison(comparison), soft_wrap=True, highlight=False)


def _print_dry_run(console: Any, report: dict[str, Any]) -> None:
    from rich.text import Text

    table = titled_table(
        f"mathforge train {report['kind']} --dry-run ({report['format']}, max length {report['max_length']})",
        "",
        "",
    )
    for key in ("examples", "tokens", "trainable_tokens", "truncated", "fully_masked"):
        table.add_row(key.replace("_", " "), str(report[key]))
    spread = report["trainable_per_example"]
    table.add_row(
        "trainable per example",
        " ".join(f"{name} {spread[name]}" for name in ("min", "p10", "median", "p90", "max", "mean")),
    )
    console.print(table)
    for where in report["fully_masked_rows"]:
        console.print(f"fully masked: {where}", soft_wrap=True, highlight=False)
    example = report["example"]
    console.print(
        f"\n{example['where']}: {example['tokens']} tokens, {example['trainable_tokens']} trained "
        + ("(trained part in green)" if console.is_terminal else "(trained part between ⟦ ⟧)"),
        highlight=False,
    )
    text = Text()
    for piece, trained in example["pieces"]:
        if console.is_terminal:
            text.append(piece, style="bold green" if trained else "dim")
        else:
            text.append(f"⟦{piece}⟧" if trained else piece)
    console.print(text, soft_wrap=True, highlight=False)


def _print_merge(console: Any, report: dict[str, Any]) -> None:
    table = titled_table("mathforge merge", "", "")
    table.add_row("base", str(report["base"]["model"]))
    lora = report.get("lora") or {}
    table.add_row("lora", ", ".join(f"{key} {value}" for key, value in lora.items() if value is not None))
    for key, value in report.items():
        if isinstance(value, str | int | float | bool) or value is None:
            table.add_row(key.replace("_", " "), str(value))
    console.print(table)


def _print_export(console: Any, report: dict[str, Any]) -> None:
    table = titled_table("mathforge export", "", "")
    for key, value in report.items():
        if isinstance(value, str | int | float | bool) or value is None:
            table.add_row(key.replace("_", " "), str(value))
    console.print(table)
