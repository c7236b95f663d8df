"""Named rules that turn a row's answer field into the gold answer string.

A declaration lists rule names (optionally `name:argument`); `derive_gold` applies them in order. Each rule is
a small pure function so that a new benchmark needs a new rule only when its file format is truly new.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mathforge.grading import last_boxed

GoldRule = Callable[[Any, Mapping[str, Any], str | None], Any]


class GoldRuleError(ValueError):
    """The row's answer field does not have the shape the rule expects."""


def _after_hashes(value: Any, row: Mapping[str, Any], arg: str | None) -> str:
    text = str(value)
    if "####" not in text:
        raise GoldRuleError("no '####' marker in the answer")
    return text.rsplit("####", 1)[1].strip()


def _last_boxed(value: Any, row: Mapping[str, Any], arg: str | None) -> str:
    boxed = last_boxed(str(value))
    if boxed is None:
        raise GoldRuleError("no \\boxed{} in the solution")
    return boxed


def _strip_unit_parens(value: Any, row: Mapping[str, Any], arg: str | None) -> str:
    # asdiv stores "9 (apples)": the unit in parentheses is not part of the answer.
    return re.sub(r"\s*\([^()]*\)\s*$", "", str(value)).strip()


def _strip_dollars(value: Any, row: Mapping[str, Any], arg: str | None) -> str:
    text = str(value).strip()
    if text.endswith("$."):  # olympiadbench writes one gold as "$...$."
        text = text[:-1]
    while len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1].strip()
    return text


def _first(value: Any, row: Mapping[str, Any], arg: str | None) -> Any:
    if not isinstance(value, list) or not value:
        raise GoldRuleError("expected a non-empty list")
    return value[0]


def _index_to_letter(value: Any, row: Mapping[str, Any], arg: str | None) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 26:
        raise GoldRuleError(f"expected a choice index 0-25, got {value!r}")
    return chr(ord("A") + value)


def _letters(value: Any, row: Mapping[str, Any], arg: str | None) -> str:
    # "b", "B C D", "A,C" -> "B", "BCD", "AC": one canonical spelling of a (multi-)choice answer.
    letters = re.sub(r"[\s,;]", "", str(value)).upper()
    if not letters.isalpha():
        raise GoldRuleError(f"expected choice letters, got {value!r}")
    return letters


def _prefer(value: Any, row: Mapping[str, Any], arg: str | None) -> Any:
    # cn_middle_school: the choice letter when the row has one, else the answer.
    preferred = row.get(arg or "")
    return preferred if preferred not in (None, "") else value


def _answer_in_question(value: Any, row: Mapping[str, Any], arg: str | None) -> Any:
    # gaokao2023en: two rows have an empty answer field and carry "Answer: A" / "answers: $x$" at the end of
    # the question instead (as in the source file); read it from there.
    if str(value).strip():
        return value
    match = re.search(
        r"answers?:\s*(.+?)\s*$", str(row.get(arg or "question", "")), re.IGNORECASE | re.DOTALL
    )
    if match is None:
        raise GoldRuleError("empty answer, and none at the end of the question")
    return match.group(1)


GOLD_RULES: dict[str, GoldRule] = {
    "answer_in_question": _answer_in_question,
    "after_hashes": _after_hashes,
    "last_boxed": _last_boxed,
    "strip_unit_parens": _strip_unit_parens,
    "strip_dollars": _strip_dollars,
    "first": _first,
    "index_to_letter": _index_to_letter,
    "letters": _letters,
    "prefer": _prefer,
}


def to_text(value: Any) -> str:
    """JSON numbers become answer strings: 27.0 -> "27", 0.5 -> "0.5"."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def derive_gold(value: Any, row: Mapping[str, Any], rules: tuple[str, ...]) -> str:
    for rule in rules:
        name, _, arg = rule.partition(":")
        value = GOLD_RULES[name](value, row, arg or None)
    return to_text(value)
