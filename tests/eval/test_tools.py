"""PAL and ToRA generation: the loop, the sandboxed runs, the records, and the answers.

The loop's control flow is tested with a scripted engine (it plays a fixed model's part so every branch is
reached); the programs run in the real sandbox. A real model (Gemma 270M) runs the whole loop in
`test_tools_e2e.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mathforge.backends import Completion, Generation, SamplingParams, cut_at_stop
from mathforge.generation import ToolSettings, ToolUse
from mathforge.grading import Extraction
from mathforge.grading.trajectory import HARNESS_TIMEOUT, extract_tora_answer, split_trajectory
from mathforge.prompts import TOOL_STOPS
from mathforge.sandbox import Limits

PARAMS = SamplingParams(max_new_tokens=256, stop=TOOL_STOPS)


class ScriptedEngine:
    """A backend whose 'model' continues a prompt by `script(prompt)`, cut at stop strings like every engine.

    A completion that runs past a stop string is cut there (finish "stop"); one marked with "<LENGTH>" ends
    as if the token budget ran out.
    """

    name = "scripted"

    def __init__(self, script: Callable[[str], str]) -> None:
        self.script = script
        self.calls: list[list[str]] = []

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        self.calls.append(list(prompts))
        generations = []
        for prompt in prompts:
            completions = []
            for _ in range(params.n):
                text = self.script(prompt)
                truncated = text.endswith("<LENGTH>")
                text, _ = cut_at_stop(text.removesuffix("<LENGTH>"), params.stop)
                completions.append(Completion(text, len(text.split()), "length" if truncated else "stop"))
            generations.append(Generation(completions))
        return generations


def _tool(kind: str, **settings: object) -> ToolUse:
    return ToolUse(ToolSettings(kind=kind, limits=Limits(timeout=3, memory_mb=512), workers=2, **settings))


def _by_round(*segments: str) -> Callable[[str], str]:
    """The model's segments, one per round: the round is told by how many outputs the prompt holds."""

    def script(prompt: str) -> str:
        return segments[min(prompt.count("```output\n"), len(segments) - 1)]

    return script


def test_tora_runs_the_block_shows_its_output_and_goes_on() -> None:
    engine = ScriptedEngine(
        _by_round(
            " Let me compute.\n```python\nprint(6 * 7)\n```\n```output\n41\n```\n",  # an invented output is cut
            "The answer is $\\boxed{42}$.\n\n---\n\nQuestion: next",
        )
    )
    tool = _tool("tora")
    [[trajectory]] = tool.generate(engine, ["Q: 6*7?\nSolution:"], PARAMS, [0])
    tool.close()
    assert trajectory.text == (
        " Let me compute.\n```python\nprint(6 * 7)\n```\n```output\n42\n```\nThe answer is $\\boxed{42}$."
    )
    [run] = trajectory.executions
    assert (run["status"], run["stdout"], run["shown"], run["round"]) == ("ok", "42\n", "42", 0)
    assert run["code"] == "print(6 * 7)\n"
    assert engine.calls[1] == ["Q: 6*7?\nSolution:" + trajectory.text.split("The answer")[0]]
    assert extract_tora_answer(trajectory.text).answer == "42"
    assert [step.kind for step in split_trajectory(trajectory.text)] == ["text", "code", "output", "text"]


def test_tora_session_keeps_variables_fresh_does_not() -> None:
    script = _by_round(
        "```python\nfrom sympy import Rational\nx = Rational(1, 3)\nprint(x)\n```",
        "```python\nprint(x * 3)\n```",
        "So $\\boxed{1}$.",
    )
    session = _tool("tora")
    [[kept]] = session.generate(ScriptedEngine(script), ["Q"], PARAMS, [0])
    assert [run["shown"] for run in kept.executions] == ["1/3", "1"]
    fresh = _tool("tora", state="fresh")
    [[alone]] = fresh.generate(ScriptedEngine(script), ["Q"], PARAMS, [0])
    assert [run["shown"] for run in alone.executions] == ["1/3", "NameError: name 'x' is not defined"]
    session.close()
    fresh.close()


def test_tora_round_limit() -> None:
    engine = ScriptedEngine(lambda prompt: "```python\nprint(7)\n```")
    tool = _tool("tora", rounds=3)
    [[trajectory]] = tool.generate(engine, ["Q"], PARAMS, [0])
    tool.close()
    assert len(trajectory.executions) == 3
    assert len(engine.calls) == 3  # three generations, each followed by a run
    assert trajectory.text.endswith("```output\n7\n```\n\nReach max function call limit.")
    # No stated answer: the last output, a single value, stands in (the harness takes the text's last number).
    assert extract_tora_answer(trajectory.text) == Extraction("7", "program_output")


# Kills its parent, then, orphaned, waits to be killed: whether the sandbox saw its reply or its parent's death
# first does not decide the outcome (test_sandbox_hostile.py's test_killing_its_parent explains).
_KILL_PARENT = (
    "import os, time\n"
    "parent = os.getppid()\n"
    "os.kill(parent, 9)\n"
    "deadline = time.monotonic() + 1\n"
    "while os.getppid() == parent and time.monotonic() < deadline:\n"
    "    time.sleep(0.01)\n"
    "if os.getppid() != parent:\n"
    "    time.sleep(2)\n"
    "print('still here')\n"
)


