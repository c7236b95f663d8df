"""QLoRA of a ~1B model on a GPU through `mathforge train sft`: peak GPU memory and tokens/s, beside plain LoRA on
the bf16 model with the same settings.

    pip install 'mathforge[qlora]'     # bitsandbytes
    python benchmarks/qlora_gpu.py [--model Qwen/Qwen3-1.7B] [--data FILE.jsonl] [--rows 512] [--steps 30]
                                   [--methods qlora,lora] [--gradient-checkpointing]

Not run in CI, and not runnable on a machine without a CUDA GPU (it says so in one line and exits with status 2).
Each method is one `train_sft` call in this process with the card's settings but for the model and the length of
the run: rank 16, alpha 16, dropout 0, all linear layers, lr 2e-4 cosine, 10 warmup steps, 8-bit AdamW
(`adamw_8bit`), max length 1024, the card's target format, `--batch-size` x `--grad-accum` sequences per step
(default 8 x 1), `--steps` optimiser steps; `qlora` loads the base in 4-bit NF4 with double quantisation and bf16
compute, `lora` in bf16. The data is the first `--rows` rows of `--data` (default: GSM8K's train split in the
shared layout, ../shared/data/benchmarks/gsm8k_openai/train.jsonl, else `arith` training problems).

Reported per method: peak GPU memory allocated and reserved by torch (`torch.cuda.max_memory_*`, from loading
the model to the end of training, the adapter saved), the model's own footprint after loading, training-loop
tokens/s (non-padding tokens over transformers' `train_runtime`), and the first and last loss. The JSON summary
goes to stdout. `--model` takes a hub id (the machine must reach the hub, or have it cached) or a local directory.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GSM8K_TRAIN = Path(__file__).resolve().parents[2] / "shared/data/benchmarks/gsm8k_openai/train.jsonl"
GIB = 1024**3


def require_gpu() -> None:
    """One line and status 2 where this cannot run: no CUDA GPU, or no bitsandbytes."""
    import torch

    if not torch.cuda.is_available():
        _fail("needs a CUDA GPU (QLoRA is bitsandbytes 4-bit NF4); torch sees none here")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        _fail("needs bitsandbytes: pip install 'mathforge[qlora]'")


def _fail(message: str) -> None:
    print(f"qlora_gpu.py: {message}", file=sys.stderr)
    sys.exit(2)


def training_rows(source: Path | None, count: int, target: Path) -> tuple[Path, str]:
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


def run(method: str, data: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    import gc

    import torch

    from mathforge.train.sft import SftOptions, train_sft

    gc.collect()  # the previous method's model
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    options = SftOptions.build(
        model=args.model,
        data=str(data),
        out=str(out),
        method=method,
        dtype="bf16",
        lora_r=16,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["all-linear"],
        learning_rate=2e-4,
        lr_scheduler="cosine",
        warmup_steps=10,
        optimizer="adamw_8bit",
        max_steps=args.steps,
        per_device_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        max_length=1024,
        gradient_checkpointing=args.gradient_checkpointing,
        save_steps=args.steps,
        tensorboard=False,
        quiet=True,
    )
    started = time.perf_counter()
    summary = train_sft(options, show_progress=False)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    runtime = next(row["train_runtime"] for row in rows if "train_runtime" in row)
    tokens = max(row.get("tokens", 0) for row in rows)
    losses = [row["loss"] for row in rows if "loss" in row]
    return {
        "method": method,
        "peak_allocated_gib": round((torch.cuda.max_memory_allocated() - before) / GIB, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 2),
        "steps": summary["steps"],
        "tokens": int(tokens),
        "train_runtime": round(runtime, 2),
        "tokens_per_second": round(tokens / runtime, 1),
        "wall_seconds_with_load": round(wall, 1),
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="Qwen/Qwen3-1.7B", help="hub id or local directory of a ~1B model")
    parser.add_argument("--data", type=Path, help=f"JSONL of question/answer rows [default: {GSM8K_TRAIN}]")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--methods", default="qlora,lora", help="comma list of qlora, lora, full")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the run directories under this folder")
    args = parser.parse_args()
    require_gpu()

    import torch

    from mathforge.train.trainer import library_versions, quiet_libraries

    quiet_libraries()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mf-qlora-"))
    work.mkdir(parents=True, exist_ok=True)
    data, described = training_rows(args.data, args.rows, work / "rows.jsonl")
    results = []
    for method in args.methods.split(","):
        result = run(method.strip(), data, work / method.strip(), args)
        print(json.dumps(result), file=sys.stderr, flush=True)
        results.append(result)
    versions = library_versions()
    print(
        json.dumps(
            {
                "model": args.model,
                "data": described,
                "settings": {
                    "steps": args.steps,
                    "batch_size": args.batch_size,
                    "grad_accum": args.grad_accum,
                    "gradient_checkpointing": args.gradient_checkpointing,
                },
                "gpu": f"{torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).total_memory / GIB:.0f} GiB)",
                "machine": f"{platform.machine()}, Python {platform.python_version()}",
                "versions": {
                    name: versions.get(name)
                    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes")
                },
                "results": results,
            },
            indent=2,
        )
    )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
