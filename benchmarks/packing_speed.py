"""Packing against padded batches in `mathforge train sft` on short GSM8K-style data: the speed-up of one epoch
and the two loss curves side by side.

    .venv/bin/python benchmarks/packing_speed.py [--data FILE.jsonl] [--rows 128] [--model gemma3-270m|tiny|DIR]
                                                 [--batch-size 4] [--png curves.png]

Both runs LoRA-train the same model (mathforge's defaults: rank 16, alpha 16, all linear layers, lr 2e-4 cosine,
AdamW; here fp32 and 2 warmup steps) for one epoch over the same first `--rows` rows of `--data` (default: GSM8K's
train split in the shared data layout, ../shared/data/benchmarks/gsm8k_openai/train.jsonl, else `arith` training
problems), in the card's target format:

- padded: `--batch-size` examples per step, each batch padded to its longest example;
- packed: `--packing`, one row per step holding whole examples up to `--pack-length` tokens (default: the
  batch size times the mean example length, rounded up to 64, so that a step carries about as many examples as
  a padded one), samples kept apart by their position ids (TRL's padding-free collator).

The speed-up is examples per second over the epoch (transformers' `train_runtime`), packed over padded; tokens/s
counts non-padding tokens. The loss curves are the per-step training losses against the fraction of the epoch
done: a PNG with `--png` where matplotlib is installed, and always a table of the mean loss per tenth of the
epoch. `--order packed-first` swaps the order of the two runs.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

GSM8K_TRAIN = Path(__file__).resolve().parents[2] / "shared/data/benchmarks/gsm8k_openai/train.jsonl"
BINS = 10


def training_rows(source: Path | None, count: int, target: Path) -> tuple[Path, str]:
    """The first `count` rows of the data file (GSM8K train by default; arith when it is not there)."""
    source = source or (GSM8K_TRAIN if GSM8K_TRAIN.exists() else None)
    if source is None:
        from mathforge.benchmarks.arith import generate

        rows = [{"question": r["question"], "answer": r["answer"]} for r in generate(count, 0, "train")]
        target.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return target, f"arith train split, first {count}"
    with open(source, encoding="utf-8") as lines:
        kept = [line for _, line in zip(range(count), lines, strict=False)]
    target.write_text("".join(kept))
    return target, f"{source}, first {len(kept)} rows"


def model_directory(name: str, work: Path) -> str:
    if name == "tiny":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny_models import build_tiny_llama

        return str(build_tiny_llama(work / "tiny-llama", hidden_size=512, layers=8))
    return name  # the packaged GGUF alias, a hub id or a directory: mathforge loads it as `train sft` does


def mean_example_length(model: str, data: Path, max_length: int) -> float:
    from mathforge.train.sft import SftOptions, train_sft

    counts = train_sft(SftOptions.build(model=model, data=str(data), max_length=max_length, dry_run=True))
    return float(counts["tokens_per_example"]["mean"])


def train(model: str, data: Path, out: Path, packing: bool, args: argparse.Namespace) -> dict[str, Any]:
    from mathforge.train.sft import SftOptions, train_sft

    options = SftOptions.build(
        model=model,
        data=str(data),
        out=str(out),
        dtype="fp32",
        device=args.device,
        epochs=1,
        warmup_steps=2,
        packing=packing,
        max_length=args.pack_length if packing else args.max_length,
        per_device_batch_size=1 if packing else args.batch_size,
        save_steps=10_000,  # one checkpoint, at the end, on both sides
        tensorboard=False,
        quiet=True,
    )
    summary = train_sft(options, show_progress=False)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    runtime = next(row["train_runtime"] for row in rows if "train_runtime" in row)
    losses = [(row["epoch"], row["loss"]) for row in rows if "loss" in row]
    tokens = max(row.get("tokens", 0) for row in rows)
    return {
        "run": "packed" if packing else "padded",
        "steps": summary["steps"],
        "examples": summary["examples"],
        "train_runtime": round(runtime, 2),
        "examples_per_second": round(summary["examples"] / runtime, 3),
        "tokens": int(tokens),
        "tokens_per_second": round(tokens / runtime, 2),
        "mean_loss": round(sum(loss for _, loss in losses) / len(losses), 4),
        "last_tenth_loss": _binned(losses)[-1],
        "losses": losses,
    }


def _binned(losses: list[tuple[float, float]]) -> list[float | None]:
    """Mean loss per tenth of the epoch (by where each step ends)."""
    bins: list[list[float]] = [[] for _ in range(BINS)]
    for epoch, loss in losses:
        bins[min(BINS - 1, max(0, math.ceil(epoch * BINS) - 1))].append(loss)
    return [round(sum(b) / len(b), 4) if b else None for b in bins]


def loss_table(padded: dict[str, Any], packed: dict[str, Any]) -> str:
    lines = ["| epoch | padded loss | packed loss |", "|---|---:|---:|"]
    for index, (a, b) in enumerate(zip(_binned(padded["losses"]), _binned(packed["losses"]), strict=True)):
        lines.append(f"| {index / BINS:.1f}-{(index + 1) / BINS:.1f} | {_cell(a)} | {_cell(b)} |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def plot(padded: dict[str, Any], packed: dict[str, Any], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(7, 4))
    for run in (padded, packed):
        epochs, losses = zip(*run["losses"], strict=True)
        axes.plot(epochs, losses, marker=".", label=f"{run['run']} ({run['steps']} steps)")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help=f"JSONL of question/answer rows [default: {GSM8K_TRAIN}]")
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument(
        "--model", default="gemma3-270m", help="gemma3-270m (packaged), tiny, hub id or directory"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="examples per padded batch")
    parser.add_argument("--max-length", type=int, default=1024, help="token cap per example (padded run)")
    parser.add_argument(
        "--pack-length", type=int, help="tokens per packed row [default: batch x mean length]"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda [default: cuda if available]")
    parser.add_argument("--order", choices=("padded-first", "packed-first"), default="padded-first")
    parser.add_argument("--png", type=Path, help="write the two loss curves here (needs matplotlib)")
    args = parser.parse_args()

    from mathforge.train.trainer import library_versions, quiet_libraries

    quiet_libraries()
    work = Path(tempfile.mkdtemp(prefix="mf-packing-"))
    model = model_directory(args.model, work)
    data, described = training_rows(args.data, args.rows, work / "rows.jsonl")
    mean_length = mean_example_length(model, data, args.max_length)
    if args.pack_length is None:
        args.pack_length = max(64, math.ceil(args.batch_size * mean_length / 64) * 64)
    order = (False, True) if args.order == "padded-first" else (True, False)
    results = {}
    for packing in order:
        result = train(model, data, work / ("packed" if packing else "padded"), packing, args)
        print(json.dumps({k: v for k, v in result.items() if k != "losses"}), file=sys.stderr, flush=True)
        results[result["run"]] = result
    padded, packed = results["padded"], results["packed"]
    versions = library_versions()
    report = {
        "model": args.model,
        "data": described,
        "mean_tokens_per_example": mean_length,
        "batch_size_padded": args.batch_size,
        "pack_length": args.pack_length,
        "machine": f"{platform.machine()}, Python {platform.python_version()}, {_device()}",
        "versions": {name: versions.get(name) for name in ("torch", "transformers", "trl", "peft")},
        "padded": {k: v for k, v in padded.items() if k != "losses"},
        "packed": {k: v for k, v in packed.items() if k != "losses"},
        "speedup_examples_per_second": round(
            packed["examples_per_second"] / padded["examples_per_second"], 3
        ),
        "loss_curves": {"padded": padded["losses"], "packed": packed["losses"]},
    }
    if args.png:
        title = f"{args.model}, {described.split(',')[0]}"
        report["png"] = str(args.png) if plot(padded, packed, args.png, title) else "matplotlib not installed"
    print(json.dumps(report))
    print(loss_table(padded, packed))
    shutil.rmtree(work, ignore_errors=True)


def _device() -> str:
    import os

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} torch threads)"


if __name__ == "__main__":
    main()
