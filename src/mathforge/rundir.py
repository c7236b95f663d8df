"""The run-directory format: `run.json` (what the run is), a JSONL file of rows, and a JSON file of results.

`eval` writes `samples.jsonl` and `metrics.json` here; the data and train commands keep the same shape.

Crash safety (see `mathforge.io`): rows are appended and fsynced batch by batch, and JSON files are replaced
atomically, so a run killed at any moment (SIGKILL included) leaves whole files; a torn last line of the rows
(a kill in the middle of a write) is cut off on the next start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mathforge.errors import MathforgeError
from mathforge.io import append_jsonl, read_resumable, write_json_atomic

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"
RUN = "run.json"

__all__ = ["METRICS", "RUN", "SAMPLES", "RunDir", "check_same_run", "write_json_atomic"]


def check_same_run(run_file: Path, fingerprint: dict[str, Any], what: str) -> None:
    """Refuse to resume a run whose recorded fingerprint (in `run_file`, if there) differs from `fingerprint`:
    the error names the first setting that changed (`what` says whose run it is)."""
    if not run_file.exists():
        return
    previous = json.loads(run_file.read_text(encoding="utf-8")).get("fingerprint", {})
    changed = [
        key for key in sorted(set(previous) | set(fingerprint)) if previous.get(key) != fingerprint.get(key)
    ]
    if changed:
        key = changed[0]
        raise MathforgeError(
            f"{what} ({key}: {previous.get(key)!r} there, {fingerprint.get(key)!r} now); use another --out, "
            "or --fresh to discard it"
        )


class RunDir:
    def __init__(self, path: Path, rows: str = SAMPLES, results: str = METRICS) -> None:
        self.path = path
        self.samples = path / rows
        self.metrics = path / results
        self.run = path / RUN

    def start(self, fingerprint: dict[str, Any]) -> None:
        """Create the directory, or check that an existing one holds the same run."""
        self.path.mkdir(parents=True, exist_ok=True)
        check_same_run(self.run, fingerprint, f"{self.path} holds a different run")
        write_json_atomic(self.run, {"fingerprint": fingerprint})

    def finished_rows(self) -> dict[str, dict[str, Any]]:
        """Rows already written, by id; a torn last line is removed from the file."""
        return {str(row["id"]): row for row in read_resumable(self.samples)}

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        append_jsonl(self.samples, rows)

    def clear(self) -> None:
        for path in (self.samples, self.metrics, self.run):
            path.unlink(missing_ok=True)
