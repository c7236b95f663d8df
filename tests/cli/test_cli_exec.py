"""`mathforge exec FILE.py`: the sandbox from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error


def _exec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", "exec", *args], capture_output=True, text=True, timeout=120
    )


def _program(tmp_path: Path, code: str) -> str:
    path = tmp_path / "program.py"
    path.write_text(code)
    return str(path)


@pytest.mark.parametrize(
    ("code", "status", "exit_status"),
    [
        ("print('hello')", "ok", 0),
        ("raise ValueError('no')", "error", 1),
        ("import os\nos._exit(5)", "error", 5),
        ("while True:\n    pass", "timeout", 124),
        ("x = bytearray(2 ** 40)", "memory", 125),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed", 137),
    ],
)
def test_json_report(tmp_path: Path, code: str, status: str, exit_status: int) -> None:
    result = _exec(_program(tmp_path, code), "--json", "--timeout", "2", "--memory-mb", "512")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) >= {"status", "stdout", "stderr", "returncode", "wall_seconds", "truncated"}
    assert report["status"] == status
    assert report["isolated"] is True
    assert result.returncode == exit_status


def test_plain_output_passes_through(tmp_path: Path) -> None:
    result = _exec(_program(tmp_path, "import sys\nprint('out')\nprint('err', file=sys.stderr)"))
    assert (result.stdout, result.stderr, result.returncode) == ("out\n", "err\n", 0)
    failed = _exec(_program(tmp_path, "1/0"))
    assert (
        failed.stderr.strip().splitlines()[-1] == "mathforge exec: error: ZeroDivisionError: division by zero"
    )


def test_timeout_is_said_once(tmp_path: Path) -> None:
    result = _exec(_program(tmp_path, "while True:\n    pass"), "--timeout", "1")
    assert result.returncode == 124
    assert result.stderr.strip().splitlines()[-1] == "mathforge exec: timeout: no result within 1 s"


def test_truncated_output_is_marked(tmp_path: Path) -> None:
    report = json.loads(_exec(_program(tmp_path, "print('x' * 10**6)"), "--json").stdout)
    assert report["truncated"] is True
    assert report["status"] == "ok"


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(_exec(str(tmp_path / "absent.py")), r"cannot read .*absent.py")


def test_bad_limits_are_one_line(tmp_path: Path) -> None:
    assert_one_line_error(_exec(_program(tmp_path, "1"), "--timeout", "0"), r"timeout must be positive")
    assert_one_line_error(_exec(_program(tmp_path, "1"), "--memory-mb", "1"), r"memory_mb must be at least")


def test_require_isolation_without_bubblewrap_is_one_line(tmp_path: Path) -> None:
    no_bwrap = {**os.environ, "PATH": str(tmp_path)}  # nothing on PATH: bwrap cannot be found
    program = _program(tmp_path, "print(1)")
    for args in (
        ["exec", program, "--require-isolation"],
        [
            "eval",
            "--prompt",
            "tora",
            "--bench",
            "gsm8k",
            "--limit",
            "1",
            "--require-isolation",
            "--out",
            str(tmp_path),
        ],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "mathforge.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=no_bwrap,
        )
        assert_one_line_error(
            result, r"isolation required but unavailable: bubblewrap \(bwrap\) is not installed"
        )
    fallback = subprocess.run(
        [sys.executable, "-m", "mathforge.cli", "exec", program, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=no_bwrap,
    )
    assert json.loads(fallback.stdout)["isolated"] is False
    assert fallback.stderr.count("not isolated") == 1  # the one-time warning
