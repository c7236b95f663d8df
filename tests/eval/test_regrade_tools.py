"""Regrading tool-integrated outputs: PAL programs are run again in the sandbox, ToRA answers come from prose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error

from mathforge.errors import MathforgeError
from mathforge.eval.regrade import regrade_file

PAL_PROGRAMS = [
    # (program the model wrote, gold, right?)
    ("```python\ndef solution():\n    eggs = 16 - 3 - 4\n    return eggs * 2\n```", "18", True),
    ("```python\ndef solution():\n    return 2 + 2 / 2\n```", "3", True),  # 3.0 equals 3
    ("```python\ndef solution():\n    return undefined_total\n```", "70000", False),
    ("```python\nprint(5)\nprint(20)\n```", "20", True),  # no solution(): the last line printed
    ("```python\ndef solution():\n    while True:\n        pass\n```", "540", False),
]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _pal_harness_file(tmp_path: Path) -> Path:
    rows = [
        {
            "idx": i,
            "question": f"question {i}",
            "gt": gold,
            "code": [program],
            "pred": ["999"],
            "score": [not right],
        }
        for i, (program, gold, right) in enumerate(PAL_PROGRAMS)
    ]
    return _write(tmp_path / "test_pal_-1_seed0_t0.0_s0_e-1.jsonl", rows)


def test_pal_programs_are_run_again(tmp_path: Path) -> None:
    result = regrade_file(_pal_harness_file(tmp_path), "gsm8k", exec_timeout=2)
    assert result.metrics["tool"] == "pal"
    assert result.metrics["executed"] == len(PAL_PROGRAMS)
    assert [row["correct"][0] for row in result.rows] == [right for _, _, right in PAL_PROGRAMS]
    assert [row["preds"][0] for row in result.rows] == ["18", "3.0", None, "20", None]
    statuses = [row["executions"][0][0]["status"] for row in result.rows]
    assert statuses == ["ok", "ok", "error", "ok", "timeout"]
    assert result.metrics["agree_with_source"] == 0  # the file's stored verdicts were all wrong on purpose


def test_pal_as_plain_text_differs(tmp_path: Path) -> None:
    result = regrade_file(_pal_harness_file(tmp_path), "gsm8k", tool="none")
    assert "tool" not in result.metrics
    assert all("executions" not in row for row in result.rows)


def test_tora_answers_come_from_prose(tmp_path: Path) -> None:
    trajectories = [
        # The harness's last number is the 4 in "4 bags"; the stated answer is 18.
        (
            "```python\nprint(9 * 2)\n```\n```output\n18\n```\nShe makes $\\boxed{18}$ from 4 bags.",
            "18",
            True,
        ),
        # No stated answer: the last output stands in.
        ("```python\nprint(9 * 2)\n```\n```output\n18\n```\n\nReach max function call limit.", "18", True),
        # A number inside code is never the answer.
        (
            "```python\nx = 18\nprint(x)\n```\n```output\nNameError: name 'y' is not defined\n```\n",
            "18",
            False,
        ),
    ]
    rows = [
        {"idx": i, "question": f"q{i}", "gt": gold, "code": [text], "pred": [""], "score": [False]}
        for i, (text, gold, _) in enumerate(trajectories)
    ]
    path = _write(tmp_path / "test_tora_-1_seed0_t0.0_s0_e-1.jsonl", rows)
    result = regrade_file(path, "gsm8k")
    assert result.metrics["tool"] == "tora"
    assert [row["correct"][0] for row in result.rows] == [right for _, _, right in trajectories]
    assert [row["extract_rules"][0] for row in result.rows] == ["boxed", "program_output", "none"]


def test_mathforge_pal_rows_use_their_recorded_runs(tmp_path: Path) -> None:
    run = {"round": 0, "code": "...", "status": "ok", "stdout": "", "answer": "18", "returncode": 0}
    failed = {
        "round": 0,
        "code": "...",
        "status": "timeout",
        "stdout": "",
        "answer": None,
        "returncode": None,
    }
    rows = [
        {
            "id": "0",
            "question": "q0",
            "gold": "18",
            "completions": ["(program)"],
            "tool": "pal",
            "executions": [[run]],
        },
        {
            "id": "1",
            "question": "q1",
            "gold": "18",
            "completions": ["(program)"],
            "tool": "pal",
            "executions": [[failed]],
        },
    ]
    result = regrade_file(_write(tmp_path / "samples.jsonl", rows), "gsm8k")
    assert result.metrics["tool"] == "pal"
    assert "executed" not in result.metrics  # nothing was run again
    assert [row["correct"] for row in result.rows] == [[True], [False]]


def test_bad_tool_option_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mathforge.cli",
            "regrade",
            str(_pal_harness_file(tmp_path)),
            "--bench",
            "gsm8k",
            "--tool",
            "python",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(result, r"--tool: must be one of auto, none, pal, tora; got 'python'")


def test_mathforge_rows_choose_per_row_and_mixed_tools_are_refused(tmp_path: Path) -> None:
    run = {"round": 0, "code": "...", "status": "ok", "stdout": "", "answer": "18", "returncode": 0}
    pal_row = {
        "id": "0",
        "question": "q0",
        "gold": "18",
        "completions": ["x"],
        "tool": "pal",
        "executions": [[run]],
    }
    plain_row = {"id": "1", "question": "q1", "gold": "18", "completions": ["The answer is 18."]}
    result = regrade_file(_write(tmp_path / "samples.jsonl", [pal_row, plain_row]), "gsm8k")
    assert [row["extract_rules"] for row in result.rows] == [["program"], ["answer_is"]]
    assert [row.get("tool") for row in result.rows] == ["pal", None]
    tora_row = {"id": "2", "question": "q2", "gold": "1", "completions": ["$\\boxed{1}$"], "tool": "tora"}
    mixed = _write(tmp_path / "mixed.jsonl", [pal_row, tora_row])
    with pytest.raises(MathforgeError, match="rows of both pal and tora; regrade them apart"):
        regrade_file(mixed, "gsm8k")
