"""The `mathforge` command: a thin typer layer over the Python API.

Every command builds a config and calls into a package; errors the user can fix (MathforgeError, bad options)
are printed as one line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from mathforge.errors import MathforgeError

app = typer.Typer(
    name="mathforge",
    help="Build and measure math-specialized language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def _ints(value: str | None, option: str) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(part) for part in _csv(value)]
    except ValueError:
        raise MathforgeError(
            f"invalid option {option}: expected comma-separated integers, got '{value}'"
        ) from None


@app.command("eval")
def eval_command(
    model: Annotated[
        str | None,
        typer.Option(help="GGUF file, HF hub id or local directory [default: the packaged Gemma 3 270M]"),
    ] = None,
    bench: Annotated[
        str, typer.Option(help="Comma-separated benchmark names (see `mathforge benchmarks`)")
    ] = "arith",
    backend: Annotated[
        str | None,
        typer.Option(help="llamacpp, hf, vllm or openai [default: llamacpp for .gguf files, else hf]"),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Benchmark files in the math-evaluation-harness data/ layout; without it data comes from the HF hub"
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Where run directories go")] = Path("runs"),
    prompt: Annotated[
        str | None, typer.Option(help="zero-shot, few-shot, chat or custom [default: per benchmark]")
    ] = None,
    shots: Annotated[
        int | None,
        typer.Option(help="Few-shot exemplars to use [default: all of a prompt file, 4 from a train split]"),
    ] = None,
    prompt_file: Annotated[
        Path | None, typer.Option(help="Few-shot exemplar file (blocks separated by two blank lines)")
    ] = None,
    prompt_dir: Annotated[
        Path | None, typer.Option(help="Prompt directory in math-evaluation-harness layout (cot/<name>.md)")
    ] = None,
    prompt_template: Annotated[
        Path | None,
        typer.Option(
            help="Your own jinja2 prompt template (variables: question, choices, question_with_choices, item)"
        ),
    ] = None,
    system_prompt: Annotated[str | None, typer.Option(help="System message for --prompt chat")] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Extra stop string (repeatable)")] = None,
    extractor: Annotated[str | None, typer.Option(help="Answer extractor [default: per benchmark]")] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            help="Compare model that decides the answers the grading rules leave uncertain: GGUF file, "
            "gemma3-270m, HF hub id or local directory (its verdicts are cached under --out/judge-cache)"
        ),
    ] = None,
    judge_backend: Annotated[
        str | None, typer.Option(help="llamacpp or hf for --judge [default: from the judge model]")
    ] = None,
    rel_tol: Annotated[
        float,
        typer.Option(help="Relative tolerance for numeric answers, where rounded answers count (0: exact)"),
    ] = 0.0,
    grade_timeout: Annotated[
        float | None, typer.Option(help="Seconds allowed per symbolic comparison [default: 5]")
    ] = None,
    max_new_tokens: Annotated[
        int | None,
        typer.Option(help="Generation budget per completion [default: per benchmark, 1024; arith 256]"),
    ] = None,
    temperature: Annotated[float, typer.Option(help="0 = greedy")] = 0.0,
    top_p: Annotated[float, typer.Option()] = 1.0,
    top_k: Annotated[int, typer.Option(help="0 = no top-k cut")] = 0,
    n: Annotated[int, typer.Option("--n", help="Samples per item (needs --temperature > 0)")] = 1,
    k: Annotated[
        str | None,
        typer.Option(
            "--k", help="k values for maj@k and pass@k, comma-separated [default: powers of 2 up to n]"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling, --shuffle, arith and train exemplars")] = 0,
    limit: Annotated[int | None, typer.Option(help="Evaluate the first N items")] = None,
    shuffle: Annotated[
        bool, typer.Option(help="Pick --limit items at random (seeded) instead of the first ones")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(help="Prompts per engine call [default: hf 8, llamacpp 1]")
    ] = None,
    dtype: Annotated[str, typer.Option(help="hf: auto, float32, float16 or bfloat16")] = "auto",
    device: Annotated[
        str | None, typer.Option(help="hf: cpu, cuda, cuda:1 ... [default: cuda if available]")
    ] = None,
    n_ctx: Annotated[int, typer.Option(help="llamacpp: context window")] = 4096,
    threads: Annotated[int | None, typer.Option(help="llamacpp: CPU threads [default: all cores]")] = None,
    revision: Annotated[str | None, typer.Option(help="hf: hub revision (branch, tag or commit)")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="openai: the server's address, e.g. http://127.0.0.1:8000/v1 [default: $OPENAI_BASE_URL]"
        ),
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="openai: environment variable that holds the API key")
    ] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(help="openai: requests in flight at once")] = 8,
    max_retries: Annotated[
        int,
        typer.Option(help="openai: retries (exponential backoff) on 429, 5xx, timeouts, dropped connections"),
    ] = 5,
    request_timeout: Annotated[float, typer.Option(help="openai: seconds per request")] = 600.0,
    tensor_parallel_size: Annotated[int, typer.Option(help="vllm: GPUs per model")] = 1,
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="vllm: share of GPU memory for weights and KV cache")
    ] = 0.9,
    exec_timeout: Annotated[
        float, typer.Option(help="pal/tora: wall seconds per program run in the sandbox")
    ] = 10.0,
    exec_memory_mb: Annotated[int, typer.Option(help="pal/tora: memory limit per program (MiB)")] = 2048,
    tool_rounds: Annotated[int, typer.Option(help="tora: code executions per answer at most")] = 4,
    tool_state: Annotated[
        str,
        typer.Option(
            help="tora: session (variables persist across a trajectory's code blocks) or fresh (each block "
            "alone, as math-evaluation-harness runs them)"
        ),
    ] = "session",
    exec_workers: Annotated[
        int | None, typer.Option(help="pal/tora: programs run at once [default: CPU count]")
    ] = None,
    require_isolation: Annotated[
        bool, typer.Option(help="pal/tora: fail rather than run model-written code without bubblewrap")
    ] = False,
    fresh: Annotated[
        bool, typer.Option(help="Discard a previous run in the same directory instead of resuming it")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar")] = False,
) -> None:
    """Evaluate a model on math benchmarks; re-running the same command resumes."""
    from mathforge.eval import EvalConfig, evaluate

    config = EvalConfig.build(
        model=model,
        backend=backend,
        benchmarks=_csv(bench),
        data_dir=data_dir,
        out=out,
        prompt=prompt,
        shots=shots,
        prompt_file=prompt_file,
        prompt_dir=prompt_dir,
        prompt_template=prompt_template,
        system_prompt=system_prompt,
        stop=stop or [],
        extractor=extractor,
        judge=judge,
        judge_backend=judge_backend,
        rel_tol=rel_tol,
        grade_timeout=grade_timeout,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        n=n,
        k=_ints(k, "--k"),
        seed=seed,
        limit=limit,
        shuffle=shuffle,
        batch_size=batch_size,
        dtype=dtype,
        device=device,
        n_ctx=n_ctx,
        n_threads=threads,
        revision=revision,
        base_url=base_url,
        api_key_env=api_key_env,
        concurrency=concurrency,
        max_retries=max_retries,
        request_timeout=request_timeout,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        exec_timeout=exec_timeout,
        exec_memory_mb=exec_memory_mb,
        tool_rounds=tool_rounds,
        tool_state=tool_state,
        exec_workers=exec_workers,
        require_isolation=require_isolation,
        fresh=fresh,
    )
    if data_dir is not None and not data_dir.is_dir():
        raise MathforgeError(f"--data-dir: no such directory: {data_dir}")
    results = evaluate(config, show_progress=not quiet)
    _print_results(results)


def _print_results(results: list) -> None:
    from rich.console import Console
    from rich.table import Table

    sampled = any(key.startswith(("maj@", "pass@")) for r in results for key in r.metrics)
    columns = ["benchmark", "model", "prompt", "n", "acc %", "no answer %"] + (
        ["maj@k / pass@k"] if sampled else []
    )
    table = Table(title="mathforge eval")
    for column in [*columns, "tok/s"]:
        table.add_column(column, justify="left" if column in ("benchmark", "model", "prompt") else "right")
    for result in results:
        m = result.metrics
        cells = [
            m["benchmark"],
            m["model"],
            str(m["prompt"]),
            str(m["n"]),
            f"{m['acc']:.1f}",
            f"{m['no_answer']:.1f}",
        ]
        if sampled:
            cells.append(", ".join(f"{key} {m[key]:.1f}" for key in m if key.startswith(("maj@", "pass@"))))
        table.add_row(*cells, f"{m['tokens_per_second']:.1f}")
    console = Console()
    console.print(table)
    for result in results:
        console.print(f"{result.benchmark}: {result.path}", soft_wrap=True, highlight=False)


@app.command("report")
def report_command(
    dirs: Annotated[
        list[Path], typer.Argument(help="Run directories, or folders containing them at any depth")
    ],
    format: Annotated[str, typer.Option("--format", help="markdown or csv")] = "markdown",
    best_of_prompts: Annotated[
        bool, typer.Option(help="Take the better of zero-shot and few-shot per benchmark")
    ] = False,
    metric: Annotated[str, typer.Option(help="Metric to tabulate: acc, maj@K, pass@K")] = "acc",
) -> None:
    """Tabulate runs: models as rows, benchmarks as columns, plus an Average column."""
    from mathforge.report import build_report

    typer.echo(build_report(dirs, fmt=format, best_of_prompts=best_of_prompts, metric=metric))


@app.command("regrade")
def regrade_command(
    file: Annotated[
        Path, typer.Argument(help="Output file to regrade: samples.jsonl of mathforge or another harness")
    ],
    bench: Annotated[str, typer.Option(help="Benchmark the file is for (see `mathforge benchmarks`)")],
    format: Annotated[
        str,
        typer.Option("--format", help="auto, mathforge, math-eval-harness, qwen25-math or lm-eval"),
    ] = "auto",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Take gold answers (and choices) from the benchmark's files here, matching rows by question "
            "text; without it the golds come from the file"
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the regraded rows here (a mathforge samples file) [default: not written]"),
    ] = None,
    workers: Annotated[int, typer.Option(help="Grade in this many processes")] = 1,
    json_: Annotated[
        bool, typer.Option("--json", help="End stdout with the metrics as one JSON line")
    ] = False,
    rel_tol: Annotated[float, typer.Option(help="Relative tolerance for numeric answers (0: exact)")] = 0.0,
    grade_timeout: Annotated[
        float | None, typer.Option(help="Seconds allowed per symbolic comparison [default: 5]")
    ] = None,
    extractor: Annotated[
        str | None, typer.Option(help="Answer extractor [default: the one eval uses for the benchmark]")
    ] = None,
    tool: Annotated[
        str,
        typer.Option(
            help="Tool-integrated outputs: pal (programs are run in the sandbox), tora (the answer is read from the "
            "prose, not the code or outputs), none, or auto (from the file: recorded by mathforge, or the "
            "harness's file name such as test_tora_...)"
        ),
    ] = "auto",
    exec_timeout: Annotated[float, typer.Option(help="pal: wall seconds per program run")] = 10.0,
) -> None:
    """Extract and grade the completions of an existing output file (its stored verdicts are not trusted)."""
    import json

    from mathforge.eval.regrade import prepare_out, regrade_file, write_rows

    if out is not None:
        prepare_out(out)  # a bad --out fails now, not after the regrading
    result = regrade_file(
        file,
        bench,
        fmt=format,
        data_dir=data_dir,
        workers=workers,
        rel_tol=rel_tol,
        timeout=grade_timeout,
        extractor=extractor,
        tool=tool,
        exec_timeout=exec_timeout,
    )
    if out is not None:
        write_rows(out, result.rows)
    _print_regrade(result.metrics, out)
    if json_:
        print(json.dumps(result.metrics, ensure_ascii=False), flush=True)


def _print_regrade(metrics: dict, out: Path | None) -> None:
    from rich.console import Console
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
    console = Console(width=None if sys.stdout.isatty() else 100)
    console.print(table)
    if out is not None:
        console.print(f"rows: {out}", soft_wrap=True, highlight=False)


@app.command("exec")
def exec_command(
    file: Annotated[Path, typer.Argument(help="Python program to run (untrusted code welcome)")],
    timeout: Annotated[
        float, typer.Option(help="Wall-clock seconds before the whole process tree is killed")
    ] = 10.0,
    memory_mb: Annotated[int, typer.Option(help="Address-space limit in MiB")] = 2048,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object: status, stdout, stderr, returncode, wall_seconds, truncated (and error)",
        ),
    ] = False,
    require_isolation: Annotated[
        bool, typer.Option(help="Fail instead of running without bubblewrap (resource limits alone)")
    ] = False,
) -> None:
    """Run a Python program in the sandbox that pal and tora use: isolated, resource-limited, time-limited.

    Exit status: the program's own for ok and error, 124 on timeout, 125 on memory, 128+N when killed by signal N.
    """
    import json

    from mathforge.errors import read_text
    from mathforge.sandbox import Limits, Sandbox

    code = read_text(file, "program")
    try:
        limits = Limits(timeout=timeout, memory_mb=memory_mb)
    except ValueError as error:
        raise MathforgeError(f"invalid option: {error}") from None
    result = Sandbox(limits, isolate=True if require_isolation else None).run(code, filename=file.name)
    if json_output:
        keys = ("status", "stdout", "stderr", "returncode", "wall_seconds", "truncated", "error", "isolated")
        print(json.dumps({key: getattr(result, key) for key in keys}))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.status != "ok":
            print(f"mathforge exec: {result.status}: {result.error}", file=sys.stderr)
    sys.exit(_exec_exit_status(result.status, result.returncode))


def _exec_exit_status(status: str, returncode: int | None) -> int:
    if status == "timeout":
        return 124
    if status == "memory":
        return 125
    if returncode is not None and returncode < 0:
        return 128 - returncode
    return returncode or (0 if status == "ok" else 1)


@app.command("benchmarks")
def benchmarks_command() -> None:
    """List the registered benchmarks."""
    from rich.console import Console
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
    # Wide enough for the hub ids when piped (rich assumes 80 columns off a terminal).
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _click_exceptions() -> tuple[type[Exception], ...]:
    """Click's exception base, wherever this typer keeps it (recent typers vendor their own click)."""
    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(__import__(module, fromlist=["ClickException"]).ClickException)
    return tuple(found)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit status 2."""
    try:
        app(args=argv, standalone_mode=False)
    except MathforgeError as error:
        _fail(str(error))
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
        _fail("interrupted; re-run the same command to resume", code=130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)


def _fail(message: str, code: int = 2) -> None:
    print(f"mathforge: error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
