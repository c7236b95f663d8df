"""Model identity: which file or hub revision was evaluated, so that numbers can be traced to weights."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mathforge.io import write_json_atomic


def _cache_path() -> Path:
    return Path(os.environ.get("MATHFORGE_CACHE", Path.home() / ".cache" / "mathforge")) / "file-hashes.json"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, cached by (path, size, mtime): multi-GB GGUF files are hashed once, not every run."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    cache_file = _cache_path()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    cache[key] = digest
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(cache_file, cache)
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return digest


def directory_sha256(path: str | Path) -> str:
    """One hash over the top-level files of a local model directory (names and contents).

    Only the top level: what transformers loads is there, while training outputs keep checkpoints and logs in
    subfolders that change without changing the model.
    """
    root = Path(path)
    combined = hashlib.sha256()
    for file in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
        combined.update(str(file.relative_to(root)).encode())
        combined.update(file_sha256(file).encode())
    return combined.hexdigest()
