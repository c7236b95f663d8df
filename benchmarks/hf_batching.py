"""Tokens/s of the transformers backend at batch 1 and batch 8 on the same prompts (same run, same settings).

    .venv/bin/python benchmarks/hf_batching.py [--model DIR_OR_GGUF] [--items 16] [--max-new-tokens 64]

Without --model it times a small randomly initialised Llama built on the spot (about 30M parameters, so that
the batch effect shows on a CPU). Each figure is the best of --repeats runs of `mathforge.evaluate` on `arith`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mathforge.eval import EvalConfig, evaluate


def build_model(directory: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny_models import build_tiny_llama

    return build_tiny_llama(directory, hidden_size=512, layers=8)


def time_batch(model: str, backend: str | None, batch_size: int, args: argparse.Namespace) -> dict:
    best = None
    for _ in range(args.repeats):
        out = Path(tempfile.mkdtemp(prefix="mf-bench-"))
        config = EvalConfig(
            model=model,
            backend=backend,
            benchmarks=["arith"],
            limit=args.items,
            batch_size=batch_size,
            max_new_tokens=args.max_new_tokens,
            shots=1,
            out=out,
            dtype=args.dtype,
            # A random model never stops on its own: every completion runs the whole budget, as in a fair timing.
            stop=[],
        )
        started = time.perf_counter()
        metrics = evaluate(config, show_progress=False)[0].metrics
        wall = time.perf_counter() - started
        shutil.rmtree(out)
        figure = {
            "batch_size": batch_size,
            "tokens": metrics["tokens_generated"],
            "generate_seconds": metrics["wall_seconds"],
            "tokens_per_second": metrics["tokens_per_second"],
            "wall_seconds": round(wall, 2),
        }
        if best is None or figure["tokens_per_second"] > best["tokens_per_second"]:
            best = figure
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model")
    parser.add_argument("--backend", default=None)
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    model = args.model or str(build_model(Path(tempfile.mkdtemp(prefix="mf-model-"))))
    results = [time_batch(model, args.backend, size, args) for size in (1, 8)]
    import torch

    report = {
        "model": args.model or "random Llama (hidden 512, 8 layers)",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "results": results,
        "speedup_batch8_over_batch1": round(
            results[1]["tokens_per_second"] / results[0]["tokens_per_second"], 2
        ),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
