"""math_verify: exact re-evaluation of calculator annotations and plain steps, the final answer against the last
computed value, solution programs in the real sandbox, and agreement with re-solutions; GSM8K's training file
measured whole, each row it drops named with why."""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction
from typing import Any

import pytest
from conftest import BENCHMARK_DATA

from mathforge.data.stages import STAGES, Stage, StageContext
from mathforge.data.stages.verify import evaluate
from mathforge.errors import MathforgeError
from mathforge.sandbox import isolation_error

GSM8K_TRAIN = BENCHMARK_DATA / "gsm8k_openai" / "train.jsonl"
QUESTION = "Natalia sold clips to 48 of her friends in April, and half as many in May. How many in all?"


def build(**options: Any) -> Stage:
    stage = STAGES["math_verify"](STAGES["math_verify"].options.build(**options), StageContext())
    stage.setup()
    return stage


def drop_of(row: dict[str, Any], **options: Any) -> tuple[str, str] | None:
    """(reason, detail) of the drop, None when the row is kept."""
    stage = build(**options)
    try:
        found = stage.check([row], [1])[0]
    finally:
        stage.close()
    return None if found is None else (found.reason, found.detail)


def row(solution: str, answer: Any = "72", **fields: Any) -> dict[str, Any]:
    return {"question": QUESTION, "solution": solution, "answer": answer, **fields}


# --- the exact evaluator


@pytest.mark.parametrize(
    ("source", "numbers", "value"),
    [
        ("n0 / n1", [48, 2], Fraction(24)),
        ("n0 + n1", [Fraction("0.1"), Fraction("0.2")], Fraction(3, 10)),  # exact: no 0.30000000000000004
        ("(n0 + n1) * n2", [3, 4, 2], Fraction(14)),
        ("-n0 - -n1", [3, 2], Fraction(-1)),
        ("n0 ** n1", [2, 10], Fraction(1024)),
        ("n0 ** -n1", [2, 2], Fraction(1, 4)),
        ("n0 ** n1", [2, 1000], None),  # exponents are small in word problems; huge ones cost time
        ("n0 ** n1", [2, Fraction(1, 2)], None),  # a root is no exact rational
        ("n0 / n1", [1, 0], None),
        ("n0 % n1", [7, 2], None),
        ("n0 // n1", [7, 2], None),
        ("__import__('os').system('true')", [], None),  # no code: names are numbers, calls are refused
        ("n0.real", [1], None),
        ("[n0]", [1], None),
        ("n5", [1], None),
    ],
)
def test_evaluate_is_exact_arithmetic_only(source: str, numbers: list[Any], value: Fraction | None) -> None:
    assert evaluate(source, [Fraction(number) for number in numbers]) == value


# --- calculations and the final answer

NATALIA = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips in all."


