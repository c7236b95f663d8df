"""Answer extraction: real completion shapes from base and chat models, one row per case."""

from __future__ import annotations

import pytest

from mathforge.grading import (
    EXTRACTORS,
    Extraction,
    asks_for_several,
    cut_invented_continuation,
    extract_answer,
    last_boxed,
)

LOOP = "He pays 5 + 5 = 10 dollars.\n" * 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so the answer is $\boxed{5}$.", "5"),
        (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{2}"),
        (r"first \boxed{1}, then \boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{\left( \frac{1}{2}, \frac{3}{4} \right)}", r"\left( \frac{1}{2}, \frac{3}{4} \right)"),
        (r"\fbox{42}", "42"),
        (r"The answer is \boxed 5$.", "5"),
        (r"$\boxed {7}$", "7"),
        (r"\boxed{}", ""),
        (r"cut off in the box: \boxed{\frac{1", None),
        ("no box at all", None),
        # Escaped braces are set braces and do not group: the box still ends at its own "}".
        (r"\boxed{\{1, 2\} \cup \{3\}} and more", r"\{1, 2\} \cup \{3\}"),
        (r"\boxed{\left\{ x \mid x > 0 \right.} then }", r"\left\{ x \mid x > 0 \right."),
        (r"\boxed{\boxed{5}}", "5"),
        ("a stray } closes nothing: \\boxed{7}", "7"),
        ("ends with the command alone \\boxed", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 18.\n\nQuestion: John has 5 apples.", "The answer is 18.\n\n"),
        ("x = 5\nProblem: Find y.\nSolution: y = 7", "x = 5\n"),
        ("So 7.\nQ: What is 2+2?\nA: 4", "So 7.\n"),
        ("So 7.\n### Instruction:\nWrite a poem.", "So 7.\n"),
        ("So 7.\n**Question 3:** next", "So 7.\n"),
        ("So 7.<|endoftext|>Question: more", "So 7."),
        # A problem restated at the very start is not an invented continuation.
        ("Problem: find x.\nWe get x = 2.", "Problem: find x.\nWe get x = 2."),
        ("The question: what is x? It is 2.", "The question: what is x? It is 2."),
    ],
)
def test_cut_invented_continuation(text: str, expected: str) -> None:
    assert cut_invented_continuation(text) == expected


