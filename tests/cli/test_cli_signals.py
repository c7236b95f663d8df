"""Ctrl-C and SIGTERM through the real CLI: the status says which, one line says how far the run got, and the
re-run says it resumes; any status a command exits with reaches the shell."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from mathforge import cli


def _eval(out: Path) -> list[str]:
    return [sys.executable, "-m", "mathforge.cli", "eval", "--bench", "arith", "--limit", "10"] + [
        "--max-new-tokens", "40", "--shots", "2", "--out", str(out), "--quiet"
    ]  # fmt: skip


def _rows_written(out: Path, process: subprocess.Popen, at_least: int) -> Path:
    deadline = time.monotonic() + 240
    while True:
        assert time.monotonic() < deadline, f"the run wrote no {at_least} rows in time"
        assert process.poll() is None, process.communicate()
        found = list(out.glob("gemma3-270m/arith__few-shot__*/samples.jsonl"))
        if found and found[0].read_text().count("\n") >= at_least:
            return found[0]
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sent", "status", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_signal_stops_the_run_and_the_rerun_resumes(
    gemma_gguf: Path, tmp_path: Path, sent: signal.Signals, status: int, word: str
) -> None:
    process = subprocess.Popen(_eval(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = _rows_written(tmp_path, process, at_least=2)
    process.send_signal(sent)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    kept = samples.read_text().count("\n")
    assert stderr.strip() == (
        f"mathforge: {word}: {kept} of 10 arith items done ({samples.parent}); re-run the same command to resume"
    )
    assert stdout == ""  # no results table for an unfinished run
    assert not (samples.parent / "metrics.json").exists()

    rerun = subprocess.run(_eval(tmp_path), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming: {kept} of 10 arith items done ({samples.parent})" in rerun.stderr
    assert json.loads((samples.parent / "metrics.json").read_text())["n"] == 10


def test_sigterm_before_generation_is_status_143(tmp_path: Path) -> None:
    """Stopped before any row (here while the engine waits for a server): no run to describe, but the status
    still says SIGTERM."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        base_url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        command = [*_eval(tmp_path), "--backend", "openai", "--model", "m", "--base-url", base_url]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        server.settimeout(120)
        connection, _ = (
            server.accept()
        )  # the CLI is past its imports and waits for an answer that never comes
        with connection:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    assert re.fullmatch(r"mathforge: terminated[:;] .*re-run the same command to resume\n", stderr), stderr


def test_a_llamacpp_load_holds_signals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine loads its model inside `_signals_held`: Ctrl-C during the load ends the load, then stops."""
    import llama_cpp

    from mathforge.backends.llamacpp import LlamaCppBackend

    loads: list[str] = []

    class Loading:
        def __init__(self, **options: object) -> None:
            signal.raise_signal(signal.SIGINT)  # as if inside llama.cpp's log callback
            time.sleep(0.05)
            loads.append("finished")

    monkeypatch.setattr(llama_cpp, "Llama", Loading)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(KeyboardInterrupt):
        LlamaCppBackend(model)
    assert loads == ["finished"]


def test_signals_during_a_llamacpp_load_are_held_then_delivered() -> None:
    """llama.cpp calls Python back (its log callback) while a model loads, where a raised KeyboardInterrupt
    would be dropped by ctypes: the load holds signals and delivers them once it returns."""
    from mathforge.backends.llamacpp import _signals_held

    reached_the_end = False
    with pytest.raises(KeyboardInterrupt), _signals_held():
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.05)  # a handler that raised would have raised by now
        reached_the_end = True
    assert reached_the_end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_every_exit_status_reaches_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # main's SIGTERM handler is not for pytest

    @cli.app.command("exit-with")
    def exit_with(code: int) -> None:
        raise typer.Exit(code)

    try:
        cli.main(["exit-with", "0"])  # returns: status 0
        for code in (3, 2, 130):
            with pytest.raises(SystemExit) as exited:
                cli.main(["exit-with", str(code)])
            assert exited.value.code == code
    finally:
        cli.app.registered_commands.pop()
