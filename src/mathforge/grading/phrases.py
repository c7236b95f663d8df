"""The value in a stated answer: "The answer is 520 - 480 = 40 apples." gives 40.

A stated phrase (what follows "The answer is", "Final Answer:", "####", a JSON "answer" field or a last
math-mode expression) is read as a careful human reads it: its first sentence, less units, comments,
markdown, quotes and left-hand sides. Every pattern here runs in linear time.
"""

from __future__ import annotations

import re

from mathforge.grading.latex import BOX, last_boxed
from mathforge.grading.normalize import EQUALS, is_name, named_values, strip_delimiters

# --- tidying

_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_CURRENCY = re.compile(r"^(-?)[ \t]*+(?:\\\$|[€£¥₹])[ \t]*+(?=[\d.])")
_INCH_MARK = re.compile(r"(?<=\d)[ \t]*+[\"″]$")  # 66" : a unit like "66 inches"
_DOUBLED_MACRO = re.compile(r"(?<!\\)\\\\(?=[a-zA-Z])")
# In an answer, "\\" before a macro name is a doubled backslash, even where the model doubled only some.
_DOUBLED_NAME = re.compile(r"(?<!\\)\\\\(?=[a-zA-Z]{2})")
_SINGLE_MACRO = re.compile(r"(?<!\\)\\[a-zA-Z]")
_TRAILING_PUNCTUATION = " \t\r\n.,;:!。"
# Debris around a value in chat and JSON replies: quotes, backticks, a closing brace of the object.
_QUOTES = '"`“”'
_PUNCTUATION_ONLY = re.compile(r"[\s!-/:-@\[-`{-~]*+")  # ASCII punctuation and spaces


def undouble_backslashes(s: str) -> str:
    """Some models escape every backslash ("\\\\frac{1}{3}"); when all macros are doubled, undouble them."""
    if _DOUBLED_MACRO.search(s) and not _SINGLE_MACRO.search(_DOUBLED_MACRO.sub("", s)):
        return _DOUBLED_MACRO.sub(r"\\", s)
    return s


def undouble_names(s: str) -> str:
    """ "\\\\sqrt{2}" is "\\sqrt{2}" wherever a model doubled some backslashes. A LaTeX line break "\\\\" is
    read as one only before anything but two letters ("\\\\ x", "\\\\\n", "\\\\\\frac"), as models write it."""
    return _DOUBLED_NAME.sub(r"\\", undouble_backslashes(s))


def _strip_debris(s: str) -> str:
    """Quotes, backticks and punctuation at the ends, and a "}" that closes nothing in the answer."""
    while True:
        before = s
        s = s.rstrip(_TRAILING_PUNCTUATION + "，" + _QUOTES).lstrip(" \t" + _QUOTES)
        if s.endswith("}") and s.count("}") > s.count("{"):
            s = s[:-1]
        if s.startswith("{") and s.count("{") > s.count("}"):
            s = s[1:]
        if s == before:
            return s


def tidy(answer: str | None) -> str | None:
    """Strip what surrounds an answer: bold, math delimiters, a final period; unwrap a \\boxed{}.

    Every unescaped "$" goes: it is a math delimiter ("$3$ and $7$") or a currency sign ("2200$"), and
    neither is part of the value; an escaped "\\$" is a currency sign only before a number ("\\$1,250").
    """
    if answer is None:
        return None
    s = undouble_backslashes(answer.replace("**", ""))
    s = _UNESCAPED_DOLLAR.sub("", strip_delimiters(s)).strip()
    if BOX.search(s):
        s = _UNESCAPED_DOLLAR.sub("", strip_delimiters(last_boxed(s) or ""))
    s = strip_delimiters(s.rstrip(_TRAILING_PUNCTUATION))
    s = _INCH_MARK.sub("", _CURRENCY.sub(r"\1", s))
    return s.rstrip(_TRAILING_PUNCTUATION) or None


def tidy_stated(phrase: str | None) -> str | None:
    """`tidy` for a phrase read out of prose or a chat reply, where quotes, backticks and a JSON object's
    braces surround the value (`6.",`), and a code fence or punctuation alone is no answer. (Boxed contents go
    through `tidy` alone: what a box holds is graded as it is.)"""
    if phrase is None or phrase.lstrip().startswith("```"):
        return None
    s = tidy(_strip_debris(undouble_names(phrase)))
    s = s and _strip_debris(s)
    return None if not s or _PUNCTUATION_ONLY.fullmatch(s) else s


# --- the value in a stated phrase

# "The answer is therefore 3", "the answer is just 5": words between the statement and its value.
_FILLER = re.compile(
    r"^\s*+(?:(?:therefore|thus|hence|so|then|simply|just|exactly|approximately|about|equal\s++to|given\s++by)"
    r"\b[\s,:]*+)++",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"\.(?=\s|$|[\"'`*)\]}])|。")
