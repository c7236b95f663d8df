"""Normalisation and equivalence: one row per (prediction, gold, answer type) and the expected verdict."""

from __future__ import annotations

import pytest

from mathforge.grading import Verdict, answers_equivalent, grade
from mathforge.grading.normalize import normalize, parse_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$\\dfrac{3}{4}$", "\\frac{3}{4}"),
        ("\\tfrac12", "\\frac{1}{2}"),
        ("\\frac 1{2}", "\\frac{1}{2}"),
        ("\\sqrt3", "\\sqrt{3}"),
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("\\displaystyle x^2", "x^2"),
        ("1,000", "1000"),
        ("1{,}000", "1000"),
        ("1\\,000", "1000"),
        ("1,2", "1,2"),
        ("(100,200)", "(100,200)"),
        ("\\$18", "18"),
        ("35\\%", "35"),
        ("90^\\circ", "90"),
        ("90^{\\circ}", "90"),
        ("10\\text{ cm}", "10"),
        ("5\\text{ cm}^2", "5"),
        ("5\\mathrm{~kg}", "5"),
        ("18 dollars", "18"),
        ("25 cents", "25"),
        ("\\text{Evelyn}", "Evelyn"),
        ("2 \\text{ or } 3", "2,3"),
        ("2 or 3", "2,3"),
        ("5 cm", "5"),
        ("\\frac{1}{2} ab", "\\frac{1}{2}ab"),
        ("2 x", "2x"),
        ("x = 3", "3"),
        ("y=2x+1", "2x+1"),
        ("f(x) = x^2", "x^2"),
        ("x \\in [2, 5)", "[2,5)"),
        ("3.", "3"),
        ("2 \\pi r", "2\\pi r"),
        ("2 1/2", "2\\frac{1}{2}"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", 42),
        ("-0.5", -0.5),
        (".25", 0.25),
        ("3/4", 0.75),
        ("\\frac{3}{4}", 0.75),
        ("-\\frac{1}{2}", -0.5),
        ("\\frac{-1}{2}", -0.5),
        ("2\\frac{1}{2}", 2.5),
        ("1e3", 1000),
        ("1/0", None),
        ("x", None),
        ("\\sqrt{2}", None),
    ],
)
def test_parse_number(raw: str, expected: float | None) -> None:
    value = parse_number(raw)
    assert (None if value is None else float(value)) == expected


