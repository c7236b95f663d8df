"""The evaluation runner: items -> prompts -> completions -> answers -> verdicts -> metrics, resumable.

Read `evaluate` top to bottom: it loads the engine once, then for each benchmark selects the items, skips the
ones a previous run finished, generates batch by batch (appending each finished batch to samples.jsonl), and
writes metrics.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mathforge import grading
from mathforge.backends import (
    CUT_SHORT,
    Backend,
    SamplingParams,
    engine_class,
    load_backend,
    resolve_model,
    serves_model,
)
from mathforge.benchmarks import BenchmarkSpec, Item, get_spec, load_items
from mathforge.errors import Interrupted, MathforgeError
from mathforge.eval.config import EvalConfig
from mathforge.eval.judge import Judge, default_cache_path, judge_rows, resolve_judge, rule_rows, summarize
from mathforge.eval.metrics import aggregate, default_ks
from mathforge.generation import Job, ToolSettings, ToolUse, Trajectory, generate
from mathforge.io import write_json_atomic
from mathforge.naming import model_name, slug
from mathforge.prompts import PromptConfig, Prompter, build_prompter
from mathforge.records import SampleRow, items_digest
from mathforge.rundir import RunDir
from mathforge.sandbox import Limits
from mathforge.tool_kinds import TOOL_KINDS


@dataclass
class RunResult:
    benchmark: str
    path: Path
    metrics: dict[str, Any]


def evaluate(config: EvalConfig, show_progress: bool = True) -> list[RunResult]:
    """Run every benchmark of `config` on one model; return the metrics and where each run was written."""
    specs = [get_spec(name) for name in config.benchmarks]  # unknown names fail before the model loads
    engine_name, model_ref = resolve_model(config.model, config.backend)
    judge_ref = resolve_judge(config.judge, config.judge_backend) if config.judge else None
    # The sandbox is checked (and --require-isolation enforced) before a model is loaded.
    tool = _tool_use(config) if config.prompt in TOOL_KINDS else None
    backend = load_backend(engine_name, model_ref, **config.engine_options)
    judge: Judge | None = None
    try:
        if judge_ref is not None:
            judge = _load_judge(config, judge_ref, (engine_name, model_ref), backend)
        identity = backend.identity()
        if serves_model(engine_name) and not config.model:  # the model the server said it serves
            config = config.model_copy(update={"model": identity["model"]})
        # Every benchmark's data, prompt and run directory are checked before the first token is generated.
        plans = [_plan(spec, config, backend, identity, judge, tool) for spec in specs]
        return [_execute(plan, config, backend, identity, show_progress, judge) for plan in plans]
    finally:
        if judge is not None:
            judge.close()
        if tool is not None:
            tool.close()
        backend.close()


def _tool_use(config: EvalConfig) -> ToolUse:
    limits = Limits(timeout=config.exec_timeout, memory_mb=config.exec_memory_mb)
    settings = ToolSettings(
        kind=config.prompt or "",
        rounds=config.tool_rounds,
        state=config.tool_state,
        limits=limits,
        require_isolation=config.require_isolation,
        workers=config.exec_workers,
    )
    return ToolUse(settings)


def _load_judge(
    config: EvalConfig,
    judge_ref: tuple[str, str],
    model_ref: tuple[str, str],
    backend: Backend,
) -> Judge:
    """The --judge model, sharing the evaluated model's engine when it is the same model (no second load).

    A judge on another engine gets those of the evaluation's engine options that its engine also has (not the
    revision), and the options given for its engine alone.
    """
    cache = default_cache_path(config.out, config.judge)
    batch_size = config.batch_size or 8
    if judge_ref == model_ref and config.engine_options.get("revision") is None:
        return Judge(backend, cache=cache, batch_size=batch_size, owns_backend=False)
    # The model's revision names a commit of the evaluated model, never of the judge.
    fields = set(engine_class(judge_ref[0]).options.model_fields) - {"revision"}
    shared = {key: value for key, value in config.engine_options.items() if key in fields}
    options = {**shared, **config.judge_engine_options}
    return Judge.load(*judge_ref, cache=cache, batch_size=batch_size, **options)


@dataclass
class _Plan:
    """One benchmark, ready to generate."""

    spec: BenchmarkSpec
    items: list[Item]
    prompter: Prompter
    params: SamplingParams
    grading_spec: grading.GradingSpec
    run_dir: RunDir
    fingerprint: dict[str, Any]
    batch_size: int
    tool: ToolUse | None = None


def _plan(
    spec: BenchmarkSpec,
    config: EvalConfig,
    backend: Backend,
    identity: dict[str, Any],
    judge: Judge | None,
    tool: ToolUse | None = None,
) -> _Plan:
    items = _select(load_items(spec, "test", config.data_dir, seed=config.seed), config, spec.default_limit)
    prompt_config = PromptConfig(
        format=config.prompt or ("custom" if config.prompt_template else spec.default_prompt),
        shots=config.shots,
        prompt_file=config.prompt_file,
        prompt_dir=config.prompt_dir,
        template_file=config.prompt_template,
        system_prompt=config.system_prompt,
        stop=tuple(config.stop),
        seed=config.seed,
    )
    prompter = build_prompter(spec, prompt_config, config.data_dir, backend.apply_chat_template)
    if prompter.tool is not None and (tool is None or tool.settings.kind != prompter.tool):
        # Only --prompt pal/tora starts the sandbox; a registry default of a tool format would need it too.
        raise MathforgeError(f"'{spec.name}' uses the {prompter.tool} format: pass --prompt {prompter.tool}")
    params = SamplingParams(
        max_new_tokens=config.max_new_tokens or spec.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        n=config.n,
        seed=config.seed,
        stop=prompter.stop,
        stop_on_loop=config.stop_on_loop and getattr(backend, "stops_loops", False),
    )
    grading_spec = config.grading_spec(spec)
    default_batch_size: int = getattr(backend, "default_batch_size", 1)  # an attribute of each engine class
    batch_size = config.batch_size or default_batch_size
    fingerprint = _fingerprint(spec, config, identity, prompter, params, grading_spec.extractor, batch_size)
    if judge is not None:  # only then: runs without a judge keep their fingerprint and directory
        fingerprint["judge"] = judge.fingerprint()
    if tool is not None:
        fingerprint["tool"] = tool.fingerprint()
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:8]
    run_dir = RunDir(config.out / slug(config.model) / f"{_run_name(spec, prompt_config, params)}__{digest}")
    return _Plan(spec, items, prompter, params, grading_spec, run_dir, fingerprint, batch_size, tool)


def _execute(
    plan: _Plan,
    config: EvalConfig,
    backend: Backend,
    identity: dict[str, Any],
    show_progress: bool,
    judge: Judge | None = None,
) -> RunResult:
    if config.fresh:
        plan.run_dir.clear()
    plan.run_dir.start(plan.fingerprint)
    done = plan.run_dir.finished_rows()
    if finished := _finished(plan, done):
        print(
            f"resuming: {finished} of {len(plan.items)} {plan.spec.name} items done ({plan.run_dir.path})",
            file=sys.stderr,
        )
    # Seed each item by its position in the benchmark, so a resumed run samples what a whole run would.
    jobs = [
        Job(item.id, plan.prompter.render(item), position)
        for position, item in enumerate(plan.items)
        if item.id not in done
    ]
    by_id = {item.id: item for item in plan.items}
    batches = generate(
        backend,
        jobs,
        plan.params,
        batch_size=plan.batch_size,
        tool=plan.tool,
        label=plan.spec.name,
        total=len(plan.items),
        show_progress=show_progress,
    )
    try:
        for batch in batches:
            rows = _graded_rows(batch.jobs, batch.trajectories, batch.seconds_each, by_id, plan, judge)
            plan.run_dir.append(rows)
            done.update({row["id"]: row for row in rows})
    except (
        KeyboardInterrupt
    ) as stop:  # Ctrl-C, or SIGTERM as the CLI raises it: the rows kept so far are safe
        signal_number = getattr(stop, "signal_number", signal.SIGINT)
        raise Interrupted(
            f"{'terminated' if signal_number == signal.SIGTERM else 'interrupted'}: {_finished(plan, done)} of "
            f"{len(plan.items)} {plan.spec.name} items done ({plan.run_dir.path}); re-run the same command to "
            "resume",
            signal_number,
        ) from None

    selected = [done[item.id] for item in plan.items]
    metrics = _metrics(plan, config, identity, selected, judge)
    write_json_atomic(plan.run_dir.metrics, metrics)
    return RunResult(plan.spec.name, plan.run_dir.path, metrics)


def _finished(plan: _Plan, done: dict[str, dict[str, Any]]) -> int:
    return sum(item.id in done for item in plan.items)


def _select(items: list[Item], config: EvalConfig, default_limit: int | None) -> list[Item]:
    """--shuffle picks a seeded random order; --limit keeps the first N of that order."""
    if config.shuffle:
        items = items[:]
        random.Random(config.seed).shuffle(items)
    limit = config.limit or default_limit
    return items[:limit] if limit else items


def _graded_rows(
    jobs: list[Job],
    generations: list[list[Trajectory]],
    seconds_each: float,
    items: dict[str, Item],
    plan: _Plan,
    judge: Judge | None = None,
) -> list[dict[str, Any]]:
    rows, batch_verdicts = [], []
    tool = plan.tool.kind.name if plan.tool is not None else None
    for job, generation in zip(jobs, generations, strict=True):
        item = items[job.id]
        scores = [
            grading.score(
                t.text,
                item.gold,
                plan.grading_spec,
                tool=tool,
                question=item.question,
                choices=item.choices,
                truncated=t.finish_reason in CUT_SHORT,
                program_answer=t.answer,
            )
            for t in generation
        ]
        batch_verdicts.append([s.verdict for s in scores])
        row = SampleRow(
            id=item.id,
            question=item.question,
            gold=item.gold,
            prompt=job.prompt,
            completions=[t.text for t in generation],
            tokens=[t.tokens for t in generation],
            finish_reasons=[t.finish_reason for t in generation],
            seconds=round(seconds_each, 4),
            tool=tool,
            executions=[t.executions for t in generation] if tool is not None else None,
            choices=item.choices or None,
            subsets=item.subsets or None,
        )
        row.grade(scores)
        rows.append(row.to_json())
    if judge is not None:  # the uncertain verdicts go to the judge; its time is not the model's tokens/s
        judge_rows(judge, rows, batch_verdicts)
    return rows


def _tool_metrics(rows: list[dict[str, Any]], tool: ToolUse) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for row in rows:
        for runs in row.get("executions", []):
            for run in runs:
                statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    return {
        "tool": {
            **tool.fingerprint(),
            "isolated": tool.sandbox.isolated,
            "executions": sum(statuses.values()),
            "statuses": statuses,
        }
    }


def _metrics(
    plan: _Plan,
    config: EvalConfig,
    identity: dict[str, Any],
    rows: list[dict[str, Any]],
    judge: Judge | None = None,
) -> dict[str, Any]:
    tokens = sum(sum(row["tokens"]) for row in rows)
    seconds = sum(row["seconds"] for row in rows)
    answer_type = plan.grading_spec.answer_type
    ks = config.k or default_ks(config.n)
    scores = aggregate(
        rows, ks, lambda a, b: grading.answers_equivalent(a, b, answer_type, timeout=config.grade_timeout)
    )
    judged = {}
    if judge is not None:
        judged["judge"] = {
            "model": model_name(config.judge),
            "identity": judge.model_identity,
            "prompt": judge.fingerprint()["prompt"],
            **summarize(rows),
            "rule_acc": aggregate(rule_rows(rows), ks, lambda a, b: False)["acc"],
        }
    return {
        "benchmark": plan.spec.name,
        "model": model_name(config.model),
        "prompt": plan.prompter.source.get("format"),
        **scores,
        "items": {"count": len(rows), "sha256": items_digest([row["id"] for row in rows])},
        "finish_reasons": _finish_reasons(rows),
        "stop_on_loop": plan.params.stop_on_loop,
        "tokens_generated": tokens,
        "wall_seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 2) if seconds else 0.0,
        "model_identity": identity,
        "prompt_source": plan.prompter.source,
        "config": config.model_dump(mode="json"),
        **judged,
        **(_tool_metrics(rows, plan.tool) if plan.tool is not None else {}),
        "fingerprint": plan.fingerprint,
        "versions": _versions(identity["backend"], *([judge.model_identity["backend"]] if judge else [])),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _finish_reasons(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many completions ended on EOS or a stop string, at the budget, or stopped in a loop."""
    counts = {"stop": 0, "length": 0, "loop": 0}
    for row in rows:
        for reason in row.get("finish_reasons") or []:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def _fingerprint(
    spec: BenchmarkSpec,
    config: EvalConfig,
    identity: dict[str, Any],
    prompter: Prompter,
    params: SamplingParams,
    extractor: str,
    batch_size: int,
) -> dict[str, Any]:
    """What must match for finished rows to be reused (limit and shuffle only choose items, so they don't count).

    The prompt counts by what it renders (exemplars, template text, chat template), not by file names, so an
    edited prompt file is a different run.
    """
    if spec.generator:
        data = f"generated:{config.seed}"
    else:
        data = str(config.data_dir.resolve()) if config.data_dir else "hub"
    probe = prompter.render(Item(id="probe", question="{question}", gold="", choices=None))
    engine = {key: value for key, value in identity.items() if key != "path"}
    if getattr(engine_class(identity["backend"]), "batch_changes_outputs", False):
        engine["batch_size"] = batch_size
    return {
        "benchmark": spec.name,
        "data": data,
        "engine": engine,
        "prompt": {
            "format": prompter.source.get("format"),
            "sha256": hashlib.sha256(probe.encode()).hexdigest(),
        },
        "sampling": {
            "max_new_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "n": params.n,
            "seed": params.seed,
            "stop": list(params.stop),
            # Not stop_on_loop: a loop stopped early is graded as the whole loop would be (see CUT_SHORT), so
            # runs with and without it measure the same, and a run from before the option resumes.
        },
        "extractor": extractor,
        # Only when set, so that runs from before the option keep their digest and resume.
        **({"rel_tol": config.rel_tol} if config.rel_tol else {}),
    }


def _run_name(spec: BenchmarkSpec, prompt: PromptConfig, params: SamplingParams) -> str:
    name = f"{spec.name}__{prompt.format}"
    if not params.greedy:
        name += f"__n{params.n}-t{params.temperature:g}-s{params.seed}"
    return name


def _versions(*backends: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    packages = ["mathforge", "sympy", "latex2sympy2_extended"]
    for backend in dict.fromkeys(backends):
        packages += getattr(engine_class(backend), "packages", ())
    found = {}
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found
