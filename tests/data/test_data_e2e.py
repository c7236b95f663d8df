"""The whole make-data loop offline, through the CLI, with the packaged Gemma 3 270M as the teacher: GSM8K train
seeds -> synth -> curate (the recipe's pipeline) -> dedup -> decontam. A 270M teacher writes poor problems; what
is checked is that every command runs on the others' output and that every row is accounted for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BENCHMARK_DATA, REPO

from mathforge.io import read_jsonl


def _cli(*args: str | Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *map(str, args), "--json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _count(path: Path) -> int:
    return sum(1 for _ in read_jsonl(path)) if path.exists() else 0


@pytest.mark.slow
def test_seeds_to_a_decontaminated_set(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    lines = (BENCHMARK_DATA / "gsm8k_openai" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    seeds.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(REPO / "recipes" / "synth-gsm8k" / "pipeline.yaml", tmp_path / "pipeline.yaml")

    synth = _cli(
        "synth", "--seeds", seeds, "--n", 6, "--shots", 2, "--samples", 2, "--max-new-tokens", 160,
        "--out", tmp_path / "synth.jsonl",
    )  # fmt: skip
    assert synth["requested"] == 6 and synth["sent"] >= 6
    assert synth["accepted"] + synth["rejected"] == 6
    assert synth["accepted"] == _count(tmp_path / "synth.jsonl")
    assert synth["rejected"] == _count(tmp_path / "synth.rejects.jsonl")
    assert synth["completion_tokens"] > 0 and synth["prompt_tokens"] > 0

    funnel = _cli(
        "curate", tmp_path / "synth.jsonl", "--config", tmp_path / "pipeline.yaml",
        "--data-dir", BENCHMARK_DATA, "--out", tmp_path / "curated.jsonl",
    )  # fmt: skip
    assert [stage["name"] for stage in funnel["stages"]] == [
        "structure", "answer_range", "solution_quality", "machine_text", "math_verify",
        "exact_dedup", "fuzzy_dedup", "decontam",
    ]  # fmt: skip
    assert funnel["rows"] == synth["accepted"]
    assert funnel["kept"] == _count(tmp_path / "curated.jsonl")
    assert funnel["dropped"] == _count(tmp_path / "curated.rejects.jsonl")

    # The kept rows again through the two stand-alone commands (an empty file is a valid input).
    deduped = _cli("dedup", tmp_path / "curated.jsonl", "--out", tmp_path / "deduped.jsonl")
    assert deduped["dropped"] == 0  # curate deduplicated already
    report = _cli(
        "decontam", tmp_path / "deduped.jsonl", "--against", "gsm8k,math500", "--data-dir", BENCHMARK_DATA,
    )  # fmt: skip
    assert report["flagged"] == []  # curate decontaminated already
