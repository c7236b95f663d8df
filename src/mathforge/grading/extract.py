"""Find the final answer in a model's completion.

Each rule looks for one way of stating an answer; an extractor tries its rules in order. Explicit statements
(\\boxed{}, Minerva's "Final Answer:", "The answer is", GSM8K's "####") come before the last-number
fallback, which is skipped when the completion loops or is cut off before an answer: its last number is then
noise, and grading it (as Math-Verify does) credits luck.

A stated answer is read as the model meant it: the whole "520 - 480 = 40" sentence gives 40, "72. I hope it
is correct" gives 72 and "40 apples" gives 40, where the math-evaluation-harness cuts or keeps the wrong part.

Completions are untrusted and may be long and degenerate, so every pattern here runs in linear time: no two
adjacent quantifiers can match the same characters (possessive quantifiers where they could), braces are
matched in one pass with a stack, and loops are found by comparing strings rather than by backreferences.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from mathforge.grading.choices import last_letter, leading_letters, letter_list_pattern, parse_letters
from mathforge.grading.equivalence import answers_equivalent
from mathforge.grading.normalize import strip_delimiters

EXTRACTORS: tuple[str, ...] = ("auto", "boxed", "gsm8k", "choice", "minerva")
BOXED: tuple[str, ...] = ("last", "first")


@dataclass(frozen=True)
class Extraction:
    answer: str | None  # None: no answer could be extracted
    rule: str  # "boxed", "final_answer", "answer_is", "hashes", "choice", "last_number" or "none"


_NO_ANSWER = Extraction(None, "none")


@dataclass(frozen=True)
class _Options:
    several: bool = False  # the question asks for several answers
    first: bool = False  # the first \boxed{} states the answer, not the last


# --- invented continuations

# A base model that has answered goes on to invent the next few-shot item at the start of a line
# (the full-width colon is for the Chinese benchmarks).
_INVENTED = re.compile(
    r"^[ \t]*+(?:\*\*|#{1,4}+[ \t]*+)?(?:Question|Problem|Q|Exercise|Human|User|Instruction)[ \t]*+(?:\d++[ \t]*+)?"
    r"[:：]"
    r"|^[ \t]*+#{1,4}+[ \t]*+(?:Instruction|Question|Problem|Input)\b",
    re.MULTILINE,
)
# GSM8K's calculator annotations, which models trained on its solutions copy: "48/2 = <<48/2=24>>24".
_CALCULATOR = re.compile(r"<<[^<>\n]{0,200}+>>")
_STOP_TOKENS = (
    "<|endoftext|>",
    "<|im_end|>",
    "<|im_start|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
)


def cut_invented_continuation(text: str) -> str:
    """The completion up to the first invented "Question:"/"Problem:"/... line or leaked stop token."""
    for token in _STOP_TOKENS:
        text = text.split(token, 1)[0]
    for match in _INVENTED.finditer(text):
        # At the very start it is the model restating the problem, not a new item after an answer.
        if text[: match.start()].strip():
            return text[: match.start()]
    return text


# --- \boxed{} and \fbox{}

_BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
# An escaped brace \{ is a literal set brace in LaTeX and does not group; \\ is an escaped backslash.
_BRACE_TOKEN = re.compile(r"\\[\\{}]|[{}]")
_SPACES = re.compile(r"[ \t]*+")
_SPACED_ARGUMENT = re.compile(r"\s++([^\s$]++)")  # "\boxed 5"
# What may stand between the boxes of one multi-part answer: math delimiters, punctuation, "and"/"or",
# \quad, line breaks, and the variable the next box gives a value to ("x = \boxed{2} or x = \boxed{-3}").
_BETWEEN_BOXES = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;.&]|\\\\|\b(?:and|or)\b|\\(?:text|textrm|mbox)\{\s*+(?:and|or|,)?\s*+\}"
    r"|(?:[a-zA-Z]|\\[a-zA-Z]++)(?:_\{?\w+\}?)?\s*+="
    r"|\\q?quad\b)*+"
)
_MAX_GAP = 80


class _Box(NamedTuple):
    start: int
    end: int  # just past the closing brace
    inner: slice | None  # where the content is; None: the completion stops inside the box

    def content(self, text: str) -> str | None:
        # Sliced only when asked for: nested boxes would make slicing them all quadratic.
        return None if self.inner is None else text[self.inner].strip()


def _brace_partners(text: str) -> dict[int, int]:
    """The index of each "{" mapped to that of its "}", found in one pass (unmatched braces are left out)."""
    partners: dict[int, int] = {}
    open_at: list[int] = []
    for match in _BRACE_TOKEN.finditer(text):
        token = match.group()
        if token == "{":
            open_at.append(match.start())
        elif token == "}" and open_at:
            partners[open_at.pop()] = match.start()
    return partners


def _boxes(text: str) -> list[_Box]:
    """Every \\boxed{}/\\fbox{} in order of its start (nested braces belong to the content)."""
    starts = list(_BOX.finditer(text))
    if not starts:
        return []
    partners = _brace_partners(text)
    boxes = []
    for match in starts:
        brace = _SPACES.match(text, match.end()).end()
        if text.startswith("{", brace):
            close = partners.get(brace)
            inner = None if close is None else slice(brace + 1, close)
            boxes.append(_Box(match.start(), len(text) if close is None else close + 1, inner))
            continue
        spaced = _SPACED_ARGUMENT.match(text, match.end())
        if spaced:  # "\\boxed 5." : the final period ends the sentence
            token_end = spaced.start(1) + len(spaced.group(1).rstrip("."))
            boxes.append(_Box(match.start(), spaced.end(), slice(spaced.start(1), token_end)))
        else:
            boxes.append(_Box(match.start(), match.end(), None))
    return boxes


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} or \\fbox{...} (nested braces kept), or of "\\boxed 5".

    None when there is no box or the text stops inside the last one: a fragment is no answer.
    """
    boxes = _boxes(text)
    return boxes[-1].content(text) if boxes else None


