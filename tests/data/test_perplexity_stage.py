"""The perplexity stage: rows scored by a real model (the packaged Gemma 3 270M, through `mathforge score`'s
code) and dropped outside the bounds, with the perplexity in the rejects; bounds are checked when the pipeline
is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathforge.data.pipeline import CurateOptions, curate, stage_specs
from mathforge.errors import MathforgeError
from mathforge.io import read_jsonl, write_jsonl_atomic

ROWS = [
    {"id": "plain", "question": "Natalia sold 48 clips in April and half as many in May. How many in all?",
     "solution": "In May she sold 48 / 2 = 24 clips. In all she sold 48 + 24 = 72 clips."},
    {"id": "garbled", "question": "qx zv 7 ptt wq jjk vvv zzq 91 xkq bbq pfft zz ooq",
     "solution": "lq 3 vv jz qq kx 8 ppw zq xx vb 0 qqz jj"},
]  # fmt: skip


@pytest.mark.slow
def test_rows_outside_the_bounds_are_dropped(gemma_gguf: Path, tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    write_jsonl_atomic(source, ROWS)
    stage = {"perplexity": {"model": str(gemma_gguf), "max": 60.0, "n_ctx": 512}}
    funnel = curate(source, CurateOptions.build(stages=[stage], out=tmp_path / "kept.jsonl", quiet=True))
    assert [row["id"] for _, row in read_jsonl(tmp_path / "kept.jsonl")] == ["plain"]
    [(_, rejected)] = list(read_jsonl(tmp_path / "kept.rejects.jsonl"))
    assert rejected["id"] == "garbled" and rejected["rejected"]["reason"] == "perplexity_above_max"
    assert rejected["rejected"]["perplexity"] > 60.0
    assert funnel.as_json()["stages"][0]["reasons"] == {"perplexity_above_max": 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [({}, "set max, min or both"), ({"min": 50.0, "max": 10.0}, r"min \(50.0\) must be below max \(10.0\)")],
)
def test_bounds_are_checked_when_the_pipeline_is_read(tmp_path: Path, options: dict, message: str) -> None:
    opts = CurateOptions.build(stages=[{"perplexity": options}], out=tmp_path / "kept.jsonl")
    with pytest.raises(MathforgeError, match=message):
        stage_specs(opts)
