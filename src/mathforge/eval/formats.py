"""Readers for other harnesses' output files: each row becomes a `SourceRow` with its raw completions.

Readers are registered in `READERS` (one class each, below), by format name. A new harness is one
class with `@register`: its name, the fields it needs, how to recognise its rows, and how to read one.

- `mathforge`: our own samples.jsonl rows (`id`, `question`, `gold`, `completions`, `preds`, `correct`, ...).
- `math-eval-harness` (ZubinGou/math-evaluation-harness) and `qwen25-math` (QwenLM/Qwen2.5-Math's
  evaluation, a fork writing the same rows): `idx`, `question`, `gt` (gold as that harness normalised it),
  `code` (the list of completions), `pred`, `score`, plus dataset fields (`level`, `type`, `choices`, ...).
  The row schemas are the same, so `auto` tells them apart only by the file name: Qwen2.5-Math's prompt types
  (`qwen25-math-cot`, `qwen-boxed`, ...) appear in its output names; anything else reads as math-eval-harness.
- `lm-eval` (EleutherAI lm-evaluation-harness `--log_samples`, `samples_<task>_*.jsonl`): `doc_id`, `doc` (the
  dataset row), `target`, `resps` (list of lists of generated strings), `filtered_resps`, and metric fields.
  A task with several filters logs every document once per filter with the same `resps`: the first row of a
  `doc_id` is kept (its filter's metric is the source score).

A reader never trusts the stored predictions or verdicts for grading: they are kept only as `source_pred` and
`source_score`, for comparison.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mathforge.benchmarks.gold_rules import GoldRuleError, derive_gold, to_text
from mathforge.benchmarks.loaders import format_question, row_choices
from mathforge.benchmarks.spec import BenchmarkSpec
from mathforge.errors import MathforgeError, did_you_mean
from mathforge.grading.trajectory import pal_answer
from mathforge.io import read_jsonl
from mathforge.records import SampleRow
from mathforge.tool_kinds import TOOL_KINDS

# Prompt types only Qwen2.5-Math's evaluation has; they appear in its output file names
# ("test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1.jsonl").
_QWEN_FILE = re.compile(r"qwen", re.IGNORECASE)


@dataclass
class SourceRow:
    """One item of a source file, independent of its format."""

    line: int  # 1-based line in the file, for error messages
    id: str
    question: str
    gold: str | None  # None: the file has none (only allowed when golds come from --data-dir)
    completions: list[str]
    choices: list[str] | None = None
    # Per completion: whether generation stopped at the token budget (only our own rows record it).
    truncated: list[bool] | None = None
    source_pred: list[Any] | None = None
    source_score: list[Any] | None = None
    subsets: dict[str, str] = field(default_factory=dict)
    tool: str | None = None  # "pal" or "tora" when the completions are tool-integrated
    # PAL rows of mathforge: each completion's program answer as the run recorded it (None: the run failed).
    program_answers: list[str | None] | None = None


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each non-blank line of a JSONL file; one-line errors for anything else."""
    if not path.exists():
        raise MathforgeError(f"{path}: no such file")
    if not path.is_file():
        raise MathforgeError(f"{path}: not a file")
    yield from read_jsonl(path)


class Reader(ABC):
    """One output format: how to tell its rows, and how to read one into a `SourceRow`."""

    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]]  # fields every row has
    gold_field: ClassVar[str | None] = None  # required too, unless the golds come from --data-dir
    # A file may repeat an item (lm-eval logs a document once per filter): keep the first, skip the rest.
    skips_repeats: ClassVar[bool] = False

    @abstractmethod
    def detect(self, path: Path, row: Mapping[str, Any]) -> bool:
        """Whether the first row of `path` is in this format."""

    @abstractmethod
    def read(
        self, raw: Mapping[str, Any], number: int, where: str, spec: BenchmarkSpec, need_gold: bool
    ) -> SourceRow: ...


READERS: dict[str, Reader] = {}


def register(cls: type[Reader]) -> type[Reader]:
    READERS[cls.name] = cls()
    return cls


def detect_format(path: Path, line: int, row: Mapping[str, Any]) -> str:
    """The format of a file, from its first row's keys (and, for the harness twins, the file name)."""
    for name, reader in READERS.items():
        if reader.detect(path, row):
            return name
    keys = ", ".join(sorted(row)[:12]) or "none"
    raise MathforgeError(
        f"{path}:{line}: cannot tell the file's format from its keys ({keys}); pass --format "
        f"{' or '.join(READERS)}"
    )


# math-evaluation-harness names files "{split}_{prompt_type}_..."; each tool kind says which words name it.
_KIND_OF_NAME = {word: kind.name for kind in TOOL_KINDS.values() for word in kind.file_names}
_TOOL_IN_NAME = re.compile(rf"(?:^|_)({'|'.join(map(re.escape, _KIND_OF_NAME))})(?:_|$)")