@pytest.mark.parametrize(
    ("completion", "extractor", "expected"),
    [
        # GSM8K-style base-model completions.
        (
            "Natalia sold 48/2 = 24 clips in May.\nAltogether 48+24 = 72 clips.\n#### 72",
            "auto",
            ("72", "hashes"),
        ),
        (
            "She makes 9 * 2 = $18 every day. The answer is 18.\n\nQuestion: John has 5 apples, 3 more",
            "auto",
            ("18", "answer_is"),
        ),
        ("The answer is 520 - 480 = 40.", "auto", ("40", "answer_is")),
        ("The answer is 5 x + 1.", "auto", ("5 x + 1", "answer_is")),
        ("So the answer is: 40 apples.", "auto", ("40", "answer_is")),
        ("The answer is $18 per hour.", "auto", ("18", "answer_is")),
        ("The answer is $1,250.", "auto", ("1,250", "answer_is")),
        ("Working it out step by step, the answer is:\n\n42", "auto", ("42", "answer_is")),
        ("The total is 1,250 dollars", "auto", ("1,250", "last_number")),
        ("The temperature fell to -5 degrees.", "auto", ("-5", "last_number")),
        ("He ran 5-3 laps", "auto", ("3", "last_number")),
        ("It costs $1,000.50 in total.", "auto", ("1,000.50", "last_number")),
        ("Each half is 3/4 of a cup", "auto", ("3/4", "last_number")),
        ("The answer is 8.\nQuestion: Tom has 3 cats and 4 dogs. How many pets?", "auto", ("8", "answer_is")),
        ("We get 12.\nQuestion: Tom has 3 cats and 4 dogs. How many pets?", "auto", ("12", "last_number")),
        # Looping or cut-off output: its last number is noise, not an answer.
        (LOOP, "auto", (None, "none")),
        ("Let x be 3. Then " + "3 + " * 30, "auto", (None, "none")),
        ("so the area is \\boxed{\\frac{1", "auto", (None, "none")),
        ("I do not know.", "auto", (None, "none")),
        # MATH-style boxed answers.
        ("Thus the area is $\\boxed{\\frac{\\sqrt{3}}{2}}$.", "auto", ("\\frac{\\sqrt{3}}{2}", "boxed")),
        ("The roots are $\\boxed{2, -3}$", "auto", ("2, -3", "boxed")),
        ("We have \\boxed{x = 3}. The answer is 4", "auto", ("x = 3", "boxed")),
        ("$\\boxed{\\text{(B)}}$", "boxed", ("\\text{(B)}", "boxed")),
        ("no box here, 42", "boxed", (None, "none")),
        # Minerva's final-answer sentence.
        (
            "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
            "auto",
            ("\\frac{1}{2}", "final_answer"),
        ),
        (
            "Final Answer: The final answer is $3.5$. I hope it is correct.",
            "minerva",
            ("3.5", "final_answer"),
        ),
        (
            "Final Answer: The final answer is $\\boxed{7}$. I hope it is correct.",
            "minerva",
            ("7", "final_answer"),
        ),
        ("Final Answer: The final answer is 10", "minerva", ("10", "final_answer")),
        ("so it is $\\boxed{9}$", "minerva", ("9", "boxed")),
        ("The answer is 9", "minerva", (None, "none")),
        # The gsm8k extractor: ####, then "The answer is", then the last number.
        ("#### 72\n\nThe answer is 70", "gsm8k", ("72", "hashes")),
        ("#### $1,000", "gsm8k", ("1,000", "hashes")),
        ("The answer is 70. Later 3", "gsm8k", ("70", "answer_is")),
        ("5 + 7 = 12", "gsm8k", ("12", "last_number")),
        # A boxed answer is a stated answer: it beats the last number for GSM8K too (chat models box).
        ("\\boxed{5} but 7", "gsm8k", ("5", "boxed")),
        ("#### 5\nso \\boxed{7}", "gsm8k", ("5", "hashes")),
        # Quotes, backticks and the debris of a JSON object are no part of a stated answer.
        ('Then the answer is "42"', "auto", ("42", "answer_is")),
        ("So the answer is `42`", "auto", ("42", "answer_is")),
        ('{"thoughts": "add them", "result": "So the answer is 6"}', "auto", ("6", "answer_is")),
        ("The final answer is:\n```\n42\n```", "auto", ("42", "answer_is")),
        ("The answer is ```", "auto", (None, "none")),
        # The last math: a variable named in prose is skipped, one that the sentence states is read.
        ("There are $42$ ways to choose $k$.", "auto", ("42", "math")),
        ("So the only letter left is $E$.", "auto", ("E", "math")),
        ("$E$", "auto", ("E", "math")),
        ("We get $x = 5$ for every $n$, hence $n = 4$ works.", "auto", ("4", "math")),
        # A span that only names something, marks the end or makes an aside is no answer; the number before it is.
        ("So there are 12 ways. $\\blacksquare$", "auto", ("12", "last_number")),
        ("We get 15 for the area of $\\triangle ABC$.", "auto", ("15", "last_number")),
        ("So the perimeter is 24 units for square $ABCD$.", "auto", ("24", "last_number")),
        ("So the count is 24 in $\\mathbb{Z}$.", "auto", ("24", "last_number")),
        ("So 24 pairs satisfy the condition on $(x, y)$.", "auto", ("24", "last_number")),
        ("The total is 12, where $a,b$ are the legs.", "auto", ("12", "last_number")),
        ("So she has 12 apples, i.e. $n$.", "auto", ("12", "last_number")),
        ("So we count 24 (since $AB \\neq BA$).", "auto", ("24", "last_number")),
        ("Since $a = 3$ and $b = 5$, we get 15 for the area of $\\triangle ABC$.", "auto", ("15", "last_number")),
        ("The length is $5$ $\\text{cm}$.", "auto", ("5", "math")),
        ("so $n^2 + n$ is always $\\textbf{even}$.", "auto", ("\\textbf{even}", "math")),
        # Displays, chains, congruences and MATH's thousands separator.
        ("Hence\n$$\\begin{align*} x &= 2 + 3 \\\\ &= 5 \\end{align*}$$", "auto", ("5", "math")),
        ("So $36 - 7 - 2 - 10 = 17 = x$.", "auto", ("17", "math")),
        ("\\begin{align*} 100 &\\equiv 1 \\pmod 9 \\\\ &\\equiv 3 \\pmod 9 \\end{align*}", "auto", ("3", "math")),
        ("So there are $10,\\!080$ arrangements.", "auto", ("10,\\!080", "math")),
        # Stated phrases: a colon before the value; a clause about the answer is no part of it.
        ("Final answer: the larger of the two: $x=1$.", "auto", ("1", "answer_is")),
        ("The answer is Evelyn, who is 5 years older.", "auto", ("Evelyn", "answer_is")),
        # A JSON field is the answer only where the reply ends with it, not in a program that goes on.
        ("```python\ndata = {\"answer\": 12}\nprint(data)\n```\nThe answer is 7.", "auto", ("7", "answer_is")),
        ('Let me format: {"answer": 3}.\nActually, recomputing, the answer is 5.', "auto", ("5", "answer_is")),
        ('{"answer": "\\\\frac{1}{2}", "confidence": 0.9}', "auto", ("\\frac{1}{2}", "json")),
        ('{"answer": 7}\nHope this helps!', "auto", ("7", "json")),
        # Boxed contents are graded as they are: symbols are no punctuation.
        ("\\boxed{∅}", "auto", ("∅", "boxed")),
        ("\\boxed{-}", "auto", ("-", "boxed")),
        # The math rule never overrides a box or a stated answer.
        ("So $\\boxed{5}$, and check: $5 + 2 = 7$.", "auto", ("5", "boxed")),
        ("The answer is 5. Note that $7$ is prime.", "auto", ("5", "answer_is")),
    ],
)
def test_extract_answer(completion: str, extractor: str, expected: tuple[str | None, str]) -> None:
    assert extract_answer(completion, extractor) == Extraction(*expected)


