"""The grading options every command that grades takes (eval, regrade; the synthetic-data verifier next)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from mathforge.config import Options
from mathforge.grading.extract import EXTRACTORS
from mathforge.grading.score import GradingSpec

if TYPE_CHECKING:
    from mathforge.benchmarks import BenchmarkSpec


class GradingOptions(Options):
    """--extractor, --rel-tol and --grade-timeout, and the `GradingSpec` they make for a benchmark."""

    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {"extractor": lambda: EXTRACTORS}

    extractor: str | None = Field(None, description="Answer extractor [default: the benchmark's]")
    rel_tol: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Relative tolerance for numeric answers, where rounded answers count (0: exact)",
    )
    grade_timeout: float | None = Field(
        None, gt=0.0, description="Seconds allowed per symbolic comparison [default: 5]"
    )

    def grading_spec(self, benchmark: BenchmarkSpec) -> GradingSpec:
        return benchmark.grading(self.extractor, self.rel_tol, self.grade_timeout)
