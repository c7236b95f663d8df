"""The row filters of `curate`: structure, answer_range, solution_quality, machine_text.

Crafted rows each filter must keep or drop (with its reason), bad options as one-line errors, and GSM8K's
training file, which every filter keeps whole at its defaults.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from conftest import BENCHMARK_DATA

from mathforge.data.stages import STAGES, Stage, StageContext
from mathforge.data.stages.filters import RowFields, read_problem, solution_steps
from mathforge.errors import MathforgeError

GSM8K_TRAIN = BENCHMARK_DATA / "gsm8k_openai" / "train.jsonl"
FILTERS = ("structure", "answer_range", "solution_quality", "machine_text")

QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
SOLUTION = "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May."
GSM8K_ROW = {
    "question": QUESTION,
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
    "altogether in April and May.\n#### 72",
}


def build(name: str, **options: Any) -> Stage:
    stage_class = STAGES[name]
    stage = stage_class(stage_class.options.build(**options), StageContext())
    stage.setup()
    return stage


def verdict(name: str, row: dict[str, Any], **options: Any) -> str | None:
    """The reason the stage drops `row` for, None when it keeps it."""
    found = build(name, **options).check([row], [1])[0]
    return None if found is None else found.reason


def row(**fields: Any) -> dict[str, Any]:
    """A synthetic row: the Natalia problem, with `fields` replaced (None removes one)."""
    base = {"question": QUESTION, "solution": SOLUTION, "answer": "72"}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


# --- reading a row


@pytest.mark.parametrize(
    ("given", "solution", "answer"),
    [
        (
            GSM8K_ROW,
            "Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
            "72",
        ),  # GSM8K: the answer field has both
        (row(answer=72.0), SOLUTION, "72"),  # a JSON number
        (row(answer=None, solution="So she sold 72. The answer is $\\boxed{72}$."), "So she sold", "72"),
        (row(answer=None, solution="48+24 = 72 clips.\n#### 72"), "48+24 = 72 clips.", "72"),  # line stripped
        (row(answer=None, solution="She sold 48+24 = 72 clips."), "She sold", ""),  # a last number: no answer
        (row(answer="  "), SOLUTION, ""),
        (row(answer="#### "), SOLUTION, ""),
    ],
)
def test_read_problem(given: dict[str, Any], solution: str, answer: str) -> None:
    problem = read_problem(given, RowFields())
    assert problem.solution.startswith(solution)
    assert "####" not in problem.solution
    assert problem.answer == answer


def test_field_names_are_options() -> None:
    renamed = {"problem": QUESTION, "reasoning": SOLUTION, "final": 72}
    fields = RowFields.build(question_field="problem", solution_field="reasoning", answer_field="final")
    problem = read_problem(renamed, fields)
    assert (problem.question, problem.solution, problem.answer) == (QUESTION, SOLUTION, "72")
    options = {"question_field": "problem", "solution_field": "reasoning", "answer_field": "final"}
    assert verdict("structure", renamed, **options) is None
    assert verdict("structure", renamed) == "missing_question"  # "question" is no field of this row


# --- structure


@pytest.mark.parametrize(
    ("given", "options", "reason"),
    [
        (GSM8K_ROW, {}, None),
        (row(), {}, None),
        (row(answer=None, solution=SOLUTION + " The answer is 72."), {}, None),
        (row(question=None), {}, "missing_question"),
        (row(question="   "), {}, "missing_question"),
        (row(solution=""), {}, "missing_solution"),
        (row(answer=None), {}, "no_answer"),  # and the solution states none
        (row(answer="#### "), {}, "no_answer"),
        (row(question=["a", "list"]), {}, "not_text"),
        (row(answer={"value": 72}), {}, "not_text"),
        (row(solution=""), {"required": ["question", "answer"]}, None),
        (row(), {"required": ["question", "source-id"]}, "missing_source_id"),
        (row(**{"source-id": "seed-3"}), {"required": "question,source-id"}, None),
    ],
)
def test_structure(given: dict[str, Any], options: dict[str, Any], reason: str | None) -> None:
    assert verdict("structure", given, **options) == reason


# --- answer range


@pytest.mark.parametrize(
    ("answer", "options", "reason"),
    [
        ("72", {}, None),
        (72, {}, None),
        ("1,000", {}, None),
        ("$12", {}, None),
        ("12 apples", {}, None),
        ("-2", {}, None),  # GSM8K has negative answers (temperatures)
        ("12.50", {}, "not_integer"),
        ("3/4", {}, "not_integer"),
        ("12.50", {"integer_only": False}, None),
        ("\\frac{3}{4}", {"integer_only": False}, None),
        ("-2", {"non_negative": True}, "negative"),
        ("1,000", {"max": 999}, "above_max"),
        ("1,000", {"max": 1000}, None),
        ("$12", {"min": 13}, "below_min"),
        ("12.50", {"integer_only": False, "min": 12.5, "max": 12.5}, None),
        ("x + 1", {}, "not_a_number"),
        ("two", {}, "not_a_number"),
        ("2 and 3", {}, "not_a_number"),
        ("x + 1", {"require_number": False}, None),
        (None, {}, "no_answer"),
    ],
)
def test_answer_range(answer: Any, options: dict[str, Any], reason: str | None) -> None:
    assert verdict("answer_range", row(answer=answer, solution="No stated answer here."), **options) == reason


def test_answer_range_detail_names_the_value() -> None:
    drop = build("answer_range", max=1000).check([row(answer="$1,500")], [1])[0]
    assert drop is not None
    assert drop.detail == "answer 1500 is above max 1000"
    assert drop.info == {"value": "1500"}


# --- solution quality

LOOP = "Step 1: 48/2 = 24.\n" + "She sold 24 clips, so the total is 48 + 24.\n" * 6
MIDDLE_LOOP = "Let me think.\nWe add the clips.\nWe add the clips.\nWe add the clips.\nSo 48 + 24 = 72 clips."


@pytest.mark.parametrize(
    ("solution", "options", "reason"),
    [
        (SOLUTION, {}, None),
        ("Natalia sold 24 clips in May. So she sold 48 + 24 = 72 clips in all.", {}, None),  # two sentences
        ("She sold 48 + 24 = 72 clips in all.", {}, "too_few_steps"),
        ("She sold 48 + 24 = 72 clips in all.", {"min_steps": 1}, None),
        ("24.\n72.", {}, "too_short"),
        (SOLUTION, {"max_chars": 50}, "too_long"),
        (SOLUTION, {"max_chars": None}, None),
        (SOLUTION, {"max_steps": 1, "min_steps": 1}, "too_many_steps"),
        (LOOP, {}, "repetition_loop"),
        ("Natalia sold 48/2 = 24 clips.\n" + "1\n" * 100, {}, "repetition_loop"),
        (MIDDLE_LOOP, {}, "repetition_loop"),
        (MIDDLE_LOOP, {"max_line_repeats": 3}, None),
        (MIDDLE_LOOP, {"max_line_repeats": None}, None),
        ("Natalia sold 48/2 = 24 clips in May.\nSo in all she sold 48 + 24 =", {}, "cut_off"),
        ("Natalia sold 48/2 = 24 clips in May.\nSo in all she sold \\boxed{72", {}, "cut_off"),
        ("Natalia sold 48/2 = 24 clips in May,\nso in all she sold 48 + 24 = 72 clips,", {}, None),
        # "sq. ft." on every line is no loop of the "sentence" "ft." (GSM8K train line 7303).
        ("The wall is 8 ft. * 20 ft. = 160 sq. ft.\nThe door is 3 ft. * 7 ft. = 21 sq. ft.\n"
         "The window is 6 ft. * 4 ft. = 24 sq. ft.\nSo 160 sq. ft. - 21 sq. ft. - 24 sq. ft. = 115 sq. ft.", {}, None),
    ],
)  # fmt: skip
def test_solution_quality(solution: str, options: dict[str, Any], reason: str | None) -> None:
    assert verdict("solution_quality", row(solution=solution), **options) == reason


def test_steps_are_lines_or_sentences() -> None:
    assert solution_steps("A.\n\n  B.\nC.") == ["A.", "B.", "C."]
    assert solution_steps("She sold 0.5 x 48 = 24. Then 48 + 24 = 72! Done") == [
        "She sold 0.5 x 48 = 24.",
        "Then 48 + 24 = 72!",
        "Done",
    ]


# --- machine text


@pytest.mark.parametrize(
    ("question", "solution", "reason"),
    [
        (QUESTION, SOLUTION, None),
        (QUESTION, "I'm sorry, but I cannot solve this problem.", "refusal"),
        (QUESTION, "I can't help with that request.", "refusal"),
        ("I apologize, here is a problem: how many clips?", SOLUTION, "refusal"),
        (QUESTION, "This problem cannot be solved with the information given.", "refusal"),
        (QUESTION, "Sure! " + SOLUTION, "assistant_boilerplate"),
        (QUESTION, SOLUTION + "\nI hope this helps!", "assistant_boilerplate"),
        (QUESTION, "As an AI language model, I computed 48 + 24 = 72.", "assistant_boilerplate"),
        (QUESTION, "Here is the step-by-step solution:\n" + SOLUTION, "assistant_boilerplate"),
        (QUESTION, SOLUTION + "\nLet me know if you need anything else.", "assistant_boilerplate"),
        ("Here's a new math word problem: " + QUESTION, SOLUTION, "talks_about_task"),
        ("New problem: " + QUESTION, SOLUTION, "talks_about_task"),
        (QUESTION, SOLUTION + "\nThis problem is designed for grade-school students.", "talks_about_task"),
        (QUESTION, "I have created a similar problem with other numbers. " + SOLUTION, "talks_about_task"),
        (QUESTION + "\nSolution: 48/2 = 24", SOLUTION, "solution_in_question"),
        (QUESTION + " $\\boxed{72}$", SOLUTION, "solution_in_question"),
        (QUESTION, SOLUTION + "<|im_end|>", "chat_markup"),
        (QUESTION, SOLUTION + "\n\nHuman: another one", "chat_markup"),
        ("[INST] " + QUESTION, SOLUTION, "chat_markup"),
        ("### Problem\n" + QUESTION, SOLUTION, "markdown_debris"),
        ("```\n" + QUESTION + "\n```", SOLUTION, "markdown_debris"),
        (QUESTION, SOLUTION + "\n---", "markdown_debris"),
        (QUESTION, "**Step 1:** " + SOLUTION, None),  # formatting, closed
        (QUESTION, "**Step 1: " + SOLUTION, "markdown_debris"),  # an unclosed bold
        (QUESTION, "```python\nprint(48 + 24)", "markdown_debris"),
        (QUESTION, SOLUTION + "<br>", "markdown_debris"),
        (QUESTION, "See [the chart](http://x.y/z.png). " + SOLUTION, "markdown_debris"),
        (QUESTION, "Natalia sold {{number}} clips. " + SOLUTION, "markdown_debris"),
        # A power "2**3" is no bold marker; calculator annotations ("<<2**3=8>>") are never debris.
        (QUESTION, "2**3 = <<2**3=8>>8 boxes.\nSo 8 + 64 = <<8+64=72>>72.", None),
        (QUESTION, "**Boxes:** 2**3 = 8.\nSo 8 + 64 = 72.", None),
        # A word problem may quote people: "The instructions say" is no talk about the task (GSM8K train 1111).
        ("The instructions say that for every kilogram she needs 5 ml. " + QUESTION, SOLUTION, None),
        ("Tom says: 'I can't swim 100 meters.' How far can he swim?", SOLUTION, None),
    ],
)
def test_machine_text(question: str, solution: str, reason: str | None) -> None:
    assert verdict("machine_text", row(question=question, solution=solution)) == reason


def test_machine_text_checks_and_extra_patterns() -> None:
    polite = row(solution="Sure! " + SOLUTION)
    assert verdict("machine_text", polite, checks=["refusal", "markdown_debris"]) is None
    assert verdict("machine_text", row(), extra_patterns={"names_a_model": ["ChatGPT|GPT-4"]}) is None
    chatty = row(solution=SOLUTION + " (checked with gpt-4)")
    drop = build("machine_text", extra_patterns={"names_a_model": ["ChatGPT|GPT-4"]}).check([chatty], [1])[0]
    assert drop is not None
    assert (drop.reason, drop.info) == ("names_a_model", {"field": "solution"})
    assert "'gpt-4'" in drop.detail


# --- options


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("answer_range", {"min": 10, "max": 5}, "invalid options: min (10) is above max (5)"),
        ("answer_range", {"max": "lots"}, "invalid option --max: Input should be a valid number"),
        ("answer_range", {"maximum": 5}, "unknown option 'maximum'"),
        ("solution_quality", {"min_steps": 0}, "invalid option --min-steps: Input should be greater than or equal to 1"),
        ("solution_quality", {"min_chars": 100, "max_chars": 50}, "min_chars (100) is above max_chars (50)"),
        ("solution_quality", {"min_steps": 5, "max_steps": 2}, "min_steps (5) is above max_steps (2)"),
        ("machine_text", {"checks": ["refusals"]}, "must be one of refusal, assistant_boilerplate"),
        ("machine_text", {"checks": ["refusals"]}, "(did you mean refusal?)"),
        ("machine_text", {"extra_patterns": {"Bad Key": ["x"]}}, "reason key 'Bad Key' must be snake_case"),
        ("machine_text", {"extra_patterns": {"bad_regex": ["(unclosed"]}}, "'bad_regex': not a regular expression"),
        ("structure", {"required": 3}, "invalid option --required"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_errors(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(MathforgeError) as error:
        STAGES[name].options.build(**options)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# --- GSM8K's training file


@pytest.fixture(scope="module")
def gsm8k_train() -> list[dict[str, Any]]:
    with GSM8K_TRAIN.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file]


@pytest.mark.parametrize("name", FILTERS)
def test_gsm8k_train_passes_every_filter(name: str, gsm8k_train: list[dict[str, Any]]) -> None:
    """All 7,473 rows: GSM8K is what the defaults are for, and none of its rows is malformed."""
    verdicts = build(name).check(gsm8k_train, list(range(1, len(gsm8k_train) + 1)))
    dropped = Counter(f"{drop.reason}: {drop.detail}" for drop in verdicts if drop is not None)
    assert not dropped, dropped.most_common(5)
