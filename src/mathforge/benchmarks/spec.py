"""What a benchmark declaration says, and the item records loaders produce.

A benchmark is data (lm-evaluation-harness's lesson): where rows come from, which fields hold what, and how the
gold answer is derived from them. Loading code interprets these declarations; it never special-cases a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mathforge.grading.score import GradingSpec

AnswerType = Literal["number", "expression", "choice", "text"]

# How the option texts of a multiple-choice question are stored in a row.
ChoicesFormat = Literal[
    "list",  # ["text A", "text B", ...]                       (mmlu_stem)
    "list_lettered",  # ["A)text", "B)text", ...]              (aqua)
    "lettered_string",  # "A) x B) y" or "a ) x , b ) y"        (sat_math, mathqa)
    "dict",  # {"A": "x", "B": "y"}                             (gaokao_math_qa)
]


class HubSource(BaseModel):
    """Where online users get the split: `datasets.load_dataset(path, name, split=split, revision=revision)`.

    `fields` renames hub columns to the names the declaration uses, for hubs whose schema differs from the
    files under --data-dir.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    name: str | None = None
    split: str = "test"
    revision: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class FileSource(BaseModel):
    """Files under `--data-dir`: `<data-dir>/<folder>/<file>` for each file, rows concatenated in order."""

    model_config = ConfigDict(frozen=True)

    folder: str
    files: tuple[str, ...] = ("test.jsonl",)


class Split(BaseModel):
    """One split of a benchmark, with both of its sources."""

    model_config = ConfigDict(frozen=True)

    local: FileSource | None = None
    hub: HubSource | None = None


class BenchmarkSpec(BaseModel):
    """A benchmark declaration. See `mathforge.benchmarks.registry` for the registered ones."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    test: Split
    # Source of few-shot exemplars drawn from data (when no prompt file is used).
    train: Split | None = None
    # Question text: a `str.format` template over the row's fields (asdiv and svamp split body and question);
    # the conversion `!p` ends a field with a full stop when it has none ("{Body!p} {Question}").
    question_template: str = "{question}"
    # Gold: the field to start from, then each named gold rule in order (see `gold_rules.GOLD_RULES`).
    answer_field: str
    gold_rules: tuple[str, ...] = ()
    # Reference solution (few-shot exemplars from a train split use it).
    solution_field: str | None = None
    choices_field: str | None = None
    choices_format: ChoicesFormat | None = None
    answer_type: AnswerType
    # Subset name -> field: accuracy is broken down by each (MATH level and subject).
    subsets: dict[str, str] = Field(default_factory=dict)
    id_field: str | None = None
    # Defaults for `mathforge eval`.
    default_prompt: str = "few-shot"
    # Name of the few-shot prompt file in a prompt directory (`<prompt-dir>/cot/<name>.md`, the layout of
    # math-evaluation-harness). None: no published prompt file exists for this benchmark.
    prompt_file: str | None = None
    extractor: str = "auto"
    # Which \boxed{} the extractor reads when there are several: the last (the usual final answer) or the first.
    boxed: Literal["last", "first"] = "last"
    # Generation budget when --max-new-tokens is not given: long enough for this benchmark's chain of thought
    # (a 256-token budget truncates MATH solutions; arith's reference solutions need under 150 tokens).
    max_new_tokens: int = 1024
    # Built-in generator instead of files (arith).
    generator: str | None = None
    # How many items a generated benchmark has.
    size: int | None = None
    # Items evaluated when --limit is not given (None: all). arith's default keeps the quick start to minutes.
    default_limit: int | None = None

    def grading(
        self, extractor: str | None = None, rel_tol: float = 0.0, timeout: float | None = None
    ) -> GradingSpec:
        """How this benchmark's answers are graded; `extractor` overrides the declared one (multiple-choice
        benchmarks read a choice unless told otherwise)."""
        default = "choice" if self.answer_type == "choice" else self.extractor
        return GradingSpec(self.answer_type, extractor or default, self.boxed, rel_tol, timeout)


@dataclass
class Item:
    """One evaluation item, independent of the benchmark's file schema."""

    id: str
    question: str
    gold: str
    choices: list[str] | None = None
    solution: str | None = None
    subsets: dict[str, str] = field(default_factory=dict)
