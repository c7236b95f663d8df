"""The run-directory format: `run.json` (configuration), `samples.jsonl` (one row per item), `metrics.json`.

Crash safety: sample rows are appended and fsynced batch by batch, and JSON files are replaced atomically, so
a run killed at any moment (SIGKILL included) leaves whole files; a torn last line of samples.jsonl (a kill in
the middle of a write) is cut off on the next start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mathforge.errors import MathforgeError

SAMPLES = "samples.jsonl"
METRICS = "metrics.json"
RUN = "run.json"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples = path / SAMPLES
        self.metrics = path / METRICS
        self.run = path / RUN

    def start(self, fingerprint: dict[str, Any]) -> None:
        """Create the directory, or check that an existing one holds the same run."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.run.exists():
            previous = json.loads(self.run.read_text(encoding="utf-8")).get("fingerprint", {})
            changed = [
                key
                for key in sorted(set(previous) | set(fingerprint))
                if previous.get(key) != fingerprint.get(key)
            ]
            if changed:
                key = changed[0]
                raise MathforgeError(
                    f"{self.path} holds a different run ({key}: {previous.get(key)!r} there, {fingerprint.get(key)!r} now); "
                    "use another --out, or --fresh to discard it"
                )
        write_json_atomic(self.run, {"fingerprint": fingerprint})

    def finished_rows(self) -> dict[str, dict[str, Any]]:
        """Rows already written, by item id; a torn last line is removed from the file."""
        if not self.samples.exists():
            return {}
        rows: dict[str, dict[str, Any]] = {}
        good_bytes = 0
        with self.samples.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                try:
                    row = json.loads(line)
                except ValueError:
                    break
                rows[str(row["id"])] = row
                good_bytes += len(line)
        if good_bytes < self.samples.stat().st_size:
            with self.samples.open("r+b") as handle:
                handle.truncate(good_bytes)
        return rows

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        with self.samples.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def clear(self) -> None:
        for path in (self.samples, self.metrics, self.run):
            path.unlink(missing_ok=True)
