"""Multiple-choice letters: "(B)", "B.", "\\text{B}", "AC", "A, C" and "A and C" all name letter sets.

A letter set is returned in one canonical spelling, uppercase, sorted and without repeats: "A, C" -> "AC".
"""

from __future__ import annotations

import re

from mathforge.grading.normalize import strip_delimiters

_MACRO = re.compile(r"\\(?:text|textbf|textrm|textnormal|mathrm|mathbf|mbox|boxed|fbox)\s*+\{([^{}]*+)\}")
# Between two letters of a multi-answer: nothing, a space, a comma, "and", "&", "/". Possessive runs of space
# keep matching linear: spaces can only be taken by the first run.
_SEPARATOR = r"(?:\s*+(?:,|&|/|\band\b)?\s*+)"


def last_letter(count: int | None) -> str:
    """The last valid letter: E for five options; J (ten, as in MMLU-Pro) when the options are unknown."""
    if not count:
        return "J"
    return chr(ord("A") + min(count, 26) - 1)


def letter_list_pattern(last: str) -> str:
    one = rf"\(?[A-{last}]\)?"
    return rf"{one}(?:{_SEPARATOR}{one})*"


def unwrap(text: str) -> str:
    """Drop what dresses a letter up: math delimiters, \\text{}, \\textbf{}, markdown bold."""
    s = strip_delimiters(text.replace("**", "").strip().rstrip("."))
    s = _MACRO.sub(r"\1", s)
    return strip_delimiters(_MACRO.sub(r"\1", strip_delimiters(s)))


def canonical(letters: str) -> str:
    return "".join(sorted(set(re.findall(r"[A-Z]", letters))))


def parse_letters(text: str, last: str = "Z") -> str | None:
    """The letter set when the whole of `text` is one ("(B)", "A, C", "\\boxed{D}."), else None."""
    match = re.fullmatch(rf"\s*+({letter_list_pattern(last)})\s*+[.:]?\s*+", unwrap(text))
    return canonical(match.group(1)) if match else None


def leading_letters(text: str, last: str) -> str | None:
    """The letter set that `text` starts with ("(B) 42 because ..." -> "B"), else None.

    Used on what follows "the answer is", where words may follow the letters but a letter must not be the
    start of a word ("the answer is Bob" names no letter).
    """
    s = re.sub(r"^\s*+(?:options?|choices?)\s*+", "", unwrap(text), flags=re.IGNORECASE)
    match = re.match(rf"\s*+({letter_list_pattern(last)})(?![A-Za-z0-9])", s)
    return canonical(match.group(1)) if match else None