OPTIONS = ["12", "42", "7", "\\frac{1}{2}"]


@pytest.mark.parametrize(
    ("completion", "choices", "expected"),
    [
        ("(B) 42", None, ("B", "choice")),
        ("B. Because 6 * 7 = 42.", None, ("B", "choice")),
        (" B", None, ("B", "choice")),
        ("The answer is B.", None, ("B", "answer_is")),
        ("The answer is (C)", None, ("C", "answer_is")),
        ("so the answer is: (D) 7", None, ("D", "answer_is")),
        ("The correct option is B", None, ("B", "answer_is")),
        ("Answer: C", None, ("C", "answer_is")),
        ("Thus \\boxed{B}", None, ("B", "boxed")),
        ("Answer: $\\boxed{\\text{(E)}}$", None, ("E", "boxed")),
        ("Final Answer: The final answer is (D). I hope it is correct.", None, ("D", "final_answer")),
        # Multi-answer questions: letters uppercase, sorted, concatenated.
        ("AC", None, ("AC", "choice")),
        ("A, C", None, ("AC", "choice")),
        ("The answer is C and A.", None, ("AC", "answer_is")),
        ("\\boxed{B, D}", None, ("BD", "boxed")),
        ("Option (A) is 5 and option (B) is 6, hence we choose\nC", None, ("C", "answer_is")),
        ("Option (A) fails, so we choose (D) instead.", None, ("D", "answer_is")),
        # "A" as an English word and a name that starts with a capital letter are no letters.
        ("the answer is Bob", None, (None, "none")),
        ("A train leaves at 5. So the speed is 42.", None, (None, "none")),
        # No letter: the stated answer is matched against the option texts.
        ("A train leaves at 5. So the speed is 42.", OPTIONS, ("B", "choice")),
        ("We compute 6*7 = 42. The answer is 42.", OPTIONS, ("B", "choice")),
        ("The answer is 0.5", OPTIONS, ("D", "choice")),
        ("so it is $\\boxed{\\dfrac12}$", OPTIONS, ("D", "choice")),
        ("The answer is 99", OPTIONS, (None, "none")),
        ("I am not sure", OPTIONS, (None, "none")),
        # A letter past the last option is not one: with four options "E" names nothing.
        ("The answer is E.", OPTIONS, (None, "none")),
        ("(B) 12", ["A) 12", "B) 42"], ("B", "choice")),
        ("It is 42.", ["A) 12", "B) 42"], ("B", "choice")),
    ],
)
def test_extract_choice(completion: str, choices: list[str] | None, expected: tuple[str | None, str]) -> None:
    assert extract_answer(completion, "choice", choices) == Extraction(*expected)


