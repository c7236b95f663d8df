"""LaTeX scanning: math-mode spans (and prices that only look like them), and numbers read whole."""

from __future__ import annotations

import time

import pytest

from mathforge.grading.latex import final_paragraph_start, last_numeric_expression, math_spans


def spans(text: str) -> list[str]:
    return [span.content(text) for span in math_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $x = \\frac13$.", ["x = \\frac13"]),
        ("$$x^2$$ and \\(y\\) and \\[ z = 5 \\]", ["x^2", "y", "z = 5"]),
        ("\\begin{align*} a &= 1 \\\\ &= 2 \\end{align*} done", ["a &= 1 \\\\ &= 2"]),
        ("\\begin{equation} E = mc^2 \\end{equation}", ["E = mc^2"]),
        # Prices: "$" before a digit with prose inside is money, not math (Pandoc's rule alone pairs these).
        ("She earns $5 per hour, so in $h$ hours she earns $5h$.", ["h", "5h"]),
        ("He pays $18 for 3 apples, so $6 each. Then $x$.", ["x"]),
        ("It costs $2 and $3$ apples cost $6.", ["3"]),
        # Pandoc's rule: no space inside the delimiters, no digit right after the closing one.
        ("from $ 4 $ to $5$", ["5"]),
        ("costs $5 to $10", []),
        # A price written after its number: "10$" opens nothing.
        ("The shirt costs 10$ and the hat 5$, total 15$.", []),
        ("He spent 10$, then 5$, in total 15$. So $x = 15$.", ["x = 15"]),
        # An escaped dollar is a dollar; an escaped backslash (a line break) is no delimiter.
        ("costs \\$5 and \\$6, so $x = 1$", ["x = 1"]),
        ("\\[ a \\\\[2pt] b \\]", ["a \\\\[2pt] b"]),
        # Inline math never crosses a blank line; an unclosed delimiter opens nothing.
        ("$a$\n\n$b\n\nc$ $d$", ["a", "d"]),
        ("unclosed $x and \\[ never closed", []),
        ("\\( x \\) then \\( unclosed", ["x"]),
    ],
)
def test_math_spans(text: str, expected: list[str]) -> None:
    assert spans(text) == expected


def test_final_paragraph_ignores_blank_lines_inside_display_math() -> None:
    text = "First.\n\n$$\na = 1\n\nb = 2\n$$ so it is $b$."
    assert text[final_paragraph_start(text, math_spans(text)) :] == "$$\na = 1\n\nb = 2\n$$ so it is $b$."
    text = "First $a$.\n\nSecond $b$."
    assert text[final_paragraph_start(text, math_spans(text)) :] == "Second $b$."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so x = \\frac13.", "\\frac13"),
        ("it is \\sqrt3", "\\sqrt3"),
        ("it is 2\\pi", "2\\pi"),
        ("about 10^{-3} m", "10^{-3}"),
        ("1{,}000 people", "1{,}000"),
        ("x = -\\frac{1}{2}", "-\\frac{1}{2}"),
        ("2\\frac{1}{2} cups", "2\\frac{1}{2}"),
        ("\\dfrac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt{3}}{2}"),
        ("3\\sqrt{2}\\pi", "3\\sqrt{2}\\pi"),
        ("costs \\$1,000.50 total", "1,000.50"),
        ("3/4 of a cup", "3/4"),
        ("-5 degrees", "-5"),
        ("He ran 5-3 laps", "3"),
        ("35\\% of them", "35"),
        ("\\log_2 8", "8"),
        ("5th place", "5"),
        ("area 25 cm^2", "25"),
        ("area 25 m^2", "25"),
        ("25 \\text{ cm}^2", "25"),
        # A digit in a variable's script or coefficient is no number, and the text then ends on no number.
        ("so x^2", None),
        ("the term a_{37}", None),
        ("the 37th term, so the largest is a_{37}", None),
        ("value 5 and then x^2", None),
        ("\\frac{x}{2} and 7 and \\frac{x}{2}", None),
        # A letter glued to a number is most often a unit in prose; the number stands.
        ("It weighs 100g.", "100"),
        ("= $2k per month.", "2"),
        ("1200m-300m = 900m", "900"),
        # Scientific notation and a quotient of atoms are read whole.
        ("about 3 \\times 10^{5} cells", "3 \\times 10^{5}"),
        ("2.5 \\cdot 10^3 grams", "2.5 \\cdot 10^3"),
        ("so it is \\sqrt{2}/2", "\\sqrt{2}/2"),
        ("5 \\times 4 = 20", "20"),
        ("no number", None),
    ],
)
def test_last_numeric_expression(text: str, expected: str | None) -> None:
    assert last_numeric_expression(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "$1 " * 20_000,
        "$" * 50_000,
        "\\frac{" * 20_000,
        "\\[" * 20_000 + "x",
        "x^{" * 20_000,
        "1{,}" * 20_000,
        "\\sqrt[" * 20_000,
    ],
)
def test_scans_stay_linear_on_degenerate_text(text: str) -> None:
    started = time.perf_counter()
    math_spans(text)
    last_numeric_expression(text)
    assert time.perf_counter() - started < 5.0  # a hang guard: each takes milliseconds
