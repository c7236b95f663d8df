"""Real answer pairs, grouped by the rule that must decide them, including where the public graders go wrong.

Golds are MATH-500 / GSM8K golds (or their released math-evaluation-harness forms); predictions are answers
that models wrote in the released Rho-Math outputs or common rewritings of the gold.
"""

from __future__ import annotations

import json

import pytest
from conftest import SHARED

from mathforge.grading import grade

# (pred, gold, answer type, correct, rule)
CASES = [
    # Units, currency, text wrappers and spacing: removed before comparing.
    ("864", "864 \\mbox{ inches}^2", "expression", True, "string"),
    ("15", "15\\mbox{ cm}^2", "expression", True, "string"),
    ("32348", "\\$32,\\!348", "expression", True, "string"),
    ("10080", "10,\\!080", "expression", True, "string"),
    ("11111111100", "11,\\! 111,\\! 111,\\! 100", "expression", True, "string"),
    ("230 miles", "230", "number", True, "string"),
    ("$4$ inches per second", "4", "expression", True, "string"),
    ("18 dollars", "18", "number", True, "string"),
    ("90^\\circ", "90", "expression", True, "string"),
    ("\\text{east}", "\\text{east}", "expression", True, "string"),
    ("East", "\\text{east}", "expression", True, "text"),
    ("\\text{Devon}", "Devon", "expression", True, "string"),
    # Percent: "35\\%" is the gold 35; an answer off by a factor of 100 is wrong (the harness accepts it).
    ("35\\%", "35", "number", True, "string"),
    ("0.02", "2", "number", False, "mismatch"),
    ("2500", "25", "number", False, "mismatch"),
    ("3", "300", "number", False, "mismatch"),
    ("4200", "42", "number", False, "mismatch"),
    # Exact numbers: 326.53 is not 326.5 (the harness's 1e-4 tolerance accepts it), 0.5 is 1/2.
    ("326.53", "326.5", "expression", False, "mismatch"),
    ("0.5", "\\frac{1}{2}", "expression", True, "numeric"),
    ("\\dfrac{3}{4}", "0.75", "expression", True, "numeric"),
    ("2\\frac{1}{4}", "\\frac{9}{4}", "expression", True, "numeric"),
    ("1000(26)", "26000", "expression", True, "symbolic"),  # latex2sympy alone reads 1026
    ("2(3)", "5", "expression", False, "mismatch"),
    # Symbolic.
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", "expression", True, "symbolic"),
    ("2\\sqrt{2}", "\\sqrt{8}", "expression", True, "symbolic"),
    ("\\frac{\\pi}{2}", "\\frac12\\pi", "expression", True, "symbolic"),
    ("(a + 5)(b + 2)", "(a+5)(b+2)", "expression", True, "string"),
    ("ab+2a+5b+10", "(a+5)(b+2)", "expression", True, "symbolic"),
    ("(+5)(b+2)", "(a+5)(b+2)", "expression", False, "mismatch"),  # the harness's own corrupted gold
    ("x^2+7x+10", "(x+5)(x+2)", "expression", True, "symbolic"),
    ("\\sin^2 x+\\cos^2 x", "1", "expression", True, "symbolic"),
    ("\\log_2 8", "3", "expression", True, "symbolic"),
    ("2^{3^{2}}", "512", "expression", True, "symbolic"),
    ("-\\tan(4\\pi/9)+4\\cos(\\pi/18)", "-\\sqrt{3}", "expression", True, "numeric_eval"),
    ("\\pi", "3.14", "expression", False, "mismatch"),
    ("\\sin^2(x)", "\\sin^2 x", "expression", True, "symbolic"),  # a power before "(" is not a product
    ("\\log_2(8)", "3", "expression", True, "symbolic"),
    ("(1+i)^2", "2i", "expression", True, "symbolic"),  # i is the imaginary unit
    ("e^{i\\pi}", "-1", "expression", True, "symbolic"),
    # Inequalities: the same one written from either side.
    ("x \\geq 2", "2 \\leq x", "expression", True, "inequality"),
    ("x > 2", "x < 2", "expression", False, "mismatch"),
    # Tuples and points: order and every coordinate matter.
    ("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", "expression", True, "string"),
    ("(3, 90^\\circ)", "(3,90)", "expression", True, "string"),
    ("(\\frac{1}{2}, 3)", "(0.5,3)", "expression", True, "tuple"),
    ("(3,\\frac{\\pi}{2})", "(\\frac{\\pi}{2},3)", "expression", False, "mismatch"),
    # Intervals: open and closed ends matter (the harness ignores them); unions in any order.
    ("(-\\infty,0)", "(-\\infty,0]", "expression", False, "mismatch"),
    ("[-2, 7]", "[-2,7]", "expression", True, "string"),
    ("(-\\infty, -2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,-2)", "expression", True, "set"),
    ("[1,2)", "[1,2]", "expression", False, "mismatch"),
    # Sets and lists of answers: order-free, every element must be there.
    ("1", "1,-2", "expression", False, "mismatch"),
    ("-2, 1", "1,-2", "expression", True, "set"),
    ("\\{2, 1\\}", "\\{1, 2\\}", "expression", True, "set"),
    ("1+\\sqrt{19}, 1-\\sqrt{19}", "1 \\pm \\sqrt{19}", "expression", True, "set"),
    ("x=2, x=-3", "-3, 2", "expression", True, "set"),
    ("2 \\text{ and } -3", "-3, 2", "expression", True, "set"),
    # Matrices and vectors.
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", "expression", True, "string"),
    ("\\begin{pmatrix} 0.5 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}\\frac12\\\\2\\end{pmatrix}", "expression", True, "matrix"),
    ("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", "expression", False, "mismatch"),
    # Equations: the same plane or line written another way; "x =" before a value is dropped.
    ("-20x + 28y - 44z - 16 = 0", "5x-7y+11z+4=0", "expression", True, "equation"),
    ("y = 2x + 3", "2x - y + 3 = 0", "expression", True, "equation"),
    ("x = 5", "5", "expression", True, "string"),
    ("y = 2x + 3", "y = 2x + 4", "expression", False, "mismatch"),
    # Text and multiple choice.
    ("Monday", "\\text{Monday}", "text", True, "text"),
    ("(B)", "B", "choice", True, "choice"),
    ("\\text{(C)}", "C", "choice", True, "choice"),
    ("A, C", "AC", "choice", True, "choice"),
    ("B", "AC", "choice", False, "mismatch"),
    # Nothing to grade.
    (None, "5", "number", False, "no_answer"),
    ("", "5", "number", False, "no_answer"),
]