def test_tora_hostile_and_broken_blocks_are_recorded_and_the_trajectory_goes_on() -> None:
    engine = ScriptedEngine(
        _by_round(
            "```python\nwhile True:\n    pass\n```",
            f"```python\n{_KILL_PARENT}```",
            "```python\nraise ValueError('bad')\n```",
            "```python\nx = 5\n```",
        )
    )
    tool = _tool("tora", rounds=4)
    [[trajectory]] = tool.generate(engine, ["Q"], PARAMS, [0])
    tool.close()
    shown = [(run["status"], run["shown"]) for run in trajectory.executions]
    assert shown[0] == ("timeout", HARNESS_TIMEOUT)
    if tool.sandbox.isolated:  # its parent is the pid namespace's init, which ignores the signal
        assert shown[1] == ("ok", "still here")
    else:  # its parent is the sandbox's own process, whose death ends the run
        assert shown[1] == ("killed", "killed by SIGKILL")
    assert shown[2] == ("error", "ValueError: bad")
    assert shown[3] == ("ok", "Done")  # a silent success, shown as the harness shows it


def test_tora_block_that_never_closes_is_not_run() -> None:
    engine = ScriptedEngine(lambda prompt: "```python\ndef f():\n    return 1<LENGTH>")
    tool = _tool("tora")
    [[trajectory]] = tool.generate(engine, ["Q"], PARAMS, [0])
    tool.close()
    assert trajectory.executions == []
    assert trajectory.finish_reason == "length"
    assert extract_tora_answer(trajectory.text, truncated=True).answer is None


def test_tora_boxed_answer_ends_the_trajectory_even_after_code() -> None:
    engine = ScriptedEngine(lambda prompt: "The answer is $\\boxed{3}$.\n```python\nprint(3)\n```")
    tool = _tool("tora")
    [[trajectory]] = tool.generate(engine, ["Q"], PARAMS, [0])
    tool.close()
    assert trajectory.executions == []  # the harness stops once a round states a boxed answer


def test_tora_samples_are_independent_trajectories() -> None:
    counter = iter(range(100))

    def script(prompt: str) -> str:
        if "```output" not in prompt:
            return f"```python\nprint({next(counter)})\n```"
        return "$\\boxed{" + prompt.rsplit("```output\n", 1)[1].split("\n", 1)[0] + "}$"

    tool = _tool("tora")
    [group] = tool.generate(
        ScriptedEngine(script), ["Q"], SamplingParams(n=3, temperature=1.0, stop=TOOL_STOPS), [0]
    )
    tool.close()
    assert [extract_tora_answer(t.text).answer for t in group] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("completion", "answer", "status"),
    [
        ("\n```python\ndef solution():\n    return 40 + 2\n```", "42", "ok"),
        ("\n```python\ndef solution():\n    print('noise')\n    return 7 / 2\n```", "3.5", "ok"),
        ("\n```python\nprint(12)\nprint(13)\n```", "13", "ok"),  # no solution(): the last printed line
        ("def solution():\n    return 5\n", "5", "ok"),  # no code fence: the completion is the program
        ("\n```python\ndef solution():\n    return undefined\n```", None, "error"),
        ("\n```python\ndef solution():\n    while True:\n        pass\n```", None, "timeout"),
        ("\n```python\ndef solution():\n    return [0] * 10**10\n```", None, "memory"),
        ("\n```python\ndef solution(:\n", None, "error"),  # a block that never closes and does not parse
        ("\n```python\nx = 1\n```", None, "ok"),  # prints nothing, returns nothing: no answer
    ],
)
def test_pal_answer_is_what_the_program_returns_or_prints(
    completion: str, answer: str | None, status: str
) -> None:
    tool = _tool("pal")
    [[trajectory]] = tool.generate(ScriptedEngine(lambda prompt: completion), ["Q"], PARAMS, [0])
    tool.close()
    assert trajectory.answer == answer
    [run] = trajectory.executions
    assert run["status"] == status
    assert trajectory.text == completion


def test_pal_runs_a_batch_in_parallel_in_order() -> None:
    prompts = [f"Q{i}" for i in range(8)]
    engine = ScriptedEngine(lambda prompt: f"```python\ndef solution():\n    return {prompt[1:]} ** 2\n```")
    tool = _tool("pal")
    groups = tool.generate(engine, prompts, PARAMS, list(range(8)))
    tool.close()
    assert [group[0].answer for group in groups] == [str(i * i) for i in range(8)]


def test_fingerprint_tells_settings_apart() -> None:
    tora, fresh, pal = _tool("tora"), _tool("tora", state="fresh"), _tool("pal")
    assert len({str(t.fingerprint()) for t in (tora, fresh, pal)}) == 3
    for t in (tora, fresh, pal):
        t.close()


def test_tora_trajectory_that_outgrows_the_context_ends_the_others_go_on() -> None:
    from mathforge.errors import ContextOverflow

    class SmallWindow(ScriptedEngine):
        def generate(self, prompts, params, seed_offsets=None):
            if any(len(prompt) > 60 for prompt in prompts):
                raise ContextOverflow("a prompt does not fit the context window")
            return super().generate(prompts, params, seed_offsets)

    engine = SmallWindow(_by_round("```python\nprint(1)\n```", "$\\boxed{1}$"))
    tool = _tool("tora")
    [[long], [short]] = tool.generate(engine, ["Q" * 40, "Q"], PARAMS, [0, 1])
    tool.close()
    assert (long.finish_reason, len(long.executions)) == ("length", 1)  # ran once, then no room to go on
    assert short.text.endswith("$\\boxed{1}$") and short.finish_reason == "stop"
