"""Running untrusted Python: one sandboxed process per run, or one kept alive across a session's calls.

A run starts `python -I -c <bootstrap>` (inside bubblewrap when it works here), sends it the code over a pipe
and reads its stdout, stderr and reply until the reply comes, the process dies or the wall clock runs out.
Then the whole process tree is killed: with bubblewrap, killing bwrap ends the pid namespace and everything in
it; without, the tree is found through /proc (children re-parented to us included) and a marker in the
environment, stopped and killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathforge.errors import MathforgeError
from mathforge.sandbox import isolation
from mathforge.sandbox.cgroup import make_cgroup
from mathforge.sandbox.types import ExecResult, Limits, Status

_BOOTSTRAP = (Path(__file__).with_name("_bootstrap.py")).read_text(encoding="utf-8")
_READ_CHUNK = 65536
# A reply is a few hundred bytes (its error and answer are capped inside); anything bigger is not a reply.
_MAX_REPLY_BYTES = 256 * 1024
_REPLY_STATUSES = ("ok", "error", "memory")
# A session's total CPU allowance, in calls' worth of the per-call limit; the per-call limit is a soft limit.
_SESSION_CPU_CALLS = 64
_MARKER_VAR = "MATHFORGE_SANDBOX"
REQUIRE_ISOLATION_VAR = "MATHFORGE_REQUIRE_ISOLATION"
_warned = threading.Event()


def _warn_unisolated(reason: str) -> None:
    if not _warned.is_set():
        _warned.set()
        print(
            f"mathforge: warning: {reason}; model-written code runs with resource limits only, not isolated "
            "(pass --require-isolation to refuse)",
            file=sys.stderr,
        )


class Sandbox:
    """Runs Python programs under `limits`, isolated by bubblewrap where it works.

    isolate: True requires bubblewrap (a MathforgeError when it cannot run); False never uses it; None (the
    default) uses it when available and otherwise warns once and falls back to resource limits alone, unless
    the environment sets MATHFORGE_REQUIRE_ISOLATION=1 (the machine-wide switch), which makes None mean True.
    """

    def __init__(self, limits: Limits | None = None, *, isolate: bool | None = None) -> None:
        self.limits = limits or Limits()
        if isolate is None and os.environ.get(REQUIRE_ISOLATION_VAR, "") not in ("", "0"):
            isolate = True
        reason = isolation.isolation_error() if isolate is not False else "isolation switched off"
        if isolate is True and reason is not None:
            raise MathforgeError(f"isolation required but unavailable: {reason}")
        self.isolated = reason is None
        if isolate is None and reason is not None:
            _warn_unisolated(reason)

    def run(self, code: str, *, answer_expr: str | None = None, filename: str = "program.py") -> ExecResult:
        """Run `code` once in a fresh process; `answer_expr` (e.g. "solution()") is evaluated after it."""
        child = _Child(self)
        try:
            return child.call(code, answer_expr, filename)
        finally:
            child.kill()

    def session(self) -> Session:
        return Session(self)


class Session:
    """One Python process kept across calls, so that later code sees earlier variables (a ToRA trajectory).

    After a timeout or a crash the process is gone; the next call starts a fresh one (`restarts` counts them).
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.restarts = 0
        self._child: _Child | None = None

    def run(self, code: str, *, answer_expr: str | None = None, filename: str = "program.py") -> ExecResult:
        if self._child is not None and self._child.process.poll() is not None:
            # It died between calls (a thread's os._exit, a signal): this call starts afresh.
            self._child.kill()
            self._child = None
            self.restarts += 1
        if self._child is None:
            self._child = _Child(self.sandbox, session=True)
        else:
            self._child.discard_pending_output()  # what background threads printed since the last call
        result = self._child.call(code, answer_expr, filename)
        if not self._child.alive:
            self._child.kill()
            self._child = None
            self.restarts += 1
        return result

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Stream:
    fd: int
    cap: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def take(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk

    def pop_text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        self.data.clear()
        return text


class _Child:
    """One sandboxed bootstrap process and its pipes."""

    def __init__(self, sandbox: Sandbox, session: bool = False) -> None:
        self.limits = sandbox.limits
        self.isolated = sandbox.isolated
        self.marker = uuid.uuid4().hex
        self.workdir: str | None = None
        cpu_hard = self.limits.cpu * (_SESSION_CPU_CALLS if session else 1)
        settings = {
            "memory_mb": self.limits.memory_mb,
            "max_file_mb": self.limits.max_file_mb,
            "max_open_files": self.limits.max_open_files,
            # RLIMIT_NPROC counts every process of the user, so the allowance goes on top of what runs now.
            "max_processes": _user_processes() + self.limits.max_processes,
            "cpu_hard_seconds": cpu_hard,
            "subreaper": not self.isolated,  # without a pid namespace, orphans must stay in the tree
        }
        try:
            request_read, self._request = os.pipe()
        except OSError as error:
            raise MathforgeError(f"cannot start the sandbox: {error.strerror}") from None
        try:
            self._reply, reply_write = os.pipe()
        except OSError as error:
            os.close(request_read)
            os.close(self._request)
            raise MathforgeError(f"cannot start the sandbox: {error.strerror}") from None
        settings["request_fd"], settings["reply_fd"] = request_read, reply_write
        # -u: unbuffered output, so that what a program printed before it hung or crashed is still seen.
        command = [sys.executable, "-I", "-u", "-c", _BOOTSTRAP, json.dumps(settings)]
        env = _environment(self.marker)
        if self.isolated:
            command = [*isolation.bwrap_argv(self.limits.tmp_mb), *command]
            cwd = None
        else:
            self.workdir = tempfile.mkdtemp(prefix="mathforge-sandbox-")
            env.update(HOME=self.workdir, TMPDIR=self.workdir)
            cwd = self.workdir
            # A shell stays between caller and program (no exec), so that the program's parent, which it can
            # signal, is that shell and not the evaluation.
            command = ["/bin/sh", "-c", '"$@"; exit $?', "mathforge-sandbox", *command]
        # The sandbox's own tasks count too: bwrap and its namespace init, and the bootstrap interpreter.
        self.cgroup = make_cgroup(self.limits.max_processes + (3 if self.isolated else 1))
        if self.cgroup is not None:  # bwrap (or the bare interpreter) joins it first, so all it starts counts
            command = self.cgroup.wrap(command)
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(request_read, reply_write),
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as error:
            for fd in (self._request, self._reply):
                os.close(fd)
            if self.cgroup is not None:
                self.cgroup.remove()
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise MathforgeError(f"cannot start the sandbox: {error}") from None
        finally:  # the child's ends, whether it started or not (closed once, here)
            os.close(request_read)
            os.close(reply_write)
        self.alive = True
        stdout, stderr = self.process.stdout, self.process.stderr
        assert stdout is not None and stderr is not None  # both opened with subprocess.PIPE
        self._stdout = _Stream(stdout.fileno(), self.limits.max_output_bytes)
        self._stderr = _Stream(stderr.fileno(), self.limits.max_output_bytes)
        for fd in (self._stdout.fd, self._stderr.fd, self._reply, self._request):
            os.set_blocking(fd, False)

    def call(self, code: str, answer_expr: str | None, filename: str) -> ExecResult:
        started = time.perf_counter()
        deadline = started + self.limits.timeout
        request = {
            "code": code,
            "filename": filename,
            "answer_expr": answer_expr,
            "cpu_seconds": self.limits.cpu,
        }
        body = json.dumps(request).encode()
        reply, timed_out = None, False
        if self._send(struct.pack(">I", len(body)) + body, deadline):
            reply, timed_out = self._collect(deadline)
        else:
            timed_out = self.process.poll() is None
        if reply is None:  # no answer: a timeout, or the program took the process down with it
            self._kill_tree()
        self._drain()
        result = self._result(reply, timed_out, time.perf_counter() - started)
        self._stdout.truncated = self._stderr.truncated = False
        return result

    def _send(self, payload: bytes, deadline: float) -> bool:
        # The request pipe holds 64 KiB; a larger program is written as the child reads it.
        view = memoryview(payload)
        while view:
            if time.perf_counter() > deadline or self.process.poll() is not None:
                return False
            try:
                written = os.write(self._request, view[:_READ_CHUNK])
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except (BrokenPipeError, OSError):
                return False
            view = view[written:]
        return True

    def _collect(self, deadline: float) -> tuple[dict[str, Any] | None, bool]:
        """Read output until the reply is complete, the process is gone, or the deadline passes."""
        selector = selectors.DefaultSelector()
        for stream in (self._stdout, self._stderr):
            selector.register(stream.fd, selectors.EVENT_READ, stream)
        selector.register(self._reply, selectors.EVENT_READ, None)
        reply_bytes = bytearray()
        try:
            return self._collect_until(deadline, selector, reply_bytes)
        except _BadReply:
            self._kill_tree()  # the channel cannot be trusted any more, nor the process that spoiled it
            return dict(_BAD_REPLY), False
        finally:
            selector.close()

    def _collect_until(
        self, deadline: float, selector: selectors.BaseSelector, reply_bytes: bytearray
    ) -> tuple[dict[str, Any] | None, bool]:
        while True:
            reply = _parse_reply(reply_bytes)
            if reply is not None:
                return reply, False
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None, True
            if not selector.get_map():  # every pipe closed: nothing more can come
                if self.process.poll() is not None:
                    return None, False
                time.sleep(min(remaining, 0.01))
                continue
            for key, _ in selector.select(min(remaining, 0.05)):
                chunk = _read(key.fd)
                if chunk is None:
                    continue
                if not chunk:
                    selector.unregister(key.fd)
                elif key.data is None:
                    reply_bytes += chunk
                    if len(reply_bytes) > 4 + _MAX_REPLY_BYTES:  # not a reply: the program wrote there
                        raise _BadReply
                else:
                    key.data.take(chunk)
            if self.process.poll() is not None and _parse_reply(reply_bytes) is None:
                self._drain_reply(reply_bytes)
                return _parse_reply(reply_bytes), False

    def _drain_reply(self, reply_bytes: bytearray) -> None:
        while len(reply_bytes) <= _MAX_REPLY_BYTES and (chunk := _read(self._reply)):
            reply_bytes += chunk

    def discard_pending_output(self) -> None:
        """Drop what arrived between calls, so that it is not mistaken for the next call's output or reply."""
        self._drain()
        self._stdout.data.clear()
        self._stderr.data.clear()
        self._stdout.truncated = self._stderr.truncated = False
        while _read(self._reply):
            pass

    def _drain(self) -> None:
        """Take what is left in the output pipes without waiting for writers that may never close them."""
        for stream in (self._stdout, self._stderr):
            while chunk := _read(stream.fd):
                stream.take(chunk)

    def _result(self, reply: dict[str, Any] | None, timed_out: bool, seconds: float) -> ExecResult:
        returncode = None if reply is None else reply["returncode"]
        status: Status = "ok"
        error: str | None = None
        if reply is not None:
            status, error = reply["status"], reply["error"]
        elif timed_out:
            status, error = "timeout", f"Timeout: no result within {self.limits.timeout:g} s"
        else:
            returncode = self._exit_code()
            if returncode is not None and returncode < 0:
                name = _signal_name(-returncode)
                status = "timeout" if -returncode == signal.SIGXCPU else "killed"
                error = f"killed by {name}" if status == "killed" else "Timeout: CPU time limit exceeded"
            elif returncode:
                status, error = "error", f"exited with status {returncode}"
        return ExecResult(
            status=status,
            stdout=self._stdout.pop_text(),
            stderr=self._stderr.pop_text(),
            returncode=returncode,
            wall_seconds=round(seconds, 4),
            truncated=self._stdout.truncated or self._stderr.truncated,
            error=error,
            answer=None if reply is None else reply.get("answer"),
            isolated=self.isolated,
        )

    def _exit_code(self) -> int | None:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None
        # bwrap and the shell report a child killed by signal N as exit status 128 + N.
        if 128 < code < 128 + signal.NSIG:
            return -(code - 128)
        return code

    def _kill_tree(self) -> None:
        self.alive = False
        if self.process.poll() is None or not self.isolated:
            if self.isolated:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()  # bwrap: its death takes the whole pid namespace down
            else:
                extra = self.cgroup.pids() if self.cgroup is not None else set()
                _kill_unisolated(self.process.pid, self.marker, extra)

    def kill(self) -> None:
        """End the process tree and release the pipes and working directory."""
        if self.alive or self.process.poll() is None:
            self._kill_tree()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for handle in (self.process.stdout, self.process.stderr):
            if handle is None:  # never: both are opened with subprocess.PIPE
                continue
            with contextlib.suppress(OSError):
                handle.close()
        for fd in (self._request, self._reply):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._request = self._reply = -1
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None


class _BadReply(Exception):
    """The reply channel carried something other than the bootstrap's reply: the program wrote to it."""


_BAD_REPLY = {
    "status": "error",
    "returncode": 1,
    "error": "the program wrote to the sandbox's reply channel",
    "answer": None,
}


def _parse_reply(data: bytearray) -> dict[str, Any] | None:
    """The bootstrap's reply once it is complete, None before; `_BadReply` for anything not shaped like one
    (a program can find the pipe and write to it, so nothing else is believed)."""
    if len(data) < 4:
        return None
    size = struct.unpack(">I", data[:4])[0]
    if size > _MAX_REPLY_BYTES:
        raise _BadReply
    if len(data) < 4 + size:
        return None
    try:
        reply = json.loads(data[4 : 4 + size])
    except ValueError:
        raise _BadReply from None
    if not isinstance(reply, dict) or reply.get("status") not in _REPLY_STATUSES:
        raise _BadReply
    returncode = reply.get("returncode")
    if not isinstance(returncode, int) or isinstance(returncode, bool):
        raise _BadReply
    if not all(reply.get(key) is None or isinstance(reply.get(key), str) for key in ("error", "answer")):
        raise _BadReply
    return {key: reply.get(key) for key in ("status", "returncode", "error", "answer")}


def _read(fd: int) -> bytes | None:
    """A chunk, b"" at end of file, or None when nothing is there yet."""
    try:
        return os.read(fd, _READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _environment(marker: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # One thread per math library: threads count against the process limit and a sandbox has one core's work.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        _MARKER_VAR: marker,
    }


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _proc_entries() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


_process_count_cache: tuple[float, int] = (0.0, 0)


def _user_processes() -> int:
    """Processes (threads included, as RLIMIT_NPROC counts them) of this user now; refreshed once a second."""
    global _process_count_cache
    checked, count = _process_count_cache
    if time.monotonic() - checked < 1.0:
        return count
    uid, count = os.getuid(), 0
    for pid in _proc_entries():
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))
    _process_count_cache = (time.monotonic(), count)
    return count


def _kill_unisolated(root: int, marker: str, extra: set[int]) -> None:
    """Stop, then kill, the process group, its descendants and anything carrying the run's marker.

    Everything is stopped first and the set is taken while it is frozen: a fork bomb cannot replace processes
    faster than they are killed, and killing a parent first would hand its children to init, out of the tree.
    A child that left the group with setsid is still a descendant (the bootstrap is a child subreaper, so
    orphans stay below it), and one whose parent died is found by the marker its environment inherited.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGSTOP)
    frozen: set[int] = set()
    for _ in range(5):  # until no new process appears
        found = (_tree(root) | _marked(marker) | extra) - frozen
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= found
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGKILL)
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid in _proc_entries():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(pid)
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


def _marked(marker: str) -> set[int]:
    needle = f"{_MARKER_VAR}={marker}".encode()
    found = set()
    for pid in _proc_entries():
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/environ").read_bytes():
                found.add(pid)
    return found
