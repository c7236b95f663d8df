"""The sample row: one item's prompt, completions, answers and verdicts, as every command keeps them.

`eval` writes these rows to samples.jsonl, `regrade` writes them (with the source file's own predictions
beside), and `regrade --format mathforge` reads them back; the judge and `report` read their fields. One
definition keeps the three in step. `ExecutionRecord` is one program run of a tool-integrated trajectory, as
the rows keep it in `executions`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mathforge.backends.base import CUT_SHORT
from mathforge.errors import MathforgeError
from mathforge.grading.score import Score
from mathforge.sandbox.types import ExecResult


@dataclass
class ExecutionRecord:
    """One program run: the round of the trajectory, the code, the sandbox's result, what the model was shown."""

    round: int
    code: str
    result: ExecResult
    shown: str | None = None

    def to_json(self) -> dict[str, Any]:
        record = {"round": self.round, "code": self.code, **self.result.to_json()}
        if self.shown is not None:
            record["shown"] = self.shown
        return record


@dataclass
class SampleRow:
    """One item with its n completions; the list fields have one entry per completion."""

    id: str
    question: str
    gold: str | None  # None only in a row read from a file without golds (regrade then takes them from data)
    prompt: str | None = None
    completions: list[str] = field(default_factory=list)
    preds: list[str | None] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    extract_rules: list[str] = field(default_factory=list)
    grade_rules: list[str] = field(default_factory=list)
    tokens: list[int] | None = None
    finish_reasons: list[str] | None = None  # "stop", "length" (the token budget) or "loop"
    seconds: float | None = None  # generation time per item
    tool: str | None = None  # the tool kind (`mathforge.tool_kinds`) when the completions ran programs
    executions: list[list[dict[str, Any]]] | None = None  # per completion, its `ExecutionRecord`s as JSON
    choices: list[str] | None = None
    subsets: dict[str, str] | None = None
    judge: list[dict[str, Any] | None] | None = None  # per completion, the judge's record (None: not asked)
    # Fields of other writers kept as they are (regrade's source_pred, source_score, source_line, ...).
    extra: dict[str, Any] = field(default_factory=dict)

    def grade(self, scores: Sequence[Score]) -> None:
        """Set the answer and verdict fields from one `Score` per completion."""
        self.preds = [s.pred for s in scores]
        self.correct = [s.correct for s in scores]
        self.extract_rules = [s.extraction.rule for s in scores]
        self.grade_rules = [s.verdict.rule for s in scores]

    @property
    def truncated(self) -> list[bool]:
        """Per completion: whether it was cut short, at the token budget or in a loop (False where the row does not
        say)."""
        reasons = self.finish_reasons
        if reasons is None or len(reasons) != len(self.completions):
            return [False] * len(self.completions)
        return [reason in CUT_SHORT for reason in reasons]

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object: optional fields only when set, then the extra fields."""
        row: dict[str, Any] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None or name in _REQUIRED:
                row[name] = value
        if self.subsets == {}:
            row.pop("subsets")
        return {**row, **self.extra}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], where: str) -> SampleRow:
        """A row read back from a samples file; `where` ("FILE:line") goes into the one-line errors."""
        for name in ("id", "question", "completions"):
            if name not in raw:
                raise MathforgeError(f"{where}: missing field '{name}' (format mathforge)")
        completions = raw["completions"]
        if isinstance(completions, str):
            completions = [completions]
        if not isinstance(completions, list) or not all(isinstance(text, str) for text in completions):
            raise MathforgeError(f"{where}: field 'completions' must be a list of strings")
        if not completions:
            raise MathforgeError(f"{where}: field 'completions' holds no completions")
        known: dict[str, Any] = {name: raw[name] for name in _FIELDS if name in raw and name not in _REQUIRED}
        for name in _GRADED:  # other writers may keep a single completion's verdict as a scalar
            if raw.get(name) is not None:
                known[name] = raw[name] if isinstance(raw[name], list) else [raw[name]]
        return cls(
            id=_text(raw["id"]),
            question=str(raw["question"]),
            gold=_text(raw["gold"]) if raw.get("gold") is not None else None,
            completions=completions,
            extra={key: value for key, value in raw.items() if key not in _FIELDS},
            **known,
        )


def _text(value: Any) -> str:
    from mathforge.benchmarks.gold_rules import to_text

    return to_text(value)


_FIELDS = [f.name for f in fields(SampleRow) if f.name != "extra"]
_GRADED = ("preds", "correct", "extract_rules", "grade_rules")
_REQUIRED = {"id", "question", "gold", "completions", *_GRADED}


def items_digest(ids: Sequence[str]) -> str:
    """A short digest of the set of items a run covers (their ids, in any order): `report` compares runs by it."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
