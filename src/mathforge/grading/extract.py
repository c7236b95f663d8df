"""Find the final answer in a model's completion.

Each rule looks for one way of stating an answer; an extractor tries its rules in order. Explicit statements
(\\boxed{}, Minerva's "Final Answer:", "The answer is", GSM8K's "####") come before the last-number
fallback, which is skipped when the completion loops or stops inside a \\boxed{, since its last number is
then noise rather than an answer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from mathforge.grading.choices import last_letter, leading_letters, letter_list_pattern, parse_letters
from mathforge.grading.equivalence import answers_equivalent
from mathforge.grading.normalize import strip_delimiters

EXTRACTORS: tuple[str, ...] = ("auto", "boxed", "gsm8k", "choice", "minerva")


@dataclass(frozen=True)
class Extraction:
    answer: str | None  # None: no answer could be extracted
    rule: str  # "boxed", "final_answer", "answer_is", "hashes", "choice", "last_number" or "none"


_NO_ANSWER = Extraction(None, "none")

# A base model that has answered goes on to invent the next few-shot item at the start of a line
# (the full-width colon is for the Chinese benchmarks).
_INVENTED = re.compile(
    r"^[ \t]*(?:\*\*|#{1,4}[ \t]*)?(?:Question|Problem|Q|Exercise|Human|User|Instruction)[ \t]*\d*[ \t]*[:：]"
    r"|^[ \t]*#{1,4}[ \t]*(?:Instruction|Question|Problem|Input)\b",
    re.MULTILINE,
)
_STOP_TOKENS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_FINAL_ANSWER = re.compile(
    r"Final Answer:\s*The final answer is\s*(.*?)(?:\.?\s*I hope it is correct|\n|$)",
    re.IGNORECASE | re.DOTALL,
)
_ANSWER_IS = re.compile(r"\banswer\s+is\s*:?|\bfinal\s+answer\s*:", re.IGNORECASE)
# For choices "Answer: B" and "the correct option is B" are common and a letter must follow, so broader.
_CHOICE_ANSWER_IS = re.compile(r"\b(?:answer|option|choice)\s+is\s*:?|\banswer\s*:", re.IGNORECASE)
_HASHES = re.compile(r"####\s*([^\n]*)")
_SENTENCE_END = re.compile(r"\.(?=\s|$)")
# "40 apples", "$18 per hour": a number that words follow is the answer, the words are not ("5 x" stays).
_NUMBER_THEN_WORDS = re.compile(r"(\\?\$?\s*-?(?:\d[\d,]*)?\.?\d+)\s+(?!(?:and|or)\b)[a-zA-Z]{2}")
_NUMBER = re.compile(r"(?:(?<![\w)\]}])-)?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:/\d+)?|\.\d+)")
# A line that is only markup ("$$", "\end{align*}") may repeat in a sound solution.
_MARKUP_LINE = re.compile(r"[\W_]*|\\(?:begin|end)\{[^}]*\}.*")
# The same 4-200 characters six times over at the very end: a single-line loop ("3 + 3 + 3 + ...").
_TAIL_LOOP = re.compile(r"(.{4,200}?)\1{5,}\s*$", re.DOTALL)


def cut_invented_continuation(text: str) -> str:
    """The completion up to the first invented "Question:"/"Problem:"/... line or leaked stop token."""
    for token in _STOP_TOKENS:
        text = text.split(token, 1)[0]
    for match in _INVENTED.finditer(text):
        # At the very start it is the model restating the problem, not a new item after an answer.
        if text[: match.start()].strip():
            return text[: match.start()]
    return text


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} or \\fbox{...} (nested braces kept), or of "\\boxed 5"."""
    boxes = list(_BOX.finditer(text))
    if not boxes:
        return None
    start = boxes[-1].end()
    rest = text[start:].lstrip(" \t")
    if rest.startswith("{"):
        depth = 0
        for i, char in enumerate(rest):
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0:
                return rest[1:i].strip()
        return None  # cut off inside the box: no answer rather than a fragment
    spaced = re.match(r"\s+([^\s$]+)", text[start:])
    return spaced.group(1).rstrip(".") if spaced else None


def _tidy(answer: str | None) -> str | None:
    """Strip what surrounds an answer: bold, math delimiters, a final period; unwrap a \\boxed{}."""
    if answer is None:
        return None
    s = strip_delimiters(answer.replace("**", "").strip())
    if _BOX.search(s):
        s = last_boxed(s) or ""
    s = strip_delimiters(re.sub(r"[\s.,;:!]+$", "", s))
    if s.count("$") == 1:
        s = re.sub(r"^\\?\$\s*(?=[\d.])", "", s)  # a currency sign: "$1,250"
    return s or None


# --- rules: each returns the answer it found or None


def _find_boxed(text: str) -> str | None:
    return _tidy(last_boxed(text))


def _find_final_answer(text: str) -> str | None:
    matches = list(_FINAL_ANSWER.finditer(text))
    return _tidy(matches[-1].group(1)) if matches else None