def test_extractor_names() -> None:
    assert set(EXTRACTORS) == {"auto", "boxed", "gsm8k", "choice", "minerva"}
    with pytest.raises(ValueError, match="unknown extractor"):
        extract_answer("42", "nope")


@pytest.mark.parametrize(
    ("completion", "extractor", "choices", "expected"),
    [
        # Cut off by the budget mid-computation: the trailing "5" is not an answer.
        ("2 bolts + 44 bolts = 46 bolts + 2 bolts = 5", "auto", None, None),
        # A stated answer still counts, cut off or not.
        ("So the answer is $\\boxed{18}$. Now let us also check 1 + 2 = 3 and", "auto", None, "18"),
        ("She makes 18 dollars.\n#### 18\n\nQuestion 2 asks 7", "gsm8k", None, "18"),
        ("The answer is 40. Moreover 3 + 4 = 7 and", "auto", None, "40"),
        # Options being restated when the budget ran out are not a choice.
        (
            "(A) a base pair, (B) a codon, (C) a gene, (D) a codon's nucleotide sequence is changed so",
            "choice",
            ["w", "x", "y", "z"],
            None,
        ),
        ("The answer is (C). Also note (D) is", "choice", ["w", "x", "y", "z"], "C"),
    ],
)
def test_truncated_completions_need_a_stated_answer(
    completion: str, extractor: str, choices: list[str] | None, expected: str | None
) -> None:
    assert extract_answer(completion, extractor, choices, truncated=True).answer == expected


@pytest.mark.parametrize(
    ("completion", "kwargs", "expected"),
    [
        # Several boxed answers for a question that asks for several: joined, distinct, in order.
        ("so $x = \\boxed{2}$ or $x = \\boxed{-3}$.", {"several": True}, "2, -3"),
        ("x = \\boxed{2} or x = \\boxed{-3}", {"several": True}, "2, -3"),
        ("The roots are\n$x_1 = \\boxed{2}$\n$x_2 = \\boxed{-3}$\n", {"several": True}, "2, -3"),
        ("$$x = \\boxed{2} \\quad \\text{or} \\quad x = \\boxed{-3}$$", {"several": True}, "2, -3"),
        ("\\boxed{1}, \\boxed{1}, \\boxed{5}", {"several": True}, "1, 5"),
        ("\\boxed{2, -3}", {"several": True}, "2, -3"),
        # Without `several`, the last box; and a box that words separate from the last is no part of it.
        ("so $x = \\boxed{2}$ or $x = \\boxed{-3}$.", {}, "-3"),
        ("We get $\\boxed{5}$ first. Checking again, the answer is $\\boxed{7}$.", {"several": True}, "7"),
        # boxed="first": the first box states the answer (prompts whose answer comes first, then a check).
        ("\\boxed{12}. Check: 3 * 4 = \\boxed{12}; then also \\boxed{99}", {"boxed": "first"}, "12"),
        (
            "x = \\boxed{2} or x = \\boxed{-3}. Finally \\boxed{0}",
            {"boxed": "first", "several": True},
            "2, -3",
        ),
        ("\\boxed{\\frac{1", {"boxed": "first"}, None),
    ],
)
def test_several_and_first_boxes(completion: str, kwargs: dict[str, object], expected: str | None) -> None:
    assert extract_answer(completion, **kwargs).answer == expected  # type: ignore[arg-type]


