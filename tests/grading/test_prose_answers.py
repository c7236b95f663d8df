"""Answers stated outside \\boxed{}: how they must be extracted and graded, as a table of verdicts.

Each row is a realistic ending (zero-shot "Solution:" prose, chat markdown, JSON replies, Chinese) with its
gold and the verdict that extraction followed by grading must give: the last math-mode expression when no box
or stated answer exists, LaTeX tokens never split into stray numbers, stated answers cut at their value,
wrapped golds unwrapped, the common spellings of one answer equal, and loops told apart from enumerations.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import pytest

from mathforge.grading import asks_for_several, extract_answer, grade


@dataclass(frozen=True)
class Case:
    """One completion and its gold.

    `correct`: the expected verdict; None when either is acceptable (only `certain` is checked).
    `certain`: the expected `Verdict.certain` where the verdict is right or left open (None: not checked).
    A wrong row's certainty is not specified: it must be graded wrong, sure or not.
    """

    completion: str
    gold: str
    correct: bool | None
    certain: bool | None = True
    question: str = ""
    answer_type: str = "expression"
    extractor: str = "auto"
    choices: tuple[str, ...] | None = None
    id: str = ""


def _lines(*parts: str) -> str:
    return "\n".join(parts)


OPTIONS_HALF = ("0", "\\frac{1}{2}", "1", "2")
OPTIONS_FIVE = ("3", "4", "5", "6", "7")
OPTIONS_SEATS = ("12", "42", "7", "\\frac{1}{2}")

Q_ROOTS = "Find all real solutions of $x^2 - 3x + 2 = 0$. Enter all the solutions, separated by commas."
Q_PAIRS = "Find all ordered pairs $(x, y)$ of positive integers such that $x^2 + y^2 = 10$."

# --- long texts (point 9): enumerations of distinct lines are no loop; repeated content is

GCD_ENUMERATION = (
    " We need $a + b = 42$ and $\\gcd(a, b) = 1$, so we check every $a$ from $1$ to $41$.\n"
    + "".join(
        f"For $a = {a}$: $b = {42 - a}$ and $\\gcd({a}, {42 - a}) = {gcd(a, 42 - a)}$.\n"
        for a in range(1, 42)
    )
    + "Counting the pairs whose $\\gcd$ is $1$, there are $12$ of them."
)
SQUARES_ENUMERATION = (
    "Let us test each $n$ from $1$ to $50$.\n"
    + "".join(
        f"$n = {n}$: $n^2 + 1 = {n * n + 1}$, which is {'' if (n * n + 1) % 5 == 0 else 'not '}divisible by $5$.\n"
        for n in range(1, 51)
    )
    + "So $n^2 + 1$ is divisible by $5$ exactly when $n$ leaves remainder $2$ or $3$, which gives $20$ values."
)
SAVINGS_ENUMERATION = (
    "She saves 5 dollars more each week than the week before.\n"
    + "".join(
        f"Week {w}: she saves {5 * w} dollars, bringing her total to {5 * w * (w + 1) // 2} dollars.\n"
        for w in range(1, 21)
    )
    + "After 20 weeks she has saved 1050 dollars in total."
)
SAME_SENTENCE_LOOP = "Since $a + b = 7$ and $ab = 12$, we get $a^2 + b^2 = (a + b)^2 - 2ab = 25$.\n" * 15
TWO_SENTENCE_LOOP = "Let me double-check: $3 \\times 4 = 12$. So the total is $12$.\n" * 10


CASES: list[Case] = [
    # --- The issue's own table: the ending, the gold and the right answer.
    Case(
        " Multiplying both sides by $3$ gives $3x = 1$, so $x = \\frac13$.",
        "1/3",
        True,
        id="issue-frac13-in-math",
    ),
    Case(
        "Adding $3$ to both sides gives $2x \\geq 10$, and dividing by $2$ keeps the direction. "
        "Therefore $x \\geq 5$ is the solution.",
        "x \\ge 5",
        True,
        question="Solve $2x - 3 \\geq 7$.",
        id="issue-geq-relation",
    ),
    Case(
        "Adding $3$ to both sides gives $2x \\geq 10$, and dividing by $2$ keeps the direction. "
        "Therefore $x \\geq 5$ is the solution.",
        "x > 5",
        False,
        question="Solve $2x - 3 \\geq 7$.",
        id="issue-geq-relation-vs-strict-gold",
    ),
    Case(
        "Every vector is left unchanged, so $\\mathbf{M}$ acts as the identity. "
        "The identity matrix is $\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$.",
        "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}",
        True,
        id="issue-identity-matrix",
    ),
    Case(
        "The radicand $x$ must be non-negative and the denominator $1 - x$ must be positive, so the domain is"
        "\n\n$[0,1)$",
        "[0,1)",
        True,
        question="Find the domain of $f(x) = \\frac{\\sqrt{x}}{\\sqrt{1 - x}}$.",
        id="issue-interval-alone-in-math",
    ),
    Case(
        "Options A to D all give an even sum, so the only consistent option is $E$.",
        "\\text{E}",
        True,
        id="issue-choice-letter-in-math",
    ),
    Case(
        "Checking $n = 35$ shows the inequality fails, while $n = 34$ satisfies it.\n"
        "Final Answer: The largest $n$ is 34.",
        "34",
        True,
        id="issue-final-answer-largest-n",
    ),
    Case(
        "The tens digit is $9$ and the units digit is $1$, and we want their sum.\nAnswer \\( (9+1) \\)",
        "10",
        True,
        id="issue-answer-paren-expression",
    ),
    # --- Point 1: the last math-mode expression of the final sentence or paragraph.
    Case(
        " The common difference is $d = 7 - 4 = 3$, so the $20$th term is $$a_{20} = 4 + 19 \\cdot 3 = 61.$$",
        "61",
        True,
        id="math-display-dollars-chain",
    ),
    Case(
        "Completing the square gives \\((x-3)^2 + (y+1)^2 = 13\\), so the radius is \\(\\sqrt{13}\\).",
        "\\sqrt{13}",
        True,
        id="math-paren-delimiters-sqrt",
    ),
    Case(
        "There are $6$ red balls among $9$, so the probability that both are red is\n"
        "\\[\\frac{6}{9} \\cdot \\frac{5}{8} = \\frac{5}{12}.\\]",
        "\\frac{5}{12}",
        True,
        id="math-bracket-display-chain",
    ),
    Case(
        _lines(
            "There are $\\binom{3}{2} = 3$ favourable outcomes out of $2^3 = 8$, so",
            "\\begin{equation}",
            "P = \\frac{3}{8}",
            "\\end{equation}",
        ),
        "3/8",
        True,
        id="math-equation-environment",
    ),
    Case(
        r"""Since $\cos\theta = \frac{3}{5}$, the double-angle formula gives