def _answer_phrase(text: str, pattern: re.Pattern[str]) -> str | None:
    """What follows the last "the answer is" up to the end of its sentence (or its next line, if empty)."""
    matches = list(pattern.finditer(text))
    if not matches:
        return None
    lines = [line.strip() for line in text[matches[-1].end() :].split("\n")]
    phrase = next((line for line in lines if line), "")
    return _SENTENCE_END.split(phrase, 1)[0]


def _find_answer_is(text: str) -> str | None:
    phrase = _tidy(_answer_phrase(text, _ANSWER_IS))
    if phrase is None:
        return None
    number = _NUMBER_THEN_WORDS.match(phrase)
    if number:
        return _tidy(number.group(1))
    # "The answer is 520 - 480 = 40": the value is the right-hand side.
    return _tidy(phrase.rsplit("=", 1)[-1]) if "=" in phrase else phrase


def _find_hashes(text: str) -> str | None:
    matches = _HASHES.findall(text)
    return _tidy(matches[-1]) if matches else None


def _is_degenerate(text: str) -> bool:
    """Whether the completion stopped inside a \\boxed{, or loops: a line five times, or a repeating tail."""
    if _BOX.search(text) and last_boxed(text) is None:
        return True
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if len(line) >= 3 and not _MARKUP_LINE.fullmatch(line)]
    if lines and Counter(lines).most_common(1)[0][1] >= 5:
        return True
    return bool(_TAIL_LOOP.search(text[-2000:]))


def _find_last_number(text: str) -> str | None:
    if _is_degenerate(text):
        return None
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


Rule = Callable[[str], str | None]
_RULES: dict[str, tuple[tuple[str, Rule], ...]] = {
    "auto": (
        ("boxed", _find_boxed),
        ("final_answer", _find_final_answer),
        ("answer_is", _find_answer_is),
        ("hashes", _find_hashes),
        ("last_number", _find_last_number),
    ),
    "boxed": (("boxed", _find_boxed),),
    "gsm8k": (("hashes", _find_hashes), ("answer_is", _find_answer_is), ("last_number", _find_last_number)),
    "minerva": (("final_answer", _find_final_answer), ("boxed", _find_boxed)),
}


# Rules that guess rather than read a stated answer: not used on a completion cut off by the token budget.
_GUESSES = ("last_number",)


def extract_answer(
    completion: str, extractor: str = "auto", choices: list[str] | None = None, truncated: bool = False
) -> Extraction:
    """The final answer of `completion` by the named extractor (see EXTRACTORS), and the rule that found it.

    `truncated`: generation stopped at the token budget. Then only a stated answer counts (boxed, final answer,
    "the answer is", ####): the last number of a cut-off text is a stray number, not the model's answer.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; expected one of {', '.join(EXTRACTORS)}")
    text = cut_invented_continuation(completion)
    if extractor == "choice":
        return _extract_choice(text, choices, truncated)
    for rule, find in _RULES[extractor]:
        if truncated and rule in _GUESSES:
            continue
        answer = find(text)
        if answer:
            return Extraction(answer, rule)
    return _NO_ANSWER


# --- multiple choice


def _extract_choice(text: str, choices: list[str] | None, truncated: bool = False) -> Extraction:
    last = last_letter(len(choices) if choices else None)
    stated = (
        ("boxed", last_boxed(text)),
        ("final_answer", _find_final_answer(text)),
        ("answer_is", _answer_phrase(text, _CHOICE_ANSWER_IS)),
    )
    for rule, phrase in stated:
        letters = leading_letters(phrase, last) if phrase else None
        if letters:
            return Extraction(letters, rule)
    if truncated:  # letters standing alone in a cut-off text are as likely the options being restated
        return _NO_ANSWER
    letters = _bare_letters(text, last)
    if letters:
        return Extraction(letters, "choice")
    if choices:
        return _match_option(text, choices)
    return _NO_ANSWER


def _bare_letters(text: str, last: str) -> str | None:
    """Letters standing alone: at the start ("B.", "(B) 42"), as a whole line, or the last "(B)"."""
    letters = letter_list_pattern(last)
    start = re.match(rf"\s*(?:\(([A-{last}])\)|({letters})(?=[ \t]*(?:[.):]|\n|$)))", text)
    if start:
        return parse_letters(start.group(1) or start.group(2))
    lines = re.findall(rf"^[ \t]*({letters})[ \t]*[.)]?[ \t]*$", text, re.MULTILINE)
    if lines:
        return parse_letters(lines[-1])
    parenthesised = re.findall(rf"\(([A-{last}])\)", text)
    return parenthesised[-1] if parenthesised else None


def _match_option(text: str, choices: list[str]) -> Extraction:
    """No letter given: find the option whose text equals the stated answer (or the last number)."""
    answer = extract_answer(text, "auto").answer
    if answer is None:
        return _NO_ANSWER
    for index, option in enumerate(choices):
        letter = chr(ord("A") + index)
        # Some sets keep the letter in the option text: "A) 42".
        option = re.sub(rf"^\s*\(?{letter}[).:]\s*", "", option)
        if answers_equivalent(answer, option, "expression"):
            return Extraction(letter, "choice")
    return _NO_ANSWER
