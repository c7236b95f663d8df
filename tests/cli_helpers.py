"""Shared assertions for CLI tests."""

from __future__ import annotations

import contextlib
import io
import re
import signal
import subprocess


def assert_one_line_error(result: subprocess.CompletedProcess, pattern: str) -> None:
    """Exit status 2 and exactly one `mathforge: error: ...` line on stderr matching `pattern`, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("mathforge: error: ")
    assert re.search(pattern, lines[0]), lines[0]


def run_in_process(*args: str) -> subprocess.CompletedProcess:
    """`mathforge ARGS` through the CLI's own entry point in this process: its exit status, stdout and stderr as
    a subprocess would give them. For checks of what a command says, where a fresh interpreter would only add
    the import of torch and transformers (about 5 s each); each command keeps at least one test through a real
    subprocess, which also sees what imports print.
    """
    from mathforge import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    sigterm = signal.getsignal(signal.SIGTERM)  # main installs its own handler, not meant for pytest
    status = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            cli.main(list(args))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return subprocess.CompletedProcess(["mathforge", *args], status, stdout.getvalue(), stderr.getvalue())
