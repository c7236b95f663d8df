"""`mathforge train sft` through the CLI: --dry-run with --json (the counts on the last stdout line) and the table
with the trained part marked, a YAML config with FILE:line errors, training to a run directory, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_in_process


def mathforge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mathforge.benchmarks.arith import generate

    path = tmp_path_factory.mktemp("cli-data") / "arith.jsonl"
    path.write_text(
        "".join(json.dumps(row) + "\n" for row in generate(8, seed=1, split="train")), encoding="utf-8"
    )
    return path


def test_dry_run_json_and_table(tiny_llama: Path, data: Path) -> None:
    result = mathforge("train", "sft", "--data", str(data), "--model", str(tiny_llama), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["examples"] == 8 and counts["fully_masked"] == 0 and counts["truncated"] == 0
    assert 0 < counts["trainable_tokens"] < counts["tokens"]
    table = run_in_process("train", "sft", "--data", str(data), "--model", str(tiny_llama), "--dry-run")
    assert table.returncode == 0, table.stderr
    assert "trainable per example" in table.stdout
    # Not a terminal: the trained part is marked with brackets.
    assert "Solution:⟦ <think>\n" in table.stdout and "The answer is" in table.stdout


def test_config_file_trains_and_errors_name_the_line(tiny_llama: Path, data: Path, tmp_path: Path) -> None:
    config = tmp_path / "sft.yaml"
    config.write_text(
        f"data: {data}\nmodel: {tiny_llama}\nmax_steps: 2\nlr: 1e-3\nbatch-size: 4\nout: {tmp_path / 'run'}\n",
        encoding="utf-8",
    )
    result = mathforge("train", "sft", "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and Path(summary["result"]).name == "adapter"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"data: {data}\nlora_rank: 8\n", encoding="utf-8")
    assert_one_line_error(
        mathforge("train", "sft", "--config", str(bad)),
        rf"{bad}:2: unknown key 'lora_rank'; did you mean 'lora-r'",
    )
    bad.write_text(f"data: {data}\nmethod: qlora4\n", encoding="utf-8")
    assert_one_line_error(
        mathforge("train", "sft", "--config", str(bad)),
        rf"{bad}:2: key 'method': must be one of lora, qlora, full",
    )


def test_one_line_errors(tiny_llama: Path, data: Path, tmp_path: Path) -> None:
    # In this process where what each error says is the point; one, raised after transformers loads, as a subprocess.
    common = ["train", "sft", "--model", str(tiny_llama), "--out", str(tmp_path / "run")]
    assert_one_line_error(
        run_in_process(*common, "--data", str(data), "--method", "qlora", "--device", "cpu"),
        r"--method qlora needs a CUDA GPU",
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"question": "Q?", "solution": "1 + 1 = 2"}\n{"question": "Q?"}\n', encoding="utf-8")
    # Through a subprocess: an error raised after the tokenizer is loaded, with nothing else on stderr.
    assert_one_line_error(mathforge(*common, "--data", str(rows)), rf"{rows}:2: no 'solution' text")
    assert_one_line_error(run_in_process(*common, "--data", str(tmp_path / "none.jsonl")), r"none.jsonl")
    assert_one_line_error(  # an option the format never reads is refused, not silently ignored
        run_in_process(*common, "--data", str(data), "--system-prompt", "Be brief."),
        r"--system-prompt is read by --format chat and --eval-prompt chat only \(this is --format plain\)",
    )
    assert_one_line_error(  # transformers' Trainer would move the model to cuda:0
        run_in_process(*common, "--data", str(data), "--device", "cuda:1"),
        r"--device cuda:1: .*CUDA_VISIBLE_DEVICES=1",
    )
    assert_one_line_error(  # the flag training has, not eval's --prompt-template
        run_in_process(
            *common, "--data", str(data), "--format", "template", "--template", str(tmp_path / "no.j2")
        ),
        r"--template: cannot read .*no\.j2",
    )
    assert not (tmp_path / "run").exists()


def test_sigterm_stops_with_how_to_resume_and_resume_finishes(
    tiny_llama: Path, data: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import time

    out = tmp_path / "run"
    args = [
        "train",
        "sft",
        "--data",
        str(data),
        "--model",
        str(tiny_llama),
        "--out",
        str(out),
        "--max-steps",
        "40",
    ]
    args += ["--save-steps", "2", "--batch-size", "1", "--lr", "1e-3"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mathforge.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (out / "checkpoints" / "checkpoint-4").exists() and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert (
        last.startswith("mathforge: training stopped at step ")
        and "--resume continues from checkpoint-" in last
    )
    # The same command with --resume finishes the run: every step logged once, from 1 to 40.
    resumed = mathforge(*args, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["steps"] == 40
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == list(range(1, 41))
    assert os.path.isdir(out / "adapter")
