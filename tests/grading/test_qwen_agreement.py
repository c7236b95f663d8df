"""Qwen2.5-Math's own evaluation example, regraded: mathforge agrees with its per-sample scores on 799 of 800.

`eval_rm_maj_example/math_cot_100.jsonl` holds 100 MATH problems with 8 Qwen2.5-Math completions each and the
Qwen grader's `score` per completion. Chat-model completions with `\\(...\\)` and `\\[...\\]` math and boxed
answers: a change to extraction or grading that moves any verdict shows up here. The one disagreement is
listed with the reason mathforge is right.
"""

from __future__ import annotations

from conftest import SHARED

from mathforge.eval.regrade import regrade_file

EXAMPLE = SHARED / "data/benchmarks/eval_rm_maj_example/math_cot_100.jsonl"
# (row id, completion index): (Qwen's score, mathforge's verdict, mathforge's answer, why mathforge is right)
DISAGREEMENTS = {
    ("72", 7): (
        False,
        True,
        "10000",
        "gold '10{,}000' (LaTeX's thousands separator) against the boxed 10000: the Qwen grader does not read "
        "'{,}' and refuses the right answer",
    ),
}


def test_agrees_with_the_qwen_grader_but_where_it_is_wrong() -> None:
    result = regrade_file(EXAMPLE, "math")
    found = {
        (row["id"], index): (theirs, mine, row["preds"][index])
        for row in result.rows
        for index, (theirs, mine) in enumerate(zip(row["source_score"], row["correct"], strict=True))
        if bool(theirs) != mine
    }
    assert found == {key: value[:3] for key, value in DISAGREEMENTS.items()}
    assert result.metrics["compared_with_source"] == 800
    assert result.metrics["agree_with_source"] >= 799
    assert result.metrics["timeouts"] == 0 and result.metrics["grading_errors"] == 0
