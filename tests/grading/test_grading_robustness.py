"""Property tests: whatever the strings, `grade` returns a Verdict within its time bound and never raises."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mathforge.grading import Verdict, grade

TIMEOUT = 1.0
# The limit, plus starting a fresh grading child after a kill (about half a second; slack for a busy CI box).
BOUND = TIMEOUT + 8.0
ANSWER_TYPES = ("number", "expression", "choice", "text")
# Every rule a verdict can name: anything else would mean an unexpected path was taken.
RULES = {
    "string", "numeric", "numeric_tolerance", "tuple", "set", "matrix", "symbolic", "numeric_eval", "equation",
    "inequality", "text", "choice", "mismatch", "no_answer", "unparsed", "timeout", "error",
}

PATHOLOGICAL = [
    "9^{9^{9^9}}",
    "9^{9^{9^{9^{9}}}}",
    "10^{10^{10}}!",
    "(10^{10^{10}})!",
    "2^{2^{2^{2^{2^{2}}}}}",
    "\\frac{1}{0}",
    "0^0",
    "\\infty - \\infty",
    "{" * 5000,
    "}" * 5000,
    "{" * 3000 + "x" + "}" * 3000,
    "\\frac{" * 2000,
    "\\sqrt{" * 1000 + "2" + "}" * 1000,
    "(" * 4000 + "1" + ")" * 4000,
    "\\left(" * 500,
    "\\begin{pmatrix}" * 300,
    "\\boxed{" * 5000,
    "x^" * 3000 + "2",
    "1+" * 5000 + "1",
    "\\sqrt{2}+" * 1200 + "1",
    "a" * 10_000,
    "1" * 10_000,
    "1,000," * 2000,
    "\\{" + ",".join(str(i) for i in range(3000)) + "\\}",
    "\\begin{pmatrix}" + "&".join("1" for _ in range(2000)) + "\\end{pmatrix}",
    "\\text{" + "x" * 9000 + "}",
    "$" * 10_000,
    "\\" * 10_000,
    "\u0000\u0001\u0007\u001b[31m\x7f",
    "\u202e\u200b\ufeff\U0001f600 ∞ √2 ½ π",
    "答案是\\frac{1}{2}",
    "\\x\\y\\z\\undefined{1}{2}",
    "\\int_0^{10^{100}} e^{x^2} dx",
    "\\sum_{n=1}^{10^{12}} n^{n}",
    "\\lim_{x\\to 0} \\frac{\\sin x}{x}",
    "x = y = z = 1 = 2",
    "[1,2)\\cup(3,4]\\cup" * 300 + "[5,6]",
    "\\pm\\pm\\pm 1",
]
GOLDS = ["1", "\\frac{1}{2}", "(1,2)", "[0,\\infty)", "x^2+1", "B", "Monday", "9^{9^{9^9}}"]


def _grade_timed(pred: str, gold: str, answer_type: str) -> Verdict:
    started = time.monotonic()
    verdict = grade(pred, gold, answer_type, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert isinstance(verdict, Verdict)
    assert elapsed < BOUND, f"{elapsed:.1f}s for {pred[:60]!r} vs {gold[:60]!r}"
    if verdict.rule == "timeout":
        assert not verdict.correct and not verdict.certain
    return verdict


@pytest.mark.parametrize("pred", PATHOLOGICAL, ids=lambda s: repr(s[:24]))
def test_pathological_answers_get_a_verdict_in_time(pred: str) -> None:
    for gold in ("1", "x^2+1"):
        assert _grade_timed(pred, gold, "expression").rule in RULES
    assert _grade_timed(pred[:3000], "B", "choice").rule in RULES
    assert _grade_timed(pred, "Monday", "text").rule in RULES


@pytest.mark.parametrize("gold", PATHOLOGICAL[:12], ids=lambda s: repr(s[:24]))
def test_pathological_golds_get_a_verdict_in_time(gold: str) -> None:
    assert _grade_timed("1", gold, "expression").rule in RULES
    assert _grade_timed("x", gold, "number").rule in RULES


LATEXISH = st.lists(
    st.sampled_from(list("0123456789+-*/^_{}()[],.=xyz \\$%!") + ["\\frac", "\\sqrt", "\\pi", "\\cup"]),
    max_size=60,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pred=st.one_of(st.text(max_size=200), LATEXISH), answer_type=st.sampled_from(ANSWER_TYPES))
def test_random_strings_never_raise(pred: str, answer_type: str) -> None:
    for gold in GOLDS[:4]:
        assert _grade_timed(pred, gold, answer_type).rule in RULES


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pred=LATEXISH, gold=LATEXISH)
def test_random_latex_pairs_never_raise_and_equal_strings_are_equal(pred: str, gold: str) -> None:
    assert _grade_timed(pred, gold, "expression").rule in RULES
    if pred.strip():
        assert _grade_timed(pred, pred, "expression").correct


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    depth=st.integers(1, 4000),
    opener=st.sampled_from(["{", "(", "[", "\\frac{", "\\sqrt{", "^{", "\\left("]),
    closed=st.booleans(),
)
def test_deep_nesting(depth: int, opener: str, closed: bool) -> None:
    closer = {"{": "}", "(": ")", "[": "]", "\\left(": "\\right)"}.get(opener, "}")
    pred = opener * depth + "1" + (closer * depth if closed else "")
    assert _grade_timed(pred, "1", "expression").rule in RULES
