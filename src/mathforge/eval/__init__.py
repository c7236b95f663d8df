"""Evaluation: the runner, its configuration, metrics, and the run-directory format."""

from mathforge.eval.config import EvalConfig
from mathforge.eval.metrics import aggregate, majority_correct, pass_at_k
from mathforge.eval.runner import RunResult, evaluate

__all__ = ["EvalConfig", "RunResult", "aggregate", "evaluate", "majority_correct", "pass_at_k"]
