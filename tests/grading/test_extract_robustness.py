"""Answer extraction never raises and stays fast, whatever a model writes.

Completions are untrusted: a model can loop for thousands of tokens, open braces it never closes or repeat
"\\boxed{" until the budget runs out. Each call must finish in well under a second (the bound here is generous
so that a loaded machine does not make the test flaky; typical calls take a few milliseconds).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mathforge.grading import Extraction, asks_for_several, extract_answer

BOUND_SECONDS = 1.0
RULES = {"boxed", "json", "final_answer", "answer_is", "hashes", "math", "choice", "last_number", "none"}
OPTIONS = ["12", "42", "7", "\\frac{1}{2}"]
N = 50_000

PATHOLOGICAL = {
    "deep nesting": "\\boxed{" + "{" * 20_000 + "1" + "}" * 20_000 + "}",
    "unclosed nesting": "\\boxed{" + "{" * 40_000,
    "closing braces only": "}" * 40_000 + "\\boxed{1}",
    "escaped braces": "\\boxed{" + "\\{" * 20_000,
    "open boxes": "\\boxed{" * 5_000,
    "closed boxes": "\\boxed{1}" * 5_000,
    "boxes in boxes": "\\boxed{" * 5_000 + "1" + "}" * 5_000,
    "spaced boxes": "\\fbox " * 5_000,
    "boxes and connectives": "x = \\boxed{1} or " * 3_000,
    "digits": "1" * N,
    "digits then a letter": "1" * N + "x",
    "digits after the answer is": "The answer is " + "1" * N + " x",
    "commas": "1," * (N // 2),
    "decimal points": "1." * (N // 2),
    "1 a 1 a": "1 a " * (N // 4),
    "the answer is": "The answer is " * 3_000,
    "the answer is 5": "The answer is 5 " * 3_000,
    "spaces after the answer is": "The answer is" + " " * N + "x",
    "final answers": "Final Answer: The final answer is " * 1_500,
    "spaces after final answer": "Final Answer: The final answer is" + " " * N + "x",
    "spaces after Question": "a\nQuestion" + " " * N + "x",
    "hashes": "####" * 10_000,
    "dollars": "$" * N,
    "dollar numbers": "$1" * (N // 2),
    "newlines": "\n" * N,
    "blank lines and the answer is": "The answer is" + "\n \n" * 15_000,
    "spaces": " " * N,
    "letters": "A " * (N // 2),
    "a letter then spaces": "A" + " " * N + "x",
    "answer colon then spaces": "Answer:" + " " * N + "B",
    "parenthesised letters": "(A)" * 15_000,
    "letters and": "A and " * 8_000,
    "letters and commas": "A, " * 15_000 + "?",
    "letter lines": "\n".join(["A" + " " * 100] * 400) + "x",
    "periodic tail": "xyz" + "abcd" * 10_000 + "e",
    "equals signs": "= " * 25_000,
    "minus signs": "-" * N,
    "equations": "x = 1, " * 7_000,
    "a loop": "So 3 + 4 = 7. " * 3_000,
    "repeated lines": "x = 1\n" * 8_000,
    "bold": "**" * 20_000,
    "text macros": "\\text{" * 8_000,
    "backslashes": "\\" * N,
    "doubled macros": "\\\\frac" * 8_000,
    "brace pairs": "{}" * 20_000 + "{",
    "calculator annotations": "<<" * 20_000 + ">>" * 5_000,
    "unicode": "数学答案是" * 10_000,
    "control characters": "".join(chr(i % 32) for i in range(N)),
    "surrogates and emoji": "\U0001f600\u200b\u2212\ufeff" * 10_000,
    "stop tokens": "<|endoftext|>" * 4_000,
    "code fences": "```" * 15_000,
    # Math-mode spans: many, named, joined, nested in environments, and prices.
    "named spans": "".join(f"w $n_{{{i}}}$ " for i in range(4_000)) + "end",
    "named spans in sentences": "".join(f"w $n_{{{i}}}$. " for i in range(4_000)) + "end",
    "joined spans": "".join(f"$a_{{{i}}}$ and " for i in range(4_000)) + "$b$",
    "assignment spans": "".join(f"$x = {i}$, " for i in range(5_000)),
    "prices": "$5 for a pen, so " * 3_500,
    "display rows": "\\[" + "x &= 1 \\\\ " * 5_000 + "\\]",
    "align environments": "\\begin{align*}" * 2_000 + "x" + "\\end{align*}" * 2_000,
    "json answers": '{"answer": "' * 5_000,
    "implications": "$" + "a \\implies " * 5_000 + "b$",
    "congruences": "$" + "x \\equiv 1 \\pmod 9 " * 3_000 + "$",
}


def _check(completion: str, *args: object, **kwargs: object) -> Extraction:
    started = time.perf_counter()
    extraction = extract_answer(completion, *args, **kwargs)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND_SECONDS, f"{elapsed:.2f} s"
    assert isinstance(extraction, Extraction)
    assert extraction.rule in RULES
    assert extraction.answer is None or (isinstance(extraction.answer, str) and extraction.answer.strip())
    return extraction


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_inputs(name: str) -> None:
    completion = PATHOLOGICAL[name]
    assert 10_000 <= len(completion) <= 60_000
    for extractor in ("auto", "gsm8k", "minerva", "boxed", "choice"):
        for options in ({}, {"several": True}, {"boxed": "first"}):
            assert _check(completion, extractor, **options).rule in RULES
    assert _check(completion, "auto", truncated=True).rule in RULES
    started = time.perf_counter()
    asks_for_several(completion)
    assert time.perf_counter() - started < BOUND_SECONDS


@pytest.mark.parametrize("name", ["deep nesting", "digits after the answer is", "the answer is", "letters"])
def test_pathological_inputs_with_options(name: str) -> None:
    # With option texts the stated answer is compared with each option; a huge answer is never compared.
    extract_answer("warm up the grading child: 42", "choice", OPTIONS)
    assert _check(PATHOLOGICAL[name], "choice", OPTIONS).rule in RULES


FRAGMENTS = [
    "\\boxed{",
    "\\fbox{",
    "\\boxed ",
    "{",
    "}",
    "\\{",
    "\\}",
    "$",
    "\\$",
    "$$",
    "\\(",
    "\\]",
    "The answer is ",
    "the answer is: ",
    "Final Answer: The final answer is ",
    "I hope it is correct.",
    "Answer:",
    "####",
    "#### Step 1",
    "\nQuestion: ",
    "\nProblem:\n",
    "<|endoftext|>",
    "<<2*3=6>>",
    "```",
    "\n",
    "\n\n",
    " ",
    ".",
    ",",
    " = ",
    " and ",
    " or ",
    "x = ",
    "\\frac{1}{2}",
    "\\\\frac",
    "\\text{ cm}",
    "\\quad",
    "42",
    "-3",
    "1,000",
    "0.5",
    "(B)",
    "A",
    "B.",
    "AC",
    " apples",
    "**",
    "答案是",
    "故选",
    "€",
    '"',
]


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join),
    st.sampled_from(["auto", "gsm8k", "minerva", "boxed", "choice"]),
    st.booleans(),
    st.sampled_from(["last", "first"]),
    st.booleans(),
)
def test_answer_like_text(
    completion: str, extractor: str, several: bool, boxed: str, truncated: bool
) -> None:
    assert _check(completion, extractor, None, truncated, several=several, boxed=boxed).rule in RULES


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=400), st.sampled_from(["auto", "gsm8k", "minerva", "boxed", "choice"]))
def test_random_text(completion: str, extractor: str) -> None:
    assert _check(completion, extractor).rule in RULES
    assert _check(completion, extractor, several=True, boxed="first").rule in RULES
    assert isinstance(asks_for_several(completion), bool)


@settings(deadline=None, max_examples=30)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8).map("".join), st.integers(500, 3_000))
def test_repeated_fragments(fragment: str, times: int) -> None:
    # Long repetitions of anything are the loops a model falls into.
    completion = (fragment * times)[:50_000]
    for extractor in ("auto", "choice"):
        assert _check(completion, extractor).rule in RULES
        assert _check(completion, extractor, several=True).rule in RULES
