"""math_verify: re-check a synthetic solution's arithmetic exactly, and its answer against other evidence.

Four checks, each optional, in this order:

1. every calculation: GSM8K's calculator annotations "<<48/2=24>>" and plain steps "0.2 x 50 = $10" are
   re-evaluated with exact fractions; a step that does not parse as arithmetic is skipped, not a failure;
2. the stated final answer equals the last computed value;
3. a solution program (`program_field`), run in the sandbox as PAL's are, gives the stated answer;
4. self-consistency: enough of the row's independent re-solutions (`samples`) reach the stated answer.

Answers are compared by the project's grader (`mathforge.grading`), the way `eval` compares them.
"""

from __future__ import annotations

import ast
import operator
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

from pydantic import Field

from mathforge.benchmarks.gold_rules import to_text
from mathforge.benchmarks.spec import AnswerType
from mathforge.data.stages.base import Drop, Stage, Verdict, register, text_of
from mathforge.data.stages.filters import Problem, RowFields, answer_value, read_problem
from mathforge.errors import MathforgeError
from mathforge.grading import GradingSpec, grade, score
from mathforge.grading.normalize import clean
from mathforge.grading.trajectory import PAL_ANSWER, pal_answer, pal_program
from mathforge.sandbox import ExecResult, Limits, Sandbox, SandboxPool

# --- exact arithmetic --------------------------------------------------------------------------------------
#
# Hand-written on purpose: the expressions are arithmetic only and must be evaluated exactly (0.1 + 0.2 is 3/10),
# which neither eval (floats, and arbitrary code) nor SymPy's parser (slow, and far more than arithmetic) gives.
# Python's own `ast` parses; this walks the tree and allows numbers, + - * / and small powers only.

_MAX_EXPONENT = 64
_MAX_BITS = 4096  # a value this large is no word-problem step; it ends the walk before it costs time
_MAX_EXPRESSION = 300
_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class _NotArithmetic(Exception):
    pass


def _walk(node: ast.AST, numbers: list[Fraction]) -> Fraction:
    match node:
        case ast.Name(id=name):
            return numbers[int(name[1:])]
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            return -_walk(operand, numbers)
        case ast.UnaryOp(op=ast.UAdd(), operand=operand):
            return _walk(operand, numbers)
        case ast.BinOp(left=left, op=ast.Pow(), right=right):
            exponent = _walk(right, numbers)
            if exponent.denominator != 1 or abs(exponent) > _MAX_EXPONENT:
                raise _NotArithmetic
            return _bounded(_walk(left, numbers) ** int(exponent))
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            return _bounded(_BINARY[type(op)](_walk(left, numbers), _walk(right, numbers)))
    raise _NotArithmetic