@pytest.mark.parametrize(
    ("solution", "answer", "verdict"),
    [
        (NATALIA, "72", None),
        ("Natalia sold 48/2 = 24 clips in May.\nShe sold 48 + 24 = 72 clips in all.", "72", None),
        ("Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nShe earned 0.2 x 50 = $<<0.2*50=10>>10.", "10", None),
        # Rounded, cut off or rounded up to the decimals shown: GSM8K writes all three.
        ("Each gets 10/3 = <<10/3=3.33>>3.33 pies.", "3.33", None),
        ("Each gets 2/3 = <<2/3=0.67>>0.67 of it.\nSo 7/2 = <<7/2=3>>3 full boxes.", "3", None),
        ("They need 120/16 = 7.5 cans.\nSince no one buys half a can, they buy 8 cans.", "8", None),
        ("She pays $1,000 + $2,500 = $3,500 in all.", "3,500", None),
        ("So 80 000 x 20/100 = 16 000 dollars.", "16000", None),
        ("He has 3 × 4 = 12 eggs.\nShe has 48 ÷ 2 = 24 eggs.\nSo 12 + 24 + 36 = 72.", "72", None),
        ("We get $48 \\div 2 = 24$ and $\\frac{3}{4} \\times 32 = 24$, so $24 \\cdot 3 = 72$.", "72", None),
        ("Half of 25% is 25% / 2 = 12.5%.\nAs a decimal 0.125 * 100 = 12.5%.", "12.5", None),
        ("The share is $9 / $27 * 100% = 33.333%, which rounds down to 33%.", "33", None),
        ("The proportion is 12/30 = .4.\nThe percentage is .4 x 100% = 40%.", "40", None),  # 40 of 0.4
        ("A can costs 0.50 - 0.25 = $0.25 more.", "25", None),  # the cents of a dollar amount
        ("The cost is 5 * 2 = 10 * 3 = 30 dollars.", "30", None),  # a running total
        ("He uses 25 / 1/3 = 75 decorations.", "75", None),  # a fraction written tight is one number
        ("The wall is 2500 cases - 50 cases = 2450 cases.", "2450", None),  # units left out
        ("The buicks are 12+8(26)=220.", "220", None),  # an implied product
        ("Temperatures: -14 + (-8) + 1 = -21 degrees.\nThe average is -21/3 = -7 degrees.", "-7", None),
        # Not arithmetic, so not read: algebra, times of day, ranges of pages, a division by zero.
        ("Let 3N + 6 = -147, so 3N = -153 and N = -51.\nThe largest is -51 + 4 = -47.", "-47", None),
        ("So 100/5 = 5A/5, or A = 20.", "20", None),
        ("He left at 7:50 + 30 minutes = 8:20 a.m.", "8", None),
        ("Nothing: 1/0 = 5 here.", "5", None),
        # The answer said in words after the last step (GSM8K does this): "79 questions right in total."
        ("Math: 40 x .75 = 30.\nEnglish: 50 x .98 = 49.\nHe gets 79 questions right in total.", "79", None),
        # A calculation it cannot read follows the last one it read: the last value is unknown.
        ("First 48/2 = 24.\nThen x = 20.", "20", None),
        ("<<48/2=25>>", "25", ("wrong_calculation", "<<48/2=25>>: 48/2 is 24")),
        ("Natalia sold 48/2 = <<48/2=25>>25 clips in May.", "25", ("wrong_calculation", "<<48/2=25>>: 48/2 is 24")),
        ("She sold 48 + 24 = 70 clips.", "70", ("wrong_calculation", "48 + 24 = 70: 48 + 24 is 72")),
        ("She earned 0.2 x 50 = $12.", "12", ("wrong_calculation", "0.2 x 50 = $12: 0.2 x 50 is 10")),
        ("Each gets 10/3 = 3.35 pies.", "3.35", ("wrong_calculation", "10/3 = 3.35: 10/3 is 10/3 (3.33333)")),
        ("So 7/2 = 5 boxes.", "5", ("wrong_calculation", "7/2 = 5: 7/2 is 7/2 (3.5)")),
        ("The cost is (3 + 4) x 2 = 12.", "12", ("wrong_calculation", "(3 + 4) x 2 = 12: (3 + 4) x 2 is 14")),
        ("The wall is 2500 cases - 50 cases = 2400 cases.", "2400", ("wrong_calculation", "2500 - 50 = 2400: 2500 - 50 is 2450")),
        ("He uses 25 / 1/3 = 8.33 decorations.", "8.33", ("wrong_calculation", "25 / 1/3 = 8.33: 25 / 1/3 is 75")),
        ("So 192*100=$1920.", "1920", ("wrong_calculation", "192*100 = $1920: 192*100 is 19200")),  # GSM8K train 168
        (NATALIA, "70", ("answer_mismatch", "the final answer 70 is not the last computed value 72 (48+24 = 72)")),
        ("She sold 48 + 24 = 72 clips.\nSo the answer is 70.", "70", ("answer_mismatch", "the final answer 70 is not the last computed value 72 (48 + 24 = 72)")),
    ],
)  # fmt: skip
def test_calculations(solution: str, answer: str, verdict: tuple[str, str] | None) -> None:
    assert drop_of(row(solution, answer)) == verdict


@pytest.mark.parametrize(
    ("solution", "answer", "options", "reason"),
    [
        ("So 48/2 = <<48/2=25>>25 clips.", "25", {"calculations": False}, None),
        ("So 48 + 24 = 70 clips.", "70", {"plain_steps": False}, None),
        ("So 48/2 = <<48/2=25>>25 clips.", "25", {"plain_steps": False}, "wrong_calculation"),
        (NATALIA, "70", {"final_is_last": False}, None),
        (NATALIA, "70", {"calculations": False}, "answer_mismatch"),
        (NATALIA, "seventy-two", {}, None),  # not a number: nothing to compare
    ],
)
def test_each_check_can_be_switched_off(
    solution: str, answer: str, options: dict[str, Any], reason: str | None
) -> None:
    verdict = drop_of(row(solution, answer), **options)
    assert (verdict and verdict[0]) == reason


def test_gsm8k_format_rows_are_read_as_the_filters_read_them() -> None:
    gsm8k = {"question": QUESTION, "answer": NATALIA + "\n#### 72"}
    assert drop_of(gsm8k) is None
    assert drop_of({"question": QUESTION, "answer": NATALIA + "\n#### 71"}) == (
        "answer_mismatch",
        "the final answer 71 is not the last computed value 72 (48+24 = 72)",
    )
    boxed_only = {"question": QUESTION, "solution": "So 48 + 22 = 70.\nThe answer is $\\boxed{72}$."}
    assert drop_of(boxed_only) == (
        "answer_mismatch",
        "the final answer 72 is not the last computed value 70 (48 + 22 = 70)",
    )