def detect_tool(path: Path, rows: list[SourceRow]) -> str | None:
    """pal, tora or None for a file: mathforge rows say so; the harness's file names do; output blocks mean tora."""
    recorded = {row.tool for row in rows if row.tool}
    if len(recorded) > 1:
        raise MathforgeError(f"{path}: rows of both {' and '.join(sorted(recorded))}; regrade them apart")
    if recorded:
        return recorded.pop()
    named = _TOOL_IN_NAME.search(path.stem)
    if named:
        return _KIND_OF_NAME[named.group(1)]
    if any("\n```output\n" in text for row in rows[:50] for text in row.completions):
        return "tora"
    return None


def load_source(
    path: Path, fmt: str, spec: BenchmarkSpec, need_gold: bool = True
) -> tuple[str, list[SourceRow]]:
    """The format (resolved when `fmt` is "auto") and the rows of `path`, read for benchmark `spec`.

    `need_gold`: a row without a gold answer is an error (False when golds come from the benchmark's data).
    """
    if fmt != "auto" and fmt not in READERS:
        hint = did_you_mean(fmt, ("auto", *READERS))
        raise MathforgeError(f"--format: must be one of auto, {', '.join(READERS)}; got '{fmt}'{hint}")
    rows: list[SourceRow] = []
    seen: dict[str, int] = {}
    for number, raw in read_rows(path):
        if fmt == "auto":
            fmt = detect_format(path, number, raw)
        reader = READERS[fmt]
        where = f"{path}:{number}"
        gold = (reader.gold_field,) if need_gold and reader.gold_field else ()
        _require(raw, (*reader.required, *gold), where, fmt)
        row = reader.read(raw, number, where, spec, need_gold)
        if reader.skips_repeats and row.id in seen:
            continue
        if row.id in seen:
            raise MathforgeError(f"{where}: duplicate id '{row.id}' (first at line {seen[row.id]})")
        seen[row.id] = number
        rows.append(row)
    if fmt == "auto" or not rows:
        raise MathforgeError(f"{path}: no rows to regrade")
    return fmt, rows


def _require(row: Mapping[str, Any], fields: tuple[str, ...], where: str, fmt: str) -> None:
    for name in fields:
        if name not in row:
            raise MathforgeError(f"{where}: missing field '{name}' (format {fmt})")


def _texts(value: Any, where: str, name: str) -> list[str]:
    """A completion list: a list of strings (or one string)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(text, str) for text in value):
        raise MathforgeError(f"{where}: field '{name}' must be a list of strings")
    if not value:
        raise MathforgeError(f"{where}: field '{name}' holds no completions")
    return value


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


def _subsets(spec: BenchmarkSpec, row: Mapping[str, Any]) -> dict[str, str]:
    return {name: to_text(row[key]) for name, key in spec.subsets.items() if row.get(key) is not None}


def _row_choices(spec: BenchmarkSpec, row: Mapping[str, Any], where: str) -> list[str] | None:
    """Options of a multiple-choice row, when it carries them under the benchmark's field."""
    if not spec.choices_field or row.get(spec.choices_field) is None:
        return None
    return row_choices(spec, where, row)


@register
class MathforgeReader(Reader):
    """Our own samples.jsonl rows (`mathforge.records.SampleRow`)."""

    name = "mathforge"
    required = ("id", "question", "completions")
    gold_field = "gold"

    def detect(self, path: Path, row: Mapping[str, Any]) -> bool:
        return "completions" in row and "id" in row

    def read(
        self, raw: Mapping[str, Any], number: int, where: str, spec: BenchmarkSpec, need_gold: bool
    ) -> SourceRow:
        sample = SampleRow.from_json(raw, where)
        tool = sample.tool if sample.tool in TOOL_KINDS else None
        runs_program = tool is not None and TOOL_KINDS[tool].answer_runs_program
        return SourceRow(
            line=number,
            id=sample.id,
            question=sample.question,
            gold=sample.gold,
            completions=sample.completions,
            choices=[str(choice) for choice in sample.choices] if isinstance(sample.choices, list) else None,
            truncated=sample.truncated if sample.finish_reasons is not None else None,
            source_pred=_as_list(raw.get("preds")),
            source_score=_as_list(raw.get("correct")),
            subsets={str(k): to_text(v) for k, v in (sample.subsets or {}).items()},
            tool=tool,
            program_answers=_program_answers(raw, len(sample.completions)) if runs_program else None,
        )


def _program_answers(raw: Mapping[str, Any], count: int) -> list[str | None] | None:
    """The answer of each completion's last recorded run, when every completion has one."""
    runs = raw.get("executions")
    if not isinstance(runs, list) or len(runs) != count or not all(isinstance(r, list) and r for r in runs):
        return None
    last = [r[-1] for r in runs]
    return [pal_answer(str(e.get("status")), e.get("answer"), str(e.get("stdout") or "")) for e in last]


