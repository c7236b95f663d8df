"""A run killed with SIGKILL mid-way resumes: finished rows are kept, nothing is corrupt, nothing is redone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mathforge.rundir import RunDir


def _eval_command(out: Path, limit: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mathforge.cli",
        "eval",
        "--bench",
        "arith",
        "--limit",
        str(limit),
        "--max-new-tokens",
        "40",
        "--shots",
        "2",
        "--out",
        str(out),
        "--quiet",
    ]


@pytest.mark.slow
def test_sigkill_then_resume(gemma_gguf: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(_eval_command(tmp_path, 10), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    samples = None
    while samples is None:
        assert time.monotonic() < deadline, "the run wrote no 3 rows in time"
        assert process.poll() is None, process.stderr.read().decode()
        found = list(tmp_path.glob("gemma3-270m/arith__few-shot__*/samples.jsonl"))
        if found and found[0].read_text().count("\n") >= 3:
            samples = found[0]
        time.sleep(0.05)
    run_dir = samples.parent
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Simulate the worst moment for the kill: in the middle of writing a row.
    with samples.open("a") as handle:
        handle.write('{"id": "arith-test-9", "question": "torn')
    kept = [line for line in samples.read_text().splitlines(keepends=True) if line.endswith("\n")]
    assert not (run_dir / "metrics.json").exists()

    finished = subprocess.run(_eval_command(tmp_path, 10), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    lines = samples.read_text().splitlines(keepends=True)
    assert lines[: len(kept)] == kept, "rows finished before the kill are kept byte for byte"
    rows = [json.loads(line) for line in lines]
    assert [row["id"] for row in rows] == [f"arith-test-{i}" for i in range(10)]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n"] == 10
    assert str(run_dir) in finished.stdout.replace("\n", "")


def test_torn_last_line_is_cut(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.start({"a": 1})
    run.append([{"id": "1", "x": 1}, {"id": "2", "x": 2}])
    with run.samples.open("a") as handle:
        handle.write('{"id": "3", "x"')
    assert list(run.finished_rows()) == ["1", "2"]
    assert run.samples.read_text() == '{"id": "1", "x": 1}\n{"id": "2", "x": 2}\n'
    run.append([{"id": "3", "x": 3}])
    assert list(run.finished_rows()) == ["1", "2", "3"]


def test_atomic_json_write_leaves_no_temp_files(tmp_path: Path) -> None:
    from mathforge.rundir import write_json_atomic

    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"acc": 1.0})
    write_json_atomic(target, {"acc": 2.0})
    assert json.loads(target.read_text()) == {"acc": 2.0}
    assert os.listdir(tmp_path) == ["metrics.json"]
