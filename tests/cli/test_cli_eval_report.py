"""The CLI end to end: `mathforge eval` twice (zero-shot and few-shot), then `mathforge report` over the runs."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path


def _mathforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_eval_then_report(tiny_llama: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for prompt in ("zero-shot", "few-shot"):
        result = _mathforge(
            "eval",
            "--model",
            str(tiny_llama),
            "--bench",
            "arith",
            "--prompt",
            prompt,
            "--shots",
            "1",
            "--limit",
            "3",
            "--max-new-tokens",
            "4",
            "--out",
            str(runs),
            "--quiet",
        )
        assert result.returncode == 0, result.stderr
        assert "mathforge eval" in result.stdout and "arith" in result.stdout  # the results table
        assert f"arith__{prompt}" in result.stdout.replace("\n", "")  # the run directory is printed
    table = _mathforge("report", str(tmp_path))
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0]
    assert header.startswith("| Model") and "arith (zero-shot)" in header and "arith (few-shot)" in header
    assert header.rstrip().endswith("Average |")
    best = _mathforge("report", str(runs), "--best-of-prompts", "--format", "csv")
    assert best.returncode == 0, best.stderr
    rows = list(csv.reader(io.StringIO(best.stdout)))
    assert rows[0] == ["model", "arith", "arith prompt", "Average"]
    assert rows[1][0] == tiny_llama.name and rows[1][2] in ("zero-shot", "few-shot")
