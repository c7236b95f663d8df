"""The vllm backend for real, on a GPU: GSM8K through vLLM, greedy and sampled, against transformers.

    pip install 'mathforge[vllm,hf]'
    python benchmarks/vllm_gpu_check.py [--model Qwen/Qwen2.5-0.5B] [--data-dir DIR] [--limit 64]

Not run in CI (the tests use a stand-in engine on the CPU). It runs `mathforge.evaluate` on the first --limit
GSM8K test items (from DIR/gsm8k/test.jsonl, or the hub without --data-dir) four times, in this order:

1. vllm, greedy;
2. vllm, --n samples at --temperature (seed 0);
3. vllm, the same sampled run again in a fresh directory: per-item seeds should repeat it;
4. hf (transformers on the same GPU, same dtype), greedy, on the same items.

Loading vLLM twice in one process also checks that `VLLMBackend.close` gives the GPU back. The summary (JSON on
stdout) has accuracy and tokens/s of each run, how often vLLM's and transformers' greedy completions and answers
agree (bf16 kernels differ, so long completions may drift apart; answers should mostly agree), whether the
sampled run repeated, and whether every run wrote rows of the same shape. The exit status is 1 when a shape check
fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mathforge.eval import EvalConfig, evaluate


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def _run(name: str, out: Path, **options: Any) -> dict[str, Any]:
    started = time.perf_counter()
    [result] = evaluate(EvalConfig(out=out / name, **options), show_progress=False)
    rows = _rows(result.path)
    summary = {
        "acc": result.metrics["acc"],
        "tokens_per_second": result.metrics["tokens_per_second"],
        "tokens_generated": result.metrics["tokens_generated"],
        "wall_seconds_with_load": round(time.perf_counter() - started, 1),
        "model_identity": result.metrics["model_identity"],
    }
    summary.update({key: value for key, value in result.metrics.items() if key.startswith(("pass@", "maj@"))})
    return {"summary": summary, "rows": rows}


def _share(pairs: list[tuple[Any, Any]]) -> float:
    return round(sum(a == b for a, b in pairs) / len(pairs), 4) if pairs else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B", help="hub id or local directory")
    parser.add_argument("--data-dir", type=Path, help="folder holding gsm8k/test.jsonl (default: the hub)")
    parser.add_argument("--limit", type=int, default=64, help="first N GSM8K test items")
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--n", type=int, default=4, help="samples per item in the sampled runs")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--dtype", default="bfloat16", help="for both engines, so that they compare")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.6)
    parser.add_argument("--out", type=Path, help="run directories (default: a fresh temporary folder)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="mf-vllm-check-"))
    common = dict(
        model=args.model,
        benchmarks=["gsm8k"],
        data_dir=args.data_dir,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        dtype=args.dtype,
        stop_on_loop=False,  # vLLM decodes loops to the budget: so must transformers, for the texts to compare
    )
    vllm = dict(common, backend="vllm", gpu_memory_utilization=args.gpu_memory_utilization)
    sampled = dict(vllm, n=args.n, temperature=args.temperature, seed=0)

    greedy = _run("vllm-greedy", out, **vllm)
    sample = _run("vllm-sampled", out, **sampled)
    again = _run("vllm-sampled-again", out, **sampled)
    hf = _run("hf-greedy", out, **common, backend="hf")

    pairs = list(zip(greedy["rows"], hf["rows"], strict=True))
    keys = {name: [list(row) for row in run["rows"]] for name, run in [("greedy", greedy), ("hf", hf)]}
    checks = {
        "rows_same_keys_as_hf": keys["greedy"] == keys["hf"]
        and all(list(row) == list(hf_row) for row, hf_row in zip(sample["rows"], hf["rows"], strict=True)),
        "same_items": [r["id"] for r in greedy["rows"]] == [r["id"] for r in hf["rows"]],
        "same_prompts": all(a["prompt"] == b["prompt"] for a, b in pairs),
        "n_completions_per_sampled_row": all(len(row["completions"]) == args.n for row in sample["rows"]),
    }
    summary = {
        "model": args.model,
        "items": len(greedy["rows"]),
        "out": str(out),
        "runs": {
            "vllm_greedy": greedy["summary"],
            "vllm_sampled": sample["summary"],
            "hf_greedy": hf["summary"],
        },
        "greedy_agreement_vllm_vs_hf": {
            "completions_identical": _share([(a["completions"], b["completions"]) for a, b in pairs]),
            "answers_identical": _share([(a["preds"], b["preds"]) for a, b in pairs]),
            "verdicts_identical": _share([(a["correct"], b["correct"]) for a, b in pairs]),
        },
        "sampled": {
            "distinct_completions_per_item": round(
                sum(len(set(row["completions"])) for row in sample["rows"]) / max(len(sample["rows"]), 1), 2
            ),
            "rerun_identical": _share(
                [
                    (a["completions"], b["completions"])
                    for a, b in zip(sample["rows"], again["rows"], strict=True)
                ]
            ),
        },
        "checks": checks,
    }
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