# --- self-consistency


def sample(answer: Any = None, solution: str = "") -> dict[str, Any]:
    return {"solution": solution, "answer": answer}


@pytest.mark.parametrize(
    ("samples", "options", "verdict"),
    [
        ([sample("72"), sample("72"), sample("70"), sample("71")], {}, None),  # 2 of 4: the default 0.5
        ([sample("72"), sample("70"), sample("70"), sample("71")], {}, ("no_agreement", "1 of 4 samples agree with the answer 72 (min_agreement 0.5)")),
        ([sample("72"), sample("70"), sample("70"), sample("71")], {"min_agreement": 0.25}, None),
        ([sample("70")], {"min_agreement": None}, None),
        ([sample("70")], {"min_agreement": 0}, None),
        ([sample("72"), sample("72"), sample("70")], {"min_agreement": 1}, ("no_agreement", "2 of 3 samples agree with the answer 72 (min_agreement 1)")),
        # The project's grader decides: "$72", 72.0, "72 clips" all agree; an answer missing is read from the
        # solution, as `eval` reads a completion.
        ([sample("$72"), sample(72.0), sample("72 clips")], {"min_agreement": 1}, None),
        ([sample(solution="48 + 24 = 72, so \\boxed{72}."), sample(solution="So she sold 72 in all.")], {"min_agreement": 1}, None),
        ([sample(solution="She sold 70 in all.")], {}, ("no_agreement", "0 of 1 samples agree with the answer 72 (min_agreement 0.5)")),
        ([sample(None, "")], {}, ("no_agreement", "0 of 1 samples agree with the answer 72 (min_agreement 0.5)")),
        ([], {}, None),  # no samples: nothing to agree with
    ],
)  # fmt: skip
def test_samples_must_agree(
    samples: list[dict[str, Any]], options: dict[str, Any], verdict: tuple[str, str] | None
) -> None:
    assert drop_of(row(NATALIA, samples=samples), **options) == verdict


def test_samples_field_is_an_option() -> None:
    resolved = row(NATALIA, resolves=[sample("70"), sample("70")])
    assert drop_of(resolved) is None
    assert drop_of(resolved, samples_field="resolves")[0] == "no_agreement"  # type: ignore[index]


@pytest.mark.parametrize(
    ("samples", "shape"),
    [("72", "not str"), ({"answer": "72"}, "not dict"), (["72"], "not a list of other values")],
)
def test_malformed_samples_are_one_line_errors(samples: Any, shape: str) -> None:
    stage = build()
    with pytest.raises(MathforgeError) as error:
        stage.check([row(NATALIA), row(NATALIA, samples=samples)], [3, 7])
    assert (
        str(error.value)
        == f"<rows>:7: field 'samples' must be a list of {{'solution', 'answer'}} objects, {shape}"
    )


# --- solution programs, in the real sandbox

PROGRAMS = [
    ("def solution():\n    may = 48 / 2\n    return int(48 + may)\n", None),
    ("may = 48 // 2\nprint('May:', may)\nprint(48 + may)\n", None),  # no solution(): its last printed line
    ("Let me write it.\n```python\ndef solution():\n    return 72.0\n```\nDone.", None),  # a PAL completion
    ("def solution():\n    return 48 + 22\n", ("program_mismatch", "the program gives 70, the stated answer is 72")),
    ("def solution():\n    return 48 / 0\n", ("program_failed", "the program gives no answer (ZeroDivisionError: division by zero)")),
    ("x = 1\n", ("program_failed", "the program gives no answer (printed nothing)")),
    ("while True:\n    pass\n", ("program_failed", "the program gives no answer (Timeout: no result within 2 s)")),
]  # fmt: skip


@pytest.mark.skipif(
    isolation_error() is not None, reason=f"the sandbox tests need bubblewrap: {isolation_error()}"
)
def test_programs_run_in_the_sandbox() -> None:
    """One batch, so that the programs run side by side in the stage's sandbox pool."""
    rows = [row(NATALIA, program=program) for program, _ in PROGRAMS] + [row(NATALIA)]  # the last has none
    stage = build(program_field="program", program_timeout=2)
    try:
        verdicts = stage.check(rows, list(range(1, len(rows) + 1)))
    finally:
        stage.close()
    got = [None if drop is None else (drop.reason, drop.detail) for drop in verdicts]
    assert got == [expected for _, expected in PROGRAMS] + [None]


