"""Decontamination: benchmark test items planted in GSM8K-train rows are found (verbatim, reformatted, numbers
changed, short items whole), with the right benchmark, item and kind; clean rows are kept."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import BENCHMARK_DATA

from mathforge.benchmarks import Item, arith, get_spec, load_items
from mathforge.data.decontam import OverlapIndex, benchmark_names, benchmark_texts, number_blind, words
from mathforge.data.stages import STAGES, Drop, Stage, StageContext
from mathforge.data.stages.decontam import DecontamStageOptions
from mathforge.errors import MathforgeError
from mathforge.io import read_jsonl

GSM8K_TRAIN = BENCHMARK_DATA / "gsm8k_openai" / "train.jsonl"

# GSM8K-train rows that overlap GSM8K test items in the released data itself (train line: test idx, match).
# Read side by side, each is a test problem's sibling: the same text with other names and numbers, or a long
# shared phrase.
#   21    "Bella bought stamps at the post office. Some of the stamps had a snowflake design, ..." / test 632
#         "Max bought stamps at ...": names and numbers changed (the names keep it under the numbers score).
#   407   "... The first movie is 1 hour and 30 minutes long while the second movie is 30 minutes longer ..."
#         / test 581: a 15-word phrase in common, another problem (min_coverage 0.5 keeps it: test below).
#   1315, 5163  "A train travels 270 (360) miles in 3 hours. At the same rate, how many additional hours
#         would it take to travel an additional 180 (240) miles?" / test 602 "A plane travels 1200 miles ...".
#   2601  "Emir wants to buy a dictionary that costs $5, a dinosaur book that costs $11, and a children's
#         cookbook ..." / test 974 "Tyler wants to buy a dictionary that costs $18, ...".
GSM8K_TRAIN_NEAR_COPIES = {
    21: ("632", "exact"),
    407: ("581", "exact"),
    1315: ("602", "numbers"),
    2601: ("974", "numbers"),
    5163: ("602", "numbers"),
}


def build_stage(context: StageContext | None = None, **options: Any) -> Stage:
    stage_class = STAGES["decontam"]
    stage = stage_class(
        stage_class.options.build(**options), context or StageContext(data_dir=BENCHMARK_DATA)
    )
    stage.setup()
    return stage


def verdicts(stage: Stage, rows: list[dict[str, Any]]) -> list[Drop | None]:
    return stage.check(rows, list(range(1, len(rows) + 1)))


def verdict(stage: Stage, question: str, **fields: Any) -> Drop | None:
    return verdicts(stage, [{"question": question, **fields}])[0]


@pytest.fixture(scope="module")
def stage() -> Stage:
    """Against GSM8K and MATH-500 test items, the default options otherwise: built once for the module."""
    return build_stage(against=["gsm8k", "math500"])


@pytest.fixture(scope="module")
def gsm8k_test() -> dict[str, Item]:
    return {item.id: item for item in load_items(get_spec("gsm8k"), "test", BENCHMARK_DATA)}


@pytest.fixture(scope="module")
def gsm8k_train() -> list[dict[str, Any]]:
    return [row for _, row in read_jsonl(GSM8K_TRAIN)]


# --- normalisation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reformatted", "original"),
    [
        ("JANET'S DUCKS LAY 16 EGGS", "Janet's ducks lay 16 eggs"),
        ("Janet's ducks, lay 16 eggs!!", "Janet's ducks lay 16 eggs."),
        ("  Janet's\n\tducks   lay 16\neggs ", "Janet's ducks lay 16 eggs"),
        ("Problem: Janet's ducks lay 16 eggs", "Janet's ducks lay 16 eggs"),
        ("**Question 3.** Janet's ducks lay 16 eggs", "Janet's ducks lay 16 eggs"),
        ("Janet\u2019s ducks lay \uff11\uff16 eggs", "Janet's ducks lay 16 eggs"),  # curly quote, full-width
        ("a fence 1,000 feet long", "a fence 1000 feet long"),
        ("$\\frac{1}{2}$ of 10", "\\frac 1 2 of 10"),
    ],
)
def test_reformatting_leaves_the_words_alone(reformatted: str, original: str) -> None:
    assert words(reformatted) == words(original)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the numbers 1, 2, 3", ["the", "numbers", "1", "2", "3"]),  # a list is not a thousands separator
        ("costs $2.50 each", ["costs", "2.50", "each"]),
        ("共有5个苹果", ["共", "有", "5", "个", "苹", "果"]),  # CJK characters are words of their own
        ("Q: problem solving", ["problem", "solving"]),  # the label goes, the word in the text stays
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_number_blind_replaces_numbers_only() -> None:
    assert number_blind(words("He buys 3 apples for $2.50 in 2024")) == [
        "he", "buys", "#", "apples", "for", "#", "in", "#"
    ]  # fmt: skip


# --- GSM8K test questions planted in GSM8K-train rows -------------------------------------------------------


def _change_first_number(text: str) -> str:
    return re.sub(r"\d+", lambda found: str(int(found.group()) + 7), text, count=1)


def _sentence_punctuation(text: str) -> str:
    return re.sub(r"[,.?!;:]+(?=\s|$)", " ;", text)


Variant = Callable[[str], str]
PLANTED: list[tuple[str, Variant, str, str]] = [
    ("verbatim", lambda q: q, "benchmark_overlap", "exact"),
    ("upper case", str.upper, "benchmark_overlap", "exact"),
    ("punctuation", _sentence_punctuation, "benchmark_overlap", "exact"),
    ("whitespace", lambda q: "  \n ".join(q.split()) + "\n", "benchmark_overlap", "exact"),
    ("Problem: prefix", lambda q: f"Problem: {q}", "benchmark_overlap", "exact"),
    ("one number changed", _change_first_number, "benchmark_overlap_numbers_changed", "numbers"),
]
PLANTED_ITEMS = ["0", "17", "250", "777", "1318"]


def test_gsm8k_test_questions_planted_in_gsm8k_train_are_all_found(
    stage: Stage, gsm8k_test: dict[str, Item], gsm8k_train: list[dict[str, Any]]
) -> None:
    """Every variant of every planted item is found, with its benchmark, item id and kind of match; of the
    7,473 train rows, only the five genuine near-copies of test items are flagged (see the table above)."""
    rows: list[tuple[dict[str, Any], tuple[str, ...]]] = [
        (row, ("train", str(line))) for line, row in enumerate(gsm8k_train, 1)
    ]
    for number, (_, variant, reason, match) in enumerate(PLANTED):
        for offset, item in enumerate(PLANTED_ITEMS):
            planted = {"question": variant(gsm8k_test[item].question), "answer": "#### 0"}
            rows.insert(1000 * (offset + 1) + 37 * number, (planted, ("planted", item, reason, match)))
    near_copies = {}
    for (_, origin), drop in zip(rows, verdicts(stage, [row for row, _ in rows]), strict=True):
        if origin[0] == "planted":
            assert drop is not None, origin
            _, item, reason, match = origin
            found = (drop.reason, drop.info["benchmark"], drop.info["item"], drop.info["match"])
            assert found == (reason, "gsm8k", item, match), drop.detail
            assert drop.info["score"] == 1.0 and set(drop.info) >= {
                "benchmark",
                "item",
                "ngram",
                "score",
                "match",
            }
        elif drop is not None:
            near_copies[int(origin[1])] = (drop.info["item"], drop.info["match"])
    assert near_copies == GSM8K_TRAIN_NEAR_COPIES


@pytest.mark.parametrize(("name", "variant", "reason", "match"), PLANTED, ids=[p[0] for p in PLANTED])
def test_each_variant_names_the_item_and_the_shared_ngram(
    stage: Stage, gsm8k_test: dict[str, Item], name: str, variant: Variant, reason: str, match: str
) -> None:
    item = gsm8k_test["17"]
    drop = verdict(stage, variant(item.question))
    assert drop is not None and drop.reason == reason
    ngram = drop.info["ngram"]
    assert len(ngram.split()) == 13 and ngram in " ".join(words(item.question))
    if match == "numbers":  # the example n-gram shows the number that was changed
        assert ngram not in " ".join(words(variant(item.question)))


def test_numbers_changed_is_a_separate_pass(stage: Stage, gsm8k_test: dict[str, Item]) -> None:
    """With one number changed the exact pass still sees part of the item (a low score); with every number
    changed it sees nothing at all: published rules miss that row, the number-blind pass does not."""
    question = gsm8k_test["17"].question
    every_number = re.sub(r"\d+", lambda found: str(int(found.group()) * 3 + 1), question)
    exact_only = build_stage(against=["gsm8k"], numbers=False)
    one = verdict(exact_only, _change_first_number(question))
    assert one is not None and one.reason == "benchmark_overlap" and one.info["score"] < 1.0
    assert verdict(exact_only, every_number) is None
    every = verdict(stage, every_number)
    assert every is not None and every.reason == "benchmark_overlap_numbers_changed"
    assert (every.info["item"], every.info["score"]) == ("17", 1.0)


def test_clean_rows_are_kept(stage: Stage, gsm8k_train: list[dict[str, Any]]) -> None:
    """No arith row is flagged, and no GSM8K-train row besides its known near-copies of test items."""
    arith_rows = arith.generate(3000, seed=0, split="train")
    assert [line for line, drop in enumerate(verdicts(stage, arith_rows), 1) if drop] == []
    flagged = [line for line, drop in enumerate(verdicts(stage, gsm8k_train), 1) if drop]
    assert flagged == sorted(GSM8K_TRAIN_NEAR_COPIES)


@pytest.mark.parametrize(
    ("min_coverage", "kept"),
    [(0.0, set()), (0.5, {407, 21})],  # 407 shares one phrase (36% of item 581), 21 shares 45% of item 632
)
def test_min_coverage_keeps_rows_that_share_only_part_of_an_item(
    gsm8k_train: list[dict[str, Any]], min_coverage: float, kept: set[int]
) -> None:
    stage = build_stage(against=["gsm8k"], benchmark_fields=["question"], min_coverage=min_coverage)
    rows = [gsm8k_train[line - 1] for line in sorted(GSM8K_TRAIN_NEAR_COPIES)]
    found = {
        line
        for line, drop in zip(sorted(GSM8K_TRAIN_NEAR_COPIES), verdicts(stage, rows), strict=True)
        if drop
    }
    assert found == set(GSM8K_TRAIN_NEAR_COPIES) - kept


# The option sets docs/decontamination.md gives for each published rule.
PUBLISHED_RULES = {
    "lm-eval": {"ngram": 13, "benchmark_fields": ["question"], "numbers": False, "min_words": 13},
    "DeepSeekMath": {
        "ngram": 10,
        "min_words": 3,
        "short_match": "contained",
        "numbers": False,
        "benchmark_fields": ["question", "solution"],
        "against": ["gsm8k", "math", "cmath", "gaokao_math_qa", "gaokao_math_cloze"],
        "fields": ["question", "solution"],
    },
    "Llemma": {"ngram": 30, "numbers": False, "min_words": 30, "fields": ["question", "solution"]},
    "Tülu 3": {
        "ngram": 8,
        "min_coverage": 0.5,
        "benchmark_fields": ["question"],
        "numbers": False,
        "min_words": 8,
    },
}


@pytest.mark.parametrize("rule", list(PUBLISHED_RULES))
def test_published_rules_find_copies_and_miss_numbers_changed_ones(
    rule: str, gsm8k_test: dict[str, Item]
) -> None:
    options = PUBLISHED_RULES[rule]
    DecontamStageOptions.build(**options)
    stage = build_stage(**{**options, "against": ["gsm8k"]})
    question = gsm8k_test["17"].question
    every_number = re.sub(r"\d+", lambda found: str(int(found.group()) * 3 + 1), question)
    found = verdicts(
        stage,
        [{"question": f"Problem: {question}", "solution": ""}, {"question": every_number, "solution": ""}],
    )
    assert found[0] is not None and found[0].reason == "benchmark_overlap" and found[0].info["item"] == "17"
    # Every number changed: nothing, or a stray n-gram between two numbers (DeepSeekMath's 10-grams find one).
    assert found[1] is None or (found[1].reason == "benchmark_overlap" and found[1].info["score"] < 0.1)


# --- short items --------------------------------------------------------------------------------------------

SHORT_ITEM = "test/counting_and_probability/116.json"  # "Compute $\dbinom{31}{28}$." (4 words)


@pytest.fixture(scope="module")
def short_question() -> str:
    items = {item.id: item for item in load_items(get_spec("math500"), "test", BENCHMARK_DATA)}
    question = items[SHORT_ITEM].question
    assert len(words(question)) < 13
    return question


@pytest.mark.parametrize(
    "variant", [lambda q: q, lambda q: f"Problem:  {q.upper()}"], ids=["verbatim", "reformatted"]
)
def test_a_short_math500_item_is_found_whole(stage: Stage, short_question: str, variant: Variant) -> None:
    drop = verdict(stage, variant(short_question))
    assert drop is not None and drop.reason == "benchmark_short_item"
    assert (drop.info["benchmark"], drop.info["item"], drop.info["match"], drop.info["score"]) == (
        "math500", SHORT_ITEM, "short", 1.0
    )  # fmt: skip
    assert drop.info["ngram"] == "compute dbinom 31 28"


@pytest.mark.parametrize(("short_match", "found"), [("equal", False), ("contained", True)])
def test_a_short_item_inside_a_longer_question(short_question: str, short_match: str, found: bool) -> None:
    stage = build_stage(against=["math500"], short_match=short_match)
    assert (verdict(stage, f"{short_question} Then add 5 to the result.") is not None) is found
    assert verdict(stage, "Compute $\\dbinom{31}{27}$.") is None  # another number: another problem


# --- solutions, seeds ---------------------------------------------------------------------------------------


def test_a_solution_overlap_is_found(gsm8k_test: dict[str, Item]) -> None:
    solution = gsm8k_test["250"].solution
    assert solution is not None
    row = {"question": "How many eggs are left?", "solution": solution}
    both = build_stage(against=["gsm8k"], fields=["question", "solution"])
    drop = verdicts(both, [row])[0]
    assert drop is not None and drop.reason == "benchmark_overlap"
    assert (drop.info["item"], drop.info["field"], drop.info["item_field"]) == ("250", "solution", "solution")
    questions_only = build_stage(
        against=["gsm8k"], fields=["question", "solution"], benchmark_fields=["question"]
    )
    assert verdicts(questions_only, [row]) == [None]


def test_gsm8k_train_solutions_share_only_stock_phrases(gsm8k_train: list[dict[str, Any]]) -> None:
    """Checked against GSM8K test solutions, train solutions share a few 13-word stock phrases ("and there
    are 7 days in a week so she eats 3 7", "number of students in each grade to find the total number of
    students"): published 13-gram rules flag these too. None is a numbers-changed match: number-blind n-grams
    of calculations ("45 * 30000 = 1350000 so the total cost") match any other calculation, and do not
    count."""
    stage = build_stage(against=["gsm8k"], fields=["answer"])
    flagged = {line: drop.reason for line, drop in enumerate(verdicts(stage, gsm8k_train), 1) if drop}
    assert flagged == dict.fromkeys([700, 2050, 5004, 5259, 5457, 6842], "benchmark_overlap")


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    rows = [
        {"question": "A baker makes 24 loaves of bread every morning and sells each loaf for 3 dollars at "
         "the market. How much does she earn in a week?", "answer": "504"},
        {"question": "Name the shape with three sides and three equal angles in it.", "solution": "An "
         "equilateral triangle has three equal sides and three equal angles of 60 degrees each."},
    ]  # fmt: skip
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("question", "reason", "item"),
    [
        ("A baker makes 24 loaves of bread every morning and sells each loaf for 3 dollars at the market. "
         "How much does she earn in a week?", "seed_overlap", "1"),
        ("A baker makes 30 loaves of bread every morning and sells each loaf for 2 dollars at the market. "
         "How much does she earn in a week?", "seed_overlap_numbers_changed", "1"),
        ("Name the shape with three sides and three equal angles in it.", "seed_short_item", "2"),
        ("A baker bakes bread and cakes every morning. How many does she bake?", None, None),
    ],
)  # fmt: skip
def test_seed_overlap(seeds: Path, question: str, reason: str | None, item: str | None) -> None:
    context = StageContext(base_dir=seeds.parent, data_dir=BENCHMARK_DATA)
    stage = build_stage(context, against=["math500"], seeds=seeds.name)  # relative to the pipeline file
    drop = verdict(stage, question)
    assert (
        (drop.reason, drop.info["benchmark"], drop.info["item"]) == (reason, "seeds", item)
        if drop
        else not reason
    )


def test_a_seed_row_without_a_question_is_a_file_line_error(tmp_path: Path) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text(
        '{"question": "What is two plus two, said in words?"}\n{"problem": "x"}\n', encoding="utf-8"
    )
    with pytest.raises(
        MathforgeError, match=rf"^{re.escape(str(path))}:2: a seed row needs a 'question' text$"
    ):
        build_stage(against=["math500"], seeds=str(path))
    with pytest.raises(MathforgeError, match="seed file not found"):
        build_stage(against=["math500"], seeds=str(tmp_path / "missing.jsonl"))


# --- options and input errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("against", "message"),
    [
        ("gsm8kk,math500", "must be one of arith, gsm8k, .*; got 'gsm8kk' \\(did you mean gsm8k\\?\\)"),
        ("gsm8k,MATH-500", "must be one of .*; got 'MATH-500' \\(did you mean math500\\?\\)"),
        ("minerva_math", "'minerva_math' is ambiguous: .*use 'math500'"),
    ],
)
def test_against_names_registered_benchmarks(against: str, message: str) -> None:
    with pytest.raises(MathforgeError, match=f"^invalid option --against: {message}") as error:
        DecontamStageOptions.build(against=against)
    assert "\n" not in str(error.value)


def test_all_means_every_benchmark_the_data_has() -> None:
    names, skipped = benchmark_names(["gsm8k", "all"], BENCHMARK_DATA)
    assert names[0] == "gsm8k" and names.count("gsm8k") == 1 and {"math500", "arith", "aime24"} <= set(names)
    assert skipped == ["tabmwp"]  # no tabmwp/test.jsonl in the shared data
    with pytest.raises(MathforgeError, match="data file not found: .*tabmwp"):
        list(benchmark_texts("tabmwp", BENCHMARK_DATA))  # named explicitly, it must load


def test_a_row_without_the_checked_field_is_an_error(stage: Stage) -> None:
    stage.context.source = Path("rows.jsonl")
    with pytest.raises(
        MathforgeError, match=r"^rows\.jsonl:2: no field 'question' \(decontam checks question\)$"
    ):
        verdicts(stage, [{"question": "fine"}, {"problem": "misnamed"}])
    assert verdicts(stage, [{"question": None}]) == [None]  # a null text is empty, not missing


# --- in curate's worker processes ---------------------------------------------------------------------------


def test_each_worker_process_builds_its_own_index(
    tmp_path: Path, gsm8k_test: dict[str, Item], gsm8k_train: list[dict[str, Any]]
) -> None:
    """Hashes are salted per process: two workers, each with its own index, give the verdicts of one."""
    from mathforge.data.pipeline import run_single

    rows = gsm8k_train[:300]
    rows[150] = {"question": "Question: " + gsm8k_test["42"].question.lower()}
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    stage = {"decontam": {"against": ["gsm8k"]}}
    _, dropped = run_single(
        source, stage, out=tmp_path / "clean.jsonl", data_dir=BENCHMARK_DATA, workers=2, quiet=True
    )
    assert [(d.line, d.drop.reason, d.drop.info["item"]) for d in dropped] == [
        (21, "benchmark_overlap", "632"), (151, "benchmark_overlap", "42")
    ]  # fmt: skip


# --- the index ----------------------------------------------------------------------------------------------


def test_the_closest_item_wins_and_a_copy_beats_a_sibling() -> None:
    """Two items that differ only in numbers: a verbatim copy of one is an exact match of that one, not a
    numbers-changed match of the other."""
    index = OverlapIndex(ngram=5)
    index.add("b", "one", "question", "Sam has 3 red apples and 4 green apples in a basket today")
    index.add("b", "two", "question", "Sam has 5 red apples and 6 green apples in a basket today")
    index.add("b", "far", "question", "Sam has 5 red apples and then he sells them at the market")
    found = index.find("sam has 5 red apples and 6 green apples in a basket today")
    assert found is not None and (found.item, found.match, found.score) == ("two", "exact", 1.0)
    changed = index.find("Sam has 9 red apples and 1 green apples in a basket today")
    assert changed is not None and (changed.item, changed.match) in {("one", "numbers"), ("two", "numbers")}
    assert changed.score == 1.0


def test_texts_below_min_words_are_not_indexed() -> None:
    index = OverlapIndex(ngram=13, min_words=3)
    index.add("b", "1", "solution", "72")
    index.add("b", "2", "question", "What is 6 times 12?")
    assert len(index) == 1 and index.find("72") is None