def _bounded(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
        raise _NotArithmetic
    return value


def evaluate(source: str, numbers: list[Fraction]) -> Fraction | None:
    """The exact value of `source`, Python arithmetic whose numbers are the names n0, n1, ... (`numbers`); None
    when it is anything else, or divides by zero."""
    if len(source) > _MAX_EXPRESSION:
        return None
    try:
        return _walk(ast.parse(source, mode="eval").body, numbers)
    except (SyntaxError, _NotArithmetic, ZeroDivisionError, RecursionError, IndexError):
        return None


# --- reading steps from text -------------------------------------------------------------------------------

# GSM8K's calculator annotations "<<48/2=24>>" (as `grading.extract` reads past them).
CALCULATOR = re.compile(r"<<[^<>\n]{0,200}+>>")

_TOKEN = re.compile(
    # Thousands separated by commas or spaces, as GSM8K writes them: "1,248", "18 000".
    r"(?P<number>(?:\\?\$[ \t]?)?(?:\d{1,3}(?:,\d{3})++(?!\d)|\d{1,3}(?:[ \u00a0\u202f]\d{3})++(?![\d]|[.,]\d)|\d++)(?:\.\d++)?"
    r"|(?:\\?\$[ \t]?)?\.\d++)"
    r"(?P<percent>[ \t]?\\?%)?"
    r"|(?P<op>\*\*|\^|\\times(?![a-zA-Z])|\\cdot(?![a-zA-Z])|\\div(?![a-zA-Z])|[-+*/×÷·−–])"
    r"|(?P<open>\(|\\left\()|(?P<close>\)|\\right\))"
    r"|(?P<equals>(?<![<>!=])=(?!=))"
    r"|(?P<space>[ \t]+)"
    r"|(?P<times>[xX])(?=[ \t]*+[\d$(.\\])"  # "0.2 x 50": a letter x between numbers multiplies
    r"|(?P<other>\\[a-zA-Z]+|[A-Za-z]+|.)"
)
_PYTHON_OPERATOR = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "·": "*", "x": "*", "X": "*"}
_PYTHON_OPERATOR |= {"\\times": "*", "\\cdot": "*", "/": "/", "÷": "/", "\\div": "/", "**": "**", "^": "**"}
_SIGNS = ("-", "+", "−", "–")
# "0900 - 0130", "6:00 + 18": a number with a leading zero is a clock time or a code, not a quantity.
_LEADING_ZERO = re.compile(r"(?:\\?\$[ \t]?)?0\d")
# LaTeX spellings of a plain fraction and of a thousands separator: "\frac{3}{4}", "1{,}000".
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\{(\d+(?:\.\d+)?)\}\{(\d+(?:\.\d+)?)\}")
# Units between a number and the operator after it: "2500 cases - 50 cases", "$6/day", "4 ft * 6 ft". Words
# that multiply ("2 dozen") or that go on with the sentence ("9 because - 18/-2") are none: they end a step.
_NOT_UNITS = (
    r"(?:dozens?|score|hundreds?|thousands?|millions?|billions?|half|halves|quarters?|thirds?|fourths?|fifths?"
    r"|tenths?|percent|times|squared|cubed|of|and|or|plus|minus|because|so|then|than|is|are|was|were|be|which"
    r"|that|this|to|the|in|on|at|for|by|from|with|into|more|less|fewer|each|gives|makes|equals)\b"
)
_UNIT = re.compile(
    r"(?<=[\d%])(?:(?:[ \t]*+/[ \t]*+|[ \t]*+)(?!" + _NOT_UNITS + r")[A-Za-z][A-Za-z'’]++\.?){1,2}"
    r"(?=[ \t]*+(?:[-+*/×÷=–−)]|x[ \t]))",
    re.IGNORECASE,
)
_PERCENT = Fraction(1, 100)


@dataclass(frozen=True)
class _Token:
    kind: str  # number, op, open, close, equals, other
    text: str
    start: int
    end: int

    @property
    def arithmetic(self) -> bool:
        return self.kind in ("number", "op", "open", "close")


def _tokens(line: str, offset: int = 0) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(line):
        kind = match.lastgroup or "other"
        if kind == "space":
            continue
        if kind == "percent":  # the percent group follows the number group in the same match
            kind = "number"
        if kind == "number" and _LEADING_ZERO.match(match.group()):
            kind = "other"
        if kind == "times":
            kind = "op" if tokens and tokens[-1].kind in ("number", "close") else "other"
        token = _Token(kind, match.group(), offset + match.start(), offset + match.end())
        if tokens and _implied_product(tokens[-1], token):
            tokens.append(_Token("op", "*", token.start, token.start))
        tokens.append(token)
    return tokens


def _implied_product(before: _Token, after: _Token) -> bool:
    """ "12+8(26)", "20(.30)", "(3)(4)": a bracket written against a value multiplies."""
    pair = (before.kind, after.kind)
    return before.end == after.start and pair in (("number", "open"), ("close", "open"), ("close", "number"))


def _tight(tokens: tuple[_Token, ...] | list[_Token], index: int) -> bool:
    """Whether tokens `index` to `index + 2` are a fraction written without spaces: "1/3"."""
    if index + 2 >= len(tokens):
        return False
    a, slash, b = tokens[index : index + 3]
    return (
        (a.kind, slash.text, b.kind) == ("number", "/", "number")
        and a.end == slash.start
        and slash.end == b.start
    )


