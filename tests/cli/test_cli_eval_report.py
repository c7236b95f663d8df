"""The CLI end to end: `mathforge eval` twice (zero-shot and few-shot), then `mathforge report` over the runs."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

from cli_helpers import run_in_process


def _mathforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_eval_then_report(tiny_llama: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for run, (prompt, limit, sampling) in enumerate(
        (
            ("zero-shot", "3", []),
            ("few-shot", "3", []),
            # Fewer items (elsewhere: the same run directory holds the results of its latest --limit): another
            # column, not a newer "duplicate".
            ("few-shot", "2", ["--out", str(tmp_path / "elsewhere")]),
            ("few-shot", "3", ["--n", "2", "--temperature", "0.7"]),  # sampled: another column
        )
    ):
        # The first as a user runs it; the others in this process, which spares the import of torch each time.
        result = (_mathforge if run == 0 else run_in_process)(
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
            limit,
            "--max-new-tokens",
            "4",
            "--out",
            str(runs),
            "--quiet",
            *sampling,
        )
        assert result.returncode == 0, result.stderr
        assert "mathforge eval" in result.stdout and "arith" in result.stdout  # the results table
        assert f"arith__{prompt}" in result.stdout.replace("\n", "")  # the run directory is printed
    table = _mathforge("report", str(tmp_path))
    assert table.returncode == 0, table.stderr
    header = [cell.strip() for cell in table.stdout.splitlines()[0].strip("|").split("|")]
    assert header == [
        "Model",
        "arith (zero-shot; greedy; n=3)",
        "arith (few-shot; greedy; n=2)",
        "arith (few-shot; greedy; n=3)",
        "arith (few-shot; 2 samples, T=0.7; n=3)",
        "Average",
    ]
    assert "kept the most recent" not in table.stdout
    best = _mathforge("report", str(tmp_path), "--best-of-prompts", "--format", "csv")
    assert best.returncode == 0, best.stderr
    rows = list(csv.reader(io.StringIO(best.stdout)))
    # Only the greedy runs over the same 3 items compare prompts; the others keep columns of their own.
    assert rows[0][:3] == ["model", "arith (greedy; n=2)", "arith (greedy; n=2) prompt"]
    assert rows[0][3:] == [
        "arith (greedy; n=3)",
        "arith (greedy; n=3) prompt",
        "arith (2 samples, T=0.7; n=3)",
        "arith (2 samples, T=0.7; n=3) prompt",
        "Average",
    ]
    assert rows[1][0] == tiny_llama.name and rows[1][4] in ("zero-shot", "few-shot")
    assert (rows[1][2], rows[1][6]) == ("few-shot", "few-shot")
