"""Token scoring tokens/s against generation tokens/s of the same engine and model, in the same run.

    .venv/bin/python benchmarks/scoring_throughput.py [--backends llamacpp,hf] [--items 20] [--max-new-tokens 64]
        [--rounds 2] [--texts prompts|solutions]

Model: the packaged Gemma 3 270M Q4_K_M GGUF (llama.cpp runs it quantized; hf dequantizes it to float32).
Texts: the first --items GSM8K test questions as "Question: ...\\nAnswer:" prompts (--texts solutions appends the
reference solution, for longer texts). Scoring is `backend.score` over the texts in the batches `mathforge score`
uses (hf 8, llamacpp 16); generation is `backend.generate` of --max-new-tokens greedy tokens for the same prompts
(no stop strings) in the batches `mathforge eval` uses (hf 8, llamacpp 1). Scoring tokens/s counts the scored
tokens (the prompt is the work); generation tokens/s counts generated tokens (prompt processing included in the
time, as in eval's figures). Rounds alternate scoring / generation so that machine drift hits both; the best
round of each is reported. Model loading is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from mathforge.backends import load_backend, packaged_model_path
from mathforge.backends.base import SamplingParams
from mathforge.io import read_jsonl
from mathforge.scoring import DEFAULT_BATCH_SIZES

GSM8K = Path(os.environ.get("MATHFORGE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GSM8K = GSM8K / "data" / "benchmarks" / "gsm8k" / "test.jsonl"
GENERATE_BATCH = {"hf": 8, "llamacpp": 1}  # `mathforge eval`'s defaults


def load_texts(items: int, kind: str) -> list[str]:
    rows = [row for _, row in read_jsonl(GSM8K)][:items]
    prompts = [f"Question: {row['question']}\nAnswer:" for row in rows]
    if kind == "solutions":
        return [f"{prompt} {row['answer']}" for prompt, row in zip(prompts, rows, strict=True)]
    return prompts


def time_scoring(backend: object, name: str, texts: list[str]) -> dict:
    size = DEFAULT_BATCH_SIZES[name]
    started = time.perf_counter()
    tokens = 0
    for start in range(0, len(texts), size):
        tokens += sum(scores.count for scores in backend.score(texts[start : start + size]))  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    return {"tokens": tokens, "seconds": round(seconds, 2), "tokens_per_second": round(tokens / seconds, 1)}


def time_generation(backend: object, name: str, prompts: list[str], max_new_tokens: int) -> dict:
    size = GENERATE_BATCH[name]
    params = SamplingParams(max_new_tokens=max_new_tokens)
    started = time.perf_counter()
    tokens = 0
    for start in range(0, len(prompts), size):
        generations = backend.generate(prompts[start : start + size], params)  # type: ignore[attr-defined]
        tokens += sum(c.tokens for g in generations for c in g.completions)
    seconds = time.perf_counter() - started
    return {"tokens": tokens, "seconds": round(seconds, 2), "tokens_per_second": round(tokens / seconds, 1)}


def run_engine(name: str, texts: list[str], prompts: list[str], args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    backend = load_backend(name, str(packaged_model_path()))
    load_seconds = time.perf_counter() - started
    scoring, generation = [], []
    try:
        for _ in range(args.rounds):
            scoring.append(time_scoring(backend, name, texts))
            generation.append(time_generation(backend, name, prompts, args.max_new_tokens))
    finally:
        backend.close()
    best_scoring = max(scoring, key=lambda r: r["tokens_per_second"])
    best_generation = max(generation, key=lambda r: r["tokens_per_second"])
    return {
        "load_seconds": round(load_seconds, 1),
        "scoring": best_scoring,
        "generation": best_generation,
        "ratio_scoring_to_generation": round(
            best_scoring["tokens_per_second"] / best_generation["tokens_per_second"], 1
        ),
        "all_rounds": {"scoring": scoring, "generation": generation},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="llamacpp,hf")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--texts", choices=("prompts", "solutions"), default="prompts")
    args = parser.parse_args()
    prompts = load_texts(args.items, "prompts")
    texts = load_texts(args.items, args.texts)
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "model": packaged_model_path().name,
        "items": args.items,
        "texts": args.texts,
        "max_new_tokens": args.max_new_tokens,
    }
    for name in args.backends.split(","):
        report[name] = run_engine(name, texts, prompts, args)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
