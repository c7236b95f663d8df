"""`mathforge compare`: McNemar's exact test and the paired bootstrap against hand-computed values, the table, and
comparisons of real eval run directories (a tiny Llama evaluated by `mathforge.evaluate`) whose verdicts are then
set to known patterns, so that b, c, the p-values and the verdicts on significance are known in advance."""

from __future__ import annotations

import csv
import io
import json
import shutil
from math import comb
from pathlib import Path

import numpy as np
import pytest
from conftest import BENCHMARK_DATA

from mathforge.errors import MathforgeError
from mathforge.eval import EvalConfig, evaluate
from mathforge.io import write_jsonl_atomic
from mathforge.train.compare import (
    CompareOptions,
    compare_runs,
    mcnemar_exact,
    paired_bootstrap,
    render_comparison,
)

T, F = True, False

# --- McNemar's exact test ---------------------------------------------------------------------------------


def _two_sided_by_hand(b: int, c: int) -> float:
    """2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1: the exact McNemar p by its definition."""
    tail = sum(comb(b + c, k) for k in range(min(b, c) + 1)) / 2 ** (b + c)
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (3, 10, 2 * (1 + 13 + 78 + 286) / 8192),  # 0.0923: three right only before, ten only after
        (10, 3, 2 * (1 + 13 + 78 + 286) / 8192),  # the test is two-sided: direction does not matter
        (0, 6, 2 / 64),  # 0.03125: all six changes one way
        (0, 10, 2 / 1024),
        (1, 0, 1.0),  # one change alone proves nothing (2 * 1/2)
        (5, 5, 1.0),
        (0, 0, 1.0),  # no item changed
    ],
)
def test_mcnemar_exact_equals_the_hand_computed_binomial_tail(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)
    assert mcnemar_exact(b, c) == pytest.approx(_two_sided_by_hand(b, c), rel=1e-12)


def test_mcnemar_exact_on_card_sized_differences() -> None:
    # 1,319 GSM8K items, 40 discordant: 14 vs 26 (+0.9 points) is not significant, 8 vs 32 (+1.8) is.
    assert mcnemar_exact(14, 26) == pytest.approx(_two_sided_by_hand(14, 26), rel=1e-9)
    assert mcnemar_exact(14, 26) > 0.05 > mcnemar_exact(8, 32)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


# --- the paired bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_of_identical_verdicts_is_exactly_zero() -> None:
    # Paired: the same verdicts on both sides give a difference of 0 in every resample, however the items vary
    # (an unpaired bootstrap of these 50/50 accuracies would give an interval some 30 points wide).
    verdicts = [T, F] * 20
    assert paired_bootstrap(verdicts, verdicts) == (0.0, 0.0)


def test_bootstrap_on_two_items_by_hand() -> None:
    # Items: one gained, one unchanged. Resampling 2 items: both gained (1/4: +100), one of each (1/2: +50),
    # both unchanged (1/4: 0). The 2.5 and 97.5 percentiles fall in the outer blocks, the 30 and 70 in the middle.
    before, after = [F, F], [T, F]
    assert paired_bootstrap(before, after, resamples=4000) == (0.0, 100.0)
    assert paired_bootstrap(before, after, resamples=4000, confidence=0.4) == (50.0, 50.0)
    assert paired_bootstrap([F], [T]) == (100.0, 100.0)


def test_bootstrap_is_reproducible_by_seed_and_contains_the_observed_difference() -> None:
    rng = np.random.default_rng(7)
    before = list(rng.random(300) < 0.5)
    after = [b if rng.random() < 0.8 else not b for b in before]
    observed = 100 * (sum(after) - sum(before)) / 300
    interval = paired_bootstrap(before, after, seed=3)
    assert paired_bootstrap(before, after, seed=3) == interval
    # Percentiles of a discrete distribution often coincide across seeds; some other seed must move them.
    assert any(paired_bootstrap(before, after, resamples=500, seed=seed) != interval for seed in range(4, 9))
    assert interval[0] < observed < interval[1]


def test_bootstrap_equals_resampling_items_literally() -> None:
    # The implementation draws gain/loss counts instead of item indices; the intervals must agree with a
    # literal resampling of the (before, after) pairs.
    rng = np.random.default_rng(11)
    before = rng.random(200) < 0.55
    after = np.where(rng.random(200) < 0.25, ~before, before)
    picks = rng.integers(0, 200, size=(20_000, 200))
    literal = (after[picks].mean(axis=1) - before[picks].mean(axis=1)) * 100
    expected = np.percentile(literal, [2.5, 97.5])
    low, high = paired_bootstrap(list(before), list(after), resamples=20_000)
    assert low == pytest.approx(expected[0], abs=0.6) and high == pytest.approx(expected[1], abs=0.6)


