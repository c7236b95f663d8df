"""`stuck_in_a_loop`, the test engines stop generation on: what it stops, what it must let run, and, over every
released completion in ../shared, that stopping where it fires never changes the answer a grader reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathforge.grading import extract_answer
from mathforge.grading.loops import is_degenerate, stuck_in_a_loop

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

STOPS = {
    "a number per line": "So we count:\n" + "1\n" * 48,
    "a sentence again and again": "We know x = 2. " + "The answer is 5.\n" * 8,
    "two sentences in turn": "Let me check again. I made a mistake. " * 8,
    "one long digit run": "The value is 0." + "3" * 96,
    "a phrase mid-repeat": "So 2+2=4. " * 20 + "So",
    "a long paragraph": (
        "Now we subtract the two equations and divide by the coefficient of y to get it. " * 3
    )
    * 8,
}
RUNS_ON = {
    "a written-out sum": "8 x 3 = " + "3 + " * 11 + "3 = 36",
    "a float's repr": "x = 0.3333333333333333, so about a third",
    "a markdown rule": "| a | b |\n|" + "---|" * 30,
    "a separator line": "=" * 200,
    "seven repeats": "The answer is 5.\n" * 7,
    "a loop that counts on": "".join(
        f"On day {day}, the plant is {day * 2} cm tall.\n" for day in range(1, 60)
    ),
    "a short repeat over few characters": "1\n" * 47,
    "nothing": "",
}


@pytest.mark.parametrize("name", list(STOPS))
def test_stops(name: str) -> None:
    assert stuck_in_a_loop(STOPS[name])


@pytest.mark.parametrize("name", list(RUNS_ON))
def test_runs_on(name: str) -> None:
    assert not stuck_in_a_loop(RUNS_ON[name])


def test_stricter_than_the_test_on_finished_texts() -> None:
    """Whatever generation stops is a text the grader would call degenerate anyway."""
    for text in STOPS.values():
        assert is_degenerate(text), text


def _released_completions() -> list[str]:
    files = sorted((SHARED / "published" / "rho-1").glob("*/*/*.jsonl"))
    files.append(SHARED / "benchmarks" / "eval_rm_maj_example" / "math_cot_100.jsonl")
    texts = []
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            texts += [code for code in json.loads(line)["code"] if isinstance(code, str)]
    return texts


def test_stopping_never_changes_the_answer_of_a_released_completion() -> None:
    """Rho-Math-1B's released outputs (greedy, to the budget; some loop) and 800 Qwen2.5-Math samples, checked
    every 12 characters (about the engines' every 4 tokens): where generation would have stopped, the stopped
    text (graded as cut off) gives the answer the whole completion gives, graded as cut off or not."""
    texts = _released_completions()
    assert len(texts) > 4000
    stopped = 0
    for text in texts:
        end = next((end for end in range(12, len(text) + 1, 12) if stuck_in_a_loop(text[:end])), None)
        if end is None:
            continue
        stopped += 1
        answer = extract_answer(text[:end], truncated=True).answer
        assert answer == extract_answer(text, truncated=True).answer == extract_answer(text).answer, text[
            :end
        ]
    assert stopped > 50  # the released outputs hold real loops: the check above is not vacuous