@pytest.mark.parametrize(("pred", "gold", "answer_type", "correct", "rule"), CASES)
def test_case(pred: str | None, gold: str, answer_type: str, correct: bool, rule: str) -> None:
    verdict = grade(pred, gold, answer_type)
    assert (verdict.correct, verdict.rule) == (correct, rule)


def test_uncertain_verdicts_are_marked() -> None:
    assert not grade("-\\tan(4\\pi/9)+4\\cos(\\pi/18)", "-\\sqrt{3}", "expression").certain
    assert not grade("\\undefinedmacro{1}", "2", "expression").certain
    assert grade("326.53", "326.5", "number").certain


def test_a_timeout_is_not_remembered() -> None:
    # A timeout under momentary load must not stick to the pair for the rest of the process.
    assert grade("\\sqrt{18}", "3\\sqrt{2}", "expression", timeout=1e-4).rule == "timeout"
    assert grade("\\sqrt{18}", "3\\sqrt{2}", "expression", timeout=1e-4).rule == "timeout"
    assert grade("\\sqrt{18}", "3\\sqrt{2}", "expression", timeout=30).correct


def test_relative_tolerance_only_when_asked() -> None:
    assert not grade("326.53", "326.5", "number").correct
    assert grade("326.53", "326.5", "number", rel_tol=1e-3).rule == "numeric_tolerance"
    assert not grade("330", "326.5", "number", rel_tol=1e-3).correct


def test_every_math500_gold_equals_its_boxed_solution() -> None:
    # 500 real golds: the `answer` field and the last \\boxed{} of the reference solution must agree.
    from mathforge.grading import last_boxed

    rows = [json.loads(line) for line in (SHARED / "data/benchmarks/math500/test.jsonl").open()]
    failures = [
        (row["answer"], last_boxed(row["solution"]))
        for row in rows
        if not grade(last_boxed(row["solution"]), row["answer"], "expression").correct
    ]
    assert len(rows) == 500
    assert failures == []
