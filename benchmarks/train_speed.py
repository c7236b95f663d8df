"""Tokens/s of `mathforge train sft` against a plain TRL `SFTTrainer` script: same model, data and settings,
same run.

    .venv/bin/python benchmarks/train_speed.py [--model gemma3-270m|tiny|DIR] [--rows 200] [--steps 10]
                                               [--repeats 3] [--batch-size 4]

Both sides LoRA-train (rank 16, alpha 16, dropout 0, all linear layers; AdamW, lr 2e-4 cosine, 2 warmup steps,
fp32, no gradient checkpointing, a loss log line every step, seed 0) on the same `--rows` arith training
problems in the card's format (eval's zero-shot prompt, then "<think> steps </think> The answer is X." and EOS,
loss on the answer only), for `--steps` optimiser steps of `--batch-size` sequences each.

- mathforge: `train_sft(SftOptions(...))`, its defaults otherwise: the JSONL log (fsynced every step), the
  TensorBoard log, the token-counting trainer mixin, its progress callback, the run directory.
- plain TRL: the script a TRL user writes: a prompt/completion `Dataset`, `SFTConfig`, `SFTTrainer` with a peft
  `LoraConfig`, `trainer.train()`, `trainer.save_model()` (gradient checkpointing turned off, as in mathforge).

Both read the same transformers directory (the packaged GGUF is converted to one first, so that neither side
times the GGUF de-quantisation). Repeats alternate the sides (mathforge first, then TRL first, ...) so that
machine drift hits both. The headline is training-loop tokens/s: the tokens TRL counts (non-padding input
tokens) over `train_runtime` (transformers' own clock around the loop, checkpoint at the end included). The
whole call (reading and tokenizing the data, loading the model, training, saving) is reported beside it.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARMUP_STEPS = 2


def model_directory(name: str, work: Path) -> Path:
    """A transformers directory both sides load: `tiny` (a random Llama built here), the packaged Gemma 3 270M
    converted from its GGUF (`gemma3-270m`), or a directory given as is."""
    if name == "tiny":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny_models import build_tiny_llama

        return build_tiny_llama(work / "tiny-llama", hidden_size=512, layers=8)
    if Path(name).is_dir():
        return Path(name)
    from mathforge.train.models import load_model, load_tokenizer, resolve_base

    ref = resolve_base(name)
    target = work / "base"
    load_model(ref, dtype="fp32", device="cpu").save_pretrained(target)
    load_tokenizer(ref).save_pretrained(target)
    return target


def write_rows(path: Path, count: int) -> Path:
    from mathforge.benchmarks.arith import generate

    rows = generate(count, seed=0, split="train")
    path.write_text(
        "".join(json.dumps({"question": r["question"], "answer": r["answer"]}) + "\n" for r in rows)
    )
    return path


def prompt_completion_pairs(data: Path) -> list[dict[str, str]]:
    """The same texts mathforge trains on, as TRL's prompt/completion rows (TRL appends EOS itself)."""
    from mathforge.prompts import ZERO_SHOT
    from mathforge.train.examples import ExampleFields, read_examples

    return [
        {"prompt": ZERO_SHOT.format(question=example.question), "completion": " " + example.target}
        for example in read_examples(data, ExampleFields())
    ]


