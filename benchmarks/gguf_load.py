"""Loading a GGUF file through transformers (`--backend hf`, and `train`/`merge` from a GGUF base): with
`reading_gguf_once` (gguf-py parses the file once per load) against transformers as it is (one parse for the
config, one for the tokenizer, one for the weights), same run.

    .venv/bin/python benchmarks/gguf_load.py [--model gemma3-270m|FILE.gguf] [--repeats 2]

Each repeat loads the hf engine (tokenizer and model, as `mathforge eval --backend hf` does) both ways,
alternating which goes first, each in a fresh process so that neither side finds the file in a warmer page
cache or a warmer allocator than the other. Reports seconds per load, the median of each side and their ratio,
and that both ways decode the same greedy tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import subprocess
import sys
import time

PROMPT = "The capital of France is"


def load_once(model: str, cached: bool) -> dict[str, object]:
    """In this process: load the hf engine from `model`, time it, and decode 8 greedy tokens."""
    from mathforge.backends import SamplingParams, hf, load_backend, resolve_model

    if not cached:  # transformers as it is: every open of the file parses it again
        hf.reading_gguf_once = contextlib.nullcontext  # type: ignore[assignment]
    path = resolve_model(model, "hf")[1]
    started = time.perf_counter()
    backend = load_backend("hf", path, device="cpu", dtype="float32")
    seconds = time.perf_counter() - started
    text = backend.generate([PROMPT], SamplingParams(max_new_tokens=8))[0].completions[0].text
    backend.close()
    return {"cached": cached, "seconds": round(seconds, 2), "text": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=["cached", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(load_once(args.model, args.child == "cached")))
        return
    results: dict[str, list[dict[str, object]]] = {"cached": [], "plain": []}
    for repeat in range(args.repeats):
        order = ["cached", "plain"] if repeat % 2 == 0 else ["plain", "cached"]
        for side in order:
            child = subprocess.run(
                [sys.executable, __file__, "--model", args.model, "--child", side],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(child.stdout.strip().splitlines()[-1])
            results[side].append(row)
            print(f"repeat {repeat + 1} {side:6} {row['seconds']:7.2f} s  {row['text']!r}", flush=True)
    median = {
        side: round(statistics.median(float(r["seconds"]) for r in rows), 2) for side, rows in results.items()
    }
    texts = {str(row["text"]) for rows in results.values() for row in rows}
    print(
        json.dumps(
            {
                "model": args.model,
                "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
                "median_seconds": median,
                "speedup": round(median["plain"] / median["cached"], 2),
                "same_text": len(texts) == 1,
            }
        )
    )


if __name__ == "__main__":
    main()
