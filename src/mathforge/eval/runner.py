"""The evaluation runner: items -> prompts -> completions -> answers -> verdicts -> metrics, resumable.

Read `evaluate` top to bottom: it loads the engine once, then for each benchmark selects the items, skips the
ones a previous run finished, generates batch by batch (appending each finished batch to samples.jsonl), and
writes metrics.json.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mathforge import grading
from mathforge.backends import Backend, SamplingParams, load_backend, resolve_model
from mathforge.benchmarks import BenchmarkSpec, Item, get_spec, load_items
from mathforge.errors import MathforgeError
from mathforge.eval.config import EvalConfig
from mathforge.eval.metrics import aggregate, default_ks
from mathforge.eval.progress import EvalProgress
from mathforge.eval.rundir import RunDir, write_json_atomic
from mathforge.prompts import PromptConfig, Prompter, build_prompter

# How many prompts an engine takes at once when --batch-size is not given.
_DEFAULT_BATCH = {"hf": 8}


@dataclass
class RunResult:
    benchmark: str
    path: Path
    metrics: dict[str, Any]


def evaluate(config: EvalConfig, show_progress: bool = True) -> list[RunResult]:
    """Run every benchmark of `config` on one model; return the metrics and where each run was written."""
    specs = [get_spec(name) for name in config.benchmarks]  # unknown names fail before the model loads
    engine_name, model_ref = resolve_model(config.model, config.backend)
    backend = load_backend(
        engine_name,
        model_ref,
        dtype=config.dtype,
        device=config.device,
        n_ctx=config.n_ctx,
        n_threads=config.n_threads,
        revision=config.revision,
    )
    try:
        identity = backend.identity()
        return [_run_benchmark(spec, config, backend, identity, show_progress) for spec in specs]
    finally:
        backend.close()


def _run_benchmark(
    spec: BenchmarkSpec, config: EvalConfig, backend: Backend, identity: dict[str, Any], show_progress: bool
) -> RunResult:
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
    if items:
        prompter.render(
            items[0]
        )  # a broken template or a base model asked to chat fails before any generation
    params = SamplingParams(
        max_new_tokens=config.max_new_tokens or spec.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=config.top_k,
        n=config.n,
        seed=config.seed,
        stop=prompter.stop,
    )
    extractor = config.extractor or ("choice" if spec.answer_type == "choice" else spec.extractor)
    if extractor not in grading.EXTRACTORS:
        raise MathforgeError(f"--extractor must be one of {', '.join(grading.EXTRACTORS)}, got '{extractor}'")

    run_dir = RunDir(config.out / _slug(identity, config.model) / _run_name(spec, prompt_config, params))
    fingerprint = _fingerprint(spec, config, identity, prompter, params, extractor)
    if config.fresh:
        run_dir.clear()
    run_dir.start(fingerprint)
    done = run_dir.finished_rows()
    todo = [item for item in items if item.id not in done]

    batch_size = config.batch_size or _DEFAULT_BATCH.get(backend.name, 1)
    with EvalProgress(
        spec.name, total=len(items), done=len(items) - len(todo), enabled=show_progress
    ) as progress:
        for batch in _batches(todo, batch_size):
            rows = _generate_rows(batch, items, prompter, backend, params, spec, extractor)
            run_dir.append(rows)
            done.update({row["id"]: row for row in rows})
            progress.advance(len(rows), sum(sum(row["tokens"]) for row in rows))

    selected = [done[item.id] for item in items]
    metrics = _metrics(spec, config, identity, prompter, selected, fingerprint)
    write_json_atomic(run_dir.metrics, metrics)
    return RunResult(spec.name, run_dir.path, metrics)


def _select(items: list[Item], config: EvalConfig, default_limit: int | None) -> list[Item]:
    """--shuffle picks a seeded random order; --limit keeps the first N of that order."""
    if config.shuffle:
        items = items[:]
        random.Random(config.seed).shuffle(items)
    limit = config.limit or default_limit
    return items[:limit] if limit else items


def _batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _generate_rows(
    batch: list[Item],
    items: list[Item],
    prompter: Prompter,
    backend: Backend,
    params: SamplingParams,
    spec: BenchmarkSpec,
    extractor: str,
) -> list[dict[str, Any]]:
    prompts = [prompter.render(item) for item in batch]
    # Seed each item by its position in the benchmark, so a resumed run samples what a whole run would.
    position = {item.id: index for index, item in enumerate(items)}
    started = time.perf_counter()
    generations = backend.generate(prompts, params, seed_offsets=[position[item.id] for item in batch])
    seconds_each = (time.perf_counter() - started) / len(batch)
    rows = []
    for item, prompt, generation in zip(batch, prompts, generations, strict=True):
        texts = [completion.text for completion in generation.completions]
        extractions = [grading.extract_answer(text, extractor, item.choices) for text in texts]
        verdicts = [grading.grade(e.answer, item.gold, spec.answer_type) for e in extractions]
        rows.append(
            {
                "id": item.id,
                "question": item.question,
                "gold": item.gold,
                "prompt": prompt,
                "completions": texts,
                "preds": [e.answer for e in extractions],
                "correct": [v.correct for v in verdicts],
                "extract_rules": [e.rule for e in extractions],
                "grade_rules": [v.rule for v in verdicts],
                "tokens": [c.tokens for c in generation.completions],
                "finish_reasons": [c.finish_reason for c in generation.completions],
                "seconds": round(seconds_each, 4),
                **({"choices": item.choices} if item.choices else {}),
                **({"subsets": item.subsets} if item.subsets else {}),
            }
        )
    return rows


def _metrics(
    spec: BenchmarkSpec,
    config: EvalConfig,
    identity: dict[str, Any],
    prompter: Prompter,
    rows: list[dict[str, Any]],
    fingerprint: dict[str, Any],
) -> dict[str, Any]:
    tokens = sum(sum(row["tokens"]) for row in rows)
    seconds = sum(row["seconds"] for row in rows)
    scores = aggregate(
        rows,
        config.k or default_ks(config.n),
        lambda a, b: grading.answers_equivalent(a, b, spec.answer_type),
    )
    return {
        "benchmark": spec.name,
        "model": _model_name(identity, config.model),
        "prompt": prompter.source.get("format"),
        **scores,
        "tokens_generated": tokens,
        "wall_seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 2) if seconds else 0.0,
        "model_identity": identity,
        "prompt_source": prompter.source,
        "config": config.model_dump(mode="json"),
        "fingerprint": fingerprint,
        "versions": _versions(identity["backend"]),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _fingerprint(
    spec: BenchmarkSpec,
    config: EvalConfig,
    identity: dict[str, Any],
    prompter: Prompter,
    params: SamplingParams,
    extractor: str,
) -> dict[str, Any]:
    """What must match for finished rows to be reused (limit and shuffle only choose items, so they don't count)."""
    return {
        "benchmark": spec.name,
        "data": str(config.data_dir.resolve())
        if config.data_dir
        else "hub"
        if not spec.generator
        else "generated",
        "model": identity.get("sha256") or identity.get("revision") or identity.get("model"),
        "backend": identity["backend"],
        "prompt": prompter.source,
        "sampling": {
            "max_new_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "n": params.n,
            "seed": params.seed,
            "stop": list(params.stop),
        },
        "extractor": extractor,
    }


def _run_name(spec: BenchmarkSpec, prompt: PromptConfig, params: SamplingParams) -> str:
    name = f"{spec.name}__{prompt.format}"
    if not params.greedy:
        name += f"__n{params.n}-t{params.temperature:g}-s{params.seed}"
    return name


def _model_name(identity: dict[str, Any], model: str | None) -> str:
    if model is None or model in ("gemma3-270m", "gemma-3-270m"):
        return "gemma3-270m"
    return (
        Path(model).stem
        if model.endswith(".gguf")
        else model.rstrip("/").split("/")[-1]
        if model.startswith((".", "/", "~"))
        else model
    )


def _slug(identity: dict[str, Any], model: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", _model_name(identity, model))


def _versions(backend: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    packages = ["mathforge", "sympy", "latex2sympy2_extended"]
    packages += ["llama-cpp-python"] if backend == "llamacpp" else ["torch", "transformers"]
    found = {}
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found
