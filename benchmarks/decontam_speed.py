"""Decontamination speed: the `decontam` stage's rows/s over 100k rows once its index is built, and the build.

    .venv/bin/python benchmarks/decontam_speed.py [--rows 100000] [--against gsm8k,math] [--planted 1000]
        [--data-dir ../shared/data/benchmarks] [--curate-workers N]

Rows: GSM8K train (7,473), --planted contaminated rows (test questions, half GSM8K and half MATH, a third
each verbatim, reformatted: upper case, a "Problem:" label, other spacing, and with one number changed), and
`arith` train problems (seeds 0, 1, ...) up to --rows; shuffled with a fixed seed. The stage is built as
`curate` builds it (default options, --against); `setup` (the index) is timed alone, then `check` runs over
the rows in batches of 1000 (curate's default) in this one process. Target: at least 20k rows/s after the
build. With --curate-workers N the same rows also go through `curate` (JSONL in and out, N worker processes
that each build the index), timed end to end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mathforge.benchmarks import arith, get_spec, load_items
from mathforge.data.stages import STAGES, StageContext
from mathforge.io import read_jsonl

SHARED = Path(os.environ.get("MATHFORGE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = SHARED / "data" / "benchmarks"
BATCH = 1000


def _one_number_changed(text: str) -> str:
    return re.sub(r"\d+", lambda found: str(int(found.group()) + 7), text, count=1)


VARIANTS = {
    "verbatim": lambda q: q,
    "reformatted": lambda q: "Problem:  " + " ".join(q.upper().split()),
    "one number changed": _one_number_changed,
}


def planted_rows(count: int, data_dir: Path, rng: random.Random) -> list[dict[str, Any]]:
    """Test questions, half GSM8K and half MATH, each in one of `VARIANTS` (the row's "planted" says so)."""
    items = {name: load_items(get_spec(name), "test", data_dir) for name in ("gsm8k", "math")}
    rows = []
    for index in range(count):
        benchmark = "gsm8k" if index % 2 == 0 else "math"
        variant = list(VARIANTS)[index // 2 % len(VARIANTS)]
        question = rng.choice(items[benchmark]).question
        if variant == "one number changed" and not re.search(r"\d", question):
            variant = "verbatim"
        rows.append({"question": VARIANTS[variant](question), "planted": f"{benchmark}, {variant}"})
    return rows


def build_rows(total: int, planted: int, data_dir: Path) -> list[dict[str, Any]]:
    rng = random.Random(0)
    rows = [{"question": row["question"]} for _, row in read_jsonl(data_dir / "gsm8k_openai" / "train.jsonl")]
    rows += planted_rows(planted, data_dir, rng)
    seed = 0
    while len(rows) < total:
        rows += [
            {"question": row["question"]}
            for row in arith.generate(min(10_000, total - len(rows)), seed=seed, split="train")
        ]
        seed += 1
    rng.shuffle(rows)
    return rows


def time_stage(rows: list[dict[str, Any]], against: list[str], data_dir: Path) -> dict[str, Any]:
    stage_class = STAGES["decontam"]
    stage = stage_class(stage_class.options.build(against=against), StageContext(data_dir=data_dir))
    started = time.perf_counter()
    stage.setup()
    build = time.perf_counter() - started
    started = time.perf_counter()
    verdicts = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        verdicts += stage.check(batch, list(range(start + 1, start + len(batch) + 1)))
    seconds = time.perf_counter() - started
    planted = Counter(row["planted"] for row in rows if "planted" in row)
    found = Counter(
        row["planted"]
        for row, drop in zip(rows, verdicts, strict=True)
        if drop is not None and "planted" in row
    )
    clean_flagged = [
        (line, drop.info["benchmark"], drop.info["item"], drop.info["match"])
        for line, (row, drop) in enumerate(zip(rows, verdicts, strict=True), 1)
        if drop is not None and "planted" not in row
    ]
    return {
        "index_build_seconds": round(build, 2),
        "indexed": getattr(stage, "indexed", {}),
        "check_seconds": round(seconds, 2),
        "rows_per_second": round(len(rows) / seconds),
        "flagged": Counter(drop.reason for drop in verdicts if drop is not None),
        "planted_found": {kind: f"{found[kind]} of {count}" for kind, count in sorted(planted.items())},
        "clean_rows_flagged": clean_flagged,
    }


def time_curate(
    rows: list[dict[str, Any]], against: list[str], data_dir: Path, workers: int
) -> dict[str, Any]:
    from mathforge.data.pipeline import run_single

    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "rows.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        started = time.perf_counter()
        funnel, _ = run_single(
            source,
            {"decontam": {"against": against}},
            out=Path(scratch) / "clean.jsonl",
            data_dir=data_dir,
            workers=workers,
            quiet=True,
        )
        seconds = time.perf_counter() - started
    return {
        "workers": workers,
        "seconds": round(seconds, 2),
        "rows_per_second": round(len(rows) / seconds),
        "kept": funnel.kept,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--against", default="gsm8k,math")
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--curate-workers", type=int, default=0, help="Also time `curate` with N workers")
    args = parser.parse_args()
    against = args.against.split(",")
    rows = build_rows(args.rows, args.planted, args.data_dir)
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "rows": len(rows),
        "against": against,
        "stage": time_stage(rows, against, args.data_dir),
    }
    if args.curate_workers:
        report["curate"] = time_curate(rows, against, args.data_dir, args.curate_workers)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
