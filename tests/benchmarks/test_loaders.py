"""Every registered benchmark loads from ../shared/data/benchmarks with the right questions, golds and choices."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BENCHMARK_DATA

from mathforge.benchmarks import REGISTRY, HubSource, get_spec, load_items
from mathforge.benchmarks.loaders import hub_rows
from mathforge.errors import MathforgeError

# name -> (rows, first item's gold, first item's number of choices or None)
EXPECTED = {
    "gsm8k": (1319, "18", None),
    "math": (5000, "2", None),
    "math500": (500, "\\left( 3, \\frac{\\pi}{2} \\right)", None),
    "ocw": (272, "1.6", None),
    "svamp": (1000, "145", None),
    "asdiv": (2215, "9", None),
    "mawps": (2065, "43", None),
    "gsm_hard": (1319, "-9867630", None),  # target -9867630.0, an integer
    "sat_math": (32, "A", 4),
    "mmlu_stem": (3018, "C", 4),
    "gaokao2023en": (385, "\\{x|-2\\leq x < 1\\}", None),  # "$...$" unwrapped
    "gaokao_math_qa": (351, "D", 4),
    "gaokao_math_cloze": (118, "2", None),
    "cn_middle_school": (101, "A", None),
    "cmath": (600, "9", None),
    "aqua": (254, "A", 5),
    "mathqa": (1000, "A", 5),
    "college_math": (2818, "10-4 n", None),
    "olympiadbench": (675, "2", None),  # final_answer ["2"]
    "aime24": (30, "204", None),
    "amc23": (40, "27", None),
    "carp_en": (976, "b ^ { 2 } - 9 a ^ { 2 }", None),
}


def test_every_registered_benchmark_is_covered() -> None:
    assert set(REGISTRY) == set(EXPECTED) | {"arith", "tabmwp"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loads_from_data_dir(name: str) -> None:
    rows, first_gold, n_choices = EXPECTED[name]
    items = load_items(get_spec(name), data_dir=BENCHMARK_DATA)
    assert len(items) == rows
    assert len({item.id for item in items}) == rows, "item ids must be unique (resume relies on them)"
    assert all(item.question.strip() and item.gold.strip() for item in items)
    assert items[0].gold == first_gold
    if n_choices is not None:
        assert len(items[0].choices) == n_choices
    if get_spec(name).answer_type == "choice":
        for item in items:
            assert item.gold.isalpha() and item.gold.isupper()
            assert all(ord(letter) - ord("A") < len(item.choices) for letter in item.gold)


def test_gold_rules_on_real_rows() -> None:
    gsm = load_items(get_spec("gsm8k"), data_dir=BENCHMARK_DATA)
    assert "2,125" in {item.gold for item in gsm}  # golds stay as written; the grader normalises commas
    math = load_items(get_spec("math"), data_dir=BENCHMARK_DATA)
    assert math[0].subsets == {"level": "Level 3", "subject": "Algebra"}
    olympiad = load_items(get_spec("olympiadbench"), data_dir=BENCHMARK_DATA)
    assert not any(item.gold.startswith("$") for item in olympiad)
    gaokao = {i.gold for i in load_items(get_spec("gaokao_math_qa"), data_dir=BENCHMARK_DATA)}
    assert {"BCD", "AC", "ABD"} <= gaokao  # "B C D" and "A B D" become one spelling
    aqua = load_items(get_spec("aqua"), data_dir=BENCHMARK_DATA)[0]
    assert aqua.choices[0] == "5(√3 + 1)"
    mathqa = load_items(get_spec("mathqa"), data_dir=BENCHMARK_DATA)[0]
    assert mathqa.choices == ["12", "16", "18", "24", "26"]
    sat = load_items(get_spec("sat_math"), data_dir=BENCHMARK_DATA)[0]
    assert sat.choices == ["$f(-6)=0$", "$f(6)=-6$", "$f(-6)=6$", "$f(0)=-6$"]
    asdiv = load_items(get_spec("asdiv"), data_dir=BENCHMARK_DATA)[0]
    assert (
        asdiv.question
        == "Seven red apples and two green apples are in the basket. How many apples are in the basket?"
    )
    svamp = load_items(get_spec("svamp"), data_dir=BENCHMARK_DATA)[0]
    assert svamp.question == (
        "There are 87 oranges and 290 bananas in Philip's collection. If the bananas are organized into 2 groups "
        "and oranges are organized into 93 groups. How big is each group of bananas?"
    )
    middle = load_items(get_spec("cn_middle_school"), data_dir=BENCHMARK_DATA)
    assert sum(item.gold.isalpha() and len(item.gold) == 1 for item in middle) >= 41


def test_gsm8k_train_split_from_the_openai_release() -> None:
    train = load_items(get_spec("gsm8k"), "train", data_dir=BENCHMARK_DATA)
    assert len(train) == 7473 and "####" in train[0].solution


def test_math500_golds_are_math_subset() -> None:
    math_golds = {i.question: i.gold for i in load_items(get_spec("math"), data_dir=BENCHMARK_DATA)}
    for item in load_items(get_spec("math500"), data_dir=BENCHMARK_DATA):
        assert item.question in math_golds


def test_tabmwp_missing_locally_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(MathforgeError, match=r"data file not found: .*tabmwp/test.jsonl"):
        load_items(get_spec("tabmwp"), data_dir=BENCHMARK_DATA)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "answer": "x #### 3"', r"test.jsonl:2: malformed JSON line"),
        ('{"question": "q"}', r"test.jsonl:2: missing field 'answer'"),
        ('{"answer": "#### 3"}', r"test.jsonl:2: missing field 'question'"),
        ('{"question": "q", "answer": "no marker"}', r"test.jsonl:2: field 'answer': no '####' marker"),
        ("[1, 2]", r"test.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    (folder / "test.jsonl").write_text('{"question": "ok", "answer": "#### 1", "idx": 0}\n' + line + "\n")
    with pytest.raises(MathforgeError, match=message):
        load_items(get_spec("gsm8k"), data_dir=tmp_path)


def test_unknown_and_ambiguous_names() -> None:
    with pytest.raises(
        MathforgeError,
        match=r"unknown benchmark 'gsm9k' \(did you mean gsm8k\?\); known benchmarks: arith, gsm8k",
    ):
        get_spec("gsm9k")
    with pytest.raises(MathforgeError, match=r"math500.*ocw.*'math'"):
        get_spec("minerva_math")


def test_hub_path_through_datasets_on_local_files(tmp_path: Path) -> None:
    """The hub code path (datasets.load_dataset) on a local copy gives the same items as --data-dir."""
    repo = tmp_path / "hub-copy"
    repo.mkdir()
    shutil.copy(BENCHMARK_DATA / "math500" / "test.jsonl", repo / "test.jsonl")
    spec = get_spec("math500")
    hub_spec = spec.model_copy(
        update={"test": spec.test.model_copy(update={"hub": HubSource(path=str(repo))})}
    )
    via_hub = load_items(hub_spec)
    via_dir = load_items(spec, data_dir=BENCHMARK_DATA)
    assert [(i.id, i.question, i.gold, i.subsets) for i in via_hub] == [
        (i.id, i.question, i.gold, i.subsets) for i in via_dir
    ]


def test_hub_field_renames(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text(json.dumps({"Problem": "1+1?", "ans": "2"}) + "\n")
    rows = list(hub_rows(HubSource(path=str(tmp_path), fields={"question": "Problem", "answer": "ans"}), "x"))
    assert rows[0][1] == {"question": "1+1?", "answer": "2"}


def test_hub_unreachable_suggests_data_dir() -> None:
    with pytest.raises(MathforgeError, match=r"cannot load openai/gsm8k .*HF hub.*--data-dir"):
        load_items(get_spec("gsm8k"))


def test_benchmark_without_hub_source_needs_data_dir() -> None:
    with pytest.raises(MathforgeError, match=r"'cmath' has no HF hub source; pass --data-dir"):
        load_items(get_spec("cmath"))
