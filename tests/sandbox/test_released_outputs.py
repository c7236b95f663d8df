"""The sandbox shows a model what math-evaluation-harness showed it.

Each released Rho-Math-Interpreter trajectory holds the programs the model wrote and the outputs the harness
returned. Running those programs again in the sandbox must give the same shown outputs, except where the
Python or SymPy version changes an error message (listed, with the reason). Programs that ran out of time
there are left out: whether they finish depends on the machine.
"""

from __future__ import annotations

import json

import pytest
from conftest import SHARED

from mathforge.grading.trajectory import HARNESS_TIMEOUT, shown_output, split_trajectory
from mathforge.sandbox import Limits, Sandbox, SandboxPool

RELEASED = SHARED / "data/published/rho-1/rho-math-1b-interpreter-v0.1"
# Released outputs that differ from today's only through the versions the harness ran (Python 3.10, an older
# SymPy): row idx -> why.
VERSION_DIFFERENCES = {
    "gsm8k": {
        815: "Python 3.11 words UnboundLocalError differently",
    },
    "minerva_math": {
        43: "SymPy now names the relation in 'cannot determine truth value of Relational'",
        83: "SymPy now prints the sum as -10**x + (3**(2*x) + 19)",
        103: "SymPy now names the relation in 'cannot determine truth value of Relational'",
        107: "the error names the path of the SymPy installation",
    },
}


def _pairs(folder: str, every: int, limit: int) -> list[tuple[int, str, str]]:
    """(row idx, program, shown output) of the released trajectories whose idx is a multiple of `every`, at most
    `limit` pairs."""
    path = RELEASED / folder / "test_tora_-1_seed0_t0.0_s0_e-1.jsonl"
    pairs = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["idx"] % every:
            continue
        steps = split_trajectory(row["code"][0])
        for code, output in zip(steps, steps[1:], strict=False):
            if code.kind == "code" and output.kind == "output" and output.text.strip() != HARNESS_TIMEOUT:
                pairs.append((row["idx"], code.text + "\n", output.text.strip()))
    return pairs[:limit]


@pytest.mark.parametrize(("folder", "every", "limit"), [("gsm8k", 5, 300), ("minerva_math", 1, 110)])
def test_replayed_programs_show_what_the_harness_showed(folder: str, every: int, limit: int) -> None:
    pairs = _pairs(folder, every, limit)
    with SandboxPool(Sandbox(Limits(timeout=10), isolate=True), workers=2) as pool:
        results = pool.map([code for _, code, _ in pairs])
    differing = {
        idx: (shown, shown_output(result.stdout, result.error, result.status))
        for (idx, _, shown), result in zip(pairs, results, strict=True)
        if shown_output(result.stdout, result.error, result.status) != shown
    }
    expected = {idx for idx in VERSION_DIFFERENCES[folder] if idx in {idx for idx, _, _ in pairs}}
    assert set(differing) == expected, {idx: differing[idx] for idx in set(differing) - expected}
    assert len(pairs) >= (250 if folder == "gsm8k" else 100)
    assert expected  # each subset holds at least one known version difference, which must show up