@dataclass(frozen=True)
class Reading:
    """A value read from text, and by how much a result may differ from it for showing its decimals."""

    value: Fraction
    tolerance: Fraction = Fraction(0)

    def matches(self, exact: Fraction) -> bool:
        """Whether `exact` written with this reading's decimals gives it (rounded, cut off or rounded up: 10/3
        = 3.33, 2/3 = 0.67, 7/2 = 3 whole boxes; GSM8K writes all three)."""
        return exact == self.value or abs(exact - self.value) < self.tolerance


@dataclass(frozen=True)
class Expression:
    """Arithmetic read from text: its tokens as written."""

    tokens: tuple[_Token, ...]

    @property
    def text(self) -> str:
        """As written, with units left out: "48/2", "2500 - 50"."""
        pieces = [self.tokens[0].text.strip()]
        for before, token in zip(self.tokens, self.tokens[1:], strict=False):
            if token.start == token.end:  # an implied product: "8(26)" stays as written
                continue
            pieces.append((" " if token.start > before.end else "") + token.text.strip())
        return "".join(pieces)

    @property
    def has_operation(self) -> bool:
        """Whether it computes something: a binary operator after a value ("-21" alone does not)."""
        return any(
            token.kind == "op" and index > 0 and self.tokens[index - 1].kind in ("number", "close")
            for index, token in enumerate(self.tokens)
        )

    def readings(self) -> list[Reading]:
        """Its value with a percent read as a hundredth and, when it holds one, also as a plain number ("0.25 *
        100 = 25%"); empty when it is not arithmetic. A lone number may stand for any value it rounds."""
        holds_percent = any("%" in token.text for token in self.tokens)
        found = []
        for percent in (_PERCENT, Fraction(1)) if holds_percent else (_PERCENT,):
            value = self._value(percent)
            if value is not None:
                found.append(Reading(value, self._last_digit(percent)))
        return found

    def _value(self, percent: Fraction) -> Fraction | None:
        source: list[str] = []
        numbers: list[Fraction] = []
        index = 0
        while index < len(self.tokens):
            token = self.tokens[index]
            # "25 / 1/3 = 75": a fraction written without spaces is one number, as a reader takes it.
            if _tight(self.tokens, index):
                first, second = (_number(self.tokens[i].text, percent) for i in (index, index + 2))
                source.append(f"(n{len(numbers)} / n{len(numbers) + 1})")
                numbers += [first, second]
                index += 3
                continue
            if token.kind == "number":
                source.append(f"n{len(numbers)}")
                numbers.append(_number(token.text, percent))
            elif token.kind == "op":
                source.append(_PYTHON_OPERATOR[token.text.strip()])
            else:
                source.append("(" if token.kind == "open" else ")")
            index += 1
        return evaluate(" ".join(source), numbers)

    def _last_digit(self, percent: Fraction) -> Fraction:
        """The value of one unit of the last digit shown, when it is one number (a sign allowed); else 0."""
        numbers = [token for token in self.tokens if token.kind == "number"]
        if len(numbers) != 1 or len(self.tokens) > 2:
            return Fraction(0)
        decimals = len(numbers[0].text.rstrip(" \t\\%").partition(".")[2])
        unit = Fraction(1, 10**decimals)
        return unit * percent if "%" in numbers[0].text else unit

    def first_number(self) -> Fraction | None:
        """The leading number of a running total: "24 + 48" in "48/2 = 24 + 48 = 72" restates the 24."""
        signs = 0
        for token in self.tokens:
            if token.kind == "number":
                value = _number(token.text, _PERCENT)
                return -value if signs % 2 else value
            if token.text.strip() not in _SIGNS[:2]:
                return None
            signs += token.text.strip() == "-"
        return None


def _number(text: str, percent: Fraction) -> Fraction:
    value = Fraction(re.sub(r"[\\$,%\s]", "", text))
    return value * percent if "%" in text else value


