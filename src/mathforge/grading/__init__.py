"""Answer extraction, normalisation and equivalence for math benchmark completions.

`extract_answer` finds the final answer in a completion, `grade` compares it with the gold answer, and
`answers_equivalent` groups answers for majority voting. SymPy is imported only when a symbolic test runs.
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

__all__ = [
    "EXTRACTORS",
    "Extraction",
    "Verdict",
    "answers_equivalent",
    "asks_for_several",
    "cut_invented_continuation",
    "extract_answer",
    "grade",
    "last_boxed",
]