def test_programs_are_off_by_default() -> None:
    assert drop_of(row(NATALIA, program="def solution():\n    return 70\n")) is None


# --- options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_agreement": 1.5}, "invalid option --min-agreement: Input should be less than or equal to 1"),
        (
            {"min_agreement": -0.1},
            "invalid option --min-agreement: Input should be greater than or equal to 0",
        ),
        ({"program_timeout": 0}, "invalid option --program-timeout: Input should be greater than 0"),
        ({"answer_type": "numbers"}, "invalid option --answer-type: Input should be 'number', 'expression'"),
        ({"calculation": False}, "unknown option 'calculation'"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(MathforgeError) as error:
        STAGES["math_verify"].options.build(**options)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# --- GSM8K's training file

# Every GSM8K training row math_verify drops at its defaults, and why (the whole file: 7,473 rows).
# Genuine errors in the data: a calculation written wrong, or an answer the solution does not reach.
GSM8K_WRONG = {
    168: "192*100 = $1920",
    199: "6/3 = .5 (it is 3/6)",
    225: "4080 + 4080 / 2 = 4000 + 2040",
    503: "3/1 = 1",
    717: "100 * 0.75 = $0.75",
    3003: "8*3 = 240 (the annotation has 80*3)",
    3335: "$4200+$3000 = $8600",
    3410: "10 x .5 = 10",
    4692: "2*8 = 24",
    4974: "200*.55 = 100",
    5196: "5 x 1/2 = 10 (it is 5 / (1/2))",
    5351: "13 + 4 + 16 = 45",
    5782: "7+9+1+2 = $19.50",
    6158: "70 + 40 = 100",
    6257: "10 x 1,248 = 11,480",
    6701: "2 / 12 = .125",
    6714: "3 x (8/16) = 6 (it is 3 / (8/16))",
    6761: "4+4+6 = 18",
    6813: "50-8 = 44",
    6843: "500/ 2/5 = 200 (it is 500 * 2/5)",
    7179: "1152/ 1,536 = .5",
    7445: "14*20 = 140",
    # As written false, though the writer meant something else: dollars as cents, thousands left out.
    875: "$1 / 2 = 50 cents",
    2430: "$0.25/glass x 10 glasses = 250 cents",
    3860: "5 * 3 = $15,000 (5 thousand)",
    7357: "1 cheese +1 meat *+1 vegetable = 3",
    4594: "14 / 1 / 4 = 14 * 4 (for 14 / (1/4))",
    6406: "150 minutes / 5 minutes/100 meters = 3 times",
    # Misread: mixed units, words between the numbers of a step, a range.
    4560: "4 pounds - 6 ounces = 58 ounces",
    5397: "10 pages per day on day 1 * 2 = 20",
    6591: "Weeks 1-2 = 96 - 70",
}
GSM8K_MISMATCH = {  # the answer is not what the solution computes last (nor says in its last line)
    357: "48 + 16 = 64, answer 66",
    787: "4500/500 = 9 reams, answer 3",
    1155: "162+45 = 207 for 9 stockings, answer 1035",
    2771: "$70 + $38 = $108, answer 106",
    3264: "16 canes / 4 canes/cavity = 4 cavities, answer 16",
    4797: "100+20 = 120 tanks and trucks, answer 140",
    4911: "$400 - $100 = $300 saved, answer 100",
}


@pytest.fixture(scope="module")
def gsm8k_train() -> list[dict[str, Any]]:
    with GSM8K_TRAIN.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def test_gsm8k_train_first_rows(gsm8k_train: list[dict[str, Any]]) -> None:
    """The first 300 rows pass but for three with a wrong calculation."""
    verdicts = build().check(gsm8k_train[:300], list(range(1, 301)))
    dropped = {line: drop.detail for line, drop in enumerate(verdicts, 1) if drop is not None}
    assert dropped == {
        168: "192*100 = $1920: 192*100 is 19200",
        199: "6/3 = .5: 6/3 is 2",
        225: "4080 + 4080 / 2 = 4000 + 2040: 4080 + 4080 / 2 is 6120",
    }


def test_gsm8k_train_whole(gsm8k_train: list[dict[str, Any]]) -> None:
    verdicts = build().check(gsm8k_train, list(range(1, len(gsm8k_train) + 1)))
    dropped = {line: drop.reason for line, drop in enumerate(verdicts, 1) if drop is not None}
    expected = dict.fromkeys(GSM8K_WRONG, "wrong_calculation") | dict.fromkeys(
        GSM8K_MISMATCH, "answer_mismatch"
    )
    assert dropped == expected
    assert Counter(dropped.values()) == {"wrong_calculation": 31, "answer_mismatch": 7}
