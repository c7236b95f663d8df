"""Tool kinds: the ways a model's completion can hand work to a Python sandbox, declared once each.

A kind says how its prompt ends and where generation stops, which of the tool settings change its outputs,
how its programs run during generation (`run`, over the primitives of `mathforge.generation.ToolUse`), and how
its answer is read (`answer`, used by `grading.score`). The prompt formats of the same names, the `--tool`
choices of `regrade` and the row field `tool` all come from `TOOL_KINDS`, so a new kind is one class here.

- `pal` (program-aided language models): the completion is one program; it runs once, and its answer is what
  `solution()` returns or, failing that, the last line it prints.
- `tora` (tool-integrated reasoning): prose and ```python blocks; each block runs when the model closes it, its
  output is shown in an ```output block and generation goes on, for up to `rounds` executions; the answer is
  what the prose states, else the last program output.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from mathforge.grading.extract import Extraction
from mathforge.grading.trajectory import extract_tora_answer

if TYPE_CHECKING:
    from mathforge.generation.tools import ToolRun

# math-evaluation-harness's stops for both kinds: the exemplar separator, and the moment the model would write
# a program's output itself.
TOOL_STOPS = ("\n\n---", "```output")


class ToolKind(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    # The query after the exemplars, as math-evaluation-harness writes it.
    query: ClassVar[str]
    stops: ClassVar[tuple[str, ...]] = TOOL_STOPS
    # Whether the answer is a program's result, so that regrading a file without recorded runs runs them.
    answer_runs_program: ClassVar[bool] = False
    # Words that name this kind in other harnesses' output file names ("test_tora_-1_seed0...").
    file_names: ClassVar[tuple[str, ...]] = ()

    def fingerprint(self, rounds: int, state: str) -> dict[str, Any]:
        """The settings of this kind that change what a model is shown (beyond the sandbox limits)."""
        return {}

    @abstractmethod
    def run(self, tools: ToolRun) -> None:
        """Run the programs of a batch of fresh trajectories (and, for multi-round kinds, generate on)."""

    @abstractmethod
    def answer(self, text: str, program_answer: str | None, **options: Any) -> Extraction:
        """The answer of one completion; `options` are `grading.extract_answer`'s (extractor, choices, ...)."""


TOOL_KINDS: dict[str, ToolKind] = {}


def register(cls: type[ToolKind]) -> type[ToolKind]:
    TOOL_KINDS[cls.name] = cls()
    return cls


@register
class PAL(ToolKind):
    name = "pal"
    description = "one program per completion, run once; the answer is what it returns or prints last"
    query = "Question: {question}"
    answer_runs_program = True
    file_names = ("pal",)

    def run(self, tools: ToolRun) -> None:
        tools.run_programs()

    def answer(self, text: str, program_answer: str | None, **options: Any) -> Extraction:
        return Extraction(program_answer, "program" if program_answer is not None else "none")


@register
class ToRA(ToolKind):
    name = "tora"
    description = "prose and code blocks; each block runs and its output is shown, for up to --tool-rounds"
    query = "Question: {question}\n\nSolution:"
    file_names = ("tora", "tool-integrated")  # ToRA's own harness says "tool-integrated"

    def fingerprint(self, rounds: int, state: str) -> dict[str, Any]:
        return {"rounds": rounds, "state": state}

    def run(self, tools: ToolRun) -> None:
        tools.run_rounds()

    def answer(self, text: str, program_answer: str | None, **options: Any) -> Extraction:
        return extract_tora_answer(text, **options)


def tool_kind(name: str) -> ToolKind:
    return TOOL_KINDS[name]
