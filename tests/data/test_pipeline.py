"""The curate pipeline itself: stages from a YAML file (FILE:line errors), rows streamed in batches through them,
the funnel that adds up, rejects with their stage, reason and line, JSONL and Parquet, and outputs that do not
depend on the batch size. Toy stages declared here keep the rules under test obvious; the real stages have their
own test files, and `test_curate_real.py` runs them together (workers, Ray, the CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field

from mathforge.data.pipeline import CurateOptions, curate, stage_specs
from mathforge.data.stages import STAGES, Drop, Stage, StageOptions, Verdict
from mathforge.errors import MathforgeError
from mathforge.io import RowWriter, read_jsonl, read_rows


class _OddOptions(StageOptions):
    field: str = Field("n", description="the number field")


class DropOdd(Stage):
    """Drops rows whose number is odd (one row at a time: parallel)."""

    name: ClassVar[str] = "toy_drop_odd"
    options = _OddOptions
    opts: _OddOptions

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        return [
            Drop("odd", f"{row[self.opts.field]} is odd") if row[self.opts.field] % 2 else None
            for row in rows
        ]


class FirstOfValue(Stage):
    """Keeps the first row of each value, in input order, across batches (state: not parallel)."""

    name: ClassVar[str] = "toy_first_of_value"
    parallel: ClassVar[bool] = False

    def setup(self) -> None:
        self.seen: dict[Any, int] = {}

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for row, line in zip(rows, lines, strict=True):
            first = self.seen.setdefault(row["v"], line)
            verdicts.append(None if first == line else Drop("repeat", info={"duplicate_of": first}))
        return verdicts


@pytest.fixture(autouse=True)
def _toy_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    for stage in (DropOdd, FirstOfValue):
        monkeypatch.setitem(STAGES, stage.name, stage)


ROWS = [{"n": n, "v": n % 5, "text": f"row {n}"} for n in range(1, 41)]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    with RowWriter(path) as writer:
        writer.write_all(rows)
    return path


def _pipeline(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


PIPELINE = "stages:\n  - toy_drop_odd\n  - toy_first_of_value\n"


def _expected() -> tuple[list[int], dict[int, tuple[str, str]]]:
    """The kept n and, for each dropped n, (stage, reason), computed from the rules directly."""
    kept, dropped, seen = [], {}, set()
    for row in ROWS:
        if row["n"] % 2:
            dropped[row["n"]] = ("toy_drop_odd", "odd")
        elif row["v"] in seen:
            dropped[row["n"]] = ("toy_first_of_value", "repeat")
        else:
            seen.add(row["v"])
            kept.append(row["n"])
    return kept, dropped


@pytest.mark.parametrize("batch_rows", [1, 3, 1000])
def test_rows_flow_through_the_stages_and_the_funnel_adds_up(tmp_path: Path, batch_rows: int) -> None:
    source = _write(tmp_path / "rows.jsonl", ROWS)
    opts = CurateOptions.load(
        _pipeline(tmp_path, PIPELINE),
        {"out": tmp_path / "kept.jsonl", "batch_rows": batch_rows, "quiet": True},
    )
    funnel = curate(source, opts).as_json()

    kept, dropped = _expected()
    assert [row["n"] for _, row in read_jsonl(tmp_path / "kept.jsonl")] == kept  # input order kept
    rejects = [row for _, row in read_jsonl(tmp_path / "kept.rejects.jsonl")]
    assert {row["n"]: (row["rejected"]["stage"], row["rejected"]["reason"]) for row in rejects} == dropped
    for row in rejects:  # the line is the input line, and the row itself is whole
        assert row["rejected"]["line"] == row["n"]
        assert row["text"] == f"row {row['n']}"
    repeats = [row for row in rejects if row["rejected"]["reason"] == "repeat"]
    assert all(ROWS[row["rejected"]["duplicate_of"] - 1]["v"] == row["v"] for row in repeats)

    assert funnel["rows"] == 40 and funnel["kept"] == len(kept) and funnel["dropped"] == len(dropped)
    assert [(s["name"], s["in"], s["kept"], s["dropped"]) for s in funnel["stages"]] == [
        ("toy_drop_odd", 40, 20, 20),
        ("toy_first_of_value", 20, len(kept), 20 - len(kept)),
    ]
    assert funnel["stages"][0]["reasons"] == {"odd": 20}
    assert json.loads((tmp_path / "kept.funnel.json").read_text()) == funnel


def test_parquet_in_and_out(tmp_path: Path) -> None:
    source = _write(tmp_path / "rows.parquet", ROWS)
    opts = CurateOptions.build(
        stages=["toy_drop_odd"], out=tmp_path / "kept.parquet", quiet=True, batch_rows=7
    )
    funnel = curate(source, opts)
    assert funnel.kept == 20
    assert [row for _, row in read_rows(tmp_path / "kept.parquet")] == [
        row for row in ROWS if row["n"] % 2 == 0
    ]


def test_stage_options_come_from_the_file(tmp_path: Path) -> None:
    rows = [{"m": n} for n in range(10)]
    source = _write(tmp_path / "rows.jsonl", rows)
    pipeline = _pipeline(tmp_path, "stages:\n  - toy_drop_odd:\n      field: m\n")
    funnel = curate(source, CurateOptions.load(pipeline, {"out": tmp_path / "o.jsonl", "quiet": True}))
    assert funnel.kept == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "stages:\n  - toy_drop_od\n",
            r"pipeline.yaml:2: unknown stage 'toy_drop_od' \(did you mean toy_drop_odd\?\)",
        ),
        (
            "stages:\n  - toy_drop_odd:\n      feild: m\n",
            r"pipeline.yaml:3: unknown key 'feild'; did you mean 'field'\?",
        ),
        ("stages:\n  - toy_drop_odd:\n      field: [1]\n", r"pipeline.yaml:3: key 'field': "),
        (
            "stages:\n  - toy_drop_odd: 3\n",
            r"pipeline.yaml:2: stage 'toy_drop_odd': expected a mapping of options",
        ),
        ("stages:\n  - {a: 1, b: 2}\n", r"pipeline.yaml:2: expected a stage name or"),
        ("stages: []\n", r"pipeline.yaml:1: key 'stages': no stages"),
        ("stage:\n  - toy_drop_odd\n", r"pipeline.yaml:1: unknown key 'stage'; did you mean 'stages'\?"),
    ],
)
def test_pipeline_file_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MathforgeError, match=message):
        stage_specs(CurateOptions.load(_pipeline(tmp_path, text), {"out": tmp_path / "o.jsonl"}))


def test_stages_as_a_flag_and_from_python(tmp_path: Path) -> None:
    source = _write(tmp_path / "rows.jsonl", ROWS)
    by_flag = CurateOptions.build(
        stages="toy_drop_odd,toy_first_of_value", out=tmp_path / "a.jsonl", quiet=True
    )
    assert curate(source, by_flag).kept == len(_expected()[0])
    with pytest.raises(MathforgeError, match=r"stage 1: toy_drop_odd: .*feild"):
        stage_specs(CurateOptions.build(stages=[{"toy_drop_odd": {"feild": 1}}], out=tmp_path / "b.jsonl"))


def test_nothing_is_written_when_the_input_is_bad(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text('{"n": 2}\n{"n": 4\n', encoding="utf-8")
    opts = CurateOptions.build(stages=["toy_drop_odd"], out=tmp_path / "kept.jsonl", quiet=True)
    with pytest.raises(MathforgeError, match=r"rows.jsonl:2: malformed JSON line"):
        curate(source, opts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]  # no half-written outputs


@pytest.mark.parametrize("option", ["out", "rejects"])
def test_an_output_that_is_the_input_is_refused(tmp_path: Path, option: str) -> None:
    source = _write(tmp_path / "rows.jsonl", ROWS)
    values = {"out": tmp_path / "kept.jsonl", option: source}
    with pytest.raises(MathforgeError, match=rf"--{option} .* is the input file"):
        curate(source, CurateOptions.build(stages=["toy_drop_odd"], **values))
