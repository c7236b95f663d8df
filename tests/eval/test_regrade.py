"""Regrading output files: each format's reader, golds from --data-dir, parallel grading, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import BENCHMARK_DATA, SHARED

from mathforge.errors import MathforgeError
from mathforge.eval.formats import detect_format
from mathforge.eval.regrade import regrade_file, write_rows

RHO = SHARED / "data" / "published" / "rho-1"
JANET = (
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
    "her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh "
    "duck egg. How much in dollars does she make every day at the farmers' market?"
)
ROBE = (
    "A robe takes 2 bolts of blue fiber and half that much white fiber.  "  # two spaces, as in GSM8K
    "How many bolts in total does it take?"
)


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def _harness_rows() -> list[dict[str, Any]]:
    # The stored pred/score are deliberately wrong: regrading must not read them.
    return [
        {
            "idx": 0,
            "question": JANET,
            "gt": "18",
            "code": ["9 * 2 = 18. The answer is 18."],
            "pred": ["3"],
            "score": [False],
        },
        {
            "idx": 1,
            "question": ROBE,
            "gt": "3",
            "code": ["2 + 1 = 3 bolts.\n#### 4"],
            "pred": ["3"],
            "score": [True],
        },
    ]


def test_math_eval_harness_rows_are_regraded_from_their_completions(tmp_path: Path) -> None:
    path = _write(tmp_path / "test_cot_-1_seed0_t0.0_s0_e-1.jsonl", _harness_rows())
    result = regrade_file(path, "gsm8k")
    assert result.format == "math-eval-harness"
    assert [row["id"] for row in result.rows] == ["0", "1"]
    assert [row["correct"] for row in result.rows] == [[True], [False]]
    assert [row["preds"] for row in result.rows] == [["18"], ["4"]]
    assert result.rows[0]["source_pred"] == ["3"] and result.rows[0]["source_score"] == [False]
    m = result.metrics
    assert (m["n"], m["acc"], m["source_acc"]) == (2, 50.0, 50.0)
    assert (m["agree_with_source"], m["compared_with_source"], m["agree_with_source_pct"]) == (0, 2, 0.0)
    assert m["timeouts"] == 0 and m["gold_from"] == "file"


def test_qwen25_math_is_told_apart_by_its_file_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1.jsonl", _harness_rows())
    assert regrade_file(path, "gsm8k").format == "qwen25-math"
    # Named explicitly, either reads the same rows.
    assert regrade_file(path, "gsm8k", fmt="math-eval-harness").rows == regrade_file(path, "gsm8k").rows


def test_mathforge_rows_keep_their_ids_and_choices(tmp_path: Path) -> None:
    rows = [
        {
            "id": "a1",
            "question": "Pick the even number.",
            "gold": "B",
            "choices": ["3", "4"],
            "completions": ["The even one is 4.", "The answer is (A)."],
            "preds": ["A", "A"],
            "correct": [False, False],
            "finish_reasons": ["stop", "stop"],
        },
    ]
    result = regrade_file(_write(tmp_path / "samples.jsonl", rows), "aqua")
    assert result.format == "mathforge"
    row = result.rows[0]
    assert row["id"] == "a1" and row["choices"] == ["3", "4"]
    assert row["preds"] == ["B", "A"] and row["correct"] == [True, False]
    assert result.metrics["samples_per_item"] == 2 and result.metrics["acc"] == 50.0
    assert "maj@2" in result.metrics and "pass@2" in result.metrics


def test_mathforge_truncated_completion_needs_a_stated_answer(tmp_path: Path) -> None:
    row = {
        "id": "0",
        "question": "q",
        "gold": "7",
        "completions": ["so far 3 + 4 = 7"] * 2,
        "finish_reasons": ["stop", "length"],
    }
    result = regrade_file(_write(tmp_path / "s.jsonl", [row]), "gsm8k")
    assert result.rows[0]["preds"] == ["7", None]  # as the runner graded it


def _lm_eval_row(doc_id: int, doc: dict, target: str, text: str, filter_: str, score: float) -> dict:
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": target,
        "arguments": {"gen_args_0": {"arg_0": "Question: ...", "arg_1": {"until": ["Question:"]}}},
        "resps": [[text]],
        "filtered_resps": ["[invalid]" if not score else text[-2:]],
        "filter": filter_,
        "metrics": ["exact_match"],
        "doc_hash": "x",
        "prompt_hash": "y",
        "target_hash": "z",
        "exact_match": score,
    }


def test_lm_eval_samples_with_two_filters(tmp_path: Path) -> None:
    docs = [
        {"question": JANET, "answer": "She makes 9 * 2 = $18.\n#### 18"},
        {"question": ROBE, "answer": "It takes 2 + 1 = 3 bolts.\n#### 3"},
        {"question": "How many legs do 2 cats have?"},  # no answer field: the target gives the gold
    ]
    texts = [
        "She makes 9 * 2 = 18 dollars. The answer is 18.",
        "It takes 5 bolts. The answer is 5.",
        "2 * 4 = 8. The answer is 8.",
    ]
    targets = [docs[0]["answer"], "3", "#### 8"]
    rows = [
        _lm_eval_row(i, doc, target, text, filter_, float(i != 1))
        for filter_ in ("strict-match", "flexible-extract")
        for i, (doc, target, text) in enumerate(zip(docs, targets, texts, strict=True))
    ]
    result = regrade_file(_write(tmp_path / "samples_gsm8k_2024-01-01T00-00-00.jsonl", rows), "gsm8k")
    assert result.format == "lm-eval"
    assert [row["id"] for row in result.rows] == ["0", "1", "2"]  # one row per document
    assert [row["gold"] for row in result.rows] == ["18", "3", "8"]
    assert [row["question"] for row in result.rows][:2] == [JANET, ROBE]
    assert [row["correct"] for row in result.rows] == [[True], [False], [True]]
    assert result.metrics["agree_with_source"] == 3
    assert result.rows[0]["source_score"] == [1.0]


def test_lm_eval_target_already_reduced(tmp_path: Path) -> None:
    # gsm8k's doc_to_target may have cut "... #### 2" down to "2" already: the gold rules do not fit it.
    row = _lm_eval_row(0, {"question": "What is 1+1?"}, "2", "1+1=2, so \\boxed{2}", "none", 1.0)
    result = regrade_file(_write(tmp_path / "samples_gsm8k.jsonl", [row]), "gsm8k")
    assert result.rows[0]["gold"] == "2" and result.rows[0]["correct"] == [True]
    # A MATH doc: its problem is the question, its answer field the gold.
    row = _lm_eval_row(
        0, {"problem": "What is 1/2+1/2?", "answer": "1"}, "1", "\\boxed{\\frac{2}{2}}", "none", 1
    )
    result = regrade_file(_write(tmp_path / "samples_math.jsonl", [row]), "math500")
    assert (result.rows[0]["question"], result.rows[0]["gold"]) == ("What is 1/2+1/2?", "1")
    assert result.rows[0]["correct"] == [True]


def _gsm8k_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "gsm8k").mkdir(parents=True)
    _write(
        data / "gsm8k" / "test.jsonl",
        [
            {"idx": 0, "question": JANET, "answer": "9 * 2 = 18\n#### 18"},
            {"idx": 1, "question": ROBE, "answer": "2 + 1 = 3\n#### 3"},
        ],
    )
    return data


def test_data_dir_golds_replace_corrupted_file_golds(tmp_path: Path) -> None:
    rows = _harness_rows()
    rows[0]["gt"] = "81"  # corrupted by the harness
    rows[1]["question"] = "  " + ROBE.replace("  ", "\n")  # whitespace differs: still the same question
    rows[1]["idx"] = 77  # ids are not used to match
    rows.append({**rows[0], "idx": 5, "question": JANET.upper() + " (Yes or No)"})  # harness-added suffix
    path = _write(tmp_path / "out.jsonl", rows)
    assert regrade_file(path, "gsm8k").rows[0]["correct"] == [False]
    result = regrade_file(path, "gsm8k", data_dir=_gsm8k_data(tmp_path))
    first, second, third = result.rows
    assert (third["id"], third["bench_id"], third["gold"]) == ("5", "0", "18")
    assert (first["gold"], first["source_gold"], first["correct"], first["bench_id"]) == (
        "18",
        "81",
        [True],
        "0",
    )
    assert (second["id"], second["bench_id"], second["question"]) == ("77", "1", ROBE)
    assert result.metrics["gold_differs_from_file"] == 2


def test_golds_that_differ_only_in_spelling_are_not_changed(tmp_path: Path) -> None:
    # GSM8K writes "1,234,567"; harnesses store the gold as they normalised it: "1234567". Only a gold that
    # grades differently counts as changed by --data-dir.
    benchmark = ["2,125", "1,234,567", "18", "7"]
    in_file = ["2125", " 1234567 ", "81", "7"]
    data = tmp_path / "data"
    (data / "gsm8k").mkdir(parents=True)
    items = [{"idx": n, "question": f"Q{n}?", "answer": f"#### {gold}"} for n, gold in enumerate(benchmark)]
    _write(data / "gsm8k" / "test.jsonl", items)
    rows = [{"idx": n, "question": f"Q{n}?", "gt": g, "code": ["#### 7"]} for n, g in enumerate(in_file)]
    result = regrade_file(_write(tmp_path / "out.jsonl", rows), "gsm8k", data_dir=data)
    assert [row["gold"] for row in result.rows] == benchmark
    assert result.metrics["gold_differs_from_file"] == 1  # 81 -> 18 only


def test_data_dir_makes_the_file_gold_optional(tmp_path: Path) -> None:
    rows = [{key: value for key, value in row.items() if key != "gt"} for row in _harness_rows()]
    path = _write(tmp_path / "out.jsonl", rows)
    with pytest.raises(MathforgeError, match=r"out.jsonl:1: missing field 'gt' \(format math-eval-harness\)"):
        regrade_file(path, "gsm8k")
    assert regrade_file(path, "gsm8k", data_dir=_gsm8k_data(tmp_path)).metrics["acc"] == 50.0


def test_data_dir_gives_choices_of_multiple_choice_benchmarks(tmp_path: Path) -> None:
    (tmp_path / "mmlu_stem").mkdir()
    _write(
        tmp_path / "mmlu_stem" / "test.jsonl",
        [{"question": "Which is even?", "choices": ["3", "4", "5"], "answer": 1}],
    )
    row = {"idx": 0, "question": "Which is even?", "gt": "B", "code": ["The even one is 4."]}
    path = _write(tmp_path / "out.jsonl", [row])
    assert regrade_file(path, "mmlu_stem").rows[0]["correct"] == [False]  # no options: "4" is no letter
    graded = regrade_file(path, "mmlu_stem", data_dir=tmp_path).rows[0]
    assert graded["choices"] == ["3", "4", "5"] and graded["preds"] == ["B"] and graded["correct"] == [True]


def test_row_missing_from_the_benchmark_names_file_and_line(tmp_path: Path) -> None:
    rows = [*_harness_rows(), {"idx": 2, "question": "What is 2 + 2?", "gt": "4", "code": ["4"]}]
    path = _write(tmp_path / "out.jsonl", rows)
    with pytest.raises(
        MathforgeError, match=r"out.jsonl:3: question of row '2' not found in benchmark 'gsm8k'"
    ):
        regrade_file(path, "gsm8k", data_dir=_gsm8k_data(tmp_path))


def test_workers_give_the_same_rows(tmp_path: Path) -> None:
    # 40 MATH-500 rows: symbolic comparisons in the grading children of each worker.
    source = next((RHO / "rho-math-1b-v0.1" / "minerva_math").glob("*.jsonl"))
    path = tmp_path / "part.jsonl"
    path.write_text(
        "".join(source.read_text(encoding="utf-8").splitlines(keepends=True)[:40]), encoding="utf-8"
    )
    one = regrade_file(path, "math500", data_dir=BENCHMARK_DATA)
    two = regrade_file(path, "math500", data_dir=BENCHMARK_DATA, workers=2)
    assert two.rows == one.rows
    strip = ("seconds", "workers")
    assert {k: v for k, v in two.metrics.items() if k not in strip} == {
        k: v for k, v in one.metrics.items() if k not in strip
    }
    assert one.metrics["n"] == 40


def test_write_rows_is_atomic_and_readable(tmp_path: Path) -> None:
    result = regrade_file(_write(tmp_path / "in.jsonl", _harness_rows()), "gsm8k")
    out = tmp_path / "regraded.jsonl"
    out.write_text("old content\n")
    write_rows(out, result.rows)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["id"], row["correct"]) for row in rows] == [("0", [True]), ("1", [False])]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(MathforgeError, match="is a directory"):
        write_rows(tmp_path, result.rows)


@pytest.mark.parametrize(
    ("content", "kwargs", "pattern"),
    [
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}', '{"idx": 1, "quest'],
            {},
            r"in.jsonl:2: malformed JSON line",
        ),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}', '{"idx": 1, "gt": "1", "code": ["1"]}'],
            {},
            r"in.jsonl:2: missing field 'question' \(format math-eval-harness\)",
        ),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": "1"}'],
            {"fmt": "mathforge"},
            r"in.jsonl:1: missing field 'id' \(format mathforge\)",
        ),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": []}'],
            {},
            r"in.jsonl:1: field 'code' holds no completions",
        ),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": [1]}'],
            {},
            r"in.jsonl:1: field 'code' must be a list of strings",
        ),
        (
            ['{"doc_id": 0, "doc": {"question": "q"}, "resps": [[[-1.5, true]]]}'],
            {},
            r"in.jsonl:1: field 'resps' holds no generated text",
        ),
        (
            ['{"doc_id": 0, "doc": {"question": "q"}, "resps": [["1"]]}'],
            {},
            r"in.jsonl:1: no gold answer.*format lm-eval",
        ),
        (
            ['{"prompt": "q", "output": "1"}'],
            {},
            r"in.jsonl:1: cannot tell the file's format from its keys \(output, prompt\)",
        ),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}'],
            {"fmt": "harness"},
            r"--format: must be one of auto",
        ),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}'] * 2,
            {},
            r"in.jsonl:2: duplicate id '0' \(first at line 1\)",
        ),
        (["[1, 2]"], {}, r"in.jsonl:1: expected a JSON object, got list"),
        ([""], {}, r"in.jsonl: no rows to regrade"),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}'],
            {"workers": 0},
            r"--workers: Input should be greater than or equal to 1",
        ),
        (
            ['{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}'],
            {"data_dir": "/nonexistent"},
            r"--data-dir: no such directory",
        ),
    ],
)
def test_bad_input_is_one_line_error(tmp_path: Path, content: list[str], kwargs: dict, pattern: str) -> None:
    path = _write(tmp_path / "in.jsonl", content)
    with pytest.raises(MathforgeError, match=pattern) as error:
        regrade_file(path, "gsm8k", **kwargs)
    assert "\n" not in str(error.value)


def test_unknown_bench_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MathforgeError, match=r"unknown benchmark 'gsm9k'"):
        regrade_file(tmp_path / "in.jsonl", "gsm9k")
    with pytest.raises(MathforgeError, match=r"nope.jsonl: no such file"):
        regrade_file(tmp_path / "nope.jsonl", "gsm8k")


def test_detect_format_of_each_kind(tmp_path: Path) -> None:
    assert detect_format(tmp_path / "x.jsonl", 1, {"doc_id": 0, "doc": {}, "resps": []}) == "lm-eval"
    assert detect_format(tmp_path / "x.jsonl", 1, {"id": "0", "completions": []}) == "mathforge"
    assert detect_format(tmp_path / "x.jsonl", 1, {"idx": 0, "code": []}) == "math-eval-harness"
    assert detect_format(tmp_path / "test_qwen-boxed_x.jsonl", 1, {"idx": 0, "code": []}) == "qwen25-math"


def test_questions_that_ask_for_several_answers_read_every_final_box(tmp_path: Path) -> None:
    rows = [
        {
            "idx": 0,
            "question": "Find all solutions to $x^2 + x - 6 = 0$. Enter all the solutions, separated by commas.",
            "gt": "2,-3",
            "code": ["Factoring, $(x-2)(x+3)=0$, so $x = \\boxed{2}$ or $x = \\boxed{-3}$."],
        },
        {
            "idx": 1,
            "question": "What is the larger root of $x^2 + x - 6 = 0$?",
            "gt": "2",
            "code": ["The roots are $\\boxed{-3}$ and $\\boxed{2}$."],
        },
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = regrade_file(path, "math500")
    assert [row["preds"] for row in result.rows] == [["2, -3"], ["2"]]
    assert [row["correct"] for row in result.rows] == [[True], [True]]