@pytest.mark.parametrize(
    ("pred", "gold", "answer_type", "expected"),
    [
        # Numbers: exact rationals, no float tolerance.
        ("72", "72", "number", (True, "string")),
        ("326.53", "326.5", "number", (False, "mismatch")),
        ("0.5", "\\frac{1}{2}", "expression", (True, "numeric")),
        ("1/2", "0.5", "number", (True, "numeric")),
        ("18.00", "18", "number", (True, "numeric")),
        ("1e3", "1000", "number", (True, "numeric")),
        ("0.333", "\\frac13", "expression", (False, "mismatch")),
        ("1,000", "1000", "number", (True, "string")),
        ("1,000.50", "1000.5", "number", (True, "numeric")),
        ("\\$18", "18", "number", (True, "string")),
        ("$18.00", "18", "number", (True, "numeric")),
        ("3.50", "\\$3.5", "number", (True, "numeric")),
        ("18 dollars", "18", "number", (True, "string")),
        ("5\\text{ inches}", "5", "number", (True, "string")),
        ("10\\text{ cm}", "10", "expression", (True, "string")),
        ("\\frac{1}{2}\\text{ cup}", "0.5", "expression", (True, "numeric")),
        # A percent is a unit: "35%" is the gold 35, but 0.35 is not.
        ("35\\%", "35", "number", (True, "string")),
        ("35%", "35", "number", (True, "string")),
        ("0.35", "35", "number", (False, "mismatch")),
        # Mixed numbers.
        ("2 1/2", "5/2", "number", (True, "numeric")),
        ("2\\frac{1}{2}", "\\frac{5}{2}", "expression", (True, "numeric")),
        ("\\frac{7}{2}", "3\\frac{1}{2}", "expression", (True, "numeric")),
        ("2 1/2", "21/2", "number", (False, "mismatch")),
        # LaTeX spellings.
        ("\\dfrac{3}{4}", "\\frac34", "expression", (True, "string")),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", "expression", (True, "string")),
        ("x=3", "3", "expression", (True, "string")),
        ("y = 2x + 3", "2x+3", "expression", (True, "string")),
        ("90^\\circ", "90", "expression", (True, "string")),
        ("\\text{(B)}", "(B)", "expression", (True, "string")),
        # Symbolic.
        ("\\sqrt{3}/2", "\\frac{\\sqrt{3}}{2}", "expression", (True, "symbolic")),
        ("(x+1)^2", "x^2+2x+1", "expression", (True, "symbolic")),
        ("2\\sqrt{2}", "\\sqrt{8}", "expression", (True, "symbolic")),
        ("2 \\pi r", "2r\\pi", "expression", (True, "symbolic")),
        ("\\pi", "3.14", "expression", (False, "mismatch")),
        ("x^2", "x^3", "expression", (False, "mismatch")),
        # Power towers are evaluated (under the grading child's time limit): 2^{3^4} is 2^{81}.
        ("2^{3^{4}}", "2^{81}", "expression", (True, "symbolic")),
        ("\\sqrt{2}+" * 60 + "1", "1", "expression", (False, "mismatch")),
        # Intervals: open and closed ends matter.
        ("[2,5)", "[2, 5)", "expression", (True, "string")),
        ("[2,5)", "[2,5]", "expression", (False, "mismatch")),
        ("(2,5)", "[2,5]", "expression", (False, "mismatch")),
        ("[\\frac{1}{2}, 5)", "[0.5, 5)", "expression", (True, "tuple")),
        ("x \\in [2, 5)", "[2,5)", "expression", (True, "string")),
        ("(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)", "expression", (True, "set")),
        # Tuples and points: ordered, elementwise.
        ("(1,2)", "(1, 2)", "expression", (True, "string")),
        ("\\left( 1, 2 \\right)", "(1,2)", "expression", (True, "string")),
        ("(0.5, 2)", "(\\frac{1}{2}, 2)", "expression", (True, "tuple")),
        ("(2,1)", "(1,2)", "expression", (False, "mismatch")),
        ("(1,2,3)", "(1,2)", "expression", (False, "mismatch")),
        ("(100,200)", "100200", "number", (False, "mismatch")),
        # Sets and several answers: order-free.
        ("\\{2,1\\}", "\\{1,2\\}", "expression", (True, "set")),
        ("\\{1,2,3\\}", "1, 2, 3", "expression", (True, "set")),
        ("-3, 2", "2, -3", "expression", (True, "set")),
        ("2, 2", "2, -3", "expression", (False, "mismatch")),
        ("3 \\text{ or } 5", "5, 3", "expression", (True, "set")),
        ("3 and 5", "5, 3", "expression", (True, "set")),
        ("x=2, y=3", "2, 3", "expression", (True, "set")),
        ("1\\pm\\sqrt{2}", "1+\\sqrt{2}, 1-\\sqrt{2}", "expression", (True, "set")),
        ("(1,2),(3,4)", "(3,4),(1,2)", "expression", (True, "set")),
        # Values named in order are the ordered pair they give (the question asks for (x, y)).
        ("x=2, y=3", "(2,3)", "expression", (True, "tuple")),
        ("x=2, y=3", "(3,2)", "expression", (False, "mismatch")),
        ("y=3, x=2", "x=2, y=3", "expression", (True, "tuple")),
        ("p = 3, q = 2", "(p,q) = (3,2)", "expression", (True, "tuple")),
        ("(p,q) = (3,2)", "q = 2, p = 3", "expression", (True, "tuple")),
        ("p = 2, q = 3", "(p,q) = (3,2)", "expression", (False, "mismatch")),
        # A comma inside an interval after "x \\in" is no thousands separator.
        ("x \\in (2,12) \\cup (12,102)", "(2,12) \\cup (12,102)", "expression", (True, "string")),
        # Matrices.
        (
            "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
            "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
            "expression",
            (True, "string"),
        ),
        # Text answers: case-insensitive.
        ("evelyn", "\\text{Evelyn}", "text", (True, "text")),
        ("Yes.", "yes", "text", (True, "text")),
        ("1,000", "1000.00", "text", (True, "numeric")),
        ("Monday", "Tuesday", "text", (False, "mismatch")),
        # Choices: sorted letter sets.
        ("B", "B", "choice", (True, "choice")),
        ("B", "(B)", "choice", (True, "choice")),
        ("AC", "A, C", "choice", (True, "choice")),
        ("CA", "AC", "choice", (True, "choice")),
        ("A", "AC", "choice", (False, "mismatch")),
        ("42", "B", "choice", (False, "mismatch")),
        ("42", "42", "choice", (True, "string")),
        # No answer.
        (None, "5", "number", (False, "no_answer")),
        ("", "5", "number", (False, "no_answer")),
        ("  ", "B", "choice", (False, "no_answer")),
    ],
)
def test_grade(pred: str | None, gold: str, answer_type: str, expected: tuple[bool, str]) -> None:
    assert grade(pred, gold, answer_type) == Verdict(*expected)