@dataclass(frozen=True)
class Step:
    """One calculation: `left` = `right` as written, and where it ends in the solution."""

    left: Expression
    right: Expression
    end: int
    annotation: bool  # a calculator annotation "<<48/2=24>>" rather than a plain step

    def __str__(self) -> str:
        if self.annotation:
            return f"<<{self.left.text}={self.right.text}>>"
        return f"{self.left.text} = {self.right.text}"


def annotation_steps(solution: str) -> Iterator[Step]:
    """The calculator annotations "<<48/2=24>>" of a GSM8K-style solution."""
    for match in CALCULATOR.finditer(solution):
        tokens = _tokens(match.group()[2:-2], match.start() + 2)
        equals = [index for index, token in enumerate(tokens) if token.kind == "equals"]
        if len(equals) == 1:
            left, right = tokens[: equals[0]], tokens[equals[0] + 1 :]
            if left and right and all(token.arithmetic for token in left + right):
                yield Step(Expression(tuple(left)), Expression(tuple(right)), match.end(), annotation=True)


def plain_steps(solution: str) -> Iterator[Step]:
    """The plain "a op b = c" steps of a solution, calculator annotations aside: for each "=", the arithmetic
    right before it and right after it, on its line, units left out ("She earned 0.2 x 50 = $10." gives
    0.2 x 50 = $10; "2500 cases - 50 cases = 2450 cases" gives 2500 - 50 = 2450)."""
    for line, offset in _lines(_blanked(solution)):
        tokens = _tokens(line, offset)
        for index, token in enumerate(tokens):
            if token.kind == "equals":
                step = _step_at(tokens, index)
                if step is not None:
                    yield step


def _blanked(solution: str) -> str:
    """The solution with annotations and units blanked out and LaTeX fractions spelt plainly; blanked, not
    removed, so that positions stay those of the solution and steps of both kinds sort together."""
    text = CALCULATOR.sub(lambda match: " " * len(match.group()), solution)
    text = _UNIT.sub(lambda match: " " * len(match.group()), text)
    text = _LATEX_FRACTION.sub(
        lambda match: f"({match.group(1)}/{match.group(2)})".ljust(len(match.group())), text
    )
    return text.replace("{,}", ",  ")


def _lines(text: str) -> Iterator[tuple[str, int]]:
    offset = 0
    for line in text.split("\n"):
        yield line, offset
        offset += len(line) + 1


def _step_at(tokens: list[_Token], equals: int) -> Step | None:
    """The step around the "=" at `equals`, or None when either side is not plain arithmetic."""
    start = equals
    while start > 0 and tokens[start - 1].arithmetic:
        start -= 1
    end = equals + 1
    while end < len(tokens) and tokens[end].arithmetic:
        end += 1
    if _continues_before(tokens, start) or _continues_after(tokens, end):
        return None
    left, right = _balanced_left(tokens[start:equals]), _balanced_right(tokens[equals + 1 : end])
    if left is None or right is None or not left.has_operation:
        return None
    return Step(left, right, right.tokens[-1].end, annotation=False)


def _continues_before(tokens: list[_Token], start: int) -> bool:
    """Whether the arithmetic before an "=" is part of something else: a term of algebra ("3N + 6"), a time
    ("7:50 + 30"), a number broken by a comma or a stop ("16,0000/10", "14, 400 / 80", ". 84 + .82"), a mixed
    number ("1 and 1/4")."""
    if start == 0 or start >= len(tokens):
        return False
    before, first = tokens[start - 1], tokens[start]
    if before.text in (",", "."):
        previous = tokens[start - 2] if start > 1 else None
        if before.end == first.start or (previous is not None and previous.kind == "op"):
            return True
        # A comma right after a number breaks it ("14, 400"); after a word it ends a clause ("apples, 2 + 3").
        return (
            before.text == ","
            and previous is not None
            and previous.kind == "number"
            and previous.end == before.start
        )
    if before.text == "and" and start > 1 and tokens[start - 2].kind == "number":  # "1 and 1/4 cup"
        return True
    return before.end == first.start and (before.text[:1].isalnum() or before.text in (":", "'"))


