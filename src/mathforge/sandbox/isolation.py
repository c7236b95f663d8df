"""Isolation by bubblewrap: the namespaces and the read-only view of the system a program runs in.

Inside, a program sees the system's /usr and libraries and the Python installation (read-only), a private
size-limited /tmp as its working directory, its own /proc and /dev, no network but its own loopback, and no
other processes. The user's home, the project checkout and everything else are simply not mounted.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The system directories programs need (interpreters, shared libraries); /bin and friends are symlinks into
# /usr on merged-/usr systems and are recreated as symlinks.
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The few files of /etc that the dynamic loader and Python's standard library read; the rest of /etc (keys,
# password hashes, host configuration) stays out of view.
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/passwd",
    "/etc/group",
)
SANDBOX_UID = 65534  # nobody
WORKDIR = "/tmp"


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def isolation_error() -> str | None:
    """None when bubblewrap can start a sandbox here, else why not (checked once per process)."""
    bwrap = bwrap_path()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        probe = subprocess.run(
            [*bwrap_argv(tmp_mb=1), sys.executable, "-I", "-c", "pass"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap failed to start: {error}"
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot create a sandbox here: {reason[-1] if reason else probe.returncode}"
    return None


def _python_roots() -> list[str]:
    """The Python installation and virtual environment, which may live outside /usr (pyenv, conda, a venv)."""
    roots = {sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.add(str(Path(sys.executable).resolve().parent.parent))
    return sorted(root for root in roots if not root.startswith("/usr/") and root != "/usr")


def bwrap_argv(tmp_mb: int) -> list[str]:
    """The bwrap command line (without the program): namespaces, mounts and a private /tmp of tmp_mb MiB."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise RuntimeError("bwrap is not installed")
    argv = [
        bwrap,
        "--unshare-all",  # network, pid, ipc, uts, cgroup, user namespaces
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--cap-drop",
        "ALL",
        "--die-with-parent",  # killing bwrap kills the namespace and every process in it
        "--new-session",  # no TIOCSTI into the caller's terminal
        "--hostname",
        "sandbox",
    ]
    for directory in _SYSTEM_DIRS:
        if os.path.islink(directory):
            argv += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            argv += ["--ro-bind", directory, directory]
    for path in _ETC_FILES:
        argv += ["--ro-bind-try", path, path]
    argv += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # /dev/shm is a tmpfs too: capped like /tmp, or a program could fill the host's memory through it.
        "--size",
        str(tmp_mb * 1024 * 1024),
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
        "--size",
        str(tmp_mb * 1024 * 1024),
        "--tmpfs",
        WORKDIR,
    ]
    # After the tmpfs: a virtual environment under /tmp (a CI checkout) must not be hidden by it.
    for root in _python_roots():
        argv += ["--ro-bind", root, root]
    argv += [
        "--remount-ro",  # the skeleton root bwrap builds (/etc, mount points) is read-only too
        "/",
        "--chdir",
        WORKDIR,
        "--setenv",
        "HOME",
        WORKDIR,
    ]
    return argv
