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

import bisect
import functools
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from mathforge.grading.choices import last_letter, leading_letters, letter_list_pattern, parse_letters
from mathforge.grading.equivalence import answers_equivalent
from mathforge.grading.latex import (
    TEXT_MACROS,
    MathSpan,
    final_paragraph_start,
    last_numeric_expression,
    math_spans,
    numeric_expressions,
    split_top_level,
)
from mathforge.grading.latex import Box as _Box
from mathforge.grading.latex import boxes as _boxes
from mathforge.grading.loops import is_degenerate
from mathforge.grading.normalize import BETWEEN_BOXES, EQUALS, assignments, is_name
from mathforge.grading.phrases import (
    join_distinct,
    right_hand_side,
    tidy,
    tidy_stated,
    undouble_backslashes,
    undouble_names,
    value,
)

EXTRACTORS: tuple[str, ...] = ("auto", "boxed", "gsm8k", "choice", "minerva")
BOXED: tuple[str, ...] = ("last", "first")


@dataclass(frozen=True)
class Extraction:
    answer: str | None  # None: no answer could be extracted
    # "boxed", "json", "final_answer", "answer_is", "hashes", "math", "last_number", "choice", "program",
    # "program_output" or "none"
    rule: str


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

_MAX_GAP = 80
# "x =", "x_1 =", "\theta =", "f(x) =": a named variable left of a value.
_VARIABLE_PREFIX = re.compile(r"^\s*+(?:[a-zA-Z]|\\[a-zA-Z]++)(?:_\{?\w+\}?)?(?:\([a-zA-Z]\))?\s*+=(?!=)\s*+")


def _answer_boxes(text: str, boxes: list[_Box], options: _Options) -> list[_Box]:
    """The box that states the answer (the last, or the first) and, when the question asks for several
    answers, the boxes next to it that only connectives separate from it."""
    order = boxes if options.first else boxes[::-1]
    chosen = [order[0]]
    for box in order[1:] if options.several else ():
        left, right = (chosen[-1], box) if options.first else (box, chosen[-1])
        gap = text[left.end : right.start] if left.end <= right.start else None  # None: nested boxes
        if box.inner is None or gap is None or len(gap) > _MAX_GAP or not BETWEEN_BOXES.fullmatch(gap):
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
    parts = [tidy(box.content(text)) for box in chosen]
    return join_distinct([_VARIABLE_PREFIX.sub("", part) for part in parts if part])


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


_BARE_FENCE = re.compile(r"\s*+```[a-zA-Z]*+\s*+")


def _line_after(text: str, start: int) -> str | None:
    """The rest of the line, or the next line with content when it is empty or opens a code block ("The final
    answer is:" and then "```" and "42")."""
    end = text.find("\n", start)
    while end != -1 and (not text[start:end].strip() or _BARE_FENCE.fullmatch(text, start, end)):
        start, end = end + 1, text.find("\n", end + 1)
    line = text[start:] if end == -1 else text[start:end]
    return line.strip() or None


def _find_boxed(text: str, options: _Options) -> str | None:
    """The boxed answer; of a boxed computation ("\\boxed{\\frac{6!}{3!} = 120}") its result."""
    answer = tidy(_boxed_phrase(text, options))
    return answer and right_hand_side(answer, named=False)


def _find_final_answer(text: str, options: _Options) -> str | None:
    return value(_stated(text, _FINAL_ANSWER))


def _find_answer_is(text: str, options: _Options) -> str | None:
    return value(_stated(text, _ANSWER_IS))


def _find_hashes(text: str, options: _Options) -> str | None:
    """GSM8K's "#### 72"; a markdown heading ("#### Step 2: ...") is none."""
    return value(_stated(text, _HASHES, lambda phrase: not re.match(r"[a-zA-Z]{2}", phrase)))


# --- JSON replies: {"reasoning": "...", "answer": "..."}

_JSON_ANSWER_KEY = re.compile(r'"(?:final[ _]?answer|answer)"\s*+:\s*+', re.IGNORECASE)
_JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*+)"')
_JSON_NUMBER = re.compile(r"-?\d++(?:\.\d++)?(?:[eE][-+]?\d++)?")
_ESCAPED_MACRO = re.compile(r"\\\\[a-zA-Z]")
_JSON_TAIL_CHARS = 2000
_JSON_SCALAR_FIELD = re.compile(r'""\s*+:\s*+(?:-?\d[\d.eE+-]*+|true|false|null)')
_JSON_TAIL_NOISE = re.compile(r"[\d$\\=]|\banswer\b|```[ \t]*+[a-zA-Z]", re.IGNORECASE)