def _continues_after(tokens: list[_Token], end: int) -> bool:
    """Whether the arithmetic after an "=" goes on as algebra ("= 5A/5"), a time ("= 8:20") or an ellipsis."""
    if end == 0 or end >= len(tokens):
        return False
    last, after = tokens[end - 1], tokens[end]
    if last.end != after.start:
        return False
    if after.text[:1].isalpha() or after.text == ":":
        return True
    return after.text == "." and end + 1 < len(tokens) and tokens[end + 1].text == "."


def _balanced_left(tokens: list[_Token]) -> Expression | None:
    """The longest end of `tokens` whose parentheses match; None when it starts with a binary operator, whose
    left operand lies beyond the arithmetic ("72 cubic ft * 3/4": the 72 is not in "* 3/4")."""
    depth, start = 0, 0
    for index in range(len(tokens) - 1, -1, -1):
        depth += {"close": 1, "open": -1}.get(tokens[index].kind, 0)
        if depth < 0:  # "(48/2 = 24)": the "(" opens around the step, not inside its left side
            start = index + 1
            break
    kept = tokens[start:]
    if not kept or kept[0].kind == "close" or (kept[0].kind == "op" and not _signed(kept)):
        return None
    return Expression(tuple(kept))


def _balanced_right(tokens: list[_Token]) -> Expression | None:
    """The longest start of `tokens` whose parentheses match; None when it ends on an operator, whose right
    operand lies beyond the arithmetic ("3*30 = 30 + M trees")."""
    depth, end = 0, len(tokens)
    for index, token in enumerate(tokens):
        depth += {"open": 1, "close": -1}.get(token.kind, 0)
        if depth < 0:  # "(48/2 = 24)": the ")" closes around the step
            end = index
            break
    kept = tokens[:end]
    if not kept or kept[-1].kind in ("op", "open") or (kept[0].kind == "op" and not _signed(kept)):
        return None
    balanced = sum({"open": 1, "close": -1}.get(token.kind, 0) for token in kept) == 0
    return Expression(tuple(kept)) if balanced else None


def _signed(tokens: list[_Token]) -> bool:
    """Whether the leading operator is a sign ("-14 + 3"), written against its number, not an operator whose
    left operand lies beyond ("N - 6 + 2" read from its "-")."""
    return tokens[0].text in _SIGNS and len(tokens) > 1 and tokens[1].start == tokens[0].end


@dataclass(frozen=True)
class Checked:
    """A step that evaluates: its exact value, whether the value it states agrees, and every value it may mean
    (both sides, a percent read as a hundredth and as a plain number)."""

    step: Step
    value: Fraction
    right: bool
    results: tuple[Fraction, ...]


def check_step(step: Step) -> Checked | None:
    """The step's verdict; None when a side is no arithmetic (dividing by zero, a power too large)."""
    lefts, rights = step.left.readings(), step.right.readings()
    if not lefts or not rights:
        return None
    results = tuple(reading.value for reading in lefts + rights)
    for left in lefts:
        # A running total restates the result first: "5*2 = 10 * 3 = 30".
        if any(stated.matches(left.value) for stated in rights) or step.right.first_number() == left.value:
            return Checked(step, left.value, True, results)
    return Checked(step, lefts[0].value, False, results)


def _shown(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator} ({value.numerator / value.denominator:.6g})"


def _answer_reading(answer: str) -> Reading | None:
    """The final answer as a number that may be a rounded one: "3.33" for 10/3, "8" cans for 7.5."""
    value = answer_value(answer)
    if value is None:
        return None
    decimals = re.search(r"\.(\d+)\s*$", clean(answer))
    return Reading(value, Fraction(1, 10 ** len(decimals.group(1) if decimals else "")))


def gives_answer(reading: Reading, last: Checked) -> bool:
    """Whether the last step computes the answer: one of its values, rounded as the answer shows it, or a
    hundred times one (the percent of a proportion, the cents of a dollar amount)."""
    return any(reading.matches(value) or reading.matches(100 * value) for value in last.results)


# What states the final answer formally ("\\boxed{72}", "The answer is 72", "#### 72"): the rest of a line after it
# is no prose about the result.
_ANSWER_STATEMENT = re.compile(r"\\boxed|\\fbox|\banswer\b|####", re.IGNORECASE)


