"""The `mathforge` command: a thin typer layer over the Python API.

Every command builds a config and calls into a package; errors the user can fix (MathforgeError, bad options)
are printed as one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer
from pydantic import Field

from mathforge.config import Options, cli_parameters, explicit_flags
from mathforge.errors import Interrupted, MathforgeError, Terminated

app = typer.Typer(
    name="mathforge",
    help="Build and measure math-specialized language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def options_command(
    name: str, options: Callable[[], type[Options]], group: typer.Typer | None = None
) -> Callable[[Any], Any]:
    """Register `function(opts, **own)` as command `name` (of `group`, a sub-command group, or of mathforge):
    its flags come from the options model (`opts`), its own parameters (a file argument, --quiet) stay as
    `function` declares them, and `--config FILE` reads the same options from YAML (flags win)."""

    def register(function: Any) -> Any:
        model = options()
        own = [p for p in inspect.signature(function).parameters.values() if p.name != "opts"]

        def command(context: typer.Context, **values: Any) -> None:
            arguments = {p.name: values.pop(p.name) for p in own}
            config_file = values.pop("config")
            try:
                function(model.load(config_file, explicit_flags(context, list(values))), **arguments)
            except Interrupted as stop:  # said here: typer would turn any KeyboardInterrupt into a bare 130
                print(f"mathforge: {stop}", file=sys.stderr)
                sys.exit(stop.exit_code)

        command.__doc__ = function.__doc__
        context = inspect.Parameter(
            "context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
        )
        flags = [*cli_parameters(model), *model.extra_parameters()]
        config_help = "YAML file of options keyed by their names; flags override it" + (
            " (a run's metrics.json repeats that run)" if model.repeats_runs else ""
        )
        config = inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[Path | None, typer.Option(help=config_help)],
            default=None,
        )
        (group or app).command(name)(_command_with(command, [context, *own, *_unique(flags), config]))
        return function

    return register


def _command_with(function: Any, parameters: list[inspect.Parameter]) -> Any:
    """`function` (taking **values) with `parameters` as its signature, as typer reads commands."""
    function.__signature__ = inspect.Signature(parameters)
    function.__annotations__ = {p.name: p.annotation for p in parameters}
    return function


def _unique(parameters: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """The first parameter of each name (the command's own declaration before an engine's)."""
    first: dict[str, inspect.Parameter] = {}
    for parameter in parameters:
        first.setdefault(parameter.name, parameter)
    return list(first.values())


def _eval_options() -> type[Options]:
    from mathforge.eval import EvalConfig

    return EvalConfig


@options_command("eval", _eval_options)
def _eval(opts: Any, quiet: Annotated[bool, typer.Option(help="No progress bar")] = False) -> None:
    """Evaluate a model on math benchmarks; re-running the same command resumes.

    Every option can also come from a YAML file (--config), keyed by the option's name; flags override it.
    """
    from mathforge.eval import evaluate

    if opts.data_dir is not None and not opts.data_dir.is_dir():
        raise MathforgeError(f"--data-dir: no such directory: {opts.data_dir}")
    _print_results(evaluate(opts, show_progress=not quiet))


def _print_results(results: list) -> None:
    from rich.table import Table

    table = Table(title="mathforge eval")
    for column in ("benchmark", "model", "prompt"):
        table.add_column(column, no_wrap=True)
    for column in ("n", "acc %", "no answer %", "tok/s"):
        table.add_column(column, justify="right", no_wrap=True)
    for result in results:
        m = result.metrics
        table.add_row(
            m["benchmark"],
            m["model"],
            str(m["prompt"]),
            str(m["n"]),
            f"{m['acc']:.1f}",
            f"{m['no_answer']:.1f}",
            f"{m['tokens_per_second']:.1f}",
        )
    console = _console()
    console.print(table)
    sampled = [r for r in results if any(key.startswith("maj@") for key in r.metrics)]
    if sampled:
        console.print(_sampled_table(sampled))
        console.print(_SAMPLED_LEGEND, highlight=False)
    for result in results:
        console.print(f"{result.benchmark}: {result.path}", soft_wrap=True, highlight=False)


_SAMPLED_LEGEND = (
    "maj@k: the majority answer of the first k samples of each item is right; pass@k: at least one of k samples "
    "is right, the unbiased estimate over all n samples; acc = pass@1, the share of right samples. maj@1 counts "
    "the first sample only, so it may differ from pass@1."
)


def _sampled_table(results: list) -> Any:
    """maj@k and pass@k, one row per benchmark and k: a narrow table that fits 80 columns for any k."""
    from rich.table import Table

    table = Table(title="sampled: maj@k and pass@k (%)")
    table.add_column("benchmark", no_wrap=True)
    for column in ("k", "maj@k", "pass@k"):
        table.add_column(column, justify="right", no_wrap=True)
    for result in results:
        m = result.metrics
        ks = sorted({int(key.split("@")[1]) for key in m if key.startswith(("maj@", "pass@"))})
        for k in ks:
            table.add_row(
                m["benchmark"], str(k), f"{m.get(f'maj@{k}', 0.0):.1f}", f"{m.get(f'pass@{k}', 0.0):.1f}"
            )
    return table


def _console() -> Any:
    """A console for tables: the terminal's width on a terminal; in logs and pipes no width limit, so that a
    table is never wrapped or cut (rich would assume 80 columns)."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 1000)


