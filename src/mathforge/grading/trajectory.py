"""Tool-integrated completions (PAL, ToRA): their programs, their outputs, and the answers they give.

A ToRA trajectory is prose, ```python blocks the model wrote, and ```output blocks the harness appended after
running them. The answer is what the prose states (its last \\boxed{}); a trajectory that never states one
falls back to its last program output. A PAL completion is one program; its answer is what the program
returns (`solution()`) or, failing that, the last line it prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mathforge.grading.extract import GUESSES, Extraction, extract_answer

# PAL's answer: what solution() returns when the program defines it (the harness's answer expression);
# otherwise None, and the last printed line is taken instead.
PAL_ANSWER = "solution() if callable(globals().get('solution')) else None"
# math-evaluation-harness's shape of an execution result in the text, and its cut of long outputs.
OUTPUT_BLOCK = "\n```output\n{output}\n```\n"
ROUND_LIMIT_NOTE = "\nReach max function call limit."
_OUTPUT_CHARS = 400
# What the harness showed a model whose program ran out of time: its timeout_decorator's error line, as the
# released Rho-Math-Interpreter trajectories show it (its pool's own "Timeout Error" comes only later).
HARNESS_TIMEOUT = "timeout_decorator.timeout_decorator.TimeoutError: 'Timed Out'"
# Lines the harness shows instead of a value: they report on the run, they are not answers.
_REPORT_LINE = re.compile(
    r"^(?:Done|Timeout Error|Timeout: .*|exited with status -?\d+|killed by \S+|"
    r"[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*)$"
)
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Step:
    kind: Literal["text", "code", "output"]
    text: str
    closed: bool = True  # a code or output block whose closing fence came


def split_trajectory(text: str) -> list[Step]:
    """The completion as prose, code and output steps, in order (fences recognised at line starts)."""
    steps: list[Step] = []
    kind: Literal["text", "code", "output"] = "text"
    lines: list[str] = []

    def flush(closed: bool = True) -> None:
        if lines or kind != "text":
            steps.append(Step(kind, "\n".join(lines), closed))
        lines.clear()

    for line in text.split("\n"):
        fence = _FENCE.match(line.strip()) if line.startswith("```") else None
        if kind == "text" and fence and fence.group(1) in ("python", "py", "output"):
            flush()
            kind = "output" if fence.group(1) == "output" else "code"
        elif kind != "text" and line.startswith("```"):
            flush()
            kind = "text"
        else:
            lines.append(line)
    flush(closed=kind == "text")
    return [step for step in steps if step.kind != "text" or step.text.strip()]


def last_program(text: str) -> str | None:
    """The last ```python block of `text` (to its end if unclosed), as math-evaluation-harness takes it."""
    codes = [step for step in split_trajectory(text) if step.kind == "code"]
    return codes[-1].text + "\n" if codes else None


def ends_with_program(text: str) -> bool:
    """Whether the model stopped right after closing a code block: the moment ToRA runs it."""
    steps = split_trajectory(text.rstrip())
    return bool(steps) and steps[-1].kind == "code" and steps[-1].closed


def prose(text: str) -> str:
    """The text without its code and output blocks."""
    return "\n".join(step.text for step in split_trajectory(text) if step.kind == "text")


def outputs(text: str) -> list[str]:
    return [step.text for step in split_trajectory(text) if step.kind == "output"]


def shown_output(stdout: str, error: str | None, status: str) -> str:
    """What the model is shown after a run, as math-evaluation-harness shows it: what a successful program
    printed ("Done" when it printed nothing); for a failed one only the error's last line (the harness drops
    the output of a program that raised), or the harness's timeout line; long outputs cut to their first and last 200
    characters."""
    if status == "timeout":
        shown = HARNESS_TIMEOUT
    elif status == "ok":
        shown = stdout.strip() or "Done"
    else:
        shown = (error or "").strip() or status
    if len(shown) > _OUTPUT_CHARS:
        half = _OUTPUT_CHARS // 2
        shown = shown[:half] + "..." + shown[-half:]
    return shown


def printed_answer(stdout: str) -> str | None:
    """The last non-empty line a program printed."""
    lines = [line.strip() for line in stdout.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def pal_program(completion: str) -> str:
    """The program of a PAL completion: its last ```python block, or the whole text when it has none (as the
    harness runs it)."""
    return last_program(completion) or completion


def pal_answer(status: str, answer: str | None, stdout: str) -> str | None:
    """A PAL run's answer: the returned value, else the last printed line; none when the program failed."""
    if status != "ok":
        return None
    return answer if answer is not None else printed_answer(stdout)


def extract_tora_answer(
    completion: str,
    extractor: str = "auto",
    choices: list[str] | None = None,
    truncated: bool = False,
    *,
    several: bool = False,
    boxed: str = "last",
) -> Extraction:
    """The answer a ToRA trajectory states in its prose; else its last program output, when that is one value;
    else what the prose's last math or number guesses.

    Code and outputs are left out of the prose so that neither a number in a program nor one in a printed
    table is mistaken for the stated answer (math-evaluation-harness takes the last number of everything). The
    program's output comes before the prose's last number, as in ToRA's own extraction: "```output\\n5\\n```\\n5
    cars drove through in the first 15 minutes." answers 5, not 15.
    """
    extraction = extract_answer(prose(completion), extractor, choices, truncated, several=several, boxed=boxed)
    if extraction.answer is not None and extraction.rule not in GUESSES:
        return extraction
    results = outputs(completion)
    if results:
        last = results[-1].strip()
        if last and "\n" not in last and len(last) <= 100 and not _REPORT_LINE.match(last):
            return Extraction(last, "program_output")
    return extraction
