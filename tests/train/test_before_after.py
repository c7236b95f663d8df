"""`train sft --eval-bench`: the base and the merged result evaluated by the harness on the same items with the
prompt the model was trained on, and the before/after table with significance written into the run directory."""

from __future__ import annotations

import json
from pathlib import Path

from mathforge.train.sft import SftOptions, train_sft


def test_eval_bench_compares_base_and_result_on_the_same_items(tiny_llama: Path, tmp_path: Path) -> None:
    from mathforge.benchmarks.arith import generate

    data = tmp_path / "arith.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in generate(8, split="train")), encoding="utf-8")
    out = tmp_path / "run"
    opts = SftOptions.build(
        data=str(data),
        model=str(tiny_llama),
        out=str(out),
        max_steps=2,
        lr=1e-3,
        quiet=True,
        eval_bench="arith",
        eval_limit=6,
        eval_max_new_tokens=8,
    )
    summary = train_sft(opts, show_progress=False)
    # The result was merged and evaluated as it ships; both runs used eval's zero-shot prompt (--format plain).
    assert (out / "merged" / "config.json").exists()
    runs = {side: next((out / "eval" / side).rglob("metrics.json")) for side in ("before", "after")}
    metrics = {side: json.loads(path.read_text()) for side, path in runs.items()}
    assert {m["prompt"] for m in metrics.values()} == {"zero-shot"}
    ids = {
        side: [json.loads(line)["id"] for line in (path.parent / "samples.jsonl").read_text().splitlines()]
        for side, path in runs.items()
    }
    assert ids["before"] == ids["after"] and len(ids["before"]) == 6
    comparison = summary["comparison"]
    assert (out / "comparison.md").exists() and (out / "comparison.json").exists()
    assert json.loads((out / "train_summary.json").read_text())["comparison"] == comparison
    assert "McNemar" in (out / "comparison.md").read_text()
