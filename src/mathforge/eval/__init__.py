"""Evaluation: the runner, its configuration, metrics, the run-directory format, and regrading output files."""

from mathforge.eval.config import EvalConfig
from mathforge.eval.metrics import aggregate, majority_correct, pass_at_k
from mathforge.eval.regrade import RegradeResult, regrade_file
from mathforge.eval.runner import RunResult, evaluate

__all__ = [
    "EvalConfig",
    "RegradeResult",
    "RunResult",
    "aggregate",
    "evaluate",
    "majority_correct",
    "pass_at_k",
    "regrade_file",
]