def _reply_ends(text: str, at: int) -> bool:
    """Whether the JSON reply is the end of the completion: only its other fields, braces, a closing fence and
    words without numbers or math follow ("Hope this helps!"), not a later answer or a program that goes on."""
    rest = _JSON_SCALAR_FIELD.sub("", _JSON_STRING.sub('""', text[at : at + _JSON_TAIL_CHARS + 1]))
    return len(rest) <= _JSON_TAIL_CHARS and not _JSON_TAIL_NOISE.search(rest)


def _find_json(text: str, options: _Options) -> str | None:
    """The "answer" field of a JSON reply, fenced or not, valid JSON or (as models often write it) with LaTeX
    backslashes left unescaped: "\\frac{1}{2}" must not become a form feed and "rac{1}{2}"."""
    keys = deque(_JSON_ANSWER_KEY.finditer(text), maxlen=1)
    if not keys:
        return None
    at = keys[-1].end()
    string = _JSON_STRING.match(text, at)
    found = string or _JSON_NUMBER.match(text, at)
    if found is None or not _reply_ends(text, found.end()):
        return None
    if string is None:
        return found.group()
    raw = string.group(1)
    if _ESCAPED_MACRO.search(raw) or "\\" not in raw:
        try:
            return value(json.loads(f'"{raw}"'))
        except ValueError:
            pass
    return value(raw.replace('\\"', '"'))


# --- the last math-mode expression, and the last number

_ROW_TOKEN = re.compile(r"\\begin\{[^{}]*+\}|\\end\{[^{}]*+\}|\\\\|[{}]|&")
_WRAPPING_ENVIRONMENT = re.compile(
    r"\\begin\{((?:aligned|split|gathered|array|align|alignat|equation|gather|multline|eqnarray|flalign)\*?)\}"
    r"(?:\{[^{}]*+\})?(.*)\\end\{\1\}",
    re.DOTALL,
)
_IMPLIES = re.compile(r"\\(?:implies|Rightarrow|Longrightarrow|iff|therefore)(?![a-zA-Z])|⇒|=>")
# Spacing macros, but not MATH's thousands separator "10,\\!080".
_SPACING = re.compile(r"(?<!\\)(?<!\d,)\\(?:q?quad|[,;:! ])(?![a-zA-Z])")
_TEXT_CONNECTIVE = re.compile(TEXT_MACROS + r"\s*+\{\s*+(or|and)\s*+\}")
# "\\approx" and a congruence "\\equiv 3 \\pmod 9" give their right side as "=" does; the modulus is no part of it.
_APPROX = re.compile(r"\\(?:approx|equiv)(?![a-zA-Z])")
_MODULUS = re.compile(
    r"\s*+(?:\\pmod\s*+(?:\{[^{}]*+\}|\w++)|\\bmod\s*+(?:\{[^{}]*+\}|\w++)|\(\s*+\\(?:text|mathrm)\{\s*+mod\s*+\}\s*+\w++\s*+\))\s*+$"
)
# "p = 5, q = 2" is a list of values, not the chain "a = b = c": separators outside brackets tell.
_LIST_SEPARATORS = re.compile(r",|;|\b(?:and|or)\b")
# A span that only names things ("$n$", "$ABCD$", "$\\triangle ABC$", "$(x, y)$", "$\\mathbb{Z}$") is an answer only
# standing alone ("$E$") or stated ("the letter is $E$"); one that marks an end or an ellipsis never is.
_NAMING_MACRO = re.compile(
    r"\\(?:triangle|angle|measuredangle|overline|overrightarrow|vec|mathbb|mathcal|mathbf|mathit|operatorname|odot)"
    r"(?![a-zA-Z])"
)
_NAMES = re.compile(r"[a-zA-Z\s,()'{}]*+")
_SUBSCRIPT = re.compile(r"_\{?\w++\}?")
_MARKER = re.compile(r"(?:\\(?:blacksquare|square|Box|qed|checkmark|ldots|dots|cdots|dotsc|diamond|Diamond|star)\s*+)++")
_STATES = re.compile(
    r"(?:\b(?:is|are|be|was)(?:\s++(?:always|therefore|thus|then|exactly|simply|\w+ly))?|[:=])\s*+(?:\*\*)?\s*+$",
    re.IGNORECASE,
)
# A word in \text{} right after a number is its unit: "$5$ $\text{cm}$".
_TEXT_SPAN = re.compile(TEXT_MACROS + r"\s*+\{[^{}]*+\}")
_ENDS_WITH_VALUE = re.compile(r"[\d}][\s$~]*+$")
_STATES_WINDOW = 80
_NOT_SPACE = re.compile(r"[^\s*]")
_SENTENCE_BEFORE = re.compile(r"(?<!i\.e)(?<!e\.g)[.!?。]\s")