_HOPE = re.compile(r",?\s*+\bI hope\b", re.IGNORECASE)
# "$45$ minutes", "$\frac12$, I hope": a math span and then only words; the words are a unit or a comment.
_MATH_THEN_WORDS = re.compile(r"\s*+\$([^$]++)\$([^$\d=]*+)")
# "40 apples", "18 dollars per hour", "230 miles": a number that words follow is the answer ("5 x" stays).
_NUMBER_THEN_WORDS = re.compile(r"(-?(?:\d[\d,]*+(?:\.\d++)?|\.\d++))[,;:]?\s++(?!(?:and|or)\b)[a-zA-Z]{2}")
# "Evelyn, who is 5 years older", "x = 5, which is prime": a clause about the answer.
_CLAUSE = re.compile(r",[ \t]*+(?:who|which|where|since|because)\b.*+", re.IGNORECASE)
# "$\frac34$, since 3 of the 4 parts are shaded": a math span, then a comment on it.
_MATH_THEN_COMMENT = re.compile(
    r"\s*+\$([^$]++)\$\s*+(?:[,;(]|(?:since|because|which|as|so|for|where|when|i\.e\.|e\.g\.)\b)", re.IGNORECASE
)
# "9 (nine)", "40 (forty) minutes": a comment in parentheses.
_PARENTHESISED_WORDS = re.compile(r"\s*+\((?=[^()]*[a-zA-Z]{2})[a-zA-Z ,.'-]++\)")
# "The largest n is 34", "the number of divisors is 9": a subject, then the value after its verb.
_SUBJECT_VERB = re.compile(
    r"(?:\b(?:is|are|was|equals|be)\b|:)[ \t]*+(?=[-\d\\$(\[{.]|[a-zA-Z][ \t]*+=)", re.IGNORECASE
)
_STARTS_WITH_WORD = re.compile(r"\s*+[a-zA-Z]{2}")
_WORD = re.compile(r"\b[a-zA-Z]{2,}+\b")
_ARITHMETIC_MACRO = re.compile(r"\\(?:[dt]?frac|cdot|times|div|sqrt|left|right|pi|circ)(?![a-zA-Z])")
# "x = 9 and x = -3", "a = 2, b = 3": one value per equation.
_LIST_SEPARATOR = re.compile(r"(?<=\S),\s++|(?<=\S)\s++(?:and|or)\s++|;\s*+")


def _first_sentence(phrase: str) -> str:
    """The phrase up to "I hope it is correct" and to the end of its sentence ("72. I hope ..." -> "72")."""
    hope = _HOPE.search(phrase)
    if hope:
        phrase = phrase[: hope.start()]
    return _SENTENCE_END.split(phrase, maxsplit=1)[0]


def _is_arithmetic(s: str) -> bool:
    """Whether `s` is a computation on quantities: no single-letter unknowns, only numbers, units ("15
    gallons * 8 pints / gallon") and macros like \\frac and \\cdot."""
    return not re.search(r"[a-zA-Z]", _WORD.sub("", _ARITHMETIC_MACRO.sub("", s)))


def right_hand_side(s: str, *, named: bool = True) -> str:
    """The value of "520 - 480 = 40" (or, when `named`, of "x = 3" and "f(0) = -1"). An equation with unknowns
    on the left ("x^2 + y^2 = 1") or a named expression ("y = 2x + 3", the equation of a line) stays whole."""
    *left, right = EQUALS.split(s)
    if not left or not right.strip():
        return s
    rest_arithmetic = all(_is_arithmetic(part) for part in left[1:])
    if _is_arithmetic(left[0]) and rest_arithmetic:
        return right.strip()
    if named and is_name(left[0]) and rest_arithmetic and _is_arithmetic(right):
        return right.strip()
    return s


def _subject_value(s: str) -> str:
    """ "The largest n is 34" -> "34": a sentence about the answer, whose value follows its verb."""
    if not _STARTS_WITH_WORD.match(s):
        return s
    verb = _SUBJECT_VERB.search(s)
    # "Evelyn, who is 5 years older": a clause after the answer, not a sentence about it.
    return s[verb.end() :] if verb and "," not in s[: verb.start()] else s


def value(phrase: str | None) -> str | None:
    """The answer a stated phrase gives: its first sentence, less units, comments and left-hand sides.

    Several values for one name ("x = 9 or x = -3") become a list of values; values for different names
    ("p = 5, q = 2") stay named, because their order and names matter to the grader.
    """
    if phrase is None:
        return None
    phrase = _FILLER.sub("", _CLAUSE.sub("", _first_sentence(phrase.replace("**", ""))))
    math = _MATH_THEN_WORDS.fullmatch(phrase) or _MATH_THEN_COMMENT.match(phrase)
    if math and (math.re is _MATH_THEN_COMMENT or re.search(r"[a-zA-Z]{2}", math.group(2))):
        phrase = math.group(1)
    s = tidy_stated(_subject_value(phrase))
    if s is None:
        return None
    s = _PARENTHESISED_WORDS.sub("", s).strip() or s
    items = _LIST_SEPARATOR.split(s)
    if len(items) > 1:
        if named_values(items):
            return s
        values = [right_hand_side(item) for item in items]
        if all(v != item for v, item in zip(values, items, strict=True)):
            return join_distinct(values)
    s = right_hand_side(s)
    number = _NUMBER_THEN_WORDS.match(s)
    return tidy_stated(number.group(1)) if number else tidy_stated(s)


def join_distinct(parts: list[str]) -> str:
    return ", ".join(dict.fromkeys(part.strip() for part in parts if part.strip()))
