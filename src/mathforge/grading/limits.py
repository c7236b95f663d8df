"""A hard time limit for grading work that can run away: SymPy parsing, simplification and even printing.

The work runs in a long-lived child process (`python -m mathforge.grading.limits`) and the caller waits on its
pipe with a deadline; past the deadline the child is SIGKILLed and replaced. This is the only kind of limit that
always holds: a thread cannot be stopped, and SIGALRM works only in the main thread and is not delivered while
SymPy sits in one long C-level operation (a 10^(10^10) integer, the printing of a power tower). A child per
calling thread is started on demand, so grading works from any thread and inside worker processes (the child is
a plain subprocess, which daemonic multiprocessing workers may start, unlike multiprocessing children).

Wire format: 4-byte big-endian length + pickle, both ways. Requests name a function in the mathforge package
and its arguments; only functions listed in `_ALLOWED` can be called.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import importlib
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 5.0  # seconds per request; Math-Verify's default is 5 s too
_STARTUP_TIMEOUT = 120.0  # importing SymPy and the LaTeX parser: about a second, longer on a loaded machine
_MEMORY_LIMIT = 4 << 30  # address space of the child: a runaway integer becomes a MemoryError, not a swap storm
_ALLOWED = frozenset({"mathforge.grading.equivalence:_grade_in_child", "mathforge.grading.limits:_sleep"})
_HEADER = struct.Struct(">I")
_READY = b"mathforge-grader-ready"


@dataclass(frozen=True)
class Outcome:
    status: str  # "ok", "timeout" or "error"
    value: Any = None  # the function's return value when "ok"; a one-line reason when "error"


def call_limited(function: str, args: tuple[Any, ...], timeout: float | None = None) -> Outcome:
    """Run `function` ("module:name", see `_ALLOWED`) on `args` in a child process, within `timeout` seconds.

    Never raises for the work's own failures: an exception in the child, a crash (memory limit, segfault) or a
    timeout comes back as an Outcome. Safe to call from any thread.
    """
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    child = _POOL.take()
    try:
        outcome = child.request(function, args, limit)
    except BaseException:
        child.kill()  # interrupted mid-request (Ctrl-C): its answer would be read by the next caller
        raise
    if child.alive:
        _POOL.give_back(child)
    return outcome


def in_child() -> bool:
    """Whether this process is a grading child (where limited work runs directly)."""
    return _IN_CHILD


def shutdown() -> None:
    """Stop all idle children (they also stop by themselves when this process ends)."""
    _POOL.close_all()


# --- the caller's side


class _Child:
    def __init__(self) -> None:
        source_root = str(Path(__file__).resolve().parents[2])  # so the child imports this very package
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mathforge.grading.limits", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        self.alive = True
        try:
            ready = self._read(time.monotonic() + _STARTUP_TIMEOUT)
        except BaseException:
            self.kill()
            raise
        if ready != _READY:
            self.kill()
            raise RuntimeError("the grading child process failed to start")

    def request(self, function: str, args: tuple[Any, ...], timeout: float) -> Outcome:
        payload = pickle.dumps((function, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(_HEADER.pack(len(payload)) + payload)
            self.process.stdin.flush()
        except OSError:
            self.kill()
            return Outcome("error", "grading child process died")
        reply = self._read(time.monotonic() + timeout)
        if reply is None:
            self.kill()
            return Outcome("timeout") if self._timed_out else Outcome("error", "grading child process died")
        return pickle.loads(reply)

    def _read(self, deadline: float) -> bytes | None:
        """One framed message, or None on timeout (sets _timed_out) or on the child's death."""
        self._timed_out = False
        header = self._read_exactly(_HEADER.size, deadline)
        if header is None:
            return None
        return self._read_exactly(_HEADER.unpack(header)[0], deadline)

    def _read_exactly(self, size: int, deadline: float) -> bytes | None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        poller = select.poll()  # not select.select: it fails on descriptor numbers of 1024 and above
        poller.register(fd, select.POLLIN)
        chunks, missing = [], size
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                self._timed_out = True
                return None
            chunk = os.read(fd, min(missing, 1 << 20))
            if not chunk:
                return None  # end of file: the child is gone
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        self.alive = False
        if self.process.poll() is None:
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self.process.wait()


class _Pool:
    """Idle children; a caller takes one (or starts one) for the length of a request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._pid = os.getpid()
        self._spawn_thread: concurrent.futures.ThreadPoolExecutor | None = None

    def take(self) -> _Child:
        with self._lock:
            self._forget_if_forked()
            while self._idle:
                child = self._idle.pop()
                if child.process.poll() is None:
                    return child
                child.kill()
            spawner = self._spawner()
        # Started from one long-lived thread: Linux sends the parent-death signal when the *thread* that
        # started a child ends, so a child started by a short-lived worker thread would die with it.
        return spawner.submit(_Child).result()

    def _spawner(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._spawn_thread is None:
            self._spawn_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mathforge-grader")
        return self._spawn_thread

    def give_back(self, child: _Child) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                self._idle.append(child)

    def close_all(self) -> None:
        with self._lock:
            self._forget_if_forked()
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()

    def _forget_if_forked(self) -> None:
        # A forked process shares its parent's pipes; talking to the parent's children would mix replies.
        if os.getpid() != self._pid:
            self._idle, self._pid, self._spawn_thread = [], os.getpid(), None


_POOL = _Pool()
_IN_CHILD = False
atexit.register(shutdown)


# --- the child's side


def _sleep(seconds: float) -> float:
    """Test helper: work that takes `seconds` of wall time."""
    time.sleep(seconds)
    return seconds


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when its parent dies, even if it is busy in SymPy at the time."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _limit_memory() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(_MEMORY_LIMIT, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def _serve(parent_pid: int) -> None:
    global _IN_CHILD
    _IN_CHILD = True
    _die_with_parent(parent_pid)
    _limit_memory()
    # The protocol owns the real stdout; anything SymPy or a library prints goes to stderr (discarded).
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import mathforge.grading.equivalence  # noqa: F401  (pays the import costs before saying ready)

    _warm_up()
    _send(channel, _READY)
    stdin = sys.stdin.buffer
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the parent closed the pipe
        function, args = pickle.loads(stdin.read(_HEADER.unpack(header)[0]))
        _send(channel, pickle.dumps(_run(function, args), protocol=pickle.HIGHEST_PROTOCOL))


def _warm_up() -> None:
    # The first SymPy parse and simplify load more modules; do it now, not on the first timed request.
    from mathforge.grading.equivalence import _grade_in_child

    _grade_in_child("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "expression", 0.0)


def _run(function: str, args: tuple[Any, ...]) -> Outcome:
    if function not in _ALLOWED:
        return Outcome("error", f"not callable in the grading child: {function}")
    module, name = function.split(":")
    try:
        return Outcome("ok", getattr(importlib.import_module(module), name)(*args))
    except MemoryError:
        return Outcome("error", "memory limit")
    except Exception as error:  # the work's own failure (RecursionError too) is a result, not the end
        return Outcome("error", f"{type(error).__name__}: {str(error)[:200]}")


def _send(channel: Any, data: bytes) -> None:
    channel.write(_HEADER.pack(len(data)) + data)
    channel.flush()


if __name__ == "__main__":
    # Run as the imported module, not as __main__: _IN_CHILD must be set where equivalence.py looks for it.
    from mathforge.grading import limits

    limits._serve(int(sys.argv[1]))
