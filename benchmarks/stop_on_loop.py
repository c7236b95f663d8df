"""Stopping loops during decoding: the same verdicts, less time, on the packaged model.

    .venv/bin/python benchmarks/stop_on_loop.py [--out DIR] [--gsm8k 30] [--math500 30] [--arith 50]

Runs `mathforge eval` (the CLI, whole process, llama.cpp engine) with the packaged Gemma 3 270M on the first
items of gsm8k and math500 zero-shot (from ../shared) and the default arith items, once with --no-stop-on-loop
and once with the default (--stop-on-loop), each benchmark in turn, so that machine drift hits both. Then it
compares the two runs item by item: every verdict and every extracted answer must be the same. Prints one JSON
object: per benchmark the wall seconds of each side, the tokens generated, the completions stopped in a loop,
and the verdicts that differ (the target: none).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared/data/benchmarks"


def run(bench: str, limit: int, out: Path, stop: bool) -> tuple[float, Path]:
    command = [sys.executable, "-m", "mathforge.cli", "eval", "--bench", bench, "--limit", str(limit)]
    command += ["--out", str(out), "--quiet", "--fresh", "--stop-on-loop" if stop else "--no-stop-on-loop"]
    if bench != "arith":
        command += ["--data-dir", str(DATA), "--prompt", "zero-shot"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    (metrics,) = (out / "gemma3-270m").glob(f"{bench}__*/metrics.json")
    return seconds, metrics.parent


def rows(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


def compare(full: Path, stopped: Path) -> dict:
    a, b = rows(full), rows(stopped)
    differ = [i for i in a if (a[i]["correct"], a[i]["preds"]) != (b[i]["correct"], b[i]["preds"])]
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (full, stopped)]
    return {
        "items": len(a),
        "acc": [m["acc"] for m in metrics],
        "tokens": [m["tokens_generated"] for m in metrics],
        "finish_reasons": [m["finish_reasons"] for m in metrics],
        "verdicts_or_answers_differ": differ,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where the runs go (default: a fresh temporary folder)")
    parser.add_argument("--gsm8k", type=int, default=30)
    parser.add_argument("--math500", type=int, default=30)
    parser.add_argument("--arith", type=int, default=50)
    args = parser.parse_args()
    args.out = args.out or Path(tempfile.mkdtemp(prefix="mf-stop-on-loop-"))
    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "benchmarks": {}}
    for bench in ("arith", "gsm8k", "math500"):
        limit = getattr(args, bench)
        full_seconds, full = run(bench, limit, args.out / "full", stop=False)
        stop_seconds, stopped = run(bench, limit, args.out / "stop", stop=True)
        report["benchmarks"][bench] = {
            "seconds": [round(full_seconds, 1), round(stop_seconds, 1)],
            **compare(full, stopped),
        }
        print(json.dumps({bench: report["benchmarks"][bench]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