def _answer_boxes(text: str, boxes: list[_Box], options: _Options) -> list[_Box]:
    """The box that states the answer (the last, or the first) and, when the question asks for several
    answers, the boxes next to it that only connectives separate from it."""
    order = boxes if options.first else boxes[::-1]
    chosen = [order[0]]
    for box in order[1:] if options.several else ():
        left, right = (chosen[-1], box) if options.first else (box, chosen[-1])
        gap = text[left.end : right.start] if left.end <= right.start else None  # None: nested boxes
        if box.inner is None or gap is None or len(gap) > _MAX_GAP or not _BETWEEN_BOXES.fullmatch(gap):
            break
        chosen.append(box)
    return chosen if options.first else chosen[::-1]


def _boxed_phrase(text: str, options: _Options) -> str | None:
    """The stated content of the answer box(es): "2, -3" for "x = \\boxed{2} or x = \\boxed{-3}"."""
    boxes = _boxes(text)
    if not boxes:
        return None
    chosen = _answer_boxes(text, boxes, options)
    if any(box.inner is None for box in chosen):
        return None
    if len(chosen) == 1:
        return chosen[0].content(text)
    parts = [_tidy(box.content(text)) for box in chosen]
    return _join_distinct([_VARIABLE_PREFIX.sub("", part) for part in parts if part])


def _join_distinct(parts: list[str]) -> str:
    return ", ".join(dict.fromkeys(part.strip() for part in parts if part.strip()))


# --- tidying a stated answer

_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
_CURRENCY = re.compile(r"^(-?)[ \t]*+(?:\\\$|[€£¥₹])[ \t]*+(?=[\d.])")
_INCH_MARK = re.compile(r"(?<=\d)[ \t]*+[\"″]$")  # 66" : a unit like "66 inches"
_DOUBLED_MACRO = re.compile(r"\\\\(?=[a-zA-Z])")
_SINGLE_MACRO = re.compile(r"(?<!\\)\\[a-zA-Z]")
# "x =", "x_1 =", "\theta =", "f(x) =": a named variable left of a value.
_VARIABLE_PREFIX = re.compile(r"^\s*+(?:[a-zA-Z]|\\[a-zA-Z]++)(?:_\{?\w+\}?)?(?:\([a-zA-Z]\))?\s*+=(?!=)\s*+")
_TRAILING_PUNCTUATION = " \t\r\n.,;:!。"


