"""`mathforge eval --prompt tora/pal` with the real Gemma 270M: model-written code runs in the sandbox, every
row keeps its trajectory and runs, a re-run resumes, and regrading the run agrees with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BENCHMARK_DATA

from mathforge.eval.regrade import regrade_file
from mathforge.sandbox import STATUSES

pytestmark = pytest.mark.slow


# Items enough for the 270M model to close at least one code block within 128 tokens: under ToRA's prompt it
# often writes past the budget, and which items it finishes depends on the build's floating-point paths.
LIMITS = {"tora": 10, "pal": 2}


def _eval(out: Path, prompt: str, *extra: str, limit: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mathforge.cli",
            "eval",
            "--bench",
            "gsm8k",
            "--data-dir",
            str(BENCHMARK_DATA),
            "--prompt",
            prompt,
            "--limit",
            str(limit),
            "--max-new-tokens",
            "128",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _run_dir(out: Path, prompt: str) -> Path:
    [run] = (out / "gemma3-270m").glob(f"gsm8k__{prompt}__*")
    return run


@pytest.mark.parametrize("prompt", ["tora", "pal"])
def test_tool_prompt_end_to_end(tmp_path: Path, prompt: str) -> None:
    result = _eval(tmp_path, prompt, "--exec-timeout", "5", "--require-isolation", limit=LIMITS[prompt])
    assert result.returncode == 0, result.stderr
    run = _run_dir(tmp_path, prompt)
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == LIMITS[prompt]
    for row in rows:
        assert row["tool"] == prompt
        assert row["prompt"].endswith("\n\nSolution:" if prompt == "tora" else "?")
        [runs] = row["executions"]
        [completion] = row["completions"]
        for execution in runs:
            assert execution["status"] in STATUSES
            assert execution["isolated"] is True
            assert execution["code"].strip() and execution["code"].strip() in completion
            if prompt == "tora":
                assert "```output\n" + execution["shown"] + "\n```" in completion
        if prompt == "pal":
            assert len(runs) == 1  # one program, run once
            assert row["extract_rules"] == ["program" if row["preds"][0] is not None else "none"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["tool"]["kind"] == prompt
    assert metrics["tool"]["isolated"] is True
    assert metrics["tool"]["executions"] == sum(len(r["executions"][0]) for r in rows) >= 1
    assert metrics["fingerprint"]["tool"]["kind"] == prompt

    # Regrading the run's own file gives its verdicts back, with no program run again.
    regraded = regrade_file(run / "samples.jsonl", "gsm8k")
    assert regraded.metrics["tool"] == prompt
    assert "executed" not in regraded.metrics
    assert [r["correct"] for r in regraded.rows] == [r["correct"] for r in rows]
    assert [r["preds"] for r in regraded.rows] == [r["preds"] for r in rows]

    # The same command again resumes: nothing is generated or run twice.
    before = (run / "samples.jsonl").read_text()
    again = _eval(tmp_path, prompt, "--exec-timeout", "5", "--require-isolation", limit=LIMITS[prompt])
    assert again.returncode == 0, again.stderr
    assert (run / "samples.jsonl").read_text() == before


def test_tool_settings_are_part_of_the_run(tmp_path: Path) -> None:
    """Other sandbox settings change what the model is shown, so they make another run directory."""
    short = ("--limit", "1", "--max-new-tokens", "8")  # what the model writes does not matter here
    first = _eval(tmp_path, "tora", *short, "--tool-rounds", "1")
    second = _eval(tmp_path, "tora", *short, "--tool-rounds", "2")
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    assert len(list((tmp_path / "gemma3-270m").glob("gsm8k__tora__*"))) == 2
