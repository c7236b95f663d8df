"""Answer extraction, normalisation and equivalence for math benchmark completions.

`score` grades one completion (extraction, tool kind, equivalence) as every command does; `extract_answer`
finds the final answer in a completion, `grade` compares it with the gold answer, and `answers_equivalent`
groups answers for majority voting. SymPy is imported only when a symbolic test runs.
"""

from mathforge.grading.equivalence import Verdict, answers_equivalent, grade
from mathforge.grading.extract import (
    EXTRACTORS,
    Extraction,
    asks_for_several,
    cut_invented_continuation,
    extract_answer,
)
from mathforge.grading.latex import last_boxed
from mathforge.grading.score import GradingSpec, Score, score

__all__ = [
    "EXTRACTORS",
    "Extraction",
    "GradingSpec",
    "Score",
    "Verdict",
    "answers_equivalent",
    "asks_for_several",
    "cut_invented_continuation",
    "extract_answer",
    "grade",
    "last_boxed",
    "score",
]
