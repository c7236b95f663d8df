"""mathforge's grader against Math-Verify on the same released MATH-500 outputs, each as a whole process.

    .venv/bin/python benchmarks/grading_vs_math_verify.py [--file FILE] [--rounds 3]

FILE defaults to Rho-Math-1B's released MATH-500 chain-of-thought outputs in ../shared (500 completions, gold
answers in the `gt` field). Each side is a fresh `python -c` process that imports its grader, reads the file and
grades every completion; the time is the whole process (imports, SymPy start-up, mathforge's grading child
included). mathforge side: `extract_answer` (auto) + `grade`, single process. Math-Verify side: `parse(gold)`,
`parse(completion)`, `verify`, its documented use. Rounds alternate the two so that machine drift hits both; the
median of each is reported. Then `mathforge regrade --workers 1` and `--workers 2` (CLI, whole process) show how
the process pool scales: on the 500-row file, where start-up (imports, one grading child per worker) is most of
the time, and on all 3,638 released Rho-Math completions in one mathforge-format file (graded as MATH
expressions, distinct answer pairs, so no cache hits), where grading is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = (
    REPO.parent / "shared/data/published/rho-1/rho-math-1b-v0.1/minerva_math/test_cot_-1_seed0_t0.0_s0_e-1.jsonl"
)

MATHFORGE = """
import json, sys
from mathforge.grading import extract_answer, grade
rows = [json.loads(line) for line in open(sys.argv[1])]
correct = sum(grade(extract_answer(r["code"][0]).answer, r["gt"], "expression").correct for r in rows)
print(json.dumps({"n": len(rows), "acc": round(100 * correct / len(rows), 1)}))
"""

MATH_VERIFY = """
import json, sys
from math_verify import parse, verify
rows = [json.loads(line) for line in open(sys.argv[1])]
correct = sum(bool(verify(parse("$" + r["gt"] + "$"), parse(r["code"][0]))) for r in rows)
print(json.dumps({"n": len(rows), "acc": round(100 * correct / len(rows), 1)}))
"""


def all_released_rows(released: Path, out: Path) -> Path:
    """Every released Rho-Math completion as one mathforge samples file (ids made unique per source file)."""
    with out.open("w") as sink:
        for number, path in enumerate(sorted(released.glob("*/*/*.jsonl"))):
            for line in path.open():
                row = json.loads(line)
                sink.write(
                    json.dumps(
                        {"id": f"{number}-{row['idx']}", "question": row["question"], "gold": row["gt"],
                         "completions": row["code"]}
                    )
                    + "\n"
                )
    return out


def timed(command: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    times: dict[str, list[float]] = {"mathforge": [], "math_verify": []}
    results: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, code in (("math_verify", MATH_VERIFY), ("mathforge", MATHFORGE)):
            seconds, result = timed([python, "-c", code, str(args.file)])
            times[name].append(seconds)
            results[name] = result
    mathforge_cli = str(Path(python).with_name("mathforge"))
    big = all_released_rows(args.file.parents[2], Path(tempfile.mkdtemp()) / "all_released.jsonl")
    for label, path in (("", args.file), ("all_released_", big)):
        for workers in (1, 2):
            name = f"regrade_{label}workers_{workers}"
            seconds, result = timed(
                [mathforge_cli, "regrade", str(path), "--bench", "math500", "--workers", str(workers), "--json"]
            )
            times[name] = [seconds]
            results[name] = {"n": result["n"], "acc": result["acc"]}
    medians = {name: round(statistics.median(values), 2) for name, values in times.items()}
    report = {
        "file": str(args.file.relative_to(REPO.parent) if args.file.is_relative_to(REPO.parent) else args.file),
        "seconds_median": medians,
        "seconds_all": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "results": results,
        "speedup_vs_math_verify": round(medians["math_verify"] / medians["mathforge"], 2),
        "workers_2_vs_1": round(medians["regrade_workers_1"] / medians["regrade_workers_2"], 2),
        "workers_2_vs_1_all_released": round(
            medians["regrade_all_released_workers_1"] / medians["regrade_all_released_workers_2"], 2
        ),
        "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