def _undouble_backslashes(s: str) -> str:
    """Some models escape every backslash ("\\\\frac{1}{3}"); when all macros are doubled, undouble them."""
    if _DOUBLED_MACRO.search(s) and not _SINGLE_MACRO.search(_DOUBLED_MACRO.sub("", s)):
        return _DOUBLED_MACRO.sub(r"\\", s)
    return s


def _tidy(answer: str | None) -> str | None:
    """Strip what surrounds an answer: bold, math delimiters, a final period; unwrap a \\boxed{}.

    Every unescaped "$" goes: it is a math delimiter ("$3$ and $7$") or a currency sign ("2200$"), and
    neither is part of the value; an escaped "\\$" is a currency sign only before a number ("\\$1,250").
    """
    if answer is None:
        return None
    s = _undouble_backslashes(answer.replace("**", ""))
    s = _UNESCAPED_DOLLAR.sub("", strip_delimiters(s)).strip()
    if _BOX.search(s):
        s = _UNESCAPED_DOLLAR.sub("", strip_delimiters(last_boxed(s) or ""))
    s = strip_delimiters(s.rstrip(_TRAILING_PUNCTUATION))
    s = _INCH_MARK.sub("", _CURRENCY.sub(r"\1", s))
    return s.rstrip(_TRAILING_PUNCTUATION) or None


# --- the value in a stated phrase

