"""Training rows -> examples: a question and the target the model learns to write, or chat `messages`.

Reads what `mathforge curate` writes (question / solution / answer), GSM8K's layout (the worked solution in
`answer`, ending "#### 72"), and chat rows (`messages`: role/content dicts). Every problem with a row is one line
naming `FILE:line` and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathforge.errors import MathforgeError
from mathforge.io import read_rows

TARGETS = ("as-is", "card")
# GSM8K's calculator annotations: "48/2 = <<48/2=24>>24" -> "48/2 = 24".
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class ExampleFields:
    """Where the parts of a row are, and how the target is built."""

    question: str = "question"
    solution: str = "solution"
    answer: str = "answer"
    messages: str = "messages"
    target: str = "card"
    strip_calculator: bool = True


@dataclass
class Example:
    """One training example: `messages` for chat rows, else a question and the target text."""

    where: str  # FILE:line, for errors
    question: str = ""
    target: str = ""
    answer: str | None = None
    messages: list[dict[str, str]] | None = None


def read_examples(path: str | Path, fields: ExampleFields) -> list[Example]:
    """Every row of a JSONL or Parquet file as an example, or a one-line error naming the first bad row."""
    examples = [to_example(row, f"{path}:{line}", fields) for line, row in read_rows(path)]
    if not examples:
        raise MathforgeError(f"{path}: no rows to train on")
    return examples


def to_example(row: dict[str, Any], where: str, fields: ExampleFields) -> Example:
    if fields.messages in row:
        return Example(where, messages=_messages(row[fields.messages], where, fields))
    question = row.get(fields.question)
    if not isinstance(question, str) or not question.strip():
        raise MathforgeError(
            f"{where}: no '{fields.question}' text (a row needs question and solution fields, or "
            f"'{fields.messages}'; see --question-field)"
        )
    steps, answer = solution_and_answer(row, where, fields)
    if fields.strip_calculator:
        steps = strip_calculator(steps)
    return Example(
        where, question=question.strip(), target=build_target(steps, answer, fields.target), answer=answer
    )


def solution_and_answer(row: dict[str, Any], where: str, fields: ExampleFields) -> tuple[str, str | None]:
    """(the worked steps, the final answer or None): from a solution field (curate's rows), else from GSM8K's
    layout where the answer field holds the steps and "#### answer"."""
    solution = row.get(fields.solution)
    answer = row.get(fields.answer)
    answer_text = None if answer is None else str(answer).strip()
    if isinstance(solution, str) and solution.strip():
        steps, marked = _split_hashes(solution)
        return steps, answer_text if answer_text and "####" not in answer_text else marked
    if answer_text and "####" in answer_text:
        return _split_hashes(answer_text)
    raise MathforgeError(
        f"{where}: no '{fields.solution}' text, and '{fields.answer}' is not a worked solution ending "
        f"'#### answer' (see --solution-field)"
    )


def build_target(steps: str, answer: str | None, target: str) -> str:
    """The text the model learns. `card`: the Qwen3-8B-GSM8K-Synth card's format, the steps in a <think> block
    and then "The answer is X."; `as-is`: the steps as written (with "#### answer" when the row had one)."""
    if target == "card":
        if answer is None:
            return f"<think>\n{steps}\n</think>"
        return f"<think>\n{steps}\n</think>\nThe answer is {answer}."
    return steps if answer is None else f"{steps}\n#### {answer}"


def strip_calculator(text: str) -> str:
    return _CALCULATOR.sub("", text)


def _split_hashes(text: str) -> tuple[str, str | None]:
    if "####" not in text:
        return text.strip(), None
    steps, answer = text.rsplit("####", 1)
    return steps.strip(), answer.strip() or None


def _messages(value: Any, where: str, fields: ExampleFields) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise MathforgeError(
            f"{where}: '{fields.messages}' must be a non-empty list of {{role, content}} objects"
        )
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise MathforgeError(f"{where}: {fields.messages}[{index}] needs a 'content' string")
        if message.get("role") not in _ROLES:
            raise MathforgeError(
                f"{where}: {fields.messages}[{index}] has role {message.get('role')!r}; expected one of "
                f"{', '.join(_ROLES)}"
            )
        content = message["content"]
        if fields.strip_calculator and message["role"] == "assistant":
            content = strip_calculator(content)
        messages.append({**message, "content": content})
    if not any(message["role"] == "assistant" for message in messages):
        raise MathforgeError(f"{where}: '{fields.messages}' has no assistant message to train on")
    return messages
