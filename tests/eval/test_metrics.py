"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from mathforge.eval.metrics import aggregate, default_ks, majority_correct, pass_at_k


def _exact_pass_at_k(n: int, c: int, k: int) -> float:
    return 1 - math.comb(n - c, k) / math.comb(n, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (4, 1, 1, 0.25),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (4, 2, 2, 5 / 6),  # 1 - C(2,2)/C(4,2) = 1 - 1/6
        (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
        (10, 3, 10, 1.0),
        (10, 0, 5, 0.0),
    ],
)
def test_pass_at_k_hand_computed(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


@pytest.mark.parametrize(("n", "c", "k"), [(64, 7, 8), (200, 13, 100), (16, 1, 4), (100, 99, 50)])
def test_pass_at_k_matches_binomials(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(_exact_pass_at_k(n, c, k))


def test_pass_at_k_rejects_k_above_n() -> None:
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def _same_number(a: str, b: str) -> bool:
    return float(eval(a)) == float(eval(b))  # test stand-in for the grader's equivalence on simple numbers


@pytest.mark.parametrize(
    ("preds", "correct", "expected"),
    [
        (["3", "3", "4"], [True, True, False], True),
        (["4", "3", "4"], [False, True, False], False),
        (["3", "4"], [True, False], True),  # tie: the answer seen first wins
        (["4", "3"], [False, True], False),
        ([None, None, "3"], [False, False, True], True),  # "no answer" never votes
        ([None, None], [False, False], False),
        (["0.5", "1/2", "2"], [True, True, False], True),  # equivalent answers vote together
    ],
)
def test_majority_vote(preds: list, correct: list, expected: bool) -> None:
    assert majority_correct(preds, correct, _same_number) is expected


def test_default_ks() -> None:
    assert default_ks(1) == [1]
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(6) == [1, 2, 4, 6]


def test_aggregate_greedy_with_subsets() -> None:
    rows = [
        {"preds": ["1"], "correct": [True], "subsets": {"level": "Level 1"}},
        {"preds": [None], "correct": [False], "subsets": {"level": "Level 1"}},
        {"preds": ["2"], "correct": [True], "subsets": {"level": "Level 2"}},
        {"preds": ["5"], "correct": [False], "subsets": {"level": "Level 2"}},
    ]
    metrics = aggregate(rows, [1], _same_number)
    assert metrics["n"] == 4
    assert metrics["acc"] == 50.0
    assert metrics["no_answer"] == 25.0
    assert "pass@1" not in metrics  # only reported when sampling
    assert metrics["subsets"] == {
        "level": {"Level 1": {"n": 2, "acc": 50.0}, "Level 2": {"n": 2, "acc": 50.0}}
    }


def test_aggregate_sampled() -> None:
    rows = [
        {"preds": ["3", "3", "4", "5"], "correct": [True, True, False, False]},
        {"preds": ["1", "2", "2", None], "correct": [True, False, False, False]},
    ]
    metrics = aggregate(rows, [1, 2, 4], _same_number)
    assert metrics["acc"] == pytest.approx(100 * (0.5 + 0.25) / 2)
    assert metrics["pass@1"] == pytest.approx(metrics["acc"])
    assert metrics["pass@2"] == pytest.approx(
        100 * (_exact_pass_at_k(4, 2, 2) + _exact_pass_at_k(4, 1, 2)) / 2
    )
    assert metrics["pass@4"] == 100.0
    # maj@1 is each first sample's verdict: both right.
    assert metrics["maj@1"] == 100.0
    # maj@2: item 2 has "1" vs "2", a tie that the first-seen "1" (right) wins.
    assert metrics["maj@2"] == 100.0
    # maj@4: item 1 votes "3" (right), item 2 votes "2" (wrong).
    assert metrics["maj@4"] == 50.0
    assert metrics["no_answer"] == pytest.approx(100 * (0 + 0.25) / 2)
