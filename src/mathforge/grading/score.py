"""`score`: one completion against its gold answer, through extraction, the tool kind and equivalence.

Everything that grades (`eval`, `regrade`, the judge's inputs, and the synthetic-data verifier) calls this,
so that one completion gets the same verdict whichever command grades it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from mathforge.grading.equivalence import Verdict, grade
from mathforge.grading.extract import EXTRACTORS, Extraction, asks_for_several, extract_answer


class _ExtractOptions(TypedDict):
    """`extract_answer`'s keyword arguments after the completion (a tool kind's `answer` takes the same)."""

    extractor: str
    choices: list[str] | None
    truncated: bool
    several: bool
    boxed: str


@dataclass(frozen=True)
class GradingSpec:
    """How a benchmark's answers are read and compared (see `BenchmarkSpec.grading`)."""

    answer_type: str
    extractor: str = "auto"
    boxed: str = "last"  # which \\boxed{} counts when there are several
    rel_tol: float = 0.0  # relative tolerance for numbers (0: exact)
    timeout: float | None = None  # seconds per symbolic comparison (None: the grader's default)

    def __post_init__(self) -> None:
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor '{self.extractor}' (known: {', '.join(EXTRACTORS)})")


@dataclass(frozen=True)
class Score:
    """One completion's answer and verdict, with the rules that found and decided them."""

    extraction: Extraction
    verdict: Verdict

    @property
    def pred(self) -> str | None:
        return self.extraction.answer

    @property
    def correct(self) -> bool:
        return self.verdict.correct


def score(
    completion: str,
    gold: str,
    spec: GradingSpec,
    *,
    tool: str | None = None,
    question: str = "",
    choices: list[str] | None = None,
    truncated: bool = False,
    program_answer: str | None = None,
) -> Score:
    """Extract the answer of `completion` and grade it against `gold`.

    `tool`: the tool kind that made the completion (see `mathforge.tool_kinds`), None for plain text; a PAL
    completion's answer is `program_answer`, the result of running its program. `question` tells whether
    several answers are asked for; `truncated`: generation stopped at the token budget (then only a stated
    answer counts).
    """
    options: _ExtractOptions = {
        "extractor": spec.extractor,
        "choices": choices,
        "truncated": truncated,
        "several": asks_for_several(question),
        "boxed": spec.boxed,
    }
    if tool is None:
        extraction = extract_answer(completion, **options)
    else:
        from mathforge.tool_kinds import TOOL_KINDS  # the kinds import grading: resolved at call time

        extraction = TOOL_KINDS[tool].answer(completion, program_answer, **options)
    verdict = grade(extraction.answer, gold, spec.answer_type, rel_tol=spec.rel_tol, timeout=spec.timeout)
    return Score(extraction, verdict)