def states_in_words(solution: str, reading: Reading) -> bool:
    """Whether the solution's last line states the answer as a quantity in prose, outside calculations and
    formal answer statements: "He gets 79 questions right in total.", "It takes Jerry 3 weeks." (GSM8K writes
    some last steps so, the sum or the count done in the head)."""
    lines = [line for line in _blanked(solution).splitlines() if line.strip()]
    if not lines:
        return False
    prose = _ANSWER_STATEMENT.split(lines[-1], maxsplit=1)[0]
    tokens = _tokens(prose)
    for index, token in enumerate(tokens):
        neighbours = tokens[max(0, index - 1) : index] + tokens[index + 1 : index + 2]
        in_calculation = any(other.kind in ("op", "equals") for other in neighbours)
        if (
            token.kind == "number"
            and not in_calculation
            and reading.matches(_number(token.text, Fraction(1)))
        ):
            return True  # "100% of the starting balance" answers 100
    return False


# Signs of a calculation the steps could not read ("x = 20", "7 minus 6 equals 1", "because 20 < 30"): after
# the last step read, the last computed value is unknown.
_UNREAD_CALCULATION = re.compile(r"=|\bequals?\b|[<>≤≥√]")


# --- the stage ---------------------------------------------------------------------------------------------


class MathVerifyOptions(RowFields):
    calculations: bool = Field(
        True, description="Re-evaluate calculator annotations <<48/2=24>> exactly; a wrong one drops the row"
    )
    plain_steps: bool = Field(
        True,
        description="Re-evaluate plain steps 'a op b = c' too (numbers with $, %, commas; + - * / x × ÷ ^)",
    )
    final_is_last: bool = Field(
        True, description="The stated final answer must equal the last computed value (when both are numbers)"
    )
    program_field: str | None = Field(
        None,
        description="Field holding a solution program (PAL's way: solution() returns the answer, or it prints "
        "it last); rows that have one run it in the sandbox and must get the stated answer (none: off)",
    )
    program_timeout: float = Field(10.0, gt=0, description="Seconds a solution program may run")
    samples_field: str = Field(
        "samples",
        description="Field holding independent re-solutions: a list of {'solution', 'answer'} objects (an "
        "answer missing: the one its solution gives)",
    )
    min_agreement: float | None = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Least fraction of a row's samples whose answer agrees with the stated one, for rows that "
        "have samples (none: off)",
    )
    answer_type: AnswerType = Field(
        "number", description="How answers compare (the benchmarks' answer types): number, expression, text"
    )


