"""Decontamination and seed overlap: drop the rows that copy a benchmark's test item or a seed problem.

The index (`mathforge.data.decontam`) holds the question and reference solution of every test item of the
benchmarks in `against` (the split `mathforge eval` scores, with its item ids), and the rows of the seed
file. Each process builds its own in `setup`; a row's verdict depends on that row alone, so the stage runs in
`--workers` processes. The reasons separate the kinds of match, so that the funnel shows near-copies with
numbers changed and short items apart from n-gram overlaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from mathforge.benchmarks import AMBIGUOUS_NAMES, REGISTRY
from mathforge.config import one_of
from mathforge.data.decontam import (
    ALL,
    MatchKind,
    Overlap,
    OverlapIndex,
    ShortMatch,
    benchmark_names,
    benchmark_texts,
    seed_texts,
)
from mathforge.data.stages.base import Drop, Stage, StageOptions, Verdict, register, text_of
from mathforge.errors import MathforgeError

BenchmarkField = Literal["question", "solution"]
SEEDS = "seeds"  # the benchmark name seed rows are indexed under (their item id is their line)

# The funnel's reason keys: benchmark or seed, then the kind of match.
_SUFFIX: dict[MatchKind, str] = {
    "exact": "overlap",
    "numbers": "overlap_numbers_changed",
    "short": "short_item",
}
# How a person reads each kind in the rejects file.
_DETAIL: dict[MatchKind, str] = {
    "exact": "{field} shares n-grams with {benchmark} item {item}'s {item_field} (score {score:.2f}): "
    "'{ngram}'",
    "numbers": "{field} is {benchmark} item {item}'s {item_field} with numbers changed (score {score:.2f}): "
    "'{ngram}'",
    "short": "{field} holds {benchmark} item {item}'s whole {item_field}, too short for n-grams: '{ngram}'",
}


def reason_for(overlap: Overlap) -> str:
    """`benchmark_overlap`, `benchmark_overlap_numbers_changed`, `benchmark_short_item`, or `seed_...`."""
    return f"{'seed' if overlap.benchmark == SEEDS else 'benchmark'}_{_SUFFIX[overlap.match]}"


class DecontamStageOptions(StageOptions):
    """The options of the `decontam` stage (docs/decontamination.md says which reproduce published rules)."""

    against: list[str] = Field(
        default_factory=lambda: ["gsm8k", "math"],
        description="Benchmarks whose test items rows must not copy (registry names), or 'all': every one "
        "whose test split the data source has [default: gsm8k, math; MATH-500 is part of math]",
    )
    seeds: Path | None = Field(
        None,
        description="Seed JSONL/Parquet file whose questions, solutions and answers rows must not copy "
        "(relative to the pipeline file)",
    )
    fields: list[str] = Field(
        default_factory=lambda: ["question"], min_length=1, description="Row fields checked"
    )
    benchmark_fields: list[BenchmarkField] = Field(
        ["question", "solution"],
        min_length=1,
        description="Benchmark texts indexed: the question and/or the reference solution",
    )
    ngram: int = Field(
        13, ge=1, le=200, description="Words per n-gram (lm-eval 13, DeepSeekMath 10, Llemma 30, Tülu 3 8)"
    )
    min_words: int = Field(
        3,
        ge=1,
        description="Benchmark texts shorter than this are not indexed; those from this up to one under "
        "ngram are matched whole (DeepSeekMath: 3)",
    )
    short_match: ShortMatch = Field(
        "equal",
        description="equal: a checked text that is a short item after normalisation; contained: one that "
        "contains it word for word (DeepSeekMath)",
    )
    numbers: bool = Field(
        True, description="Also flag rows that are an item with its numbers changed (number-blind n-grams)"
    )
    numbers_min_score: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Share of a row's n-grams an item must hold number-blind for a numbers-changed match",
    )
    min_coverage: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of the item text's words that shared n-grams must cover (0: one shared n-gram "
        "flags; Tülu 3: 0.5)",
    )

    @field_validator("against")
    @classmethod
    def _registered(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError(f"expected benchmark names or '{ALL}', got none")
        for name in names:
            if name in AMBIGUOUS_NAMES:
                raise ValueError(AMBIGUOUS_NAMES[name])
            one_of(name, [*REGISTRY, ALL])
        return names


@register
class Decontaminate(Stage):
    """Drop rows whose checked fields copy a benchmark test item or a seed row (see the module docstring)."""

    name: ClassVar[str] = "decontam"
    options: ClassVar[type[StageOptions]] = DecontamStageOptions
    parallel: ClassVar[bool] = True

    opts: DecontamStageOptions
    index: OverlapIndex
    # What setup indexed: benchmark -> items, and the benchmarks 'all' left out (no data for them here).
    indexed: dict[str, int]
    skipped: list[str]

    def setup(self) -> None:
        opts = self.opts
        self.index = OverlapIndex(
            ngram=opts.ngram,
            min_words=opts.min_words,
            numbers_min_score=opts.numbers_min_score if opts.numbers else None,
            min_coverage=opts.min_coverage,
            short_match=opts.short_match,
        )
        self.indexed = {}
        self._index_benchmarks()
        if opts.seeds is not None:
            self._index_seeds(self.context.path(opts.seeds))

    def _index_benchmarks(self) -> None:
        names, self.skipped = benchmark_names(self.opts.against, self.context.data_dir)
        for name in names:
            items = set()
            for item, field, text in benchmark_texts(name, self.context.data_dir):
                items.add(item)
                if field in self.opts.benchmark_fields:
                    self.index.add(name, item, field, text)
            self.indexed[name] = len(items)

    def _index_seeds(self, path: Path) -> None:
        lines = set()
        for line, field, text in seed_texts(path):
            lines.add(line)
            self.index.add(SEEDS, line, field, text)
        self.indexed[SEEDS] = len(lines)

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        return [self._verdict(row, line) for row, line in zip(rows, lines, strict=True)]

    def _verdict(self, row: dict[str, Any], line: int) -> Verdict:
        best: tuple[str, Overlap] | None = None
        for field in self.opts.fields:
            overlap = self.index.find(self._text(row, field, line))
            if overlap is not None and (best is None or overlap.closeness() > best[1].closeness()):
                best = field, overlap
        if best is None:
            return None
        field, overlap = best
        info = {**overlap.info(), "field": field}
        return Drop(reason_for(overlap), _DETAIL[overlap.match].format(**info), info)

    def _text(self, row: dict[str, Any], field: str, line: int) -> str:
        """The field's text; a row without the field is an error (a misnamed field would pass every row)."""
        if field not in row:
            checked = ", ".join(self.opts.fields)
            raise MathforgeError(
                f"{self.context.source}:{line}: no field '{field}' (decontam checks {checked})"
            )
        return text_of(row, field)