def test_bootstrap_interval_narrows_with_more_items() -> None:
    # The same proportions (10% gained, 5% lost) on 4x the items: about half the width (1/sqrt(n)).
    def pattern(n: int) -> tuple[list[bool], list[bool]]:
        gained, lost = n // 10, n // 20
        return [F] * gained + [T] * lost + [F] * (n - gained - lost), [T] * gained + [F] * (n - gained)

    small, large = paired_bootstrap(*pattern(200)), paired_bootstrap(*pattern(800))
    width_small, width_large = small[1] - small[0], large[1] - large[0]
    assert width_large == pytest.approx(width_small / 2, rel=0.15)


# --- real eval runs with known verdicts -------------------------------------------------------------------

ITEMS = 16
# arith: 3 right only before, 10 right only after, 2 right in both, 1 wrong in both: b=3, c=10, p=0.0923.
ARITH = ([T] * 3 + [F] * 10 + [T] * 2 + [F], [F] * 3 + [T] * 10 + [T] * 2 + [F])
# gsm8k: 6 right only after, 4 in both: b=0, c=6, p=0.03125.
GSM8K = ([F] * 6 + [T] * 4 + [F] * 6, [T] * 6 + [T] * 4 + [F] * 6)


def _evaluate(model: Path, out: Path, benchmarks: list[str], **settings: object) -> None:
    config = {
        "prompt": "zero-shot",
        "data_dir": BENCHMARK_DATA,
        "max_new_tokens": 4,
        "batch_size": 16,
        **settings,
    }
    evaluate(EvalConfig(model=str(model), benchmarks=benchmarks, out=out, **config), show_progress=False)


