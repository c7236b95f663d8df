"""The real stages together: the same outputs in one process, in `--workers` processes and on Ray Data, and the
`curate` command (table, `--json` funnel, one-line errors). Input: GSM8K train rows, some repeated and some
broken on purpose, so that every stage has something to keep and something to drop."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error
from conftest import BENCHMARK_DATA

from mathforge.data.pipeline import CurateOptions, curate
from mathforge.io import read_jsonl, read_rows, write_jsonl_atomic

PIPELINE = """\
stages:
  - structure
  - answer_range:
      max: 100000
  - solution_quality
  - machine_text
  - math_verify
  - decontam:
      against: [gsm8k]
  - exact_dedup
"""


def _gsm8k_rows(count: int) -> list[dict[str, Any]]:
    rows = []
    for number, row in read_jsonl(BENCHMARK_DATA / "gsm8k_openai" / "train.jsonl"):
        solution, answer = row["answer"].split("####")
        rows.append(
            {
                "id": f"train-{number}",
                "question": row["question"],
                "solution": solution.strip(),
                "answer": answer.strip(),
            }
        )
        if len(rows) == count:
            break
    return rows


def _rows() -> list[dict[str, Any]]:
    rows = _gsm8k_rows(120)
    broken = [
        {**rows[0], "id": "no-answer", "answer": ""},
        {**rows[1], "id": "huge", "answer": "12345678"},
        {**rows[2], "id": "refusal", "solution": "I'm sorry, but I can't help with that request."},
        {**rows[3], "id": "bad-calc", "solution": rows[3]["solution"].replace("=24>>24", "=25>>25")},
        {**rows[4], "id": "repeat"},  # the same question, solution and answer as rows[4]
    ]
    return rows[:60] + broken + rows[60:]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("curate") / "rows.jsonl"
    write_jsonl_atomic(path, _rows())
    return path


@pytest.fixture(scope="module")
def single(source: Path) -> dict[str, Any]:
    """The pipeline in one process: the reference the other runners must match."""
    return _run(source, source.parent / "single", {})


def _run(source: Path, folder: Path, options: dict[str, Any], runner: Any = curate) -> dict[str, Any]:
    folder.mkdir(exist_ok=True)
    pipeline = folder / "pipeline.yaml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    opts = CurateOptions.load(
        pipeline,
        {
            "out": folder / "kept.jsonl",
            "quiet": True,
            "batch_rows": 32,
            "data_dir": BENCHMARK_DATA,
            **options,
        },
    )
    funnel = runner(source, opts).as_json()
    return {
        "funnel": {key: funnel[key] for key in ("rows", "stages", "kept", "dropped")},
        "kept": [row["id"] for _, row in read_rows(folder / "kept.jsonl")],
        "rejected": {
            row["id"]: row["rejected"]["reason"] for _, row in read_rows(folder / "kept.rejects.jsonl")
        },
    }


def test_every_stage_drops_what_it_should(single: dict[str, Any]) -> None:
    rejected = single["rejected"]
    assert rejected["no-answer"] == "no_answer"
    assert rejected["huge"] == "above_max"
    assert rejected["refusal"] in {"refusal", "too_few_steps", "too_short"}
    assert rejected["bad-calc"] == "wrong_calculation"
    assert rejected["repeat"] == "duplicate"
    assert (
        rejected["train-21"] == "benchmark_overlap"
    )  # a sibling of GSM8K test item 632 (docs/decontamination.md)
    assert single["funnel"]["rows"] == 125
    assert single["funnel"]["kept"] + single["funnel"]["dropped"] == 125
    assert len(single["kept"]) == single["funnel"]["kept"]


def test_worker_processes_give_the_same_result(source: Path, single: dict[str, Any]) -> None:
    assert _run(source, source.parent / "workers", {"workers": 2}) == single


def test_ray_data_gives_the_same_result(source: Path, single: dict[str, Any]) -> None:
    import ray  # a dev dependency: the Ray runner is always tested

    from mathforge.data.ray_pipeline import curate_on_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        assert _run(source, source.parent / "ray", {}, runner=curate_on_ray) == single
    finally:
        ray.shutdown()


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_the_curate_command(source: Path, single: dict[str, Any], tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    data = ("--data-dir", BENCHMARK_DATA)
    result = _cli("curate", source, "--config", pipeline, *data, "--out", tmp_path / "kept.jsonl", "--json")
    assert result.returncode == 0, result.stderr
    funnel = json.loads(result.stdout.strip().splitlines()[-1])
    assert {key: funnel[key] for key in ("rows", "stages", "kept", "dropped")} == single["funnel"]
    assert json.loads((tmp_path / "kept.funnel.json").read_text()) == funnel
    table = _cli("curate", source, "--config", pipeline, *data, "--out", tmp_path / "kept.jsonl", "--quiet")
    assert table.returncode == 0, table.stderr
    for stage in funnel["stages"]:  # one row per stage: name, in, kept, dropped
        assert re.search(
            rf"{stage['name']}\W+{stage['in']}\W+{stage['kept']}\W+{stage['dropped']}", table.stdout
        )
    assert re.search(rf"total\W+125\W+{funnel['kept']} \(", table.stdout)


def test_curate_errors_are_one_line(source: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("stages:\n  - structure\n  - answer_range:\n      maximum: 5\n", encoding="utf-8")
    result = _cli("curate", source, "--config", pipeline, "--out", tmp_path / "kept.jsonl")
    assert_one_line_error(result, r"pipeline.yaml:4: unknown key 'maximum'; did you mean 'max'\?")
    result = _cli(
        "curate", tmp_path / "missing.jsonl", "--stages", "structure", "--out", tmp_path / "k.jsonl"
    )
    assert_one_line_error(result, r"cannot read .*missing.jsonl")
    assert not (tmp_path / "kept.jsonl").exists()