def _report_options() -> type[Options]:
    from mathforge.report import ReportOptions

    return ReportOptions


@options_command("report", _report_options)
def _report(
    opts: Any,
    dirs: Annotated[
        list[Path], typer.Argument(help="Run directories, or folders containing them at any depth")
    ],
) -> None:
    """Tabulate runs: models as rows, benchmarks as columns, plus an Average column."""
    from mathforge.report import build_report

    typer.echo(build_report(dirs, fmt=opts.fmt, best_of_prompts=opts.best_of_prompts, metric=opts.metric))


def _regrade_options() -> type[Options]:
    from mathforge.eval.regrade import RegradeOptions

    return RegradeOptions


@options_command("regrade", _regrade_options)
def _regrade(
    opts: Any,
    file: Annotated[
        Path, typer.Argument(help="Output file to regrade: samples.jsonl of mathforge or another harness")
    ],
) -> None:
    """Extract and grade the completions of an existing output file (its stored verdicts are not trusted)."""
    import json

    from mathforge.eval.regrade import prepare_out, regrade, write_rows

    if opts.out is not None:
        prepare_out(opts.out)  # a bad --out fails now, not after the regrading
    result = regrade(file, opts)
    if opts.out is not None:
        write_rows(opts.out, result.rows)
    _print_regrade(result.metrics, opts.out)
    if opts.json_output:
        print(json.dumps(result.metrics, ensure_ascii=False), flush=True)


