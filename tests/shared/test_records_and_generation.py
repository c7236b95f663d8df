"""The sample row as every command writes and reads it, the generation loop's seeding by position, and run
directories that keep their names across versions (so earlier runs still resume)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mathforge.backends import Completion, Generation, SamplingParams
from mathforge.benchmarks import get_spec
from mathforge.errors import MathforgeError
from mathforge.eval import EvalConfig, runner
from mathforge.eval.formats import READERS
from mathforge.generation import Job, generate
from mathforge.grading import GradingSpec, score
from mathforge.records import SampleRow


def _row() -> SampleRow:
    row = SampleRow(
        id="7",
        question="What is 2+2?",
        gold="4",
        prompt="Question: What is 2+2?\nAnswer:",
        completions=["2+2 = 4. The answer is 4.", "It is 5.\n"],
        tokens=[12, 4],
        finish_reasons=["stop", "length"],
        seconds=0.25,
        subsets={"level": "1"},
        extra={"source_line": 3},
    )
    spec = GradingSpec("number")
    row.grade(
        [
            score(text, "4", spec, truncated=cut)
            for text, cut in zip(row.completions, row.truncated, strict=True)
        ]
    )
    return row


def test_a_row_round_trips_through_json() -> None:
    row = _row()
    data = row.to_json()
    assert list(data)[:5] == [
        "id",
        "question",
        "gold",
        "prompt",
        "completions",
    ]  # as rows were always written
    assert data["preds"] == ["4", None] and data["correct"] == [
        True,
        False,
    ]  # a cut-off text needs a stated answer
    assert "tool" not in data and "choices" not in data and data["source_line"] == 3
    again = SampleRow.from_json(data, "x.jsonl:1")
    assert again.to_json() == data
    assert again.truncated == [False, True]


def test_the_mathforge_reader_reads_what_eval_writes() -> None:
    data = _row().to_json()
    source = READERS["mathforge"].read(data, 1, "x.jsonl:1", get_spec("gsm8k"), need_gold=True)
    assert (source.id, source.gold, source.completions) == ("7", "4", data["completions"])
    assert source.truncated == [False, True] and source.source_pred == ["4", None]
    with pytest.raises(MathforgeError, match=r"x.jsonl:1: field 'completions' holds no completions"):
        SampleRow.from_json({**data, "completions": []}, "x.jsonl:1")


class Recording:
    """An engine that answers with the seed offset it was given, and records its batches."""

    name = "recording"

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        assert seed_offsets is not None
        self.batches.append(list(seed_offsets))
        return [Generation([Completion(f"offset {offset}", 2, "stop")]) for offset in seed_offsets]


def test_generation_seeds_each_job_by_its_position_whatever_the_batches() -> None:
    jobs = [Job(f"item-{p}", f"prompt {p}", p) for p in (3, 5, 8, 9, 12)]  # items 0-2, 4... done before
    engine = Recording()
    texts = []
    for batch in generate(engine, jobs, SamplingParams(), batch_size=2, total=13, show_progress=False):  # type: ignore[arg-type]
        texts += [group[0].text for group in batch.trajectories]
        assert [job.id for job in batch.jobs] == [f"item-{o}" for o in engine.batches[-1]]
    assert engine.batches == [[3, 5], [8, 9], [12]]
    assert texts == ["offset 3", "offset 5", "offset 8", "offset 9", "offset 12"]


class FakeEngine:
    name = "llamacpp"
    default_batch_size = 1

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return "CHAT:" + messages[-1]["content"]

    def identity(self) -> dict[str, Any]:
        return {"backend": "llamacpp", "path": "/m/model.gguf", "sha256": "ab" * 32, "n_ctx": 4096}


class FakeHF(FakeEngine):
    name = "hf"
    default_batch_size = 8

    def identity(self) -> dict[str, Any]:
        return {"backend": "hf", "model": "org/m", "dtype": "torch.float32", "revision": "abc"}


@pytest.mark.parametrize(
    ("engine", "options", "directory"),
    [
        # Computed with the code before the shared layer (commit b4225ab) and after: the same names.
        (FakeEngine, {"model": "/m/model.gguf"}, "model/arith__few-shot__892f2f12"),
        (
            FakeEngine,
            {
                "model": "/m/model.gguf",
                "prompt": "zero-shot",
                "n": 4,
                "temperature": 0.7,
                "seed": 2,
                "rel_tol": 0.01,
            },
            "model/arith__zero-shot__n4-t0.7-s2__a3789a9e",
        ),
        (
            FakeEngine,
            {"model": "/m/model.gguf", "extractor": "boxed", "max_new_tokens": 64, "stop": ["END"]},
            "model/arith__few-shot__6e49a376",
        ),
        (FakeHF, {"model": "org/m"}, "org__m/arith__few-shot__aa29b589"),
    ],
)
def test_run_directories_keep_their_names(
    engine: type[FakeEngine], options: dict[str, Any], directory: str, tmp_path: Path
) -> None:
    config = EvalConfig(benchmarks=["arith"], out=tmp_path, limit=3, **options)
    backend = engine()
    plan = runner._plan(get_spec("arith"), config, backend, backend.identity(), None, None)  # type: ignore[arg-type]
    assert plan.run_dir.path.relative_to(tmp_path).as_posix() == directory


def test_a_loop_stopped_early_counts_as_cut_short() -> None:
    """A completion stopped in a loop is graded as one cut at the budget (which it would have run to)."""

    row = SampleRow(
        id="1",
        question="q",
        gold="1",
        prompt="p",
        completions=["a", "b", "c"],
        finish_reasons=["loop", "length", "stop"],
    )
    assert row.truncated == [True, True, False]