def _last_row(content: str) -> str:
    """The last line of a multi-line display ("x &= 2 + 3 \\\\ &= 5" -> "= 5"), alignment marks dropped;
    rows inside a matrix or braces stay where they are."""
    wrapped = _WRAPPING_ENVIRONMENT.fullmatch(content.strip())
    if wrapped:
        content = wrapped.group(2)
    depth, row_start, rows, marks = 0, 0, [], []
    for match in _ROW_TOKEN.finditer(content):
        token = match.group()
        if token == "{" or token.startswith("\\begin"):
            depth += 1
        elif token == "}" or token.startswith("\\end"):
            depth -= 1
        elif depth == 0 and token == "\\\\":
            rows.append((row_start, match.start()))
            row_start = match.end()
        elif depth == 0:  # "&" at the top level: an alignment mark
            marks.append(match.start())
    rows.append((row_start, len(content)))
    start, end = next((row for row in reversed(rows) if content[row[0] : row[1]].strip()), rows[-1])
    pieces, position = [], start
    for mark in (m for m in marks if start <= m < end):
        pieces.append(content[position:mark])
        position = mark + 1
    pieces.append(content[position:end])
    return "".join(pieces)


def _math_answer(content: str) -> str | None:
    """The answer a math-mode expression gives: the last side of "a = b = c", the value of "x = 5" or
    "f(0) = -1", the whole of a relation ("x \\geq 5", "y = 2x + 3") or anything else."""
    s = _SPACING.sub(" ", _last_row(undouble_names(content)))
    s = _TEXT_CONNECTIVE.sub(r" \1 ", s)
    implications = list(_IMPLIES.finditer(s))
    if implications:
        s = s[implications[-1].end() :]
    s = _APPROX.sub("=", _MODULUS.sub("", s.rstrip(" .,;"))).strip()
    if s.startswith("="):  # the continued row of an alignment: "&= 5", "&\\equiv 3 \\pmod 9"
        s = s[1:]
    sides = EQUALS.split(s)
    while len(sides) >= 3 and is_name(sides[-1]):  # "36 - 7 - 2 - 10 = 17 = x": the value is 17
        sides.pop()
    if len(sides) >= 3 and sides[-1].strip() and len(split_top_level(s, _LIST_SEPARATORS)) == 1:
        return tidy_stated(sides[-1])
    return value("=".join(sides))


def _merely_names(answer: str) -> bool:
    """Whether a span only names things: "n", "ABCD", "\\triangle ABC", "(x, y)", "\\mathbb{Z}"."""
    return bool(_NAMES.fullmatch(_SUBSCRIPT.sub("", _NAMING_MACRO.sub("", answer))))


class _Paragraph:
    """The final paragraph's sentences and plain-text numbers, found once for all of its math spans."""

    def __init__(self, text: str, start: int, spans: list[MathSpan]) -> None:
        self.text, self.start = text, start
        self.sentence_starts = [match.end() for match in _SENTENCE_BEFORE.finditer(text, start)]
        span_starts = [span.start for span in spans]
        self.last_plain_number = -1  # where the last number outside math ends
        for begin, end in numeric_expressions(text, start):
            inside = bisect.bisect_right(span_starts, begin) - 1
            if inside < 0 or spans[inside].end <= begin:
                self.last_plain_number = end

    def states(self, span: MathSpan) -> bool:
        """Whether a span stands alone in its sentence ("$E$") or is what the sentence states ("is $E$")."""
        at = bisect.bisect_right(self.sentence_starts, span.start) - 1
        sentence_start = self.sentence_starts[at] if at >= 0 else self.start
        if not _NOT_SPACE.search(self.text, sentence_start, span.start):
            return True
        window = self.text[max(sentence_start, span.start - _STATES_WINDOW) : span.start].replace("**", "")
        return bool(_STATES.search(window))

    def is_unit(self, span: MathSpan, answer: str) -> bool:
        before = self.text[max(self.start, span.start - 4) : span.start]
        return bool(_TEXT_SPAN.fullmatch(answer) and _ENDS_WITH_VALUE.search(before))

    def is_aside(self, span: MathSpan) -> bool:
        """ "24 (since $AB \\neq BA$)": a remark in parentheses."""
        before = self.text[max(self.start, span.start - 3) : span.start].rstrip()
        return before.endswith("(") or self.text[span.end : span.end + 3].lstrip().startswith(")")


class _Ending(NamedTuple):
    """What both guesses read: the text (backslashes undoubled), its math spans and where its final paragraph
    starts; None for a degenerate completion."""

    text: str
    spans: list[MathSpan]
    start: int