def _print_regrade(metrics: dict, out: Path | None) -> None:
    from rich.table import Table

    table = Table(title=f"mathforge regrade: {metrics['benchmark']} ({metrics['format']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("n", str(metrics["n"]))
    table.add_row("acc %", f"{metrics['acc']:.1f}")
    table.add_row("no answer %", f"{metrics['no_answer']:.1f}")
    for key in metrics:
        if key.startswith(("maj@", "pass@")):
            table.add_row(f"{key} %", f"{metrics[key]:.1f}")
    if "source_acc" in metrics:
        table.add_row("file's own acc %", f"{metrics['source_acc']:.1f}")
    if "agree_with_source" in metrics:
        table.add_row(
            "agree with file",
            f"{metrics['agree_with_source']}/{metrics['compared_with_source']} "
            f"({metrics['agree_with_source_pct']:.1f}%)",
        )
    if "gold_differs_from_file" in metrics:
        table.add_row("golds changed by --data-dir", str(metrics["gold_differs_from_file"]))
    table.add_row("grading timeouts", str(metrics["timeouts"]))
    table.add_row("seconds", f"{metrics['seconds']:.1f}")
    console = _console()
    console.print(table)
    if out is not None:
        console.print(f"rows: {out}", soft_wrap=True, highlight=False)


class ExecOptions(Options):
    """The options of `mathforge exec`."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json"}

    # Checked by sandbox.Limits, the one place that knows what a limit may be.
    timeout: float = Field(10.0, description="Wall-clock seconds before the whole process tree is killed")
    memory_mb: int = Field(2048, description="Address-space limit in MiB")
    json_output: bool = Field(
        False,
        description="Print one JSON object: status, stdout, stderr, returncode, wall_seconds, truncated (and error)",
    )
    require_isolation: bool = Field(
        False, description="Fail instead of running without bubblewrap (resource limits alone)"
    )


@options_command("exec", lambda: ExecOptions)
def _exec(
    opts: ExecOptions,
    file: Annotated[Path, typer.Argument(help="Python program to run (untrusted code welcome)")],
) -> None:
    """Run a Python program in the sandbox that pal and tora use: isolated, resource-limited, time-limited.

    Exit status: the program's own for ok and error, 124 on timeout, 125 on memory, 128+N when killed by signal N.
    """
    import json

    from mathforge.errors import read_text
    from mathforge.sandbox import Limits, Sandbox

    code = read_text(file, "program")
    try:
        limits = Limits(timeout=opts.timeout, memory_mb=opts.memory_mb)
    except ValueError as error:
        raise MathforgeError(f"invalid option: {error}") from None
    result = Sandbox(limits, isolate=True if opts.require_isolation else None).run(code, filename=file.name)
    if opts.json_output:
        keys = ("status", "stdout", "stderr", "returncode", "wall_seconds", "truncated", "error", "isolated")
        print(json.dumps({key: getattr(result, key) for key in keys}))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.status != "ok":
            print(f"mathforge exec: {_exec_message(result.status, result.error)}", file=sys.stderr)
    sys.exit(_exec_exit_status(result.status, result.returncode))


def _exec_message(status: str, error: str | None) -> str:
    """'timeout: no result within 1 s', not 'timeout: Timeout: no result ...': an error that starts with its
    status (the sandbox words some errors as the program would see them) says it once."""
    error = error or ""
    if error.lower().startswith(status):
        return status + error[len(status) :]
    return f"{status}: {error}" if error else status


def _exec_exit_status(status: str, returncode: int | None) -> int:
    if status == "timeout":
        return 124
    if status == "memory":
        return 125
    if returncode is not None and returncode < 0:
        return 128 - returncode
    return returncode or (0 if status == "ok" else 1)


def _score_options() -> type[Options]:
    from mathforge.scoring import ScoreOptions

    return ScoreOptions


@options_command("score", _score_options)
def _score(opts: Any, file: Annotated[Path, typer.Argument(help="JSONL file with one text per row")]) -> None:
    """Score texts under a model: each row gets tokens, nll (mean negative log-likelihood, nats) and ppl."""
    import json

    from mathforge.scoring import score_texts

    summary = score_texts(file, opts)
    if opts.json_output:
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    else:
        _print_score(summary)


def _print_score(summary: dict) -> None:
    from rich.table import Table

    table = Table(title="mathforge score")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("rows", f"{summary['rows']} ({summary['resumed']} from an earlier run)")
    table.add_row("tokens", str(summary["tokens"]))
    for key, label in (("nll", "nll (nats/token)"), ("ppl", "perplexity")):
        table.add_row(label, "-" if summary[key] is None else f"{summary[key]:.4f}")
    rate = summary["tokens_per_second"]
    table.add_row("tok/s", "-" if rate is None else f"{rate:.1f}")
    console = _console()
    console.print(table)
    console.print(f"rows: {summary['out']}", soft_wrap=True, highlight=False)


def _add_data_commands() -> None:
    from mathforge.cli_data import add_data_commands

    add_data_commands(options_command, _console)


_add_data_commands()


def _add_train_commands() -> None:
    from mathforge.cli_train import add_train_commands

    add_train_commands(app, options_command, _console)


_add_train_commands()


@app.command("benchmarks")
def benchmarks_command() -> None:
    """List the registered benchmarks."""
    from rich.table import Table

    from mathforge.benchmarks import REGISTRY

    table = Table()
    for column in ("name", "answer", "prompt", "source"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="fold")
    for spec in REGISTRY.values():
        source = (
            "built-in" if spec.generator else f"hub: {spec.test.hub.path}" if spec.test.hub else "--data-dir"
        )
        table.add_row(spec.name, spec.answer_type, spec.default_prompt, source, spec.description)
    _console().print(table)


if TYPE_CHECKING:

    class _ClickException(Exception):
        """What is used of click's ClickException, in typer's vendored copy of click or in click itself."""

        exit_code: int

        def format_message(self) -> str: ...


def _click_exceptions() -> tuple[type[_ClickException], ...]:
    """Click's exception base, wherever this typer keeps it (recent typers vendor their own click)."""
    found: list[type[_ClickException]] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(__import__(module, fromlist=["ClickException"]).ClickException)
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit status 2.

    Ctrl-C and SIGTERM end a run with one line (how much is done, how to resume) and status 130 or 143; any
    status a command exits with reaches the shell.
    """
    signal.signal(signal.SIGTERM, _terminate)
    try:
        status = app(args=argv, standalone_mode=False)
    except MathforgeError as error:
        _fail(str(error), code=error.exit_code)
    except _click_exceptions() as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # bare `mathforge`: the help is the answer
            print(error.format_message())
            sys.exit(0)
        _fail(
            error.format_message().replace("\n", " ") + " (see --help)", code=getattr(error, "exit_code", 2)
        )
    except (
        OSError
    ) as error:  # writing --out: a full disk, a read-only folder, a file where a folder should be
        where = f"{error.filename}: " if error.filename else ""
        _fail(f"{where}{error.strerror or error}")
    except (typer.Abort, KeyboardInterrupt):
        _stopped()
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    # typer returns the status of a command that exited early (typer.Exit; 130 for a KeyboardInterrupt, SIGTERM's
    # included) instead of raising it.
    if status == 130:
        _stopped()
    if isinstance(status, int) and status:
        sys.exit(status)


_TERMINATED: list[int] = []


def _terminate(signal_number: int, frame: object) -> None:
    _TERMINATED.append(signal_number)
    raise Terminated()


def _stopped() -> None:
    """A signal stopped the command outside a run's generation loop (which says more: see Interrupted)."""
    what = "terminated" if _TERMINATED else "interrupted"
    print(f"mathforge: {what}; finished work is kept, re-run the same command to resume", file=sys.stderr)
    sys.exit(128 + (_TERMINATED[0] if _TERMINATED else signal.SIGINT))


def _fail(message: str, code: int = 2) -> None:
    print(f"mathforge: error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
