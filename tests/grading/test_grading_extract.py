"""Answer extraction: real completion shapes from base and chat models, one row per case."""

from __future__ import annotations

import pytest

from mathforge.grading import EXTRACTORS, Extraction, cut_invented_continuation, extract_answer, last_boxed

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
        ("\\boxed{5} but 7", "gsm8k", ("7", "last_number")),
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
        ("Option (A) is 5 and option (B) is 6, hence we choose\nC", None, ("C", "choice")),
        ("Option (A) fails, so we choose (D) instead.", None, ("D", "choice")),
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