# "The answer is therefore 3", "the answer is just 5": words between the statement and its value.
_FILLER = re.compile(
    r"^\s*+(?:(?:therefore|thus|hence|so|then|simply|just|exactly|approximately|about|equal\s++to|given\s++by)"
    r"\b[\s,:]*+)++",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|。")
_HOPE = re.compile(r"\bI hope it is correct", re.IGNORECASE)
# "$45$ minutes": a math span and then only words; the words are a unit or a comment.
_MATH_THEN_WORDS = re.compile(r"\s*+\$([^$]++)\$([^$\d=]*+)")
# "40 apples", "18 dollars per hour", "230 miles": a number that words follow is the answer ("5 x" stays).
_NUMBER_THEN_WORDS = re.compile(r"(-?(?:\d[\d,]*+(?:\.\d++)?|\.\d++))[,;:]?\s++(?!(?:and|or)\b)[a-zA-Z]{2}")
_WORD = re.compile(r"\b[a-zA-Z]{2,}+\b")
_ARITHMETIC_MACRO = re.compile(r"\\(?:[dt]?frac|cdot|times|div|sqrt|left|right|pi|circ)(?![a-zA-Z])")
_VARIABLE = re.compile(r"\s*+(?:[a-zA-Z]|[A-Z]{2,3}|\\[a-zA-Z]++)(?:_\{?\w+\}?)?(?:\([^()=]*+\))?\s*+")
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


def _right_hand_side(s: str, *, named: bool = True) -> str:
    """The value of "520 - 480 = 40" (or, when `named`, of "x = 3"); an equation with unknowns on the left
    ("x^2 + y^2 = 1") stays as it is."""
    *left, right = s.split("=")
    if not left or not right.strip():
        return s
    first = _is_arithmetic(left[0]) or (named and _VARIABLE.fullmatch(left[0]))
    if first and all(_is_arithmetic(part) for part in left[1:]):
        return right.strip()
    return s


def _value(phrase: str | None) -> str | None:
    """The answer a stated phrase gives: its first sentence, less units, comments and left-hand sides."""
    if phrase is None:
        return None
    phrase = _FILLER.sub("", _first_sentence(phrase))
    math = _MATH_THEN_WORDS.fullmatch(phrase)
    if math and re.search(r"[a-zA-Z]{2}", math.group(2)):
        phrase = math.group(1)
    s = _tidy(phrase)
    if s is None:
        return None
    items = _LIST_SEPARATOR.split(s)
    values = [_right_hand_side(item) for item in items] if len(items) > 1 else []
    if values and all(value != item for value, item in zip(values, items, strict=True)):
        return _join_distinct(values)
    s = _right_hand_side(s)
    number = _NUMBER_THEN_WORDS.match(s)
    return _tidy(number.group(1)) if number else s


# --- rules: each returns the answer it found or None

_FINAL_ANSWER = re.compile(r"Final Answer:[ \t]*+The final answer is", re.IGNORECASE)
_ANSWER_IS = re.compile(
    r"\banswers?[ \t]++(?:is|are)\b[ \t]*+:?"
    r"|\bfinal[ \t]++answer(?:\*\*)?[ \t]*+[:：]"
    r"|^[ \t]*+(?:\*\*)?answer(?:\*\*)?[ \t]*+[:：]"
    r"|答案[ \t]*+(?:是|为)?[ \t]*+[:：]?",
    re.IGNORECASE | re.MULTILINE,
)
_HASHES = re.compile(r"####")


# "the answer is correct", "the answer is as follows": a comment on an answer, not one.
_COMMENT = re.compile(
    r"(?:correct|incorrect|right|wrong|reasonable|not|as follows|below|shown|because)\b", re.I
)
_LOOK_BACK = 5  # statements tried, the last first


def _stated(text: str, pattern: re.Pattern[str], accept: Callable[[str], bool] | None = None) -> str | None:
    """What follows the last match of `pattern` that `accept`s it (by default the last that is no comment):
    the rest of its line, or the next line if that is empty."""
    accept = accept or (lambda phrase: not _COMMENT.match(phrase))
    matches = deque(pattern.finditer(text), maxlen=_LOOK_BACK)
    for match in reversed(matches):
        phrase = _line_after(text, match.end())
        if phrase and accept(phrase):
            return phrase
    return None


def _line_after(text: str, start: int) -> str | None:
    end = text.find("\n", start)
    while end != -1 and not text[start:end].strip():
        start, end = end + 1, text.find("\n", end + 1)
    line = text[start:] if end == -1 else text[start:end]
    return line.strip() or None


def _find_boxed(text: str, options: _Options) -> str | None:
    """The boxed answer; of a boxed computation ("\\boxed{\\frac{6!}{3!} = 120}") its result."""
    answer = _tidy(_boxed_phrase(text, options))
    return answer and _right_hand_side(answer, named=False)


def _find_final_answer(text: str, options: _Options) -> str | None:
    return _value(_stated(text, _FINAL_ANSWER))


def _find_answer_is(text: str, options: _Options) -> str | None:
    return _value(_stated(text, _ANSWER_IS))


def _find_hashes(text: str, options: _Options) -> str | None:
    """GSM8K's "#### 72"; a markdown heading ("#### Step 2: ...") is none."""
    return _value(_stated(text, _HASHES, lambda phrase: not re.match(r"[a-zA-Z]{2}", phrase)))


# --- the last-number fallback, and when it is noise

_NUMBER = re.compile(
    r"(?:(?<![\w)\]}])-)?(?:\d{1,3}(?:,\d{3})++(?:\.\d++)?|\d++(?:\.\d++)?(?:/\d++)?|\.\d++)"
)
# A line that is only markup ("$$", "\end{align*}") may repeat in a sound solution.
_MARKUP_LINE = re.compile(r"[\W_]*+|\\(?:begin|end)\{[^}]*+\}.*+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*+\n")
_SEGMENT_BREAK = re.compile(r"\n|(?<=[.!?])\s++")
_DIGITS = re.compile(r"\d++(?:[.,]\d++)*+")
# A text that stops on one of these was cut off mid-expression: "so it took 16 -", "(29,4),$ $(".
_OPEN_ENDINGS = ("=", "+", "*", "/", "^", "_", "(", "[", "{", ",", "\\", "&", "\\cdot", "\\times")
_LOOP_REPEATS = 5
_COUNTING_REPEATS = 10
_LETTERS = re.compile(r"[a-zA-Z]")


def _ends_mid_expression(text: str) -> bool:
    """Whether the text stops on an operator or an opening bracket, or inside a ``` code block."""
    s = text.rstrip()
    return s.endswith(_OPEN_ENDINGS) or (s.endswith("-") and not s.endswith("--")) or s.count("```") % 2 == 1


def _ends_in_a_loop(text: str) -> bool:
    """Whether the text ends repeating a line or sentence: the same one five times, or one that counts on ("On
    day 48, it is ... feet tall. On day 49, ...") ten times. A sound solution may repeat the shape of a step
    ("10 + 2 = 12. 12 + 2 = 14.", "For $\\lambda = 3$, ...") a few times, and then ends with its answer."""
    segments = [
        segment
        for segment in map(str.strip, _SEGMENT_BREAK.split(text))
        if len(segment) >= 3 and not _MARKUP_LINE.fullmatch(segment)
    ]
    shapes = [_DIGITS.sub("0", segment) for segment in segments]
    same, alike = Counter(segments), Counter(shapes)
    # The last segment may be cut off mid-way, so the loop shows in one of the last three.
    return any(same[segment] >= _LOOP_REPEATS for segment in segments[-3:]) or any(
        alike[shape] >= _COUNTING_REPEATS and len(_LETTERS.findall(shape)) >= 3 for shape in shapes[-3:]
    )


def _loops_at_the_end(text: str) -> bool:
    """Whether the same 4-200 characters end the text six times over ("3 + 3 + 3 + ...")."""
    tail = text.rstrip()[-1200:]
    return any(tail.endswith(tail[-size:] * 6) for size in range(4, min(200, len(tail) // 6) + 1))


def _is_degenerate(text: str) -> bool:
    """Whether the completion never reached an answer: it stops inside a \\boxed{ or mid-expression, or loops."""
    boxes = _boxes(text)
    if boxes and boxes[-1].inner is None:
        return True
    return _ends_mid_expression(text) or _ends_in_a_loop(text) or _loops_at_the_end(text)


def _find_last_number(text: str, options: _Options) -> str | None:
    """The last number of the final paragraph. One further up is not the answer: the model went on to say
    "This problem is not solvable with the given information." or "Reach max function call limit."."""
    if _is_degenerate(text):
        return None
    text = text.rstrip()
    paragraph_start = 0
    for paragraph_start in (match.end() for match in _PARAGRAPH_BREAK.finditer(text)):  # noqa: B007
        pass
    last = None
    for last in _NUMBER.finditer(text, paragraph_start):  # noqa: B007 - the last match is the one wanted
        pass
    return last.group() if last else None


Rule = Callable[[str, _Options], str | None]
_RULES: dict[str, tuple[tuple[str, Rule], ...]] = {
    "auto": (
        ("boxed", _find_boxed),
        ("final_answer", _find_final_answer),
        ("answer_is", _find_answer_is),
        ("hashes", _find_hashes),
        ("last_number", _find_last_number),
    ),
    "boxed": (("boxed", _find_boxed),),
    "gsm8k": (
        ("hashes", _find_hashes),
        ("boxed", _find_boxed),
        ("answer_is", _find_answer_is),
        ("last_number", _find_last_number),
    ),
    "minerva": (("final_answer", _find_final_answer), ("boxed", _find_boxed)),
}

# Rules that guess rather than read a stated answer: not used on a completion cut off by the token budget.
_GUESSES = ("last_number",)


def _apply(rules: tuple[tuple[str, Rule], ...], text: str, options: _Options, truncated: bool) -> Extraction:
    for rule, find in rules:
        if truncated and rule in _GUESSES:
            continue
        answer = find(text, options)
        if answer:
            return Extraction(answer, rule)
    return _NO_ANSWER


def extract_answer(
    completion: str,
    extractor: str = "auto",
    choices: list[str] | None = None,
    truncated: bool = False,
    *,
    several: bool = False,
    boxed: str = "last",
) -> Extraction:
    """The final answer of `completion` by the named extractor (see EXTRACTORS), and the rule that found it.

    `truncated`: generation stopped at the token budget. Then only a stated answer counts (boxed, final answer,
    "the answer is", ####): the last number of a cut-off text is a stray number, not the model's answer.
    `several`: the question asks for several answers (see `asks_for_several`), so boxes that together end the
    solution ("x = \\boxed{2} or x = \\boxed{-3}") give them all, joined: "2, -3".
    `boxed`: "last" (the default) or "first" \\boxed{} states the answer, for prompts whose answer comes first.
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r}; expected one of {', '.join(EXTRACTORS)}")
    if boxed not in BOXED:
        raise ValueError(f"unknown boxed choice {boxed!r}; expected one of {', '.join(BOXED)}")
    options = _Options(several=several, first=boxed == "first")
    text = _CALCULATOR.sub("", cut_invented_continuation(completion))
    if extractor == "choice":
        return _extract_choice(text, choices, truncated, options)
    return _apply(_RULES[extractor], text, options, truncated)


# --- questions that ask for several answers

_ASKS_FOR_A_LIST = re.compile(
    r"separated by (?:a )?commas?|comma[- ]separated|\bas a list\b|\bplace a comma\b|\bselect all\b",
    re.IGNORECASE,
)
_ASKS_FOR_ALL = re.compile(
    r"\b(?:find|determine|enter|list|give|compute|state|identify|choose|what[ \t]++are|solve[ \t]++for)"
    r"[ \t]++(?:all|each|every)\b(?![ \t]++but\b)"
    r"|\b(?:find|determine|enter|list|give|compute|what[ \t]++are)[ \t]++(?:all[ \t]++)?the[ \t]++"
    r"(?:(?:real|integer|complex|nonreal|possible|distinct|positive|negative|rational|two|three|four|five)[ \t]++)*+"
    r"(?:solutions|roots|zeros|zeroes|values|integers|numbers|primes|angles)\b"
    r"|\b(?:what|which)[ \t]++(?:(?:real|integer|complex|possible)[ \t]++)*values\b",
    re.IGNORECASE,
)
_ALL_POSSIBLE = re.compile(
    r"\ball\s++(?:of\s++)?(?:the\s++)?possible\s++(?:values|solutions|answers)\b", re.I
)
# "the sum of all possible values", "Let S be all possible values": one number is asked for.
_AGGREGATE = re.compile(
    r"(?:\b(?:sum|product|number|count|mean|average|set|total|median|maximum|minimum|largest|smallest|greatest"
    r"|least|range|difference)\s++of|\badd|\bbe)\s++(?:the\s++)?$",
    re.IGNORECASE,
)
# "Find all x such that ... Express your answer in interval notation": one set is asked for.
_ONE_SET = re.compile(r"interval notation|as an interval", re.IGNORECASE)


def asks_for_several(question: str) -> bool:
    """Whether `question` asks for several answers: "Enter all the solutions, separated by commas", "Find all
    values of x", "list all", "all possible values of k" (but not "the sum of all possible values")."""
    if _ASKS_FOR_A_LIST.search(question):
        return True
    if _ONE_SET.search(question):
        return False
    if _ASKS_FOR_ALL.search(question):
        return True
    return any(
        not _AGGREGATE.search(question[max(0, match.start() - 40) : match.start()])
        for match in _ALL_POSSIBLE.finditer(question)
    )


# --- multiple choice

# "Answer: B", "the correct option is B", "we choose (D)", "故选B": a letter must follow, so broader than for
# numbers.
_CHOICE_ANSWER_IS = re.compile(
    r"\b(?:answers?|options?|choices?)[ \t]++(?:is|are)\b[ \t]*+:?"
    r"|\banswer[ \t]*+[:：]"
    r"|\b(?:choose|select|pick)\b"
    r"|答案[ \t]*+(?:是|为|应为)?[ \t]*+[:：]?|(?:故|应|所以)选(?:择)?[ \t]*+[:：]?",
    re.IGNORECASE,
)


def _letter_is_correct(text: str, last: str) -> str | None:
    """The letter in "(B) is correct", "option C is the right answer"."""
    pattern = rf"\(?\b([A-{last}])\)?[ \t]++is[ \t]++(?:the[ \t]++)?(?:correct|right|best)\b"
    found = None
    for found in re.finditer(pattern, text):  # noqa: B007 - the last match is the one wanted
        pass
    return found.group(1) if found else None


_STATED_RULES = _RULES["auto"][:-1]  # every rule but the last-number guess
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _extract_choice(text: str, choices: list[str] | None, truncated: bool, options: _Options) -> Extraction:
    """Letters as stated, then the stated answer matched to an option's text, then letters standing alone,
    then the last number matched to an option's text."""
    last = last_letter(len(choices) if choices else None)
    stated = (
        ("boxed", _boxed_phrase(text, options)),
        ("final_answer", _stated(text, _FINAL_ANSWER)),
        ("answer_is", _stated(text, _CHOICE_ANSWER_IS, lambda phrase: bool(leading_letters(phrase, last)))),
        ("answer_is", _letter_is_correct(text, last)),
    )
    for rule, phrase in stated:
        letters = leading_letters(phrase, last) if phrase else None
        if letters:
            return Extraction(letters, rule)
    if choices:
        matched = _match_option(_apply(_STATED_RULES, text, options, truncated).answer, choices)
        if matched:
            return matched
    if truncated:  # letters standing alone in a cut-off text are as likely the options being restated
        return _NO_ANSWER
    count = len(choices) if choices else 4
    letters = _bare_letters(text, last, count)
    if letters:
        return Extraction(letters, "choice")
    if choices and not _restates_options(text, last, count):  # else the last number is an option's
        return _match_option(_find_last_number(text, options), choices) or _NO_ANSWER
    return _NO_ANSWER


def _bare_letters(text: str, last: str, count: int) -> str | None:
    """Letters standing alone: at the start ("B.", "(B) 42"), as a whole line, or the last "(B)".

    A text that names several options in parentheses discusses them: its first "(A)" is no answer, nor is its
    last when they are just the `count` options restated in order.
    """
    letters = letter_list_pattern(last)
    parenthesised = re.findall(rf"\(([A-{last}])\)", text)
    start = re.match(rf"\s*+(?:\(([A-{last}])\)|({letters})(?=[ \t]*+(?:[.):]|\n|$)))", text)
    if start and (start.group(2) or len(set(parenthesised)) == 1):
        return parse_letters(start.group(1) or start.group(2))
    line = None
    for line in re.finditer(rf"^[ \t]*+({letters})[ \t]*+[.)]?[ \t]*+$", text, re.MULTILINE):  # noqa: B007
        pass
    if line:
        return parse_letters(line.group(1))
    return parenthesised[-1] if parenthesised and not _restates_options(text, last, count) else None


def _restates_options(text: str, last: str, count: int) -> bool:
    """Whether the letters in parentheses are just the options restated: "(A) 12 (B) 42 (C) 7 (D) 1/2"."""
    parenthesised = "".join(re.findall(rf"\(([A-{last}])\)", text))
    return len(parenthesised) >= count and parenthesised == _ALPHABET[: len(parenthesised)]


def _match_option(answer: str | None, choices: list[str]) -> Extraction | None:
    """No letter given: the option whose text equals `answer`."""
    if answer is None or len(answer) > 3 * max(map(len, choices), default=0) + 30:
        return None  # far longer than every option: equal to none, and not worth the equivalence test
    for index, option in enumerate(choices):
        letter = chr(ord("A") + index)
        # Some sets keep the letter in the option text: "A) 42".
        option = re.sub(rf"^\s*+\(?{letter}[).:]\s*+", "", option)
        if answers_equivalent(answer, option, "expression"):
            return Extraction(letter, "choice")
    return None