@functools.lru_cache(maxsize=4)  # the math and last-number rules ask for the same completion in a row
def _ending(text: str) -> _Ending | None:
    if is_degenerate(text):
        return None
    text = undouble_backslashes(text.rstrip())
    spans = math_spans(text)
    return _Ending(text, spans, final_paragraph_start(text, spans))


def _find_math(text: str, options: _Options) -> str | None:
    """The last math-mode expression of the final paragraph ($...$, $$...$$, \\(...\\), \\[...\\], equation and
    align environments) that states a value, unless the prose goes on to a number of its own ("the largest $n$
    is 34", "So there are 12 ways. $\\blacksquare$"), which the last-number rule then reads."""
    ending = _ending(text)
    if ending is None:
        return None
    text, start = ending.text, ending.start
    spans = ending.spans[bisect.bisect_left([span.start for span in ending.spans], start) :]
    if not spans:
        return None
    paragraph = _Paragraph(text, start, spans)
    for index in range(len(spans) - 1, -1, -1):
        span = spans[index]
        if span.end <= paragraph.last_plain_number:
            return None
        answer = _math_answer(span.content(text))
        if answer is None or _MARKER.fullmatch(answer) or paragraph.is_aside(span) or paragraph.is_unit(span, answer):
            continue
        if not _merely_names(answer) or paragraph.states(span):
            return _joined_answers(text, spans[: index + 1], options) or answer
    return None


_CONNECTIVE = re.compile(r"\s*+(?:,|;|,?\s*+\b(?:and|or)\b)?\s*+", re.IGNORECASE)


def _joined_answers(text: str, spans: list[MathSpan], options: _Options) -> str | None:
    """One answer written over several math spans that only connectives join, ending with the last of
    `spans`: "$x = 1$ or $x = 2$" (a list of values), "$p = 5$ and $q = 2$" (named values); with any values
    when the question asks for several answers. None when the last span stands alone."""
    run = [spans[-1]]
    for span in reversed(spans[:-1]):
        if not _CONNECTIVE.fullmatch(text, span.end, run[-1].start):
            break
        run.append(span)
    if len(run) == 1:
        return None
    contents = [tidy(span.content(text)) for span in reversed(run)]
    if not all(contents):
        return None
    pairs = assignments([content for content in contents if content])
    if pairs:
        names = {name for name, _ in pairs}
        if len(names) == len(pairs):
            return ", ".join(content for content in contents if content)  # "p = 5, q = 2"
        if len(names) == 1:
            return join_distinct([value for _, value in pairs])  # "x = 1 or x = 2"
    if options.several:
        return join_distinct([value(content) or "" for content in contents if content])
    return None


def _find_last_number(text: str, options: _Options) -> str | None:
    """The last number of the final paragraph, read whole when it is LaTeX ("\\frac13", "2\\pi", "10^{-3}";
    never 13 out of "\\frac13" or 2 out of "x^2"). One further up is not the answer: the model went on to say
    "This problem is not solvable with the given information." or "Reach max function call limit."."""
    ending = _ending(text)
    return None if ending is None else last_numeric_expression(ending.text, ending.start)


Rule = Callable[[str, _Options], str | None]
_RULES: dict[str, tuple[tuple[str, Rule], ...]] = {
    "auto": (
        ("boxed", _find_boxed),
        ("json", _find_json),
        ("final_answer", _find_final_answer),
        ("answer_is", _find_answer_is),
        ("hashes", _find_hashes),
        ("math", _find_math),
        ("last_number", _find_last_number),
    ),
    "boxed": (("boxed", _find_boxed),),
    "gsm8k": (
        ("hashes", _find_hashes),
        ("boxed", _find_boxed),
        ("json", _find_json),
        ("answer_is", _find_answer_is),
        ("math", _find_math),
        ("last_number", _find_last_number),
    ),
    "minerva": (("final_answer", _find_final_answer), ("boxed", _find_boxed)),
}

# Rules that guess rather than read a stated answer: not used on a completion cut off by the token budget.
GUESSES: tuple[str, ...] = ("math", "last_number")


def _apply(rules: tuple[tuple[str, Rule], ...], text: str, options: _Options, truncated: bool) -> Extraction:
    for rule, find in rules:
        if truncated and rule in GUESSES:
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

    `truncated`: generation stopped at the token budget. Then only a stated answer counts (boxed, JSON answer
    field, final answer, "the answer is", ####): the last math or number of a cut-off text is a stray one, not
    the model's answer.
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


_STATED_RULES = tuple((rule, find) for rule, find in _RULES["auto"] if rule not in GUESSES)
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