\begin{align*}
\cos 2\theta &= 2\cos^2\theta - 1 \\
&= 2 \cdot \frac{9}{25} - 1 \\
&= -\frac{7}{25}.
\end{align*}""",
        "-\\frac{7}{25}",
        True,
        id="math-align-last-side",
    ),
    Case(
        " From $2y + 3 = 0$ we subtract $3$ and divide by $2$. Hence $y = -\\frac{3}{2}$.",
        "-3/2",
        True,
        id="math-rhs-of-variable",
    ),
    Case(
        "Setting $x = 0$ in the functional equation, we get $f(0) = -1$.",
        "-1",
        True,
        id="math-rhs-of-function-value",
    ),
    Case(
        "By the Pythagorean theorem, $AB = \\sqrt{6^2 + 8^2} = \\sqrt{100} = 10$.",
        "10",
        True,
        id="math-chain-last-side",
    ),
    Case(
        "By the Pythagorean theorem, $AB = \\sqrt{6^2 + 8^2} = \\sqrt{100} = 10$.",
        "100",
        False,
        id="math-chain-last-side-wrong-gold",
    ),
    Case(
        "The height to the base is $3\\sqrt{2}$, so the area is $\\frac{1}{2} \\cdot 4 \\cdot 3\\sqrt{2} = 6\\sqrt{2}$.",
        "6\\sqrt2",
        True,
        id="math-chain-ends-in-surd",
    ),
    Case(
        "The slope at $x = 1$ is $y'(1) = 2 + 3 = 5$ and the point is $(1, 3)$. "
        "So the tangent line is $y = 5x - 2$.",
        "y = 5x - 2",
        True,
        id="math-line-equation-kept",
    ),
    Case(
        "The line through $(1, 5)$ and $(3, 1)$ has slope $-2$, so its equation is $y = -2x + 7$.",
        "2x + y - 7 = 0",
        True,
        id="math-line-equation-other-form",
    ),
    Case(
        "Completing the square in $x^2 - 4x + y^2 + 6y = 3$, the equation of the circle is "
        "$(x - 2)^2 + (y + 3)^2 = 16$.",
        "(x-2)^2+(y+3)^2=16",
        True,
        id="math-circle-equation-kept",
    ),
    Case(
        "Completing the square in $x^2 - 4x + y^2 + 6y = 3$, the equation of the circle is "
        "$(x - 2)^2 + (y + 3)^2 = 16$.",
        "(x-2)^2+(y+3)^2=4",
        False,
        id="math-circle-equation-wrong-radius",
    ),
    Case(
        " The vertex of $y = x^2 - 4x + 1 = (x - 2)^2 - 3$ is $(2, -3)$.",
        "(2,-3)",
        True,
        id="math-point",
    ),
    Case(
        "Expanding, $(2 + i)(1 - 2i) = 2 - 4i + i - 2i^2 = 4 - 3i$.",
        "4-3i",
        True,
        id="math-complex-number",
    ),
    Case(
        "Since $\\theta$ lies in the second quadrant, its cosine is negative: $\\cos\\theta = -\\frac{\\sqrt{5}}{3}$.",
        "-\\frac{\\sqrt5}{3}",
        True,
        id="math-trig-value",
    ),
    Case(
        "Solving $y = 2x + 3$ for $x$ gives $x = \\frac{y - 3}{2}$. So the inverse is $f^{-1}(x) = \\frac{x - 3}{2}$.",
        "\\frac{x-3}{2}",
        True,
        id="math-inverse-function",
    ),
    Case(
        "We need $r(1) = 5$ and $r(2) = 8$ for $r(x) = ax + b$, so $a = 3$ and $b = 2$. "
        "The remainder is therefore $3x + 2$.",
        "3x+2",
        True,
        id="math-polynomial",
    ),
    Case(
        "The product $(x + 2)(x - 5)$ is positive outside the roots. In interval notation, the solution set is "
        "$(-\\infty, -2) \\cup (5, \\infty)$.",
        "(-\\infty,-2)\\cup(5,\\infty)",
        True,
        id="math-union-of-intervals",
    ),
    Case(
        "The radicand must be non-negative and the denominator non-zero, so the domain is $[0, 1]$.",
        "[0,1)",
        False,
        id="math-interval-wrong-end",
    ),
    Case(
        "Using $A = \\pi r^2$ with $r = 10.195$, the area is approximately $326.53$ square meters.",
        "326.5",
        False,
        id="math-decimal-not-rounded",
    ),
    Case(
        " There are $\\binom{5}{2} = 10$ ways to choose the pair and $3! = 6$ ways to order the rest, giving "
        "$10 \\cdot 6 = 60$ arrangements.",
        "60",
        True,
        id="math-zero-shot-count",
    ),
    Case(
        "Dividing the two equations, we conclude\n$$\\frac{a}{b} = \\frac{7}{4}$$",
        "7/4",
        True,
        id="math-display-ratio-value",
    ),
    Case(
        "Since $\\mathbf{v} \\cdot \\mathbf{w} = 6$ and $\\|\\mathbf{w}\\|^2 = 5$, the projection of $\\mathbf{v}$ "
        "onto $\\mathbf{w}$ is $\\begin{pmatrix} 6/5 \\\\ 12/5 \\end{pmatrix}$.",
        "\\begin{pmatrix} \\frac{6}{5} \\\\ \\frac{12}{5} \\end{pmatrix}",
        True,
        id="math-vector",
    ),
    Case(
        "Multiplying the two matrices entry by entry, the product is "
        "$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$.",
        "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
        False,
        id="math-matrix-transposed",
    ),
    Case(
        " Multiplying both sides by $4$ gives $x = \\frac{1}{4}$.",
        "1/3",
        False,
        id="math-wrong-fraction",
    ),
    Case(
        "Subtracting $7$ from both sides and dividing by $3$, we find\n\\[ x = 4. \\]",
        "4",
        True,
        id="math-period-inside-display",
    ),
    Case(
        "Substituting back into the first equation, we get \\((x, y) = (2, -1)\\).",
        "(2,-1)",
        True,
        id="math-named-pair",
    ),
    Case(
        "Solving the equation gives $x = 5$.",
        "x \\ge 5",
        False,
        id="math-value-against-relation-gold",
    ),
    Case(
        "Therefore $x = \\frac{1}{",
        "\\frac{1}{2}",
        False,
        id="math-cut-off-inside-fraction",
    ),
    Case(
        "So the area of the hexagon is $6\\sqrt{",
        "6\\sqrt{3}",
        False,
        id="math-cut-off-inside-sqrt",
    ),
    # --- Point 2: the last-number fallback never splits a LaTeX token.
    Case(
        " Multiplying both sides by 3 gives 3x = 1, so x = \\frac13",
        "13",
        False,
        id="token-plain-frac13-not-13",
    ),
    Case(
        " Multiplying both sides by 3 gives 3x = 1, so x = \\frac13",
        "1/3",
        True,
        id="token-plain-frac13-is-a-third",
    ),
    Case(
        "Each side is the square root of the area, so the side length is \\sqrt3",
        "3",
        False,
        id="token-plain-sqrt3-not-3",
    ),
    Case(
        "Multiplying the leading terms, the leading term of the product is 4x^2",
        "2",
        False,
        id="token-plain-power-not-exponent",
    ),
    Case(
        "The sequence increases until the 37th term, so the largest term is a_{37}",
        "37",
        False,
        id="token-plain-subscript-not-index",
    ),
    Case(
        "Diluting a thousandfold, the concentration becomes 10^{-3}",
        "-3",
        False,
        id="token-plain-negative-exponent",
    ),
    Case(
        "Both sine and cosine repeat after one turn, so the period of the function is 2\\pi",
        "2",
        False,
        id="token-plain-2pi-not-2",
    ),
    Case(
        "Therefore the slope of the line is \\frac{7}{2}",
        "2",
        False,
        id="token-plain-frac-denominator",
    ),
    Case(
        "The diagonal of the square with side 5 is 5\\sqrt2",
        "2",
        False,
        id="token-plain-coefficient-sqrt",
    ),
    Case(
        "Taking logarithms and the limit, the limit equals e^{2}",
        "2",
        False,
        id="token-plain-exp",
    ),
    Case(
        "Each of the 10 elements is in or out of a subset, so there are 2^{10} subsets",
        "10",
        False,
        id="token-plain-power-of-two",
    ),
    Case(
        "so $x = \\frac13$.",
        "13",
        False,
        id="token-math-frac13-not-13",
    ),
    Case(
        "Substituting $g$ into $f$, the function simplifies to $f(x) = x^2$.",
        "2",
        False,
        id="token-math-power-not-exponent",
    ),
    Case(
        "Diluting a thousandfold, the concentration becomes $10^{-3}$.",
        "0.001",
        True,
        id="token-math-negative-exponent-value",
    ),
    Case(
        "Both sine and cosine repeat after one turn, so the period is $2\\pi$.",
        "2\\pi",
        True,
        id="token-math-2pi",
    ),
    Case(
        "Each side is the square root of the area, so the side length is $\\sqrt3$.",
        "\\sqrt{3}",
        True,
        id="token-math-sqrt3",
    ),
    Case(
        "Each digit has ten choices, so there are $1{,}000$ such codes.",
        "1000",
        True,
        id="token-math-thousands-braces",
    ),
    Case(
        "Each of the $10$ elements is in or out, so there are $2^{10}$ subsets.",
        "1024",
        True,
        id="token-math-power-of-two-value",
    ),
    Case(
        "Multiplying the leading terms, the leading term of the product is $4x^2$.",
        "4x^2",
        True,
        id="token-math-monomial",
    ),
    # --- Point 3: a stated-answer phrase ends at its value.
    Case(
        "Hence the probability is one half.\nThe final answer is $\\dfrac{1}{2}$, I hope.",
        "1/2",
        True,
        id="stated-final-answer-then-hope",
    ),
    Case(
        "The divisors of $36$ are $1, 2, 3, 4, 6, 9, 12, 18, 36$. So the answer is 9 (nine).",
        "9",
        True,
        id="stated-value-then-word-in-parentheses",
    ),
    Case(
        "Three of the four equal parts are shaded. The answer is $\\frac{3}{4}$, since $3$ of the $4$ parts are "
        "shaded.",
        "3/4",
        True,
        id="stated-value-then-math-reason",
    ),
    Case(
        "The answer is 12 because each of the 3 rows has 4 seats.",
        "12",
        True,
        id="stated-value-then-because",
    ),
    Case(
        "We tried $k = 1, \\dots, 6$ and none works.\nFinal answer: the smallest such $k$ is $k = 7$.",
        "7",
        True,
        id="stated-final-answer-named-value",
    ),
    Case(
        "The final answer is $x = -4$, which satisfies the original equation.",
        "-4",
        True,
        id="stated-value-then-check-clause",
    ),
    Case(
        "The answer is 40 (forty) minutes.",
        "40",
        True,
        id="stated-value-word-then-unit",
    ),
    Case(
        "The answer is $18$, as computed above.",
        "18",
        True,
        id="stated-math-value-then-comment",
    ),
    Case(
        "Final Answer: The final answer is $\\frac{\\sqrt{3}}{2}$, which is about $0.866$.",
        "\\frac{\\sqrt3}{2}",
        True,
        id="stated-exact-then-approximation",
    ),
    Case(
        "She has 3 + 4 = 7 apples left. The final answer is 7 apples, I believe.",
        "7",
        True,
        id="stated-value-unit-then-hedge",
    ),
    Case(
        "Checking $n = 34$ shows the inequality fails, while $n = 33$ satisfies it.\n"
        "Final Answer: The largest $n$ is 33.",
        "34",
        False,
        id="stated-largest-n-wrong",
    ),
    Case(
        "The answer is 14 (since $20 - 6 = 14$).",
        "6",
        False,
        id="stated-value-not-the-parenthesised-operand",
    ),
    # --- Point 4: golds written by other harnesses are unwrapped.
    Case(
        "Dividing both sides by $3$, we obtain $x = \\frac{1}{3}$.",
        "$1/3$",
        True,
        id="gold-dollars",
    ),
    Case(
        "Checking each option, only (C) satisfies both conditions. Therefore, the answer is (C).",
        "\\(\\boxed{C}\\)",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="gold-paren-boxed-letter",
    ),
    Case(
        "Checking each option, only (C) satisfies both conditions. Therefore, the answer is (C).",
        "\\(\\boxed{C}\\)",
        True,
        id="gold-paren-boxed-letter-auto",
    ),
    Case(
        "Checking each option, only (B) satisfies both conditions. Therefore, the answer is (B).",
        "\\(\\boxed{C}\\)",
        False,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="gold-paren-boxed-letter-wrong",
    ),
    Case(
        "Subtracting $2$ and dividing by $3$, solving the linear equation gives $x = 5$.",
        "$x = 5$.",
        True,
        id="gold-dollars-named-value-period",
    ),
    Case(
        "Subtracting $2$ and dividing by $3$, solving the linear equation gives $x = -5$.",
        "$x = 5$.",
        False,
        id="gold-dollars-named-value-wrong-sign",
    ),
    Case(
        "The two conditions meet only when $k = 12$.",
        "\\fbox{12}",
        True,
        id="gold-fbox",
    ),
    Case(
        "The radicand must be non-negative and the denominator positive, so the domain is $[0, 1)$.",
        "$$[0,1)$$",
        True,
        id="gold-double-dollars",
    ),
    Case(
        "In the equilateral triangle the height is $\\sin 60^\\circ = \\frac{\\sqrt{3}}{2}$.",
        "\\[\\frac{\\sqrt3}{2}\\]",
        True,
        id="gold-bracket-display",
    ),
    Case(
        "She sells $16 - 3 - 4 = 9$ eggs at $\\$2$ each, so she makes $\\$18$ every day.",
        "$\\boxed{18}$",
        True,
        answer_type="number",
        id="gold-dollars-boxed-number",
    ),
    Case(
        "The answer is 5.",
        "\\(x = 5\\)",
        True,
        id="gold-paren-named-value",
    ),
    Case(
        "Dividing by $2$, which is positive, keeps the direction: $x \\ge 5$.",
        "\\boxed{x \\geq 5}",
        True,
        id="gold-boxed-relation",
    ),
    # --- Point 5: several answers, boxed or in math mode, for questions that ask for all of them.
    Case(
        "Factoring gives $(x - 1)(x - 2) = 0$, so the solutions are $\\boxed{1}, \\boxed{2}$.",
        "1, 2",
        True,
        question=Q_ROOTS,
        id="form-several-boxes-vs-list",
    ),
    Case(
        "Factoring gives $(x - 1)(x - 2) = 0$, so the solutions are $\\boxed{1}, \\boxed{2}$.",
        "\\{1,2\\}",
        True,
        question=Q_ROOTS,
        id="form-several-boxes-vs-set",
    ),
    Case(
        "Factoring gives $(x - 1)(x - 2) = 0$, so the solutions are $\\boxed{1}\\boxed{2}$",
        "1,2",
        True,
        question=Q_ROOTS,
        id="form-adjacent-boxes-vs-list",
    ),
    Case(
        "Factoring gives $(x - 1)(x - 2) = 0$, so $x = 1, 2$.",
        "1, 2",
        True,
        question=Q_ROOTS,
        id="form-several-in-one-math-span",
    ),
    Case(
        "Factoring gives $(x - 1)(x - 2) = 0$, so $x = 1$ or $x = 2$.",
        "1, 2",
        True,
        question=Q_ROOTS,
        id="form-several-in-two-math-spans",
    ),
    Case(
        "Factoring gives $(x - 1)(x - 2) = 0$. The solution set is $\\{1, 2\\}$.",
        "1, 2",
        True,
        question=Q_ROOTS,
        id="form-set-vs-list",
    ),
    Case(
        "Factoring gives $(x - 1)(x - 2) = 0$, and since $x > 1$ we keep $x = 2$.",
        "1, 2",
        False,
        question=Q_ROOTS,
        id="form-one-of-two-solutions",
    ),
    # --- Point 5: named values against a tuple or a list.
    Case(
        "Trying small primes, $q = 2$ gives $p^2 = 25$. Hence $p = 5, q = 2$.",
        "(5,2)",
        True,
        question="Find the ordered pair $(p, q)$ of primes with $p^2 - 2q^2 = 17$.",
        id="form-named-values-vs-pair",
    ),
    Case(
        "Trying small primes, $q = 2$ gives $p^2 = 25$. So $p = 5$ and $q = 2$.",
        "(5,2)",
        True,
        question="Find the ordered pair $(p, q)$ of primes with $p^2 - 2q^2 = 17$.",
        id="form-named-values-in-two-spans-vs-pair",
    ),
    Case(
        "Trying small primes, we find $p = 2, q = 5$.",
        "(5,2)",
        False,
        question="Find the ordered pair $(p, q)$ of primes with $p^2 - 2q^2 = 17$.",
        id="form-named-values-swapped",
    ),
    Case(
        "Since $(p - q)(p + q) = 5$, we need $p - q = 1$ and $p + q = 5$. The only solution is $(p, q) = (3, 2)$.",
        "(3,2)",
        True,
        question="Find all pairs of primes $(p, q)$ with $p^2 - q^2 = 5$.",
        id="form-named-pair-vs-pair",
    ),
    Case(
        "Since $(q - p)(q + p) = 5$, we need $q - p = 1$ and $q + p = 5$. The only solution is $(p, q) = (2, 3)$.",
        "(3,2)",
        False,
        question="Find all pairs of primes $(p, q)$ with $p^2 - q^2 = 5$.",
        id="form-named-pair-swapped",
    ),
    Case(
        "Subtracting the two equations gives $CD - AB = 1$, and adding them gives $AB + CD = 9$. "
        "Solving, $AB = 4, CD = 5$.",
        "4, 5",
        True,
        question="In trapezoid $ABCD$ with $AB + CD = 9$ and $CD - AB = 1$, find $AB$ and $CD$.",
        id="form-named-lengths-vs-list",
    ),
    # --- Point 5: lists of solution tuples, in any order.
    Case(
        "Checking the squares below $10$, the only solutions are $(3, 1), (1, 3)$.",
        "(1,3),(3,1)",
        True,
        question=Q_PAIRS,
        id="form-tuples-any-order",
    ),
    Case(
        "Checking the squares below $10$, the solution set is $\\{(1, 3), (3, 1)\\}$.",
        "(3,1), (1,3)",
        True,
        question=Q_PAIRS,
        id="form-set-of-tuples-vs-list",
    ),
    Case(
        "Checking the squares below $10$ with $x \\le y$, the only solution is $(1, 3)$.",
        "(1,3),(3,1)",
        False,
        question=Q_PAIRS,
        id="form-tuples-one-missing",
    ),
    # --- Point 5: units in \text{}, \textnormal{}, \mbox{}.
    Case(
        "All four sides are equal, so each side measures $5\\textnormal{ cm}$.",
        "5",
        True,
        id="form-unit-textnormal",
    ),
    Case(
        "Multiplying the length by the width, the area is $12\\mbox{ m}^2$.",
        "12",
        True,
        id="form-unit-mbox-squared",
    ),
    Case(
        "At $4$ pages per minute, $180$ pages take $45\\text{ minutes}$.",
        "45",
        True,
        id="form-unit-text",
    ),
    Case(
        "At $4$ pages per minute, $180$ pages take $45\\text{ minutes}$.",
        "40",
        False,
        id="form-unit-text-wrong-value",
    ),
    # --- Point 5: relations written another way.
    Case(
        "Dividing by $2$ keeps the direction. Therefore $x \\geq 5$.",
        "x >= 5",
        True,
        id="form-geq-vs-ascii",
    ),
    Case(
        "Dividing by $2$ keeps the direction, which means $5 \\leq x$.",
        "x \\ge 5",
        True,
        id="form-geq-from-the-other-side",
    ),
    Case(
        "Subtracting $2$ from both sides gives $-x > -1$.",
        "x < 1",
        True,
        question="Solve $2 - x > 1$.",
        id="form-negated-inequality",
    ),
    Case(
        "The expression is defined unless the denominator vanishes, so the only restriction is $x \\neq 3$.",
        "x != 3",
        True,
        id="form-neq-vs-ascii",
    ),
    Case(
        "Dividing by $2$ keeps the direction. Therefore $x > 5$.",
        "x \\ge 5",
        False,
        id="form-strict-vs-non-strict",
    ),
    Case(
        "Dividing by $-2$ flips the direction. Therefore $x \\leq 5$.",
        "x \\ge 5",
        False,
        id="form-flipped-inequality",
    ),
    Case(
        "Dividing by $2$ keeps the direction. Therefore $x \\geq 5$.",
        "[5, \\infty)",
        True,
        id="form-inequality-vs-ray",
    ),
    # --- Point 5: an inequality chain against the interval or union it describes.
    Case(
        "Taking reciprocals reverses both inequalities, so $1 \\le |z| \\le \\frac{3}{2}$.",
        "[-3/2,-1] \\cup [1,3/2]",
        True,
        question="Find all real $z$ with $\\frac{2}{3} \\le \\frac{1}{|z|} \\le 1$. Express your answer in "
        "interval notation.",
        id="form-absolute-chain-vs-union",
    ),
    Case(
        "Taking reciprocals reverses both inequalities, so $1 < |z| \\le \\frac{3}{2}$.",
        "[-3/2,-1] \\cup [1,3/2]",
        False,
        question="Find all real $z$ with $\\frac{2}{3} \\le \\frac{1}{|z|} \\le 1$. Express your answer in "
        "interval notation.",
        id="form-absolute-chain-wrong-end",
    ),
    Case(
        " Since $2^x$ takes every value in $(0, \\infty)$, the denominator $1 + 2^x$ takes every value in "
        "$(1, \\infty)$. Hence $0 < f(x) < 1$.",
        "(0,1)",
        True,
        None,
        question="Find the range of $f(x) = \\frac{1}{1 + 2^x}$.",
        id="form-range-chain-vs-open-interval",
    ),
    Case(
        "Subtracting $1$ gives $-4 < 2x \\le 6$, and dividing by $2$ gives $-2 < x \\le 3$.",
        "(-2,3]",
        True,
        question="Solve $-3 < 2x + 1 \\le 7$.",
        id="form-chain-vs-half-open-interval",
    ),
    Case(
        "Subtracting $1$ gives $-4 \\le 2x \\le 6$, and dividing by $2$ gives $-2 \\le x \\le 3$.",
        "(-2,3]",
        False,
        question="Solve $-3 < 2x + 1 \\le 7$.",
        id="form-chain-wrong-end",
    ),
    # --- Point 5: ratios, and a named ratio against its value.
    Case(
        "The triangle $AMN$ takes $\\frac{25}{32}$ of the area, so $S_{MBCN}:S = 7:32$.",
        "7:32",
        True,
        id="form-named-ratio-vs-ratio",
    ),
    Case(
        "The triangle $AMN$ takes $\\frac{25}{32}$ of the area, so the ratio is $7:32$.",
        "S_{MBCN}:S = 7:32",
        True,
        id="form-ratio-vs-named-ratio-gold",
    ),
    Case(
        "The triangle $AMN$ takes $\\frac{25}{32}$ of the area, so the ratio is $32:7$.",
        "7:32",
        False,
        id="form-ratio-reversed",
    ),
    Case(
        "From the similar triangles $NOD$ and $BOA$, we conclude $\\frac{NO}{BO} = \\frac{1}{\\sqrt6}$.",
        "\\frac{1}{\\sqrt6}",
        True,
        id="form-named-quotient-vs-value",
    ),
    Case(
        "From the similar triangles $NOD$ and $BOA$, we conclude $\\frac{NO}{BO} = \\frac{1}{\\sqrt6}$.",
        "\\frac{\\sqrt{6}}{6}",
        True,
        id="form-named-quotient-vs-rationalised",
    ),
    # --- Point 6: genuinely ambiguous forms are uncertain, whichever way they go.
    Case(
        "Checking both cases, the solution set is $\\{1, 3\\}$.",
        "(1,3)",
        None,
        False,
        id="ambiguous-set-vs-pair-or-interval",
    ),
    Case(
        "Both cases check out, so the values are $(1, 3)$.",
        "\\{1,3\\}",
        None,
        False,
        id="ambiguous-pair-or-interval-vs-set",
    ),
    Case(
        "Both cases check out, so the two numbers are $1, 3$.",
        "(1, 3)",
        None,
        False,
        id="ambiguous-list-vs-pair-or-interval",
    ),
    # --- Point 7: JSON replies state their answer in the "answer" field.
    Case(
        '{"reasoning": "She buys 3 boxes of 12 eggs, which is 36 eggs, and uses 30 of them.", "answer": "6"}',
        "6",
        True,
        answer_type="number",
        id="json-bare",
    ),
    Case(
        _lines(
            "The final answer is:",
            "```json",
            '{"reasoning": "She buys 3 boxes of 12 eggs, which is 36 eggs, and uses 30 of them, so the answer '
            'is 6.", "answer": "6"}',
            "```",
        ),
        "6",
        True,
        answer_type="number",
        id="json-fenced-after-final-answer-is",
    ),
    Case(
        _lines(
            "The final answer is:",
            "```json",
            '{"reasoning": "She buys 3 boxes of 12 eggs, which is 36 eggs, and uses 31 of them.", "answer": "5"}',
            "```",
        ),
        "6",
        False,
        answer_type="number",
        id="json-fenced-wrong-answer",
    ),
    Case(
        '{"answer": "36", "reasoning": "Each row has 12 seats and there are 3 rows: 12 * 3 = 36. '
        'Check: 36 / 3 = 12."}',
        "36",
        True,
        answer_type="number",
        id="json-answer-before-reasoning",
    ),
    Case(
        '{"answer": "48", "reasoning": "Each row has 12 seats and there are 4 rows: 12 * 4 = 48."}',
        "36",
        False,
        answer_type="number",
        id="json-answer-wrong",
    ),
    Case(
        "```json\n"
        '{"reasoning": "Three of the four equal parts are shaded.", "answer": "\\\\frac{3}{4}"}\n'
        "```",
        "3/4",
        True,
        id="json-latex-escaped-backslash",
    ),
    Case(
        '{"reasoning": "6 times 7 is 42.", "answer": 42}',
        "42",
        True,
        answer_type="number",
        id="json-numeric-answer",
    ),
    Case(
        _lines(
            "The final answer is:",
            "```json",
            '{"reasoning": "Subtract 1 and divide by 2.", "answer": "$x = \\\\frac{5}{2}$"}',
            "```",
        ),
        "5/2",
        True,
        id="json-math-mode-named-value",
    ),
    Case(
        '{"solution": "3 packs of 2 pencils each gives 6 pencils, so the answer is 6."}',
        "6",
        True,
        answer_type="number",
        id="json-answer-is-inside-a-string",
    ),
    Case(
        'The final answer is: {"reasoning": "The two-digit primes ending in 3 are 13, 23, 43, 53, 73, 83.", '
        '"answer": "6"}',
        "6",
        True,
        answer_type="number",
        id="json-same-line-after-final-answer-is",
    ),
    Case(
        '{"reasoning": "At first I thought the answer is 5. Rechecking the subtraction, 36 - 30 = 6.", '
        '"answer": "6"}',
        "6",
        True,
        answer_type="number",
        id="json-answer-field-beats-reasoning",
    ),
    Case(
        '{"reasoning": "Each ticket costs 4.50 dollars and she buys 4.", "answer": "$18"}',
        "18",
        True,
        answer_type="number",
        id="json-currency-answer",
    ),
    Case(
        _lines("The final answer is:", "```", "42", "```"),
        "42",
        True,
        answer_type="number",
        id="json-plain-fence-after-final-answer-is",
    ),
    # --- Point 9: an enumeration of distinct lines is no loop; repeated content is.
    Case(GCD_ENUMERATION, "12", True, id="enum-gcd-pairs"),
    Case(SQUARES_ENUMERATION, "20", True, id="enum-squares-mod-5"),
    Case(SAVINGS_ENUMERATION, "1050", True, answer_type="number", id="enum-weekly-savings"),
    Case(SAME_SENTENCE_LOOP, "25", False, id="loop-same-sentence"),
    Case(TWO_SENTENCE_LOOP, "12", False, id="loop-two-sentences"),
    # --- What must not change: a box or a stated answer beats a later math-mode value.
    Case(
        "So the number of apples is $\\boxed{5}$.\n\nNote that with one more bag of two she would have $7$.",
        "5",
        True,
        id="keep-box-beats-later-math",
    ),
    Case(
        "So the number of apples is $\\boxed{5}$.\n\nNote that with one more bag of two she would have $7$.",
        "7",
        False,
        id="keep-box-beats-later-math-wrong-gold",
    ),
    Case(
        "The answer is 5.\n\n(As an aside, if the price doubled we would get $x = 3$ instead.)",
        "5",
        True,
        id="keep-answer-is-beats-later-math",
    ),
    Case(
        "The answer is 5.\n\n(As an aside, if the price doubled we would get $x = 3$ instead.)",
        "3",
        False,
        id="keep-answer-is-beats-later-math-wrong-gold",
    ),
    Case(
        "Thus $x = \\boxed{4}$. Plugging back in, $2(4) + 1 = 9$, which checks out.",
        "4",
        True,
        id="keep-box-beats-check",
    ),
    Case(
        "Factoring, $x = \\boxed{2}$ or $x = \\boxed{-3}$. (The discriminant is $25$.)",
        "2, -3",
        True,
        question="Find all solutions of $x^2 + x - 6 = 0$.",
        id="keep-several-boxes-beat-aside",
    ),
    Case(
        "The answer is 18.\nCheck: $9 \\times 2 = 18$ and $16 - 7 = 9$.",
        "18",
        True,
        answer_type="number",
        id="keep-answer-is-beats-check",
    ),
    Case(
        "She makes 9 * 2 = 18 dollars a day.\n#### 18\n\nThe extra $\\$2$ was a tip.",
        "18",
        True,
        answer_type="number",
        id="keep-hashes-beat-later-math",
    ),
    Case(
        "Final Answer: The final answer is $12$. I hope it is correct.\n\nAlternatively, $3 \\cdot 5 = 15$.",
        "12",
        True,
        id="keep-final-answer-beats-later-math",
    ),
    # --- GSM8K-style number answers, with units and currency in math mode or plain text.
    Case(
        "She sells $16 - 3 - 4 = 9$ eggs, so Janet makes $9 \\times 2 = \\$18$ every day at the farmers' market.",
        "18",
        True,
        answer_type="number",
        id="gsm8k-currency-chain",
    ),
    Case(
        "At $4$ pages per minute, reading $180$ pages takes her $45$ minutes.",
        "45",
        True,
        answer_type="number",
        id="gsm8k-math-then-unit-word",
    ),
    Case(
        "Six tickets at $\\$4.50$ each cost $\\$4.50 \\times 6 = \\$27$.",
        "27",
        True,
        answer_type="number",
        id="gsm8k-currency-product",
    ),
    Case(
        "She started with $\\$30$ and spent $\\$18$, so she has $\\$12$ left.",
        "18",
        False,
        answer_type="number",
        id="gsm8k-currency-wrong-quantity",
    ),
    Case(
        "The drive takes $2$ hours and the walk $1\\frac{1}{2}$ hours, so he needs $3\\frac{1}{2}$ hours in total.",
        "3.5",
        True,
        answer_type="number",
        id="gsm8k-mixed-number",
    ),
    Case(
        "The bill is split evenly, so each person pays $\\frac{120}{8} = 15$ dollars.",
        "15",
        True,
        answer_type="number",
        id="gsm8k-fraction-chain-then-unit",
    ),
    Case(
        "They walked $400$ meters three times, so altogether they walked $1{,}200$ meters.",
        "1200",
        True,
        answer_type="number",
        id="gsm8k-thousands-braces",
    ),
    Case(
        "She spent $\\$70$ of her $\\$200$, which is $35\\%$ of her savings.",
        "35",
        True,
        answer_type="number",
        id="gsm8k-percent-is-a-unit",
    ),
    Case(
        "She spent $\\$70$ of her $\\$200$, which is $0.35$ of her savings.",
        "35",
        False,
        answer_type="number",
        id="gsm8k-fraction-not-percent",
    ),
    Case(
        "He profits $\\$1{,}250$ per month.\n\n**Answer:** $\\$1{,}250$",
        "1250",
        True,
        answer_type="number",
        id="gsm8k-markdown-answer-currency",
    ),
    Case(
        "The trip is $150$ km at $60$ km per hour, which takes $2.5$ hours, or $150$ minutes.",
        "150",
        True,
        answer_type="number",
        id="gsm8k-unit-conversion-last",
    ),
    Case(
        "The trip is $150$ km at $60$ km per hour, which takes $2.5$ hours.",
        "150",
        False,
        answer_type="number",
        id="gsm8k-wrong-unit",
    ),
    Case(
        "Twelve cookies cost $\\$9$, so each cookie costs $\\$0.75$.",
        "0.75",
        True,
        answer_type="number",
        id="gsm8k-currency-decimal",
    ),
    Case(
        "Carla downloads $200 \\times 0.4 = 80$ GB before the restart.",
        "160",
        False,
        answer_type="number",
        id="gsm8k-intermediate-value",
    ),
    Case(
        "She sells 9 eggs at $2 each, so she makes $18 every day.",
        "18",
        True,
        answer_type="number",
        id="gsm8k-plain-dollar-signs-pair-up",
    ),
    Case(
        "He paid $5 for the book and $3 for the pen, so he spent $8 in total.",
        "8",
        True,
        answer_type="number",
        id="gsm8k-plain-dollar-signs-odd-count",
    ),
    Case(
        "He paid $5 for the book and $3 for the pen, so he spent $8 in total.",
        "5",
        False,
        answer_type="number",
        id="gsm8k-plain-dollar-signs-not-first",
    ),
    # --- Multiple choice: a letter in math mode or \text{(B)}.
    Case(
        "Since $\\sin 30^\\circ = \\frac{1}{2}$, the correct choice is $\\text{(B)}$.",
        "B",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_HALF,
        id="choice-text-letter",
    ),
    Case(
        "Since $\\sin 30^\\circ = \\frac{1}{2}$, the correct choice is $\\text{(B)}$.",
        "C",
        False,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_HALF,
        id="choice-text-letter-wrong",
    ),
    Case(
        "Options A to D all give an even sum, so the only consistent option is $E$.",
        "\\text{E}",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-bare-letter-in-math",
    ),
    Case(
        "Only $6$ leaves remainder $0$ when divided by both $2$ and $3$.\n\n**Answer:** $\\textbf{(D)}$",
        "D",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-markdown-textbf",
    ),
    Case(
        "Substituting each option, $5$ is the only value that satisfies both equations. Hence $(C)$ is the one "
        "that works.",
        "C",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-parenthesised-letter-in-math",
    ),
    Case(
        "The smallest option that is at least $3$ is $3$ itself. Therefore the answer is $\\mathrm{(A)}$.",
        "A",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-mathrm-letter",
    ),
    Case(
        "Solving $2x = 1$, we get $x = \\frac{1}{2}$.",
        "B",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_HALF,
        id="choice-value-in-math-matches-option",
    ),
    Case(
        "Solving $x - 1 = 1$, we get $x = 2$.",
        "B",
        False,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_HALF,
        id="choice-value-in-math-other-option",
    ),
    Case(
        "The answer is $\\boxed{\\text{(B)}}$. Note that $(C)$ would need $x < 0$.",
        "B",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-box-beats-later-letter",
    ),
    Case(
        "由 $x^2 = 25$ 且 $x > 0$ 得 $x = 5$，故选 $\\text{C}$。",
        "C",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-chinese-text-letter",
    ),
    Case(
        '{"reasoning": "Only 5 satisfies both conditions, and 5 is option C.", "answer": "C"}',
        "C",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-json-answer",
    ),
    Case(
        "Each of the 6 rows has 7 seats, so there are 42 seats. The answer is $\\text{(B)}\\ 42$.",
        "B",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_SEATS,
        id="choice-text-letter-then-value",
    ),
    Case(
        "**Correct choice: (B)** $\\frac{1}{2}$",
        "B",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_HALF,
        id="choice-markdown-bold-letter",
    ),
    Case(
        "Only $7$ is prime and greater than $5$, so I pick $\\textbf{(E)}\\ 7$.",
        "E",
        True,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-textbf-letter-then-value",
    ),
    Case(
        "Option $(A)$ fails because $3 < 4$, and so does $(B)$. So the answer is $\\text{(C)}$.",
        "B",
        False,
        answer_type="choice",
        extractor="choice",
        choices=OPTIONS_FIVE,
        id="choice-eliminated-letter-not-the-answer",
    ),
    # --- Text answers.
    Case(
        "One of $n$ and $n + 1$ is even, so $n^2 + n = n(n + 1)$ is always $\\textbf{even}$.",
        "even",
        True,
        id="text-textbf",
    ),
    Case(
        "Every factor is odd, so the product of the two odd numbers is $\\text{odd}$.",
        "\\text{odd}",
        True,
        id="text-text",
    ),
    Case(
        "Since $f(-x) = -f(x)$ for every $x$, the function is $\\textbf{odd}$.",
        "\\text{Odd}",
        True,
        id="text-short-word-case",
    ),
    Case(
        "Therefore $f(-x) = f(x)$ for every $x$, so $f$ is $\\mathrm{even}$.",
        "Even",
        True,
        answer_type="text",
        id="text-mathrm-case",
    ),
    Case(
        "Therefore $f(-x) = -f(x)$ for every $x$, so $f$ is $\\mathrm{odd}$.",
        "even",
        False,
        answer_type="text",
        id="text-mathrm-wrong",
    ),
    Case(
        "Neither $f(-x) = f(x)$ nor $f(-x) = -f(x)$ holds. The answer is neither.",
        "\\text{neither}",
        True,
        id="text-answer-is-word",
    ),
    Case(
        "Since $100 = 7 \\cdot 14 + 2$, the meeting falls two days after Monday, on $\\text{Wednesday}$.",
        "Wednesday",
        True,
        id="text-day-in-math",
    ),
    Case(
        "Since $101 = 7 \\cdot 14 + 3$, the meeting falls three days after Monday, on $\\text{Thursday}$.",
        "Wednesday",
        False,
        id="text-day-in-math-wrong",
    ),
    Case(
        "The discriminant $b^2 - 4ac = 1$ is a perfect square.\n\n**Answer:** $\\text{Yes}$",
        "yes",
        True,
        answer_type="text",
        id="text-markdown-yes",
    ),
    # --- Chat and instruct endings with markdown.
    Case(
        "## Step 2: Divide\nThree of the four parts are shaded.\n\n**Answer:** $\\frac{3}{4}$",
        "3/4",
        True,
        id="chat-bold-answer-label",
    ),
    Case(
        "## Step 2: Divide\nThree of the four parts are shaded.\n\n**Answer:** $\\frac{4}{3}$",
        "3/4",
        False,
        id="chat-bold-answer-label-wrong",
    ),
    Case(
        "Three of the four parts are shaded.\n\n### Final Answer\n$$\\frac{3}{4}$$",
        "3/4",
        True,
        id="chat-final-answer-heading",
    ),
    Case(
        "There are $5$ favourable outcomes among $12$.\n\n**Final answer:** The probability is $\\dfrac{5}{12}$.",
        "5/12",
        True,
        id="chat-bold-final-answer-sentence",
    ),
    Case(
        "## Step 3: Conclude\nThe minimum of $(x - \\frac{3}{2})^2 + \\frac{9}{4}$ is reached at $x = \\frac{3}{2}$. "
        "The minimum value is $\\frac{9}{4}$.",
        "9/4",
        True,
        id="chat-step-heading-then-sentence",
    ),
    Case(
        "- Subtract $5$ from both sides: $3x = -7$\n- Divide by $3$.\n\n- **Result:** \\( x = -\\frac{7}{3} \\)",
        "-\\frac{7}{3}",
        True,
        id="chat-bullet-result",
    ),
    Case(
        "So the sum is:\n\n$$\n\\sum_{k=1}^{10} k^2 = \\frac{10 \\cdot 11 \\cdot 21}{6} = 385\n$$",
        "385",
        True,
        id="chat-display-sum",
    ),
    Case(
        "Thus, the solution set is:\n\\[\nx \\in (-\\infty, -2] \\cup [3, \\infty).\n\\]",
        "(-\\infty,-2]\\cup[3,\\infty)",
        True,
        id="chat-display-membership",
    ),
    Case(
        "The hexagon is six equilateral triangles of side $2\\sqrt{2}$, each of area $2\\sqrt{3}$, so:\n\n"
        "> **Answer:** $12\\sqrt{3}$ square units",
        "12\\sqrt3",
        True,
        id="chat-blockquote-answer-with-unit",
    ),
    Case(
        "Plugging $x = 2$ into $x^2 + kx + 8 = 0$ gives $12 + 2k = 0$. Therefore, the value of $k$ is **$-6$**.",
        "-6",
        True,
        id="chat-bold-math-value",
    ),
    Case(
        "Plugging $x = 2$ into $x^2 + kx + 8 = 0$ gives $12 + 2k = 0$. Therefore, the value of $k$ is **$-6$**.",
        "6",
        False,
        id="chat-bold-math-value-sign",
    ),
    Case(
        "By the remainder theorem we need $r(1) = 5$ and $r(2) = 8$.\n\n**Answer:** The remainder is $x + 2$.",
        "3x+2",
        False,
        id="chat-answer-label-wrong-expression",
    ),
    # --- Chinese endings.
    Case(
        "抛两枚硬币共有 $4$ 种等可能结果，恰有一枚正面朝上的有 $2$ 种。所以答案是 $\\frac{1}{2}$。",
        "1/2",
        True,
        id="zh-answer-is",
    ),
    Case(
        "移项得 $3x = -6$，解得 $x = -2$。",
        "-2",
        True,
        id="zh-solve-named-value",
    ),
    Case(
        "由均值不等式，$x + \\frac{2}{x} \\ge 2\\sqrt{2}$，当 $x = \\sqrt{2}$ 时取等号。所以最小值为 $2\\sqrt{2}$。",
        "2\\sqrt{2}",
        True,
        id="zh-minimum-surd",
    ),
    Case(
        "由均值不等式，$x + \\frac{2}{x} \\ge 2\\sqrt{2}$，当 $x = \\sqrt{2}$ 时取等号。所以最小值为 $2$。",
        "2\\sqrt{2}",
        False,
        id="zh-minimum-wrong",
    ),
    Case(
        "从 $5$ 个球中任取 $2$ 个共有 $10$ 种取法，其中符合条件的有 $3$ 种，故所求的概率为 $\\dfrac{3}{10}$。",
        "\\frac{3}{10}",
        True,
        id="zh-probability",
    ),
    Case(
        "从 $5$ 个球中任取 $2$ 个共有 $10$ 种取法，其中符合条件的有 $6$ 种，故所求的概率为 $\\dfrac{3}{5}$。",
        "\\frac{3}{10}",
        False,
        id="zh-probability-wrong",
    ),
    Case(
        "由 $f(1) \\ge 0$ 且 $f(3) < 0$ 可得 $1 \\le a < 3$。综上，$a$ 的取值范围是 $[1, 3)$。",
        "[1,3)",
        True,
        id="zh-range-interval",
    ),
    Case(
        "公差 $d = 3$，首项 $a_1 = 2$，因此数列的第 $10$ 项为 $a_{10} = 2 + 9 \\times 3 = 29$。",
        "29",
        True,
        id="zh-sequence-term-chain",
    ),
    Case(
        "小明每分钟走 $60$ 米，走了 $20$ 分钟。\n答：小明一共走了 $1{,}200$ 米。",
        "1200",
        True,
        answer_type="number",
        id="zh-elementary-answer-line",
    ),
    Case(
        "两边同时减去 $1$ 得 $2x \\ge 6$。所以答案为：$x \\geq 3$。",
        "x \\ge 3",
        True,
        id="zh-answer-relation",
    ),
    Case(
        "由余弦定理得 $c = 4$，所以 $\\triangle ABC$ 的面积为 $6\\sqrt{3}$。",
        "6\\sqrt{3}",
        True,
        id="zh-area-surd",
    ),
]


def test_the_table_covers_the_issue() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "every row needs its own id"
    assert all(ids)
    assert len(CASES) >= 170
    negatives = sum(case.correct is False for case in CASES)
    assert 0.2 <= negatives / len(CASES) <= 0.35  # about a quarter must be graded wrong


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_prose_answer(case: Case) -> None:
    several = asks_for_several(case.question)
    choices = list(case.choices) if case.choices is not None else None
    extraction = extract_answer(case.completion, case.extractor, choices, several=several)
    verdict = grade(extraction.answer, case.gold, case.answer_type)
    if case.correct is not None:
        assert verdict.correct == case.correct, (extraction, verdict)
    if case.certain is not None and case.correct is not False:
        assert verdict.certain == case.certain, (extraction, verdict)


# --- Point 5 (and the gold forms of point 4): spellings of one answer, each both ways round.

# (a, b, answer type, certain): a and b are the same answer. certain None: not checked.
EQUIVALENT: list[tuple[str, str, str, bool | None]] = [
    # Several boxes for questions that ask for all solutions.
    ("\\boxed{1}, \\boxed{2}", "1, 2", "expression", True),
    ("\\boxed{1}\\boxed{2}", "\\{1,2\\}", "expression", True),
    ("\\boxed{1}, \\boxed{2}", "\\{1,2\\}", "expression", True),
    # Named values.
    ("p = 5, q = 2", "(5,2)", "expression", True),
    ("(p,q) = (3,2)", "(3,2)", "expression", True),
    ("AB = 4, CD = 5", "4, 5", "expression", True),
    # Lists of solution tuples, in any order.
    ("(3,1), (1,3)", "(1,3),(3,1)", "expression", True),
    ("(2, 1), (-1, -2)", "\\{(-1,-2), (2,1)\\}", "expression", True),
    # Text answers.
    ("\\text{E}", "E", "expression", True),
    ("\\textbf{odd}", "odd", "expression", True),
    ("\\mathrm{even}", "Even", "expression", True),
    ("\\textbf{odd}", "Odd", "text", True),
    # Units in \text{}, \textnormal{}, \mbox{}.
    ("5\\text{ cm}", "5", "expression", True),
    ("5\\textnormal{ cm}", "5", "expression", True),
    ("12\\mbox{ m}^2", "12", "expression", True),
    ("45 \\text{ minutes}", "45", "number", True),
    # Relations.
    ("x \\geq 5", "x >= 5", "expression", True),
    ("x >= 5", "5 \\leq x", "expression", True),
    ("x \\geq 5", "5 \\leq x", "expression", True),
    ("-x > -1", "x < 1", "expression", True),
    ("x \\neq 3", "x != 3", "expression", True),
    ("x \\ne 3", "x \\neq 3", "expression", True),
    # Inequality chains against the intervals they describe.
    ("1 \\le |z| \\le 3/2", "[-3/2,-1] \\cup [1,3/2]", "expression", True),
    ("-2 < x \\le 3", "(-2, 3]", "expression", True),
    ("x \\geq 5", "[5, \\infty)", "expression", True),
    ("0 < f(x) < 1", "(0,1)", "expression", None),  # right when a range is asked for; may be uncertain
    # Ratios, and a named quotient against its value.
    ("7:32", "S_{MBCN}:S = 7:32", "expression", True),
    ("\\frac{NO}{BO} = \\frac{1}{\\sqrt6}", "\\frac{1}{\\sqrt6}", "expression", True),
    ("\\frac{NO}{BO} = \\frac{1}{\\sqrt6}", "\\frac{\\sqrt{6}}{6}", "expression", True),
    # Wrapped golds (point 4).
    ("\\frac13", "$1/3$", "expression", True),
    ("C", "\\(\\boxed{C}\\)", "choice", True),
    ("C", "\\(\\boxed{C}\\)", "expression", True),
    ("5", "$x = 5$.", "expression", True),
    ("[0,1)", "$$[0,1)$$", "expression", True),
    ("\\frac{1}{2}", "\\[\\frac12\\]", "expression", True),
    ("12", "\\fbox{12}", "expression", True),
    ("3", "\\boxed{3}.", "number", True),
]

# (a, b, answer type): different answers, whichever is the gold.
DIFFERENT: list[tuple[str, str, str]] = [
    ("\\boxed{1}, \\boxed{2}", "1, 2, 3", "expression"),
    ("p = 2, q = 5", "(5,2)", "expression"),
    ("(p,q) = (2,3)", "(3,2)", "expression"),
    ("(1,2), (3,4)", "(1,2), (4,3)", "expression"),
    ("\\textbf{odd}", "even", "expression"),
    ("5\\textnormal{ cm}", "6", "expression"),
    ("x > 5", "x \\geq 5", "expression"),
    ("x \\geq 5", "5", "expression"),
    ("-x > -1", "x > 1", "expression"),
    ("x \\neq 3", "x = 3", "expression"),
    ("1 < |z| \\le 3/2", "[-3/2,-1] \\cup [1,3/2]", "expression"),
    ("-2 \\le x \\le 3", "(-2, 3]", "expression"),
    ("7:32", "32:7", "expression"),
    ("\\frac{NO}{BO} = \\frac{1}{\\sqrt6}", "\\sqrt{6}", "expression"),
    ("[0,1]", "$$[0,1)$$", "expression"),
    ("B", "\\(\\boxed{C}\\)", "choice"),
    ("-5", "$x = 5$.", "expression"),
]

# (a, b): a form that is genuinely ambiguous against the other: the verdict must be marked uncertain.
AMBIGUOUS: list[tuple[str, str]] = [
    ("\\{1,3\\}", "(1,3)"),
    ("1, 3", "(1,3)"),
]

BOTH_WAYS = pytest.mark.parametrize("swap", [False, True], ids=["a-b", "b-a"])


@BOTH_WAYS
@pytest.mark.parametrize(("a", "b", "answer_type", "certain"), EQUIVALENT)
def test_equivalent_forms(a: str, b: str, answer_type: str, certain: bool | None, swap: bool) -> None:
    pred, gold = (b, a) if swap else (a, b)
    verdict = grade(pred, gold, answer_type)
    assert verdict.correct, verdict
    if certain is not None:
        assert verdict.certain == certain, verdict


@BOTH_WAYS
@pytest.mark.parametrize(("a", "b", "answer_type"), DIFFERENT)
def test_different_forms(a: str, b: str, answer_type: str, swap: bool) -> None:
    pred, gold = (b, a) if swap else (a, b)
    assert not grade(pred, gold, answer_type).correct


@BOTH_WAYS
@pytest.mark.parametrize(("a", "b"), AMBIGUOUS)
def test_ambiguous_forms_are_uncertain(a: str, b: str, swap: bool) -> None:
    pred, gold = (b, a) if swap else (a, b)
    assert not grade(pred, gold, "expression").certain
