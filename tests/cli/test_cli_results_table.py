"""The results table of `mathforge eval`: whole rows in logs and pipes, 80 columns on a terminal, and a legend
under sampled results."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mathforge import cli
from mathforge.eval import RunResult


def _result(benchmark: str, model: str, sampled: bool) -> RunResult:
    metrics: dict[str, Any] = {
        "benchmark": benchmark,
        "model": model,
        "prompt": "few-shot",
        "n": 1319,
        "acc": 12.5,
        "no_answer": 3.25,
        "tokens_per_second": 88.4,
    }
    if sampled:
        for k in (1, 2, 4, 8, 16, 32, 64):
            metrics[f"pass@{k}"] = min(100.0, 12.5 * k)
            metrics[f"maj@{k}"] = 0.0 if k == 1 else 10.0
    return RunResult(benchmark, Path(f"runs/{model}/{benchmark}"), metrics)


RESULTS = [
    _result("gsm8k", "qwen2.5-math-1.5b-instruct-q4_k_m", sampled=True),
    _result("math500", "gemma3-270m", sampled=False),
]


def _table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "│" in line]


def test_not_a_terminal_keeps_every_row_whole(capsys: pytest.CaptureFixture[str]) -> None:
    cli._print_results(RESULTS)
    output = capsys.readouterr().out
    rows = _table_lines(output)
    gsm8k = next(line for line in rows if "gsm8k" in line and "qwen2.5-math-1.5b-instruct-q4_k_m" in line)
    assert "1319" in gsm8k and "12.5" in gsm8k and "88.4" in gsm8k  # one line: nothing wrapped or cut
    assert "…" not in output
    sampled = [line for line in rows if line.strip("│ ").startswith("gsm8k") and "few-shot" not in line]
    assert len(sampled) == 7  # one row per k
    assert any(" 64 " in line and "100.0" in line for line in sampled)
    assert "maj@1 counts the first sample only" in output.replace("\n", " ")


def test_a_terminal_of_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    cli._print_results([_result("gsm8k", "gemma3-270m", sampled=True)])
    output = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # a terminal gets colours
    assert all(len(line) <= 80 for line in output.splitlines())
    assert any("gemma3-270m" in line and "12.5" in line for line in _table_lines(output))