@pytest.fixture(scope="module")
def real_runs(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """before/: the tiny Llama named base, after/: a copy named tiny-sft; both on arith and gsm8k, 16 items,
    greedy. (Eval names a model directory by its folder.)"""
    root = tmp_path_factory.mktemp("compare")
    base = shutil.copytree(tiny_llama, root / "base")
    trained = shutil.copytree(tiny_llama, root / "tiny-sft")
    _evaluate(base, root / "before", ["arith", "gsm8k"], limit=ITEMS)
    _evaluate(trained, root / "after", ["arith", "gsm8k"], limit=ITEMS)
    return root


def _runs(tmp_path: Path, real_runs: Path) -> tuple[Path, Path]:
    """A private copy of the real runs, with the known verdict patterns written into their samples.jsonl."""
    before = shutil.copytree(real_runs / "before", tmp_path / "before")
    after = shutil.copytree(real_runs / "after", tmp_path / "after")
    for side, root in ((0, before), (1, after)):
        _set_verdicts(_run_dir(root, "arith"), ARITH[side])
        _set_verdicts(_run_dir(root, "gsm8k"), GSM8K[side])
    return before, after


def _run_dir(root: Path, benchmark: str) -> Path:
    (found,) = [path.parent for path in root.rglob("metrics.json") if path.parent.name.startswith(benchmark)]
    return found


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def _set_verdicts(run_dir: Path, verdicts: list[bool]) -> None:
    rows = _rows(run_dir)
    assert len(rows) == len(verdicts)
    write_jsonl_atomic(
        run_dir / "samples.jsonl", [{**row, "correct": [ok]} for row, ok in zip(rows, verdicts, strict=True)]
    )


def test_known_verdicts_give_the_hand_computed_table(real_runs: Path, tmp_path: Path) -> None:
    before, after = _runs(tmp_path, real_runs)
    out = tmp_path / "report"
    result = compare_runs(before, after, CompareOptions.build(out=str(out)))
    rows = {row["benchmark"]: row for row in result["benchmarks"]}
    assert list(rows) == ["arith", "gsm8k"]  # registry order, as report's columns
    arith, gsm8k = rows["arith"], rows["gsm8k"]
    assert (arith["n"], arith["only_before"], arith["only_after"]) == (16, 3, 10)
    assert (arith["before"], arith["after"], arith["difference"]) == (31.25, 75.0, 43.75)
    assert arith["p_value"] == pytest.approx(0.0923, abs=5e-5) and arith["significant"] is False
    assert (gsm8k["only_before"], gsm8k["only_after"]) == (0, 6)
    assert gsm8k["p_value"] == pytest.approx(0.03125) and gsm8k["significant"] is True
    assert arith["ci"][0] < 43.75 < arith["ci"][1] and arith["verdict"] == "greedy"
    # The models are named by the runs' metrics.json.
    assert (result["before"]["model"], result["after"]["model"]) == ("base", "tiny-sft")

    table = (out / "comparison.md").read_text()
    assert json.loads((out / "comparison.json").read_text()) == result
    assert table == render_comparison(result)
    assert table.startswith(f"Before: base ({before})\nAfter: tiny-sft ({after})\n")
    assert "| Benchmark |   n | Before | After |" in table and "95% CI" in table and "McNemar p" in table
    assert _table_row(table, "arith") == [
        "arith",
        "16",
        "31.2",
        "75.0",
        "+43.8",
        _ci(arith),
        "3 / 10",
        "0.092",
        "no",
    ]
    assert _table_row(table, "gsm8k")[-3:] == ["0 / 6", "0.031", "yes"]
    assert "significant: p < 0.05" in table and "not pooled" in table
    # On 16 items the bootstrap interval of arith excludes 0 while the exact test does not reject: said.
    assert arith["ci"][0] > 0 and "- arith: the interval excludes 0 but McNemar's p is 0.092" in table


def _table_row(table: str, name: str) -> list[str]:
    (line,) = [line for line in table.splitlines() if line.startswith(f"| {name} ")]
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def _ci(row: dict) -> str:
    return f"[{row['ci'][0]:+.1f}, {row['ci'][1]:+.1f}]"


def test_alpha_sets_significance_and_the_interval_level(real_runs: Path, tmp_path: Path) -> None:
    before, after = _runs(tmp_path, real_runs)
    strict = compare_runs(before, after, CompareOptions.build(alpha=0.01))
    assert not any(row["significant"] for row in strict["benchmarks"])  # 0.03125 > 0.01
    loose = compare_runs(before, after, CompareOptions.build(alpha=0.1))
    assert all(row["significant"] for row in loose["benchmarks"])  # 0.0923 < 0.1
    assert "99% CI" in render_comparison(strict) and "significant: p < 0.01" in render_comparison(strict)
    narrow = {r["benchmark"]: r["ci"] for r in loose["benchmarks"]}
    wide = {r["benchmark"]: r["ci"] for r in strict["benchmarks"]}
    assert wide["arith"][0] <= narrow["arith"][0] and narrow["arith"][1] <= wide["arith"][1]


def test_one_run_directory_per_side_and_csv(real_runs: Path, tmp_path: Path) -> None:
    before, after = _runs(tmp_path, real_runs)
    result = compare_runs(_run_dir(before, "arith"), _run_dir(after, "arith"), CompareOptions.build())
    assert [row["benchmark"] for row in result["benchmarks"]] == ["arith"]
    (row,) = csv.DictReader(io.StringIO(render_comparison(result, "csv")))
    assert (row["benchmark"], row["only_before"], row["only_after"], row["significant"]) == (
        "arith",
        "3",
        "10",
        "False",
    )
    assert float(row["p_value"]) == pytest.approx(0.0923, abs=5e-5)
    with pytest.raises(MathforgeError, match="--format must be markdown or csv"):
        render_comparison(result, "html")


def test_benchmarks_on_one_side_only_are_named(real_runs: Path, tmp_path: Path) -> None:
    before, after = _runs(tmp_path, real_runs)
    shutil.rmtree(_run_dir(after, "gsm8k"))
    result = compare_runs(before, after, CompareOptions.build())
    assert [row["benchmark"] for row in result["benchmarks"]] == ["arith"]
    assert "run only before, not compared: gsm8k" in result["notes"]
    assert "- run only before, not compared: gsm8k" in render_comparison(result)


def test_items_answered_by_one_run_only_are_left_out_and_said(real_runs: Path, tmp_path: Path) -> None:
    before, after = _runs(tmp_path, real_runs)
    run = _run_dir(after, "arith")
    # Drop the after run's first 3 items (the ones right only before): what is left is b=0, c=10.
    write_jsonl_atomic(run / "samples.jsonl", _rows(run)[3:])
    result = compare_runs(_run_dir(before, "arith"), run, CompareOptions.build())
    (row,) = result["benchmarks"]
    assert (row["n"], row["only_in_before"], row["only_in_after"]) == (13, 3, 0)
    assert (row["only_before"], row["only_after"]) == (0, 10)
    assert row["p_value"] == pytest.approx(2 / 1024)
    assert any("compared on the 13 items both runs answered" in note for note in result["notes"])


def test_several_samples_per_item_are_judged_by_their_majority(tiny_llama: Path, tmp_path: Path) -> None:
    _evaluate(tiny_llama, tmp_path / "before", ["arith"], limit=6, n=3, temperature=0.8)
    run = _run_dir(tmp_path / "before", "arith")
    votes = [  # (preds, verdicts) -> the majority answer's verdict
        (["7", "5", "5"], [F, T, T]),  # right (the first sample alone is wrong)
        (["5", "7", "7"], [T, F, F]),  # wrong
        ([None, None, "7"], [F, F, T]),  # right: no answer never votes
        (["5.0", "5", "7"], [T, T, F]),  # right: 5.0 and 5 vote together
        (["3", "7", None], [F, T, F]),  # wrong: a tie goes to the answer seen first
        ([None, None, None], [F, F, F]),  # wrong
    ]
    rows = [
        {**row, "preds": preds, "correct": ok} for row, (preds, ok) in zip(_rows(run), votes, strict=True)
    ]
    write_jsonl_atomic(run / "samples.jsonl", rows)
    after = shutil.copytree(tmp_path / "before", tmp_path / "after")
    rows = [{**row, "preds": ["5"] * 3, "correct": [T] * 3} for row in rows]
    write_jsonl_atomic(_run_dir(after, "arith") / "samples.jsonl", rows)

    (row,) = compare_runs(tmp_path / "before", after, CompareOptions.build())["benchmarks"]
    assert row["verdict"] == "maj@3"
    # Majority verdicts before: right, wrong, right, right, wrong, wrong (the sample mean would be 7/18 = 38.9,
    # the first samples 2/6 = 33.3).
    assert (row["before"], row["after"], row["only_before"], row["only_after"]) == (50.0, 100.0, 0, 3)
    assert row["p_value"] == pytest.approx(0.25)

    write_jsonl_atomic(run / "samples.jsonl", [{k: v for k, v in r.items() if k != "preds"} for r in rows])
    with pytest.raises(MathforgeError, match=r"samples.jsonl:1: 3 verdicts but no answer"):
        compare_runs(tmp_path / "before", after, CompareOptions.build())


# --- one-line errors --------------------------------------------------------------------------------------


def _one_line(error: pytest.ExceptionInfo[MathforgeError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_runs_with_other_settings_are_not_paired(real_runs: Path, tmp_path: Path) -> None:
    before, _ = _runs(tmp_path, real_runs)
    longer = tmp_path / "longer"
    _evaluate(real_runs / "tiny-sft", longer, ["arith"], limit=4, max_new_tokens=5)
    with pytest.raises(MathforgeError) as error:
        compare_runs(before, longer, CompareOptions.build())
    message = _one_line(error)
    assert message.startswith("arith: the runs differ in max new tokens (4 in ") and "5 in " in message


def test_runs_without_common_items_are_refused(real_runs: Path, tmp_path: Path) -> None:
    before, after = _runs(tmp_path, real_runs)
    run = _run_dir(after, "arith")
    write_jsonl_atomic(run / "samples.jsonl", [{**row, "id": f"other-{row['id']}"} for row in _rows(run)])
    with pytest.raises(MathforgeError) as error:
        compare_runs(before, after, CompareOptions.build())
    assert _one_line(error).startswith("arith: ") and "share no item id" in str(error.value)


def test_paths_without_runs_or_with_several_models_are_refused(real_runs: Path, tmp_path: Path) -> None:
    before, after = _runs(tmp_path, real_runs)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MathforgeError) as error:
        compare_runs(before, empty, CompareOptions.build())
    assert "no run directories (metrics.json) under" in _one_line(error)
    with pytest.raises(MathforgeError) as error:
        compare_runs(tmp_path, after, CompareOptions.build())
    assert "holds runs of several models (base, tiny-sft)" in _one_line(error)
    (_run_dir(after, "arith") / "samples.jsonl").unlink()
    with pytest.raises(MathforgeError) as error:
        compare_runs(before, after, CompareOptions.build())
    assert "no samples.jsonl" in _one_line(error)
