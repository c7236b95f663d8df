"""`mathforge regrade` on the released Rho-1 outputs, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error
from conftest import BENCHMARK_DATA, SHARED

RHO = SHARED / "data" / "published" / "rho-1"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, timeout=300
    )


# The harness's `minerva_math` folder is MATH-500. Half the runs take their golds from the benchmark files
# (fixing the one gold the harness corrupted), half from the file; one grades in two processes.
@pytest.mark.parametrize(
    ("model", "folder", "bench", "extra"),
    [
        ("rho-math-1b-v0.1", "gsm8k", "gsm8k", []),
        ("rho-math-1b-v0.1", "minerva_math", "math500", ["--data-dir", str(BENCHMARK_DATA)]),
        ("rho-math-1b-interpreter-v0.1", "gsm8k", "gsm8k", ["--data-dir", str(BENCHMARK_DATA)]),
        ("rho-math-1b-interpreter-v0.1", "minerva_math", "math500", ["--workers", "2"]),
    ],
)
def test_regrade_rho1_outputs_matches_reported_accuracy(
    tmp_path: Path, model: str, folder: str, bench: str, extra: list[str]
) -> None:
    source = next((RHO / model / folder).glob("*.jsonl"))
    reported = json.loads(next((RHO / model / folder).glob("*_metrics.json")).read_text())
    out = tmp_path / "regraded.jsonl"
    result = _run("regrade", str(source), "--bench", bench, "--json", "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["n"] == reported["num_samples"]
    assert metrics["format"] == "math-eval-harness"
    assert abs(metrics["acc"] - reported["acc"]) <= 2.0, (metrics["acc"], reported["acc"])
    # The file's own verdicts reproduce its reported accuracy; ours agree with most of them.
    assert abs(metrics["source_acc"] - reported["acc"]) < 0.1
    assert metrics["agree_with_source_pct"] > 95
    assert metrics["timeouts"] == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == metrics["n"]
    ids = [json.loads(line)["idx"] for line in source.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == [str(i) for i in ids]
    assert all(len(row["correct"]) == 1 for row in rows)
    assert 100 * sum(row["correct"][0] for row in rows) / len(rows) == pytest.approx(metrics["acc"], abs=1e-3)
    assert "acc %" in result.stdout  # the table comes before the JSON line


def test_regrade_without_out_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    row = {"id": "0", "question": "What is 2+3?", "gold": "5", "completions": ["2+3=5. The answer is 5."]}
    path.write_text(json.dumps(row) + "\n")
    result = _run("regrade", str(path), "--bench", "gsm8k")
    assert result.returncode == 0, result.stderr
    assert "acc %" in result.stdout and "100.0" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--bench", "gsm9k"], r"unknown benchmark 'gsm9k'"),
        (["--bench", "minerva_math"], r"ambiguous.*math500"),
        (["--bench", "gsm8k", "--format", "csv"], r"^mathforge: error: invalid option --format: must be one of auto, mathforge, qwen25-math, math-eval-harness, lm-eval; got 'csv'$"),
        (["--bench", "gsm8k", "--workers", "0"], r"^mathforge: error: invalid option --workers: Input should be greater than or equal to 1$"),
        (["--bench", "gsm8k", "--grade-timeout", "0"], r"^mathforge: error: invalid option --grade-timeout: Input should be greater than 0$"),
        (["--bench", "gsm8k", "--rel-tol", "-1"], r"^mathforge: error: invalid option --rel-tol: Input should be greater than or equal to 0$"),
        (["--bench", "gsm8k", "--extractor", "psychic"], r"--extractor: must be one of"),
        (["--bench", "gsm8k", "--data-dir", "/nonexistent-dir"], r"--data-dir: no such directory"),
        ([], r"Missing option '--bench'"),
    ],
)
def test_bad_options(tmp_path: Path, args: list[str], pattern: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}\n')
    assert_one_line_error(_run("regrade", str(path), *args), pattern)


def test_bad_files(tmp_path: Path) -> None:
    assert_one_line_error(
        _run("regrade", str(tmp_path / "nope.jsonl"), "--bench", "gsm8k"), r"nope.jsonl: no such file"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}\n{"idx": 1,\n')
    assert_one_line_error(_run("regrade", str(bad), "--bench", "gsm8k"), r"bad.jsonl:2: malformed JSON line")
    bad.write_text('{"idx": 0, "question": "q", "code": ["1"]}\n')
    assert_one_line_error(
        _run("regrade", str(bad), "--bench", "gsm8k"),
        r"bad.jsonl:1: missing field 'gt' \(format math-eval-harness\)",
    )
    assert_one_line_error(
        _run("regrade", str(bad), "--bench", "gsm8k", "--format", "lm-eval"),
        r"bad.jsonl:1: missing field 'doc_id' \(format lm-eval\)",
    )
    bad.write_text('{"idx": 0, "question": "q", "gt": null, "code": ["1"]}\n')
    assert_one_line_error(
        _run("regrade", str(bad), "--bench", "gsm8k"), r"bad.jsonl:1: row '0' has no gold answer \(null\)"
    )
    bad.write_text('{"prompt": "q", "response": "1"}\n')
    assert_one_line_error(
        _run("regrade", str(bad), "--bench", "gsm8k"), r"bad.jsonl:1: cannot tell the file's format"
    )
    bad.write_text('{"idx": 0, "question": "What is 2 + 2?", "gt": "4", "code": ["4"]}\n')
    assert_one_line_error(
        _run("regrade", str(bad), "--bench", "gsm8k", "--data-dir", str(BENCHMARK_DATA)),
        r"bad.jsonl:1: question of row '0' not found in benchmark 'gsm8k'",
    )


def test_out_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"idx": 0, "question": "q", "gt": "1", "code": ["so it is 1"]}\n')
    out = tmp_path / "a" / "b" / "c.jsonl"
    result = _run("regrade", str(path), "--bench", "gsm8k", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["preds"] for row in rows] == [["1"]]
    assert sorted(p.name for p in out.parent.iterdir()) == ["c.jsonl"]  # no temporary file left behind


def test_out_blocked_by_a_file_fails_before_grading(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}\n')
    (tmp_path / "a").write_text("a file, not a folder")
    assert_one_line_error(
        _run("regrade", str(path), "--bench", "gsm8k", "--out", str(tmp_path / "a" / "out.jsonl")),
        r"--out: cannot create the folder .*a: a file is in the way",
    )
