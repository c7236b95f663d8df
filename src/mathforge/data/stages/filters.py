"""Row filters of `curate`: structure, answer range, solution quality and machine text.

Each looks at one row alone (`parallel`). All of them read a row the same way (`read_problem`): its question,
its step-by-step solution and its final answer, wherever the row keeps them. GSM8K's own training file keeps
the solution and the final answer in one field ("...\\n#### 72"); a synthetic row may keep the answer only in
its solution ("... \\boxed{72}"). The defaults suit GSM8K-style problems: every row of GSM8K's training file
passes them (tests/data/test_filters.py measures it).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from mathforge.benchmarks.gold_rules import derive_gold, to_text
from mathforge.config import one_of
from mathforge.data.stages.base import Drop, Stage, StageOptions, Verdict, register, text_of
from mathforge.grading import extract_answer
from mathforge.grading.latex import boxes
from mathforge.grading.loops import ends_in_a_loop, ends_mid_expression, loops_at_the_end, stuck_in_a_loop
from mathforge.grading.normalize import clean, parse_number

# --- reading a row -----------------------------------------------------------------------------------------

# GSM8K's final-answer marker; on the last line of a solution it states the answer and is no reasoning step.
_HASHES = "####"
_HASHES_LAST_LINE = re.compile(r"(?:^|\n)[ \t]*+####[^\n]*+\s*+$")


class RowFields(StageOptions):
    """Where a row keeps its question, solution and final answer (every filter's options have these)."""

    question_field: str = Field("question", description="Field holding the problem statement")
    solution_field: str = Field(
        "solution",
        description="Field holding the step-by-step solution; a row without it may keep the solution in the "
        "answer field, GSM8K's way ('steps\\n#### 72')",
    )
    answer_field: str = Field(
        "answer",
        description="Field holding the final answer (text or a number). 'steps\\n#### 72' gives the answer 72 "
        "(and the solution, when the row has no solution field); a row without an answer gets the one its "
        "solution states (\\boxed{}, '####', 'The answer is'), never a guess from its last number",
    )


@dataclass(frozen=True)
class Problem:
    """A row's question, solution (without a final '#### answer' line) and final answer, as text."""

    question: str
    solution: str
    answer: str


def read_problem(row: dict[str, Any], fields: RowFields) -> Problem:
    """The question, solution and final answer of `row`, by the rules `RowFields` documents."""
    value = row.get(fields.answer_field)
    answer = "" if value is None else to_text(value)
    solution = text_of(row, fields.solution_field)
    if _HASHES in answer:
        if not solution.strip():
            solution = answer.rsplit(_HASHES, 1)[0]
        answer = derive_gold(answer, row, ("after_hashes",))  # the benchmarks' rule for GSM8K's gold
    if not answer.strip():
        # truncated=True: only an answer the solution states counts, not its last number.
        answer = extract_answer(solution, truncated=True).answer or ""
    return Problem(
        text_of(row, fields.question_field).strip(), _without_final_hashes(solution), answer.strip()
    )


def _without_final_hashes(solution: str) -> str:
    return _HASHES_LAST_LINE.sub("", solution).strip()


def reason_key(name: str) -> str:
    """A field name as part of a snake_case reason key: "missing_source_id" for "source-id"."""
    return re.sub(r"\W+", "_", name).strip("_").lower() or "field"


# --- structure ---------------------------------------------------------------------------------------------


class StructureOptions(RowFields):
    required: list[str] = Field(
        ["question", "solution", "answer"],
        description="What each row must have, as non-empty text: 'question', 'solution' and 'answer' (the "
        "fields the *_field options name, read as every filter reads them, so that a GSM8K row, whose answer "
        "field holds the solution, has all three) and any other row fields by name",
    )


@register
class Structure(Stage):
    """Drops rows that lack a required field (`missing_<field>`), hold a list or an object where text belongs
    (`not_text`), or have no final answer (`no_answer`)."""

    name = "structure"
    options = StructureOptions
    opts: StructureOptions

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        return [self._verdict(row) for row in rows]

    def _verdict(self, row: dict[str, Any]) -> Verdict:
        for name in self.opts.required:
            if isinstance(row.get(name), list | dict):  # what `text_of` would write out as "['a', 'list']"
                return Drop("not_text", f"field '{name}' holds a {type(row[name]).__name__}, not text")
        problem = read_problem(row, self.opts)
        opts = self.opts
        roles = {"question": problem.question, "solution": problem.solution, "answer": problem.answer}
        roles |= {opts.question_field: problem.question, opts.solution_field: problem.solution}
        roles[opts.answer_field] = problem.answer
        for name in self.opts.required:
            text = roles[name] if name in roles else text_of(row, name).strip()
            if text:
                continue
            if name in ("answer", opts.answer_field):
                return Drop(
                    "no_answer", "no final answer: the answer field is empty and the solution states none"
                )
            return Drop(f"missing_{reason_key(name)}", f"field '{name}' is missing or empty")
        return None


# --- answer range ------------------------------------------------------------------------------------------


class AnswerRangeOptions(RowFields):
    min: float | None = Field(None, description="Smallest answer kept (none: no lower bound)")
    max: float | None = Field(None, description="Largest answer kept (none: no upper bound)")
    integer_only: bool = Field(True, description="Keep whole-number answers only (GSM8K's answers all are)")
    non_negative: bool = Field(False, description="Drop negative answers (GSM8K has a few: temperatures)")
    require_number: bool = Field(
        True, description="Drop answers that are not one number ('x + 1', 'two', '2 and 3'); off: keep them"
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


def answer_value(answer: str) -> Fraction | None:
    """The exact value of an answer that is one number ("1,000", "$12", "3/4", "-2", "12.50", "5 apples")."""
    return parse_number(clean(answer)) if answer else None


@register
class AnswerRange(Stage):
    """Drops answers that are not a number (`not_a_number`, `no_answer`), not whole (`not_integer`), negative
    (`negative`) or out of bounds (`below_min`, `above_max`)."""

    name = "answer_range"
    options = AnswerRangeOptions
    opts: AnswerRangeOptions

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        return [self._verdict(read_problem(row, self.opts).answer) for row in rows]

    def _verdict(self, answer: str) -> Verdict:
        value = answer_value(answer)
        if value is None:
            if not self.opts.require_number:
                return None
            if not answer:
                return Drop("no_answer", "no final answer to check")
            return Drop("not_a_number", f"answer {answer!r} is not a number")
        shown = _shown(value)
        if self.opts.integer_only and value.denominator != 1:
            return Drop("not_integer", f"answer {shown} is not a whole number", {"value": shown})
        if self.opts.non_negative and value < 0:
            return Drop("negative", f"answer {shown} is negative", {"value": shown})
        if self.opts.min is not None and value < self.opts.min:
            return Drop("below_min", f"answer {shown} is below min {self.opts.min:g}", {"value": shown})
        if self.opts.max is not None and value > self.opts.max:
            return Drop("above_max", f"answer {shown} is above max {self.opts.max:g}", {"value": shown})
        return None


def _shown(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


# --- solution quality --------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
# A line short or without words ("$$", "---", "= 24") may repeat in a sound solution.
_WORDS = re.compile(r"[A-Za-z]{2,}")
# The grader's loop test splits sentences at ". ", so a solution that writes "sq. ft." on every line repeats the
# "sentence" "ft." (GSM8K's training file has one): an abbreviation's period ends no sentence.
_ABBREVIATION = re.compile(
    r"\b(sq|ft|in|yd|mi|oz|lbs?|hrs?|mins?|secs?|mph|approx|etc|vs|Mr|Mrs|Ms|Dr|St|Jr|No)\.(?=[ \t]+[a-z\d$=+*/-])"
)
# What a solution may end on although `ends_mid_expression` would call it cut off: four GSM8K solutions end
# their last line with a comma.
_SLOPPY_END = ",;"


class SolutionQualityOptions(RowFields):
    min_steps: int = Field(
        2,
        ge=1,
        description="Fewest reasoning steps (non-empty lines; a one-paragraph solution's sentences). GSM8K's "
        "problems take 2 to 8",
    )
    max_steps: int | None = Field(None, ge=1, description="Most reasoning steps (none: no limit)")
    min_chars: int = Field(20, ge=0, description="Shortest solution, in characters")
    max_chars: int | None = Field(
        4000, ge=1, description="Longest solution, in characters (GSM8K's longest has 1,220; none: no limit)"
    )
    max_line_repeats: int | None = Field(
        2,
        ge=1,
        description="Most times one line with words may occur (more is a repetition loop; none: no limit)",
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Self:
        if self.max_steps is not None and self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) is above max_steps ({self.max_steps})")
        if self.max_chars is not None and self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars})")
        return self


def solution_steps(solution: str) -> list[str]:
    """The reasoning steps: the non-empty lines, or the sentences of a solution written as one paragraph."""
    lines = [line.strip() for line in solution.splitlines() if line.strip()]
    if len(lines) == 1:
        return [sentence for sentence in _SENTENCE_END.split(lines[0]) if sentence.strip()]
    return lines


@register
class SolutionQuality(Stage):
    """Drops solutions with too few or too many steps (`too_few_steps`, `too_many_steps`), too short or long
    (`too_short`, `too_long`), that loop (`repetition_loop`: the grader's loop tests, and lines repeated
    verbatim) or stop mid-expression (`cut_off`)."""

    name = "solution_quality"
    options = SolutionQualityOptions
    opts: SolutionQualityOptions

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        return [self._verdict(read_problem(row, self.opts).solution) for row in rows]

    def _verdict(self, solution: str) -> Verdict:
        # The loop tests come first: a looping solution is also too long, and the loop is what went wrong.
        loop = self._loop(solution)
        if loop is not None:
            return loop
        if _cut_off(solution):
            return Drop("cut_off", f"the solution stops mid-expression: ...{solution[-40:]!r}")
        length, steps = len(solution), len(solution_steps(solution))
        opts = self.opts
        if length < opts.min_chars:
            return Drop("too_short", f"{length} characters (min_chars {opts.min_chars})", {"chars": length})
        if opts.max_chars is not None and length > opts.max_chars:
            return Drop("too_long", f"{length} characters (max_chars {opts.max_chars})", {"chars": length})
        if steps < opts.min_steps:
            return Drop("too_few_steps", f"{steps} step(s) (min_steps {opts.min_steps})", {"steps": steps})
        if opts.max_steps is not None and steps > opts.max_steps:
            return Drop("too_many_steps", f"{steps} steps (max_steps {opts.max_steps})", {"steps": steps})
        return None

    def _loop(self, solution: str) -> Drop | None:
        """The grader's loop tests (`is_degenerate`'s, at the end of the text), then lines repeated anywhere."""
        sentences = _ABBREVIATION.sub(r"\1", solution)
        if ends_in_a_loop(sentences) or loops_at_the_end(solution) or stuck_in_a_loop(solution):
            return Drop("repetition_loop", f"the solution ends in a loop: ...{solution[-60:]!r}")
        if self.opts.max_line_repeats is None:
            return None
        # The grader's tests look at the end only (where a budget cuts a loop); curated text may loop in the
        # middle and still end with an answer.
        lines = Counter(line.strip() for line in solution.splitlines() if _WORDS.search(line))
        line, count = max(lines.items(), key=lambda item: item[1], default=("", 0))
        if count > self.opts.max_line_repeats:
            return Drop("repetition_loop", f"a line occurs {count} times: {line[:80]!r}", {"repeats": count})
        return None


def _cut_off(solution: str) -> bool:
    """Whether the solution stops on an operator, inside a code block or inside a \\boxed{ (`is_degenerate`'s
    other tests)."""
    found = boxes(solution)
    return (found and found[-1].inner is None) or ends_mid_expression(solution.rstrip().rstrip(_SLOPPY_END))


# --- machine text ------------------------------------------------------------------------------------------


def _patterns(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE | re.MULTILINE)


# Phrase lists in the spirit of the public instruction-data cleaners (the "unfiltered" ShareGPT/WizardLM lists
# of "As an AI language model" and refusals): no library ships them, and they are short regexes either way.
# Each is narrow enough that no question or solution of GSM8K's training file matches it.
_MACHINE_TEXT: dict[str, re.Pattern[str]] = {
    "refusal": _patterns(
        r"\bI(?:'m| am) sorry\b",
        r"\bI apologi[sz]e\b",
        r"\bI (?:cannot|can't|can ?not|won't|am unable to|'m unable to|am not able to|'m not able to) "
        r"(?:help|assist|provide|solve|answer|fulfil+|comply|complete|create|generate|do that)\b",
        r"\b(?:this|the) (?:problem|question) (?:cannot|can't|can ?not) be (?:solved|answered)\b",
        r"\b(?:not enough|insufficient) information (?:is given |is provided )?to (?:solve|answer|determine)\b",
    ),
    "assistant_boilerplate": _patterns(
        r"\bas an AI\b",
        r"\b(?:AI|large) language model\b",
        r"\bI hope (?:this|that|it) helps\b",
        r"\blet me know if\b",
        r"\bfeel free to\b",
        r"\bhappy to help\b",
        r"\bgreat question\b",
        r"^\s*(?:sure|certainly|absolutely|of course)\s*[,!.]",
        r"^\s*here(?:'s| is) (?:a|the|your|my) (?:step[- ]by[- ]step |detailed |complete )?(?:solution|answer|response)\b",
    ),
    "talks_about_task": _patterns(
        r"\bhere(?:'s| is| are) (?:a|an|the|your|some|another) (?:new |similar |sample |harder |rewritten |"
        r"more challenging |challenging )*(?:math |word |grade[- ]school )*(?:problems?|questions?)\b",
        r"\b(?:new|generated|rewritten|original|sample|similar|example|modified|created) (?:math |word )?"
        r"(?:problem|question)\s*:",
        r"\bthis (?:problem|question) (?:is|was) (?:designed|created|generated|written|meant|intended)\b",
        r"\bI(?:'ve| have)? (?:created|generated|written|rewritten|modified|designed|came up with) (?:a|an|the|"
        r"this|another|some) (?:new |similar |math |word )*(?:problem|question)s?\b",
        r"\b(?:difficulty level|as requested|the (?:user|prompt) (?:asks?|says?|wants?))\b",
    ),
    "solution_in_question": _patterns(
        r"^\s*(?:\*\*)?(?:solution|answer|final answer|step 1)(?:\*\*)?\s*:",
        r"\\boxed\{",
        r"^\s*####",
    ),
    "chat_markup": _patterns(
        r"<\|[a-z_]{2,30}\|>",
        r"</?s>",
        r"\[/?INST\]",
        r"<</?SYS>>",
        r"<(?:start|end)_of_turn>",
        r"^\s*(?:###\s*)?(?:Human|Assistant|User|System)\s*:",
    ),
    "markdown_debris": _patterns(
        r"^\s*(?:-{3,}|\*{3,}|_{3,}|={3,})\s*$",  # horizontal rules
        r"!?\[[^\]\n]*\]\([^)\n]*\)",  # links and images
        r"</?(?:br|div|span|p|table|tr|td|h[1-6]|hr)\s*/?>",  # HTML tags
        r"\{\{[^{}\n]*\}\}|\[(?:insert|your|answer)[^\]\n]*\]",  # unfilled template slots
    ),
}
# Only in the question: a heading or a code block has no place in a word problem, but may in a solution.
_QUESTION_MARKDOWN = _patterns(r"^\s*#{1,6}\s", r"```")
_FENCE = re.compile(r"```")
# Bold markers: "**" not between two operands, which is a power ("2**3").
_BOLD = re.compile(r"(?<![\w)])\*\*|\*\*(?![\w(])")
# Categories that look at the question only: the solution may quote its answer.
_QUESTION_ONLY = ("solution_in_question",)
MACHINE_TEXT_CHECKS: tuple[str, ...] = tuple(_MACHINE_TEXT)


class MachineTextOptions(RowFields):
    checks: list[str] = Field(
        list(MACHINE_TEXT_CHECKS),
        description="What to look for, each a drop reason: " + ", ".join(MACHINE_TEXT_CHECKS),
    )
    extra_patterns: dict[str, list[str]] = Field(
        {},
        description="More regular expressions (case-insensitive), under the reason key their match drops a "
        "row with: {'names_a_model': ['ChatGPT', 'GPT-4']}",
    )

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, checks: list[str]) -> list[str]:
        for check in checks:  # `Options.choices` checks a whole value, not a list's items
            one_of(check, MACHINE_TEXT_CHECKS)
        return checks

    @field_validator("extra_patterns")
    @classmethod
    def _valid_patterns(cls, extra: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, patterns in extra.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
                raise ValueError(f"reason key '{key}' must be snake_case (a-z, 0-9, _)")
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError(f"'{key}': not a regular expression: {pattern!r} ({error})") from None
        return extra


@register
class MachineText(Stage):
    """Drops questions and solutions that show they came from a chat model: refusals, assistant boilerplate,
    talk about the task itself, a solution inside the question, chat-template tokens, markdown debris."""

    name = "machine_text"
    options = MachineTextOptions
    opts: MachineTextOptions

    @cached_property
    def _checks(self) -> dict[str, re.Pattern[str]]:
        checks = {check: _MACHINE_TEXT[check] for check in self.opts.checks}
        return checks | {key: _patterns(*patterns) for key, patterns in self.opts.extra_patterns.items()}

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        return [self._verdict(read_problem(row, self.opts)) for row in rows]

    def _verdict(self, problem: Problem) -> Verdict:
        texts = {"question": problem.question, "solution": problem.solution}
        for reason, pattern in self._checks.items():
            for field, text in texts.items():
                if field == "solution" and reason in _QUESTION_ONLY:
                    continue
                found = pattern.search(text)
                if found:
                    return _machine_drop(reason, field, text, found.start(), found.end())
        return self._unbalanced_markdown(texts) if "markdown_debris" in self._checks else None

    def _unbalanced_markdown(self, texts: dict[str, str]) -> Verdict:
        found = _QUESTION_MARKDOWN.search(texts["question"])
        if found:
            return _machine_drop("markdown_debris", "question", texts["question"], found.start(), found.end())
        for field, text in texts.items():
            for marker, pattern in (("```", _FENCE), ("**", _BOLD)):
                if len(pattern.findall(text)) % 2:
                    return Drop("markdown_debris", f"{field}: an unclosed {marker}", {"field": field})
        return None


def _machine_drop(reason: str, field: str, text: str, start: int, end: int) -> Drop:
    context = text[max(0, start - 20) : end + 20].replace("\n", " ")
    return Drop(reason, f"{field}: {text[start:end].strip()!r} in ...{context}...", {"field": field})