class _HarnessReader(Reader):
    """math-evaluation-harness rows; Qwen2.5-Math's evaluation writes the same ones."""

    required = ("idx", "question", "code")
    gold_field = "gt"

    def detect(self, path: Path, row: Mapping[str, Any]) -> bool:
        return "code" in row and "idx" in row

    def read(
        self, raw: Mapping[str, Any], number: int, where: str, spec: BenchmarkSpec, need_gold: bool
    ) -> SourceRow:
        return SourceRow(
            line=number,
            id=to_text(raw["idx"]),
            question=str(raw["question"]),
            gold=to_text(raw["gt"]) if raw.get("gt") is not None else None,
            completions=_texts(raw["code"], where, "code"),
            choices=_row_choices(spec, raw, where),
            source_pred=_as_list(raw.get("pred")),
            source_score=_as_list(raw.get("score")),
            subsets=_subsets(spec, raw),
        )


@register
class QwenMathReader(_HarnessReader):
    name = "qwen25-math"

    def detect(self, path: Path, row: Mapping[str, Any]) -> bool:
        return super().detect(path, row) and bool(_QWEN_FILE.search(path.name))


@register
class MathEvalHarnessReader(_HarnessReader):
    name = "math-eval-harness"


@register
class LmEvalReader(Reader):
    name = "lm-eval"
    required = ("doc_id", "doc", "resps")
    skips_repeats = True  # the same document under the next filter

    def detect(self, path: Path, row: Mapping[str, Any]) -> bool:
        return "doc_id" in row and "resps" in row

    def read(
        self, raw: Mapping[str, Any], number: int, where: str, spec: BenchmarkSpec, need_gold: bool
    ) -> SourceRow:
        return _lm_eval_row(raw, number, where, spec, need_gold)


def _lm_eval_row(
    raw: Mapping[str, Any], number: int, where: str, spec: BenchmarkSpec, need_gold: bool
) -> SourceRow:
    doc = raw["doc"]
    if not isinstance(doc, dict):
        raise MathforgeError(f"{where}: field 'doc' must be an object")
    # lm-eval logs hub rows: give their columns the names the declaration uses.
    hub = spec.test.hub
    if hub is not None and hub.fields:
        renames = {hub_name: local for local, hub_name in hub.fields.items()}
        doc = {renames.get(key, key): value for key, value in doc.items()}
    resps = raw["resps"]
    if not isinstance(resps, list):
        raise MathforgeError(f"{where}: field 'resps' must be a list")
    flat = [text for inner in resps for text in (inner if isinstance(inner, list) else [inner])]
    if not all(isinstance(text, str) for text in flat):
        raise MathforgeError(
            f"{where}: field 'resps' holds no generated text (a loglikelihood task?); regrade reads the "
            "output of generate_until tasks"
        )
    return SourceRow(
        line=number,
        id=to_text(raw["doc_id"]),
        question=_lm_eval_question(doc, where, spec),
        gold=_lm_eval_gold(raw, doc, where, spec, need_gold),
        completions=_texts(flat, where, "resps"),
        choices=_row_choices(spec, doc, where),
        source_pred=_flatten(raw.get("filtered_resps")),
        source_score=_lm_eval_score(raw),
        subsets=_subsets(spec, doc),
    )


def _lm_eval_question(doc: Mapping[str, Any], where: str, spec: BenchmarkSpec) -> str:
    try:
        return format_question(spec, doc)
    except (KeyError, IndexError, ValueError):
        pass
    for name in ("question", "problem", "input"):  # a task whose doc schema differs from the declaration
        if isinstance(doc.get(name), str):
            return doc[name].strip()
    raise MathforgeError(
        f"{where}: no question in 'doc' (benchmark '{spec.name}' reads '{spec.question_template}')"
    )


def _lm_eval_gold(
    raw: Mapping[str, Any], doc: Mapping[str, Any], where: str, spec: BenchmarkSpec, need_gold: bool
) -> str | None:
    """The doc's answer field through the declared gold rules, as the loaders derive it; else the target.

    A target the rules do not fit (lm-eval's doc_to_target often reduces "... #### 18" to "18" already) is
    taken as it is.
    """
    if spec.answer_field in doc:
        try:
            return derive_gold(doc[spec.answer_field], doc, spec.gold_rules)
        except GoldRuleError:
            pass
    target = raw.get("target")
    if isinstance(target, list) and len(target) == 1:
        target = target[0]
    if target is None or target == "":
        if need_gold:
            raise MathforgeError(
                f"{where}: no gold answer: neither 'doc.{spec.answer_field}' nor 'target' (format lm-eval)"
            )
        return None
    try:
        return derive_gold(target, doc, spec.gold_rules)
    except GoldRuleError:
        return to_text(target)


def _flatten(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return [value]
    return [item for inner in value for item in (inner if isinstance(inner, list) else [inner])]


def _lm_eval_score(raw: Mapping[str, Any]) -> list[Any] | None:
    """The row's own verdict: its first declared metric (exact_match for the math tasks), when a number."""
    metrics = raw.get("metrics")
    names = metrics if isinstance(metrics, list) else []
    for name in [*names, "exact_match", "acc"]:
        value = raw.get(name)
        if isinstance(value, bool | int | float):
            return [value]
    return None