def test_keyword_defaults_keep_the_old_call_working() -> None:
    # The eval runner calls extract_answer(text, extractor, choices, truncated=...).
    assert extract_answer("x = \\boxed{2} or x = \\boxed{-3}", "auto", None, truncated=False).answer == "-3"
    with pytest.raises(ValueError, match="unknown boxed"):
        extract_answer("\\boxed{1}", boxed="middle")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Find all solutions to $x^2 = 4$. Enter all the solutions, separated by commas.", True),
        ("Find all values of $x$ such that $x^2 = 9$.", True),
        ("List all primes less than 10.", True),
        ("What are all possible values of $k$?", True),
        ("Find all possible values of $a+b$.", True),
        ("Enter the roots, separated by commas.", True),
        ("Enter your answer as a list of those options that are always true.", True),
        ("Which of the following are true? Select all that apply.", True),
        ("Compute the two roots of $f(x) + g(x) = 0.$", True),
        # One number is asked for, even though "all" is said.
        ("Find the sum of all possible values of $n$.", False),
        ("What is the product of all possible values of $x$?", False),
        (
            "Let $a$ be a real number such that all the roots of $x^3 + ax + 1$ are real. Find the smallest $a$.",
            False,
        ),
        ("Find the number of solutions to $\\sin x = x/10$.", False),
        ("Find the maximum value of $4(x + 7)(2 - x)$ over all real numbers $x$.", False),
        ("Find all $x$ such that $x^2 < 4$. Express your answer in interval notation.", False),
        ("What is $1 + 1$?", False),
    ],
)
def test_asks_for_several(question: str, expected: bool) -> None:
    assert asks_for_several(question) is expected


@pytest.mark.parametrize(
    ("completion", "choices", "expected"),
    [
        # The common ways of naming one letter.
        ("(B)", None, ("B", "choice")),
        ("B", None, ("B", "choice")),
        ("B) 42", None, ("B", "choice")),
        ("**Answer:** B", None, ("B", "answer_is")),
        ("ANSWER: (c)", None, (None, "none")),  # a lowercase letter is a word, not an option
        ("The correct answer is **(C) 7**.", None, ("C", "answer_is")),
        ("The answer is option D.", None, ("D", "answer_is")),
        ("So the answer is $\\boxed{\\text{(A)}}$.", None, ("A", "boxed")),
        ("So the answer is $\\boxed{\\textbf{(C)}}$.", None, ("C", "boxed")),
        ("Therefore, (B) is correct.", None, ("B", "answer_is")),
        ("Option C is the right answer.", None, ("C", "answer_is")),
        ("I would choose option B.", None, ("B", "answer_is")),
        ("The answer is B. This is correct because 6 * 7 = 42.", None, ("B", "answer_is")),
        ("所以答案是 C。", None, ("C", "answer_is")),
        ("故选：D", None, ("D", "answer_is")),
        # Several letters for multi-answer questions.
        ("The correct options are A and C.", None, ("AC", "answer_is")),
        ("The answers are (B), (D).", None, ("BD", "answer_is")),
        ("Answer: A, C, D", None, ("ACD", "answer_is")),
        ("\\boxed{A} and \\boxed{C}", None, ("C", "boxed")),
        # Options restated in order, then the answer as a value: its text decides, not the last "(D)".
        ("(A) 12 (B) 42 (C) 7 (D) 1/2\nWe compute 6 * 7 = 42. The answer is 42.", OPTIONS, ("B", "choice")),
        ("(A) 12 (B) 42 (C) 7 (D) 1/2\nThe answer is $\\boxed{42}$.", OPTIONS, ("B", "choice")),
        ("(A) 12\n(B) 42\n(C) 7\n(D) 1/2", OPTIONS, (None, "none")),
        # Elimination that ends on a letter is an answer.
        ("(A) is too small. (B) is too large. So it must be (C).", OPTIONS, ("C", "choice")),
    ],
)
def test_choice_forms(completion: str, choices: list[str] | None, expected: tuple[str | None, str]) -> None:
    assert extract_answer(completion, "choice", choices) == Extraction(*expected)


def test_several_letters_from_several_boxes() -> None:
    assert extract_answer("\\boxed{A} and \\boxed{C}", "choice", several=True) == Extraction("AC", "boxed")


def test_choice_reads_no_guess_from_a_cut_off_text() -> None:
    # The math and last-number guesses are not stated answers: matched to an option's text they would turn
    # a completion the budget cut off into a letter.
    for text in ("We try the first option: $12$", "We try the first option, 12"):
        assert extract_answer(text, "choice", OPTIONS, truncated=True) == Extraction(None, "none")
        assert extract_answer(text, "choice", OPTIONS) == Extraction("A", "choice")