@pytest.mark.parametrize(
    "pred",
    [
        "\\frac{",
        "}{",
        "((((",
        "^^^",
        "\\sqrt{-}",
        "\\begin{pmatrix}",
        "1/0",
        "\\frac{1}{0}",
        "\\\\",
        "$",
        "=",
        "{,}",
    ],
)
@pytest.mark.parametrize("answer_type", ["number", "expression", "choice", "text"])
def test_grade_never_raises(pred: str, answer_type: str) -> None:
    verdict = grade(pred, "x + 1", answer_type)
    assert verdict.correct is False


@pytest.mark.parametrize(
    ("a", "b", "answer_type", "expected"),
    [
        ("0.5", "1/2", "number", True),
        ("18", "\\$18", "number", True),
        ("\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2", "expression", True),
        ("5", "6", "number", False),
        ("AC", "C, A", "choice", True),
        ("Blue", "blue", "text", True),
    ],
)
def test_answers_equivalent(a: str, b: str, answer_type: str, expected: bool) -> None:
    assert answers_equivalent(a, b, answer_type) is expected
    assert answers_equivalent(b, a, answer_type) is expected


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        # A predicted relation that gives the value of what it names, or a computation or simplification that
        # ends in it: its last side is the answer.
        ("f(0) = -1", "-1", Verdict(True, "relation_value")),
        ("a+d+e+f=2k", "2k", Verdict(True, "relation_value")),
        ("a_{37} = 12", "12", Verdict(True, "string")),  # the "a_{37} =" prefix is dropped by normalisation
        ("(p,q) = (3,2)", "(3,2)", Verdict(True, "tuple")),
        ("10 \\cdot 6 = 60", "60", Verdict(True, "relation_value")),
        ("f^{-1}(x) = \\frac{x-3}{2}", "\\frac{x - 3}{2}", Verdict(True, "relation_value")),
        ("19x - 4x + 1 - 81 = 15x - 80", "15x - 80", Verdict(True, "relation_value")),
        ("S_{MBCN}:S = 7:32", "7:32", Verdict(True, "relation_value")),
        ("\\frac{NO}{BO} = \\frac{1}{\\sqrt6}", "\\frac{\\sqrt{6}}{6}", Verdict(True, "relation_value")),
        # An equation still to be solved gives no value; where its right side is the gold, the judge decides.
        ("x + 2 = 5", "5", Verdict(False, "unsolved_relation", certain=False)),
        ("2x = 6", "6", Verdict(False, "unsolved_relation", certain=False)),
        ("2a = 16 \\sqrt{3}", "16 \\sqrt{3}", Verdict(False, "unsolved_relation", certain=False)),
        ("x + 2 = 5", "3", Verdict(False, "mismatch")),
        ("f(0) = -1", "1", Verdict(False, "mismatch")),
        # A gold "name = value" is the value; a gold that is a relation of its own is never matched by a value.
        ("5", "x = 5", Verdict(True, "string")),
        ("(3,2)", "(p,q) = (3,2)", Verdict(True, "tuple")),
        ("7:32", "S_{MBCN}:S = 7:32", Verdict(True, "relation_value")),
        ("\\frac{1}{\\sqrt6}", "\\frac{NO}{BO} = \\frac{1}{\\sqrt6}", Verdict(True, "relation_value")),
        ("5", "x + y = 5", Verdict(False, "mismatch")),
        ("0", "2x - y + 3z + 8 = 0", Verdict(False, "mismatch")),
        ("1", "x^2 + y^2 = 1", Verdict(False, "mismatch")),
        ("4", "x^2 = 4", Verdict(False, "mismatch")),
        ("x = 5", "x \\geq 5", Verdict(False, "mismatch")),
    ],
)
def test_relation_against_value(pred: str, gold: str, expected: Verdict) -> None:
    assert grade(pred, gold, "expression") == expected
