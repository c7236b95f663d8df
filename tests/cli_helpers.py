"""Shared assertions for CLI tests."""

from __future__ import annotations

import re
import subprocess


def assert_one_line_error(result: subprocess.CompletedProcess, pattern: str) -> None:
    """Exit status 2 and exactly one `mathforge: error: ...` line on stderr matching `pattern`, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("mathforge: error: ")
    assert re.search(pattern, lines[0]), lines[0]