def run_mathforge(model: Path, data: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from mathforge.train.sft import SftOptions, train_sft

    started = time.perf_counter()
    options = SftOptions.build(
        model=str(model),
        data=str(data),
        out=str(out),
        dtype=args.dtype,
        device=args.device,
        max_steps=args.steps,
        per_device_batch_size=args.batch_size,
        warmup_steps=WARMUP_STEPS,
        max_length=args.max_length,
        save_steps=args.steps,
        quiet=True,
    )
    summary = train_sft(options, show_progress=False)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    runtime = next(row["train_runtime"] for row in rows if "train_runtime" in row)
    tokens = max(row.get("tokens", 0) for row in rows)
    return _figures("mathforge", tokens, runtime, wall, summary["final_loss"])


def run_plain_trl(
    model: Path, pairs: list[dict[str, str]], out: Path, args: argparse.Namespace
) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    base = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(args.device)
    config = SFTConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=2e-4,
        lr_scheduler_type="cosine",
        warmup_steps=WARMUP_STEPS,
        optim="adamw_torch",
        max_length=args.max_length,
        activation_checkpointing=False,
        logging_steps=1,
        save_steps=args.steps,
        report_to="none",
        disable_tqdm=True,
        use_cpu=args.device == "cpu",
        bf16=args.dtype == "bf16",
        seed=0,
        data_seed=0,
    )
    lora = LoraConfig(
        r=16, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    trainer = SFTTrainer(
        model=base,
        args=config,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=lora,
    )
    result = trainer.train()
    trainer.save_model(str(out / "adapter"))
    wall = time.perf_counter() - started
    history = trainer.state.log_history
    tokens = max(entry.get("num_tokens", 0) for entry in history)
    loss = next(entry["loss"] for entry in reversed(history) if "loss" in entry)
    return _figures("plain TRL", tokens, result.metrics["train_runtime"], wall, loss)


def _figures(
    side: str, tokens: float, runtime: float, wall: float, final_loss: float | None
) -> dict[str, Any]:
    return {
        "side": side,
        "tokens": int(tokens),
        "train_runtime": round(runtime, 2),
        "tokens_per_second": round(tokens / runtime, 2),
        "wall_seconds": round(wall, 2),
        "final_loss": round(final_loss, 4) if final_loss is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="gemma3-270m", help="gemma3-270m (packaged), tiny, or a directory")
    parser.add_argument("--rows", type=int, default=200, help="arith training problems")
    parser.add_argument("--steps", type=int, default=10, help="optimiser steps per run")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--device", default=None, help="cpu, cuda [default: cuda if available]")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = parser.parse_args()
    from mathforge.train.models import default_device

    args.device = args.device or default_device()
    from mathforge.train.trainer import library_versions, quiet_libraries

    quiet_libraries()
    work = Path(tempfile.mkdtemp(prefix="mf-train-speed-"))
    model = model_directory(args.model, work)
    data = write_rows(work / "arith-train.jsonl", args.rows)
    pairs = prompt_completion_pairs(data)
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        sides = ("mathforge", "trl") if repeat % 2 == 0 else ("trl", "mathforge")
        for side in sides:
            out = work / f"{side}-{repeat}"
            if side == "mathforge":
                figure = run_mathforge(model, data, out, args)
            else:
                figure = run_plain_trl(model, pairs, out, args)
            figure["repeat"] = repeat
            runs.append(figure)
            print(json.dumps(figure), file=sys.stderr, flush=True)
            shutil.rmtree(out, ignore_errors=True)
            gc.collect()
    print(json.dumps(report(runs, args, model, library_versions()), indent=2))
    if args.keep:
        print(f"work folder: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)


def report(
    runs: list[dict[str, Any]], args: argparse.Namespace, model: Path, versions: dict
) -> dict[str, Any]:
    def side(name: str) -> dict[str, Any]:
        mine = [run for run in runs if run["side"] == name]
        speeds = [run["tokens_per_second"] for run in mine]
        return {
            "tokens_per_run": sorted({run["tokens"] for run in mine}),
            "tokens_per_second_each": speeds,
            "tokens_per_second_median": round(statistics.median(speeds), 2),
            "tokens_per_second_best": max(speeds),
            "wall_seconds_median": round(statistics.median(run["wall_seconds"] for run in mine), 2),
            "final_loss_each": [run["final_loss"] for run in mine],
        }

    mathforge, trl = side("mathforge"), side("plain TRL")
    return {
        "model": args.model,
        "settings": {
            "rows": args.rows,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "repeats": args.repeats,
        },
        "machine": f"{platform.machine()}, {platform.python_version()}, {_device()}",
        "versions": {name: versions.get(name) for name in ("torch", "transformers", "trl", "peft")},
        "mathforge": mathforge,
        "plain_trl": trl,
        "ratio_median": round(mathforge["tokens_per_second_median"] / trl["tokens_per_second_median"], 3),
        "ratio_best": round(mathforge["tokens_per_second_best"] / trl["tokens_per_second_best"], 3),
        "runs": runs,
    }


def _device() -> str:
    import os

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} torch threads)"


if __name__ == "__main__":
    main()