@register
class MathVerify(Stage):
    """Drops rows whose arithmetic is wrong (`wrong_calculation`), whose answer is not their last computed
    value (`answer_mismatch`), whose program fails or disagrees (`program_failed`, `program_mismatch`) or
    whose re-solutions disagree (`no_agreement`)."""

    name = "math_verify"
    options = MathVerifyOptions
    opts: MathVerifyOptions

    @cached_property
    def _spec(self) -> GradingSpec:
        return GradingSpec(self.opts.answer_type)

    @cached_property
    def _pool(self) -> SandboxPool:
        # Each --workers process runs its own pool; together they keep about one program per CPU running.
        threads = max(1, (os.cpu_count() or 1) // max(1, self.context.workers))
        return SandboxPool(Sandbox(Limits(timeout=self.opts.program_timeout)), workers=threads)

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        problems = [read_problem(row, self.opts) for row in rows]
        verdicts = [self._text_verdict(problem) for problem in problems]
        if self.opts.program_field is not None:
            self._check_programs(rows, problems, verdicts)
        if self.opts.min_agreement is not None:
            for index, (row, line) in enumerate(zip(rows, lines, strict=True)):
                if verdicts[index] is None and problems[index].answer:
                    verdicts[index] = self._agreement(row, line, problems[index].answer)
        return verdicts

    def close(self) -> None:
        if "_pool" in self.__dict__:
            self._pool.close()

    # --- arithmetic

    def _text_verdict(self, problem: Problem) -> Verdict:
        if not (self.opts.calculations or self.opts.final_is_last):
            return None
        steps = list(annotation_steps(problem.solution))
        if self.opts.plain_steps:
            steps += plain_steps(problem.solution)
        last: Checked | None = None
        for step in sorted(steps, key=lambda step: step.end):
            checked = check_step(step)
            if checked is None:
                continue
            if not checked.right and self.opts.calculations:
                return Drop(
                    "wrong_calculation",
                    f"{step}: {step.left.text} is {_shown(checked.value)}",
                    {"step": str(step), "value": _shown(checked.value)},
                )
            if step.left.has_operation:  # "<<26=26>>" restates a value, it computes none
                last = checked
        return self._final_verdict(problem, last) if self.opts.final_is_last else None

    def _final_verdict(self, problem: Problem, last: Checked | None) -> Verdict:
        reading = _answer_reading(problem.answer)
        if last is None or reading is None or _UNREAD_CALCULATION.search(problem.solution, last.step.end):
            return None
        if gives_answer(reading, last) or states_in_words(problem.solution, reading):
            return None
        return Drop(
            "answer_mismatch",
            f"the final answer {problem.answer} is not the last computed value {_shown(last.value)} ({last.step})",
            {"answer": problem.answer, "last_value": _shown(last.value)},
        )

    # --- programs

    def _check_programs(
        self, rows: list[dict[str, Any]], problems: list[Problem], verdicts: list[Verdict]
    ) -> None:
        assert self.opts.program_field is not None
        todo = [
            index
            for index, row in enumerate(rows)
            if verdicts[index] is None
            and problems[index].answer
            and text_of(row, self.opts.program_field).strip()
        ]
        programs = [pal_program(text_of(rows[index], self.opts.program_field)) for index in todo]
        results = self._pool.map(programs, answer_expr=PAL_ANSWER) if programs else []
        for index, result in zip(todo, results, strict=True):
            verdicts[index] = self._program_verdict(result, problems[index].answer)

    def _program_verdict(self, result: ExecResult, stated: str) -> Verdict:
        answer = pal_answer(result.status, result.answer, result.stdout)
        if answer is None:
            why = result.error or ("printed nothing" if result.status == "ok" else result.status)
            return Drop("program_failed", f"the program gives no answer ({why})", {"status": result.status})
        if grade(answer, stated, self.opts.answer_type).correct:
            return None
        return Drop(
            "program_mismatch",
            f"the program gives {answer}, the stated answer is {stated}",
            {"program_answer": answer, "answer": stated},
        )

    # --- self-consistency

    def _agreement(self, row: dict[str, Any], line: int, stated: str) -> Verdict:
        samples = _samples(row, self.opts.samples_field, f"{self.context.source}:{line}")
        if not samples:
            return None
        agree = sum(self._agrees(sample, stated) for sample in samples)
        needed = self.opts.min_agreement or 0.0
        if agree >= needed * len(samples):
            return None
        return Drop(
            "no_agreement",
            f"{agree} of {len(samples)} samples agree with the answer {stated} (min_agreement {needed:g})",
            {"agree": agree, "samples": len(samples)},
        )

    def _agrees(self, sample: dict[str, Any], stated: str) -> bool:
        value = sample.get("answer")
        answer = "" if value is None else to_text(value)
        if answer:
            return grade(answer, stated, self.opts.answer_type).correct
        return score(text_of(sample, "solution"), stated, self._spec).correct


def _samples(row: dict[str, Any], field: str, where: str) -> list[dict[str, Any]]:
    """The row's samples. A field of another shape is a one-line error, not a drop: samples are what `synth`
    writes, so a wrong shape means a wrong file or field name, which dropping rows would hide."""
    samples = row.get(field)
    if samples is None:
        return []
    if not isinstance(samples, list) or not all(isinstance(sample, dict) for sample in samples):
        shape = type(samples).__name__ if not isinstance(samples, list) else "a list of other values"
        raise MathforgeError(
            f"{where}: field '{field}' must be a list of {{'solution', 'answer'}} objects, not {shape}"
        )
    return samples
