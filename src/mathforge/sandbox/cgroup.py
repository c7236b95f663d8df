"""A process cap for root: the pids cgroup controller.

RLIMIT_NPROC caps a user's processes, but the kernel exempts root (in a user namespace too, since the count is
kept for the real user), so a fork bomb run by root would only be stopped by the wall-clock timeout. When
mathforge runs as root and a pids cgroup hierarchy is writable, each sandbox gets its own cgroup with
`pids.max` set; otherwise the rlimit (non-root) or the timeout (root without cgroups) is what remains.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import threading
import time
import uuid
from pathlib import Path

_V1 = Path("/sys/fs/cgroup/pids")
_V2 = Path("/sys/fs/cgroup")


@functools.cache
def pids_hierarchy() -> Path | None:
    """Where sandbox cgroups can be made, or None (not root, or no writable pids controller)."""
    if os.geteuid() != 0:
        return None
    if (_V1 / "cgroup.procs").is_file() and os.access(_V1, os.W_OK):
        _remove_stale(_V1)
        return _V1
    controllers = _V2 / "cgroup.subtree_control"
    if controllers.is_file() and os.access(_V2, os.W_OK):
        with contextlib.suppress(OSError):
            if "pids" not in controllers.read_text().split():
                controllers.write_text("+pids")
            if "pids" in controllers.read_text().split():
                _remove_stale(_V2)
                return _V2
    return None


class PidsCgroup:
    """A cgroup holding at most `max_tasks` tasks; `wrap` puts a command into it before it runs."""

    def __init__(self, hierarchy: Path, max_tasks: int) -> None:
        self.path = hierarchy / f"mathforge-sandbox-{uuid.uuid4().hex[:12]}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(max_tasks))

    def wrap(self, command: list[str]) -> list[str]:
        # The shell joins the cgroup and then becomes the command, so nothing runs outside it even for a moment.
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *command]

    def pids(self) -> set[int]:
        with contextlib.suppress(OSError, ValueError):
            return {int(line) for line in (self.path / "cgroup.procs").read_text().split()}
        return set()

    def remove(self) -> None:
        """Delete the cgroup, or leave it for later while its killed processes are still being reaped."""
        if not _try_rmdir(self.path):
            with _lock:
                _pending.add(self.path)


_STALE_SECONDS = 600


def _remove_stale(hierarchy: Path) -> None:
    """Empty sandbox cgroups that a killed mathforge process left behind (old enough not to be starting up)."""
    for path in hierarchy.glob("mathforge-sandbox-*"):
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > _STALE_SECONDS:
                path.rmdir()


_pending: set[Path] = set()
_lock = threading.Lock()


def _try_rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def _remove_pending(wait: float = 0.0) -> None:
    """Delete the cgroups left behind; at exit, wait up to `wait` seconds for the last ones to empty."""
    deadline = time.monotonic() + wait
    while True:
        with _lock:
            for path in list(_pending):
                if _try_rmdir(path):
                    _pending.discard(path)
            if not _pending or time.monotonic() >= deadline:
                return
        time.sleep(0.02)


atexit.register(_remove_pending, 2.0)


def make_cgroup(max_tasks: int) -> PidsCgroup | None:
    hierarchy = pids_hierarchy()
    if hierarchy is None:
        return None
    _remove_pending()
    try:
        return PidsCgroup(hierarchy, max_tasks)
    except OSError:
        return None
