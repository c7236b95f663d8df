"""Whether a predicted answer equals the gold answer, cheapest test first.

Order: normalised strings, then exact rational numbers, then structure (tuples, intervals, sets, matrices,
lists of answers, each element compared recursively), then SymPy on what latex2sympy2_extended parses. Two
plain numbers are compared exactly as rationals (326.53 is not 326.5, 0.5 is 1/2); a relative tolerance applies
only when the caller passes one (benchmarks whose rounded answers count).

The string and number tests run in the calling process. Everything else (structures, LaTeX parsing, SymPy,
including the printing of parsed expressions) runs in a grading child process under a hard time limit (see
`limits`); a timeout or a crash there is a wrong answer with rule "timeout" or "error", marked uncertain.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction

from mathforge.grading import limits
from mathforge.grading.choices import parse_letters
from mathforge.grading.latex import TEXT_MACROS, encloses, is_numeric, split_top_level
from mathforge.grading.normalize import (
    EQUALS,
    clean,
    compact,
    is_name,
    named_values,
    parse_number,
    strip_delimiters,
    unwrap,
)

# Longer answers skip the in-process tests (whose regexes are linear but not free) and go to the child.
_QUICK_MAX_CHARS = 500
# SymPy is not tried on answers longer than this: no real answer is, and parsing one costs seconds.
_SYMPY_MAX_CHARS = 1000
_WORDS = re.compile(r"[A-Za-z']+(?: [A-Za-z']+)*")
_MATRIX = re.compile(r"\\begin\{([pbvBV]?matrix|smallmatrix)\}(.*)\\end\{\1\}", re.DOTALL)
# An answer written wholly as text: "\textbf{odd}", "\text{(E)}", "\mathrm{even}".
_TEXT_ONLY = re.compile(TEXT_MACROS + r"\s*\{[^{}]*\}")
# Relations other than "=": an inequality, or "\neq".
_INEQUALITY = re.compile(r"<|>|\\(?:leq?|geq?|lt|gt|neq?|leqslant|geqslant)(?![a-zA-Z])")
# What a name may carry that holds digits: a subscript, an inverse, a function's argument.
_NAME_PARTS = re.compile(r"_\{[^{}]*\}|_\w|\^\{-1\}|\([^()]*\)")
_NAME_QUOTIENT = re.compile(r"\\[dt]?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}|([^:/]+)[:/]([^:/]+)")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    rule: str  # the test that decided: "string", "numeric", "tuple", "set", "symbolic", "choice", ...
    # False when the rules could not decide (a timeout, an answer no parser understood, a numeric match that
    # SymPy could not prove): an LLM judge (`--judge`) may overrule such a verdict.
    certain: bool = True


_MISMATCH = Verdict(False, "mismatch")


def grade(
    pred: str | None, gold: str, answer_type: str, *, rel_tol: float = 0.0, timeout: float | None = None
) -> Verdict:
    """Grade one extracted answer against the gold answer. Never raises: an error is a wrong answer.

    `rel_tol`: relative tolerance for numbers, for benchmarks whose rounded answers count (0: exact).
    `timeout`: seconds allowed for the tests that run in the grading child (None: `limits.DEFAULT_TIMEOUT`);
    past it the verdict is a wrong answer with rule "timeout".
    """
    if pred is None or not pred.strip():
        return Verdict(False, "no_answer")
    try:
        quick = _grade_quick(pred, gold, answer_type, rel_tol)
    except Exception:  # normalisation failing on odd input: let the full test (in the child) decide
        quick = None
    if quick is not None:
        return quick
    if limits.in_child():
        return _grade_in_child(pred, gold, answer_type, rel_tol)
    return _grade_limited(pred, gold, answer_type, rel_tol, timeout)


def answers_equivalent(a: str, b: str, answer_type: str, *, timeout: float | None = None) -> bool:
    """Whether two extracted answers count as the same vote in majority voting."""
    return grade(a, b, answer_type, timeout=timeout).correct


class _Undecided(Exception):
    """The child gave no verdict (timeout, crash): raised so that lru_cache does not keep the outcome."""


def _grade_limited(pred: str, gold: str, answer_type: str, rel_tol: float, timeout: float | None) -> Verdict:
    try:
        return _grade_in_child_cached(pred, gold, answer_type, rel_tol, timeout)
    except _Undecided as undecided:
        return Verdict(False, str(undecided), certain=False)
    except Exception:  # no child could be started (no processes or descriptors left): still a verdict
        return Verdict(False, "error", certain=False)


@functools.lru_cache(maxsize=1 << 16)  # majority voting compares the same pairs again and again
def _grade_in_child_cached(
    pred: str, gold: str, answer_type: str, rel_tol: float, timeout: float | None
) -> Verdict:
    outcome = limits.call_limited(
        "mathforge.grading.equivalence:_grade_in_child", (pred, gold, answer_type, rel_tol), timeout
    )
    if outcome.status != "ok":
        raise _Undecided(outcome.status)
    return outcome.value


def _grade_quick(pred: str, gold: str, answer_type: str, rel_tol: float) -> Verdict | None:
    """The verdict of the cheap tests, or None when they cannot decide."""
    if len(pred) > _QUICK_MAX_CHARS or len(gold) > _QUICK_MAX_CHARS:
        return None
    if answer_type == "choice":
        return _letters(pred, gold)
    if answer_type == "text":
        return _grade_text(pred, gold)
    p, g = clean(pred), clean(gold)
    if compact(p) == compact(g):
        return Verdict(True, "string")
    p_value, g_value = parse_number(p), parse_number(g)
    if p_value is not None and g_value is not None:
        return _numbers_equal(p_value, g_value, rel_tol)
    # "\textbf{odd}" is the word "Odd": text compares without case, however short.
    if _WORDS.fullmatch(p) and _WORDS.fullmatch(g) and (_is_text(pred) or _is_text(gold)):
        return Verdict(True, "text") if p.casefold() == g.casefold() else _MISMATCH
    return None


def _is_text(answer: str) -> bool:
    return bool(_TEXT_ONLY.fullmatch(unwrap(answer)))


def _grade_in_child(pred: str, gold: str, answer_type: str, rel_tol: float) -> Verdict:
    """The full test. Runs in the grading child, under its time limit."""
    if answer_type == "choice":
        letters = _letters(pred, gold)
        if letters is not None:
            return letters
        # A gold that is not letters (cn_middle_school mixes letters and values): compare as math.
    if answer_type == "text":
        return _grade_text(pred, gold)
    verdict = _compare(clean(pred), clean(gold), rel_tol)
    if not verdict.correct and "=" in pred and "=" in gold:
        # Two equations: "y = 2x + 3" is the line "2x - y + 3 = 0", which dropping "y =" would miss.
        as_equations = _compare(clean(pred, keep_equation=True), clean(gold, keep_equation=True), rel_tol)
        if as_equations.correct:
            return as_equations
    if not verdict.correct:
        valued = _value_against_relation(unwrap(pred), unwrap(gold), rel_tol)
        if valued is not None:
            return valued
    return verdict


def _value_against_relation(pred: str, gold: str, rel_tol: float) -> Verdict | None:
    """A relation against a value compares its last side, when it gives the value of what it names: "f(0) = -1",
    "(p,q) = (3,2)", "S_{MBCN}:S = 7:32", "\\frac{NO}{BO} = \\frac{1}{\\sqrt6}", "a+d+e+f = 2k", a computation
    "10 \\cdot 6 = 60", or an identity that simplifies ("19x - 4x + 1 - 81 = 15x - 80"). An equation still to be
    solved ("x + 2 = 5", "2x = 6") gives no value, and where its right side is the gold the verdict is left
    uncertain for the judge: "2a = 16\\sqrt{3}" may name the side length 2a. A gold "x = 5" (a name, then its
    value) is the value 5; a gold that is a relation of its own ("x + y = 5", "x^2 + y^2 = 1", "x \\geq 5") is
    never matched by a value. The verdict, or None when this comparison decides nothing."""
    pred_sides, gold_sides = _sides(pred), _sides(gold)
    if pred_sides and not gold_sides and not _is_relation(gold):
        verdict = _compare(clean(pred_sides[-1]), clean(gold), rel_tol)
        if not verdict.correct:
            return None
        if _gives_a_value(pred_sides):
            return Verdict(True, "relation_value", verdict.certain)
        # "2a = 16\\sqrt{3}" for the side length 16\\sqrt{3}, or "2x = 6" for x = 3: the rules cannot tell.
        return Verdict(False, "unsolved_relation", certain=False)
    if gold_sides and not pred_sides and not _is_relation(pred) and len(gold_sides) == 2 and _names(gold_sides[0]):
        verdict = _compare(clean(pred), clean(gold_sides[-1]), rel_tol)
        return Verdict(True, "relation_value", verdict.certain) if verdict.correct else None
    return None


def _gives_a_value(sides: list[str]) -> bool:
    left = sides[0]
    if _names(left) or _names_only(left) or is_numeric(left):
        return True
    a, b = _parse(clean(sides[-2])), _parse(clean(sides[-1]))  # an identity: a simplification step
    return a is not None and b is not None and _sympy_compare(a, b, 0.0).correct


def _names_only(side: str) -> bool:
    """Whether a left side only names things: "x", "f(0)", "a_{37}", "a+d+e+f", "\\frac{NO}{BO}"."""
    return not re.search(r"\d", _NAME_PARTS.sub("", side))


def _names(side: str) -> bool:
    """A name, a tuple of names or a ratio of names: "x", "f(0)", "AB", "(p, q)", "S_{MBCN}:S", "\\frac{NO}{BO}"."""
    side = side.strip()
    if side.startswith("(") and side.endswith(")") and encloses(side):
        return all(is_name(item) for item in split_top_level(side[1:-1], ","))
    quotient = _NAME_QUOTIENT.fullmatch(side)
    if quotient:
        return is_name(quotient.group(1) or quotient.group(3)) and is_name(quotient.group(2) or quotient.group(4))
    return is_name(side)


def _sides(answer: str) -> list[str] | None:
    """The sides of "a = b" or "a = b = c" when that is the whole answer (not a list: "p = 5, q = 2")."""
    if len(split_top_level(answer, ",")) > 1:
        return None
    sides = split_top_level(answer, EQUALS)
    return sides if len(sides) > 1 and sides[-1] else None


def _is_relation(answer: str) -> bool:
    return bool(EQUALS.search(answer) or _INEQUALITY.search(answer))


def _letters(pred: str, gold: str) -> Verdict | None:
    """Multiple choice by letter sets, or None when the gold is not letters."""
    gold_letters = parse_letters(gold)
    if gold_letters is None:
        return None
    return Verdict(True, "choice") if parse_letters(pred) == gold_letters else _MISMATCH


def _numbers_equal(pred: Fraction, gold: Fraction, rel_tol: float) -> Verdict:
    if pred == gold:
        return Verdict(True, "numeric")
    if rel_tol and abs(pred - gold) <= Fraction(rel_tol) * abs(gold):
        return Verdict(True, "numeric_tolerance")
    return _MISMATCH


def _text_key(s: str) -> str:
    s = strip_delimiters(s)
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", s)
    return re.sub(r"\s+", " ", s).strip(" .!").casefold()


def _grade_text(pred: str, gold: str) -> Verdict:
    if _text_key(pred) == _text_key(gold):
        return Verdict(True, "text")
    # Text benchmarks (TabMWP) also have numeric golds: "1,000" and "1000.00" are the same answer.
    pred_value, gold_value = parse_number(clean(pred)), parse_number(clean(gold))
    if pred_value is not None and gold_value is not None:
        return Verdict(True, "numeric") if pred_value == gold_value else _MISMATCH
    return _MISMATCH


def _compare(pred: str, gold: str, rel_tol: float) -> Verdict:
    """Compare two cleaned answers: strings, numbers, structures, words, then SymPy."""
    if compact(pred) == compact(gold):
        return Verdict(True, "string")
    pred_value, gold_value = parse_number(pred), parse_number(gold)
    if pred_value is not None and gold_value is not None:
        return _numbers_equal(pred_value, gold_value, rel_tol)
    if bool(_INEQUALITY.search(pred)) != bool(_INEQUALITY.search(gold)):
        # An inequality against an interval or a union of them: the set it describes ("1 \le |z| \le 3/2" is
        # "[-3/2,-1] \cup [1,3/2]"), which SymPy solves.
        return _symbolic(pred, gold, rel_tol)
    pred_parts, gold_parts = _structure(pred), _structure(gold)
    if pred_parts or gold_parts:
        return _compare_structures(pred_parts, gold_parts, rel_tol)
    if _is_words(pred) or _is_words(gold):
        # Names and words ("Monday", "\text{Devon}"), which SymPy would read as products of symbols.
        same = compact(pred).casefold() == compact(gold).casefold()
        return Verdict(True, "text") if same else _MISMATCH
    return _symbolic(pred, gold, rel_tol)


def _is_words(s: str) -> bool:
    """A word answer ("Evelyn", "New York"): letters and spaces with a word of four letters, not "x" or "ab"."""
    return bool(_WORDS.fullmatch(s)) and bool(re.search(r"[A-Za-z]{4,}", s))


# --- structures: "(1, 2)", "[2, 5)", "\{1, 2\}", "2, -3", "(-\infty, 1) \cup (2, \infty)"


@dataclass(frozen=True)
class _Parts:
    ordered: bool  # tuples and intervals are ordered; sets, unions and lists of answers are not
    brackets: (
        str  # "(]" etc. for ordered parts: an interval's open and closed ends matter; "named" for values
    )
    items: tuple[str, ...]
    names: tuple[str, ...] = ()  # "p = 5, q = 2": the names, in the order the values were given


_NAMED = "named"


def _expand_pm(items: list[str]) -> list[str]:
    # "1 \pm \sqrt{2}" is the two answers 1 + \sqrt{2} and 1 - \sqrt{2}.
    out = []
    for item in items:
        if item.count("\\pm") == 1:
            out += [item.replace("\\pm", "+"), item.replace("\\pm", "-")]
        else:
            out.append(item)
    return out


def _structure(s: str) -> _Parts | None:
    """Split a compound answer into its parts (each cleaned again: "x=2, x=-3"); None for a single value."""
    parts = _split_parts(s)
    if parts is None:
        return None
    return _Parts(parts.ordered, parts.brackets, tuple(clean(item) for item in parts.items), parts.names)


def _named_values(items: list[str]) -> _Parts | None:
    """ "p = 5, q = 2": the values in their order, with their names."""
    pairs = named_values(items)
    if pairs is None:
        return None
    return _Parts(True, _NAMED, tuple(value for _, value in pairs), tuple(name for name, _ in pairs))


def _named_tuple(s: str) -> _Parts | None:
    """ "(p,q) = (3,2)": a tuple of names given a tuple of values, which "p = 3, q = 2" equals."""
    sides = split_top_level(s, EQUALS)
    if len(sides) != 2 or not all(side[:1] == "(" and side[-1:] == ")" and encloses(side) for side in sides):
        return None
    names, values = (split_top_level(side[1:-1], ",") for side in sides)
    if len(names) < 2 or len(names) != len(values) or not all(is_name(name) for name in names):
        return None
    return _named_values([f"{name} = {value}" for name, value in zip(names, values, strict=True)])


def _split_parts(s: str) -> _Parts | None:
    named = _named_tuple(s) if "=" in s else None
    if named is not None:
        return named
    matrix = _MATRIX.fullmatch(s)
    if matrix:
        rows = [row for row in re.split(r"\\\\", matrix.group(2)) if row.strip()]
        cells = [[cell.strip() for cell in row.split("&")] for row in rows]
        shape = f"matrix {len(cells)}x{','.join(str(len(row)) for row in cells)}"
        return _Parts(True, shape, tuple(cell for row in cells for cell in row))
    pieces = split_top_level(s, "\\cup")
    if len(pieces) > 1:
        return _Parts(False, "", tuple(pieces))
    if s.startswith("\\{") and s.endswith("\\}") and encloses(s[1:]):
        return _Parts(False, "", tuple(_expand_pm(split_top_level(s[2:-2], ","))))
    if s[:1] in "([" and s[-1:] in ")]" and encloses(s):
        items = split_top_level(s[1:-1], ",")
        if len(items) > 1:
            return _Parts(True, s[0] + s[-1], tuple(items))
    items = split_top_level(s, ",")
    if len(items) > 1:
        named = _named_values(items)
        if named is not None:
            return named
    if len(items) > 1 or "\\pm" in s:
        return _Parts(False, "", tuple(_expand_pm(items)))
    return None


def _compare_structures(pred: _Parts | None, gold: _Parts | None, rel_tol: float) -> Verdict:
    """Tuples and intervals item by item (with their brackets); sets and lists of answers in any order; named
    values ("p = 5, q = 2") as the tuple of their values, or as a list."""
    if pred is None or gold is None or len(pred.items) != len(gold.items):
        return _MISMATCH
    if _NAMED in (pred.brackets, gold.brackets):
        return _compare_named(pred, gold, rel_tol)
    if pred.ordered != gold.ordered:
        return _pair_or_set(pred, gold, rel_tol)
    if pred.ordered:
        if pred.brackets != gold.brackets:
            return _MISMATCH  # [1, 2) is not [1, 2]; a 2x2 matrix is not a 1x4 one
        verdict = _in_order(pred.items, gold.items, rel_tol)
        if not verdict.correct:
            return verdict
        return Verdict(True, "matrix" if pred.brackets.startswith("matrix") else "tuple", verdict.certain)
    return _in_any_order(pred.items, gold.items, rel_tol)


def _compare_named(pred: _Parts, gold: _Parts, rel_tol: float) -> Verdict:
    named, other = (pred, gold) if pred.brackets == _NAMED else (gold, pred)
    if other.brackets == _NAMED and set(named.names) == set(other.names):
        by_name = dict(zip(other.names, other.items, strict=True))
        return _in_order(named.items, tuple(by_name[name] for name in named.names), rel_tol)
    if other.brackets in (_NAMED, "()"):  # "(p,q) = (5,2)" asked as a pair: the values in the order given
        return _in_order(named.items, other.items, rel_tol)
    if not other.ordered:  # "AB = 4, CD = 5" against "4, 5"
        return _in_any_order(named.items, other.items, rel_tol)
    return _MISMATCH


def _pair_or_set(pred: _Parts, gold: _Parts, rel_tol: float) -> Verdict:
    """A set or list against a pair or open interval "(1, 3)": the same numbers are an answer in another form
    that the rules cannot judge (a set for a pair, a list for an interval), so the verdict is uncertain."""
    ordered = pred if pred.ordered else gold
    unordered = gold if pred.ordered else pred
    if ordered.brackets == "()" and _in_any_order(unordered.items, ordered.items, rel_tol).correct:
        return Verdict(False, "pair_or_set", certain=False)
    return _MISMATCH


def _in_order(pred: tuple[str, ...], gold: tuple[str, ...], rel_tol: float) -> Verdict:
    certain = True
    for p, g in zip(pred, gold, strict=True):
        verdict = _compare(p, g, rel_tol)
        if not verdict.correct:
            return Verdict(False, "mismatch", verdict.certain)
        certain &= verdict.certain
    return Verdict(True, "tuple", certain)


def _in_any_order(pred: tuple[str, ...], gold: tuple[str, ...], rel_tol: float) -> Verdict:
    """Pair every gold item with a distinct equal predicted item."""
    unused, certain = list(pred), True
    for g in gold:
        verdicts = ((p, _compare(p, g, rel_tol)) for p in unused)
        match = next(((p, v) for p, v in verdicts if v.correct), None)
        if match is None:
            return _MISMATCH
        unused.remove(match[0])
        certain &= match[1].certain
    return Verdict(True, "set", certain)


# --- symbolic

# latex2sympy reads "1000(26)" as the mixed number 1026, "2(3)" as 5 and "\pi(10)" as a function call: a
# digit or \pi before "(" is a product.
# Not after ^ or _: "\sin^2(x)" and "\log_2(8)" are a power and a base.
_DIGIT_PAREN = re.compile(r"(?<![\^_\d])(\d+|\\pi)\s*(?=\()")
# Decimals become exact fractions before parsing, so that 0.1 + 0.2 = 0.3 holds exactly.
_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?![\d.])")


def _symbolic(pred: str, gold: str, rel_tol: float) -> Verdict:
    """Parse both answers with latex2sympy2_extended and compare the SymPy objects."""
    if len(pred) > _SYMPY_MAX_CHARS or len(gold) > _SYMPY_MAX_CHARS:
        return Verdict(False, "unparsed", certain=False)
    a, b = _parse(pred), _parse(gold)
    if a is None or b is None:
        return Verdict(False, "unparsed", certain=False)
    return _sympy_compare(a, b, rel_tol)


@functools.lru_cache(maxsize=4096)  # a gold is parsed once per sample, not once per completion
def _parse(latex: str):
    from latex2sympy2_extended import latex2sympy  # imported here: about a second, paid in the child

    latex = _DIGIT_PAREN.sub(r"\1\\cdot", latex)
    latex = _DECIMAL.sub(lambda m: f"\\frac{{{m.group(1)}{m.group(2)}}}{{1{'0' * len(m.group(2))}}}", latex)
    try:
        return latex2sympy(latex, conversion_config=_conversion_config())
    except Exception:  # unparsable LaTeX is "not shown equal", with the verdict marked uncertain
        return None


def _sympy_compare(a, b, rel_tol: float) -> Verdict:
    import sympy

    # MATH's complex-number answers write the imaginary unit as i.
    a, b = (x.subs(sympy.Symbol("i"), sympy.I) if isinstance(x, sympy.Basic) else x for x in (a, b))
    if a == b:
        return Verdict(True, "symbolic")
    rels = isinstance(a, sympy.Rel) and isinstance(b, sympy.Rel) and not isinstance(a, sympy.Eq)
    if rels and a.canonical == b.canonical:  # "x \geq 2" and "2 \leq x" are one inequality
        return Verdict(True, "inequality")
    if _is_condition(a) or _is_condition(b):
        return _conditions_equal(a, b)
    if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
        return _equations_equal(a, b)
    if isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase):
        if a.shape != b.shape:
            return _MISMATCH
        return Verdict(True, "matrix") if sympy.simplify(a - b).is_zero_matrix else _MISMATCH
    if isinstance(a, sympy.Set) and isinstance(b, sympy.Set):
        return Verdict(True, "set") if _sets_equal(a, b) else _MISMATCH
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        return _expressions_equal(a, b, rel_tol)
    return _MISMATCH  # an equation against an expression, a set against a number, ...


def _is_condition(x) -> bool:
    """An inequality, "\\neq", or a chain of them ("0 < f(x) < 1" parses as a conjunction)."""
    import sympy

    if isinstance(x, sympy.Eq):
        return False
    if isinstance(x, sympy.Rel):
        return True
    return isinstance(x, (sympy.And, sympy.Or)) and all(_is_condition(arg) for arg in x.args)


def _conditions_equal(a, b) -> Verdict:
    """Inequalities compare as the sets of values they allow, with each other or with intervals and unions:
    "-x > -1" is "x < 1", "x \\geq 5" is "[5, \\infty)", "1 \\le |z| \\le 3/2" is "[-3/2,-1] \\cup [1,3/2]"."""
    import sympy

    if _is_condition(a) and _is_condition(b):
        if _subjects(a) != _subjects(b):
            return _MISMATCH
        a, b = _condition_set(a), _condition_set(b)
    else:
        a = _condition_set(a) if _is_condition(a) else a
        b = _condition_set(b) if _is_condition(b) else b
    if not isinstance(a, sympy.Set) or not isinstance(b, sympy.Set):
        return _MISMATCH
    return Verdict(True, "inequality") if _sets_equal(a, b) else _MISMATCH


def _subjects(condition):
    """What a condition constrains: its free symbols and unknown functions ("f(x)")."""
    from sympy.core.function import AppliedUndef

    undefined = condition.atoms(AppliedUndef)
    return frozenset(undefined) if undefined else frozenset(condition.free_symbols)


def _condition_set(condition):
    """The real values a one-subject condition allows, or None. "0 < f(x) < 1" constrains the values of f(x)
    (a range), so f(x) is solved for as one unknown."""
    import sympy

    subjects = _subjects(condition)
    if len(subjects) != 1:
        return None
    subject = next(iter(subjects))
    unknown = sympy.Dummy("t", real=True)
    try:
        return condition.subs(subject, unknown).as_set()
    except Exception:  # SymPy cannot solve it: not shown equal
        return None


def _sets_equal(a, b) -> bool:
    import sympy

    return a == b or sympy.simplify(a.symmetric_difference(b)) == sympy.S.EmptySet


def _expressions_equal(a, b, rel_tol: float) -> Verdict:
    import sympy

    difference = a - b
    values = _sample_values(difference, b)  # sized by the gold, as for plain numbers
    if not rel_tol and values is not None and any(abs(d) > 1e-6 * max(1.0, abs(size)) for d, size in values):
        # Different at a point where both are defined: not the same expression. Evaluating is far cheaper than
        # simplify(), which is kept for proving equality.
        return _MISMATCH
    if sympy.simplify(difference) == 0:
        return Verdict(True, "symbolic")
    if values is None:
        return Verdict(False, "mismatch", certain=False)  # could not even evaluate: undecided
    if rel_tol and not difference.free_symbols:
        close = abs(values[0][0]) <= rel_tol * abs(values[0][1])
        return Verdict(True, "numeric_tolerance") if close else _MISMATCH
    if all(abs(diff) <= 1e-12 * max(1.0, abs(size)) for diff, size in values):
        # Equal to 30 digits at every sampled point, yet SymPy could not prove it: right, but not certain.
        return Verdict(True, "numeric_eval", certain=False)
    return _MISMATCH


def _sample_values(difference, reference):
    """(difference, reference) evaluated at three random points of the free symbols; None if not numeric."""
    import random

    import sympy

    symbols = sorted(difference.free_symbols | reference.free_symbols, key=str)
    rng = random.Random(0)  # fixed: the same verdict every run
    points = [{s: sympy.Rational(rng.randint(11, 97), rng.randint(3, 19)) for s in symbols} for _ in range(3)]
    out = []
    for point in points[: 3 if symbols else 1]:
        try:
            d = complex(difference.subs(point).evalf(30))
            r = complex(reference.subs(point).evalf(30))
        except (TypeError, ValueError):  # not a number at this point (an unknown function, a set, ...)
            return None
        if any(v != v or abs(v) == float("inf") for v in (d, r)):  # nan or infinity
            return None
        out.append((abs(d), abs(r)))
    return out


def _equations_equal(a, b) -> Verdict:
    """Two equations are the same when one side-difference is a non-zero constant times the other."""
    import sympy

    left, right = a.lhs - a.rhs, b.lhs - b.rhs
    if right == 0:
        return Verdict(left == 0, "equation" if left == 0 else "mismatch")
    ratio = sympy.simplify(left / right)
    same = ratio != 0 and not ratio.free_symbols and ratio.is_finite
    return Verdict(True, "equation") if same else _MISMATCH


def _conversion_config():
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig

    return ConversionConfig(
        interpret_as_mixed_fractions=True,
        interpret_simple_eq_as_assignment=False,
        interpret_contains_as_eq=True,
        lowercase_symbols=False,
    )
