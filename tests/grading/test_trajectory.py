"""Reading tool-integrated completions: steps, programs, shown outputs and ToRA answers."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED

from mathforge.grading import Extraction
from mathforge.grading.trajectory import (
    ends_with_program,
    extract_tora_answer,
    last_program,
    outputs,
    pal_answer,
    pal_program,
    printed_answer,
    prose,
    shown_output,
    split_trajectory,
)

TRAJECTORY = (
    "First compute.\n```python\nx = 2\nprint(x + 1)\n```\n```output\n3\n```\n"
    "Then check.\n```python\nprint(x * 10)\n```\n```output\n20\n```\nSo the answer is $\\boxed{20}$."
)


def test_split_into_steps() -> None:
    steps = split_trajectory(TRAJECTORY)
    assert [s.kind for s in steps] == ["text", "code", "output", "text", "code", "output", "text"]
    assert steps[1].text == "x = 2\nprint(x + 1)"
    assert steps[5].text == "20"
    assert all(s.closed for s in steps)


def test_unclosed_block() -> None:
    steps = split_trajectory("Go.\n```python\ndef f():\n    return 1")
    assert (steps[-1].kind, steps[-1].closed) == ("code", False)
    assert last_program("Go.\n```python\ndef f():\n    return 1") == "def f():\n    return 1\n"
    assert not ends_with_program("Go.\n```python\ndef f():\n    return 1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nprint(1)\n```", True),
        ("Some words\n```python\nprint(1)\n```\n", True),
        ("```python\nprint(1)\n```\nThe answer is 1.", False),
        ("```python\nprint(1)\n```\n```output\n1\n```", False),
        ("No code at all.", False),
        ("```\nplain fence\n```", False),
    ],
)
def test_ends_with_program(text: str, expected: bool) -> None:
    assert ends_with_program(text) is expected


def test_last_program_prose_and_outputs() -> None:
    assert last_program(TRAJECTORY) == "print(x * 10)\n"
    assert "print" not in prose(TRAJECTORY) and "boxed{20}" in prose(TRAJECTORY)
    assert outputs(TRAJECTORY) == ["3", "20"]
    assert last_program("no code") is None
    assert pal_program("no fence: x = 1") == "no fence: x = 1"


@pytest.mark.parametrize(
    ("stdout", "error", "status", "shown"),
    [
        ("42\n", None, "ok", "42"),
        ("", None, "ok", "Done"),
        ("", "NameError: name 'x' is not defined", "error", "NameError: name 'x' is not defined"),
        ("partial\n", "ValueError: v", "error", "ValueError: v"),  # a failed run's output is not shown
        (
            "",
            "Timeout: no result within 5 s",
            "timeout",
            "timeout_decorator.timeout_decorator.TimeoutError: 'Timed Out'",
        ),
        ("", "MemoryError", "memory", "MemoryError"),
        ("", "killed by SIGSEGV", "killed", "killed by SIGSEGV"),
        ("a" * 1000, None, "ok", "a" * 200 + "..." + "a" * 200),
    ],
)
def test_shown_output_as_the_harness_shows_it(
    stdout: str, error: str | None, status: str, shown: str
) -> None:
    assert shown_output(stdout, error, status) == shown


def test_pal_answers() -> None:
    assert pal_answer("ok", "3.5", "noise\n") == "3.5"
    assert pal_answer("ok", None, "1\n2\n\n") == "2"
    assert pal_answer("ok", None, "") is None
    assert pal_answer("error", "3", "3\n") is None
    assert printed_answer("  \n") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TRAJECTORY, Extraction("20", "boxed")),
        # A number in code or output is not a stated answer; the prose has none, so the last output stands in.
        ("```python\nprint(17 * 3)\n```\n```output\n51\n```\n", Extraction("51", "program_output")),
        # Error lines and reports are not answers.
        (
            "```python\nprint(x)\n```\n```output\nNameError: name 'x' is not defined\n```\n",
            Extraction(None, "none"),
        ),
        ("```python\nx = 1\n```\n```output\nDone\n```\n", Extraction(None, "none")),
        ("```python\nprint(t)\n```\n```output\nTimeout Error\n```\n", Extraction(None, "none")),
        ("```python\nimport os\n```\n```output\nexited with status 3\n```\n", Extraction(None, "none")),
        ("```python\nimport os\n```\n```output\nkilled by SIGKILL\n```\n", Extraction(None, "none")),
        # A multi-line table printed by the program is not one value.
        ("```python\nprint(1)\nprint(2)\n```\n```output\n1\n2\n```\n", Extraction(None, "none")),
        # Without a stated answer the program's output comes before the prose's last number, as ToRA reads it.
        (
            "```python\nprint(5)\n```\n```output\n5\n```\n5 cars drove through in the first 15 minutes.",
            Extraction("5", "program_output"),
        ),
        (
            "```python\nprint(5)\n```\n```output\n5\n```\nSo $x = 5$ after 15 minutes.",
            Extraction("5", "program_output"),
        ),
        # A stated answer in the prose still comes first, wherever the outputs are.
        ("```python\nprint(5)\n```\n```output\n5\n```\nThe answer is 7.", Extraction("7", "answer_is")),
        ("```python\nprint(5)\n```\n```output\n5\n```\nSo it is $\\boxed{6}$.", Extraction("6", "boxed")),
        # No usable output: the prose's last math, then its last number.
        (
            "```python\nprint(x)\n```\n```output\nNameError: x\n```\nSo $x = \\frac13$.",
            Extraction("\\frac13", "math"),
        ),
        ("```python\nx = 1\n```\n```output\nDone\n```\nShe has 5 apples.", Extraction("5", "last_number")),
    ],
)
def test_tora_answers(text: str, expected: Extraction) -> None:
    assert extract_tora_answer(text) == expected


def test_released_interpreter_trajectories_parse() -> None:
    """Every released Rho-Math-Interpreter GSM8K trajectory splits into steps whose code is the harness's."""
    path = (
        SHARED
        / "data/published/rho-1/rho-math-1b-interpreter-v0.1/gsm8k/test_tora_-1_seed0_t0.0_s0_e-1.jsonl"
    )
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    boxed = 0
    for row in rows:
        text = row["code"][0]
        steps = split_trajectory(text)
        assert "".join(s.text for s in steps if s.kind == "code").count("```") == 0
        if "```output" in text:
            assert any(s.kind == "output" for s in steps)
        boxed += extract_tora_answer(text).rule == "boxed"
    assert boxed >= 1310  # nearly all state a boxed answer after their output
