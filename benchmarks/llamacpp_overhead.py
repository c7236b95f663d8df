"""mathforge's llama.cpp backend against a bare llama-cpp-python loop, on the same prompts, in the same run.

    .venv/bin/python benchmarks/llamacpp_overhead.py [--items 50] [--rounds 2] [--max-new-tokens 256]

Both sides generate greedily from the packaged Gemma 3 270M GGUF for the same `--items` arith prompts (the
default few-shot prompt), with the same context size, threads and stop strings. The bare side is a plain loop
of `llm.create_completion`; the mathforge side is `mathforge.evaluate` (prompt rendering, generation, answer
extraction, grading, fsynced sample rows, metrics). Rounds alternate bare / mathforge so that machine drift hits
both; the best round of each is reported. Model loading is timed separately and left out of tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from mathforge.backends import packaged_model_path
from mathforge.benchmarks import get_spec, load_items
from mathforge.eval import EvalConfig, evaluate
from mathforge.prompts import PromptConfig, build_prompter

N_CTX = 4096


def bare_loop(model: Path, prompts: list[str], stop: tuple[str, ...], max_new_tokens: int) -> dict:
    from llama_cpp import Llama

    started = time.perf_counter()
    llm = Llama(model_path=str(model), n_ctx=N_CTX, n_threads=len(os.sched_getaffinity(0)), n_gpu_layers=-1, verbose=False)
    loaded = time.perf_counter()
    tokens = 0
    for prompt in prompts:
        out = llm.create_completion(prompt, max_tokens=max_new_tokens, temperature=0.0, stop=list(stop))
        tokens += out["usage"]["completion_tokens"]
    finished = time.perf_counter()
    llm.close()
    return _figures(tokens, loaded - started, finished - loaded)


def mathforge_eval(items: int, max_new_tokens: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    started = time.perf_counter()
    # Loops decoded to the budget, as the bare loop does: both sides generate the same tokens
    # (benchmarks/stop_on_loop.py measures what stopping them saves).
    config = EvalConfig(
        benchmarks=["arith"],
        limit=items,
        max_new_tokens=max_new_tokens,
        n_ctx=N_CTX,
        out=out,
        stop_on_loop=False,
    )
    metrics = evaluate(config, show_progress=False)[0].metrics
    total = time.perf_counter() - started
    shutil.rmtree(out)
    # metrics["wall_seconds"] sums the generate calls; the rest of `total` is loading, hashing and writing.
    generation = metrics["wall_seconds"]
    return _figures(metrics["tokens_generated"], total - generation, generation) | {
        "end_to_end_seconds": round(total, 2)
    }


def _figures(tokens: int, load_seconds: float, generate_seconds: float) -> dict:
    return {
        "tokens": tokens,
        "load_seconds": round(load_seconds, 2),
        "generate_seconds": round(generate_seconds, 2),
        "tokens_per_second": round(tokens / generate_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()

    spec = get_spec("arith")
    prompter = build_prompter(spec, PromptConfig(format=spec.default_prompt))
    prompts = [prompter.render(item) for item in load_items(spec)[: args.items]]
    model = packaged_model_path()

    bare_runs, mathforge_runs = [], []
    for _ in range(args.rounds):
        bare_runs.append(bare_loop(model, prompts, prompter.stop, args.max_new_tokens))
        mathforge_runs.append(mathforge_eval(args.items, args.max_new_tokens))
    bare = max(bare_runs, key=lambda r: r["tokens_per_second"])
    ours = max(mathforge_runs, key=lambda r: r["tokens_per_second"])
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
                "items": args.items,
                "max_new_tokens": args.max_new_tokens,
                "bare_llama_cpp": bare,
                "mathforge": ours,
                "all_rounds": {"bare": bare_runs, "mathforge": mathforge_runs},
                "ratio_tokens_per_second": round(ours["tokens_per_second"] / bare["tokens_per_second"], 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
