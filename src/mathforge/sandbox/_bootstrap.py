"""The program that runs inside the sandbox: it applies the resource limits, then runs the code it is sent.

This file is not imported by mathforge: its text is passed to `python -I -c`, because inside bubblewrap the
project (and so this file) is not visible. It must therefore use the standard library only.

Protocol. argv[1] is a JSON object of limits and the two pipe descriptors: requests arrive on `request_fd` and
replies leave on `reply_fd`, each a 4-byte big-endian length and a JSON object:
  request {"code": str, "filename": str, "answer_expr": str | null, "cpu_seconds": float}
  reply   {"status": "ok" | "error" | "memory", "returncode": int, "error": str | null, "answer": str | null}
The program's own stdout and stderr are the process's fds 1 and 2, which the parent reads. One request is a
one-shot run; a session sends many, and the program's globals persist between them.
"""

import contextlib
import json
import os
import resource
import signal
import struct
import sys
import traceback

_ANSWER_CHARS = 10_000
_ERROR_CHARS = 2_000
# Kept in reserve and freed when a MemoryError arrives, so that the report of it can be made at all.
_BALLAST_BYTES = 4 * 1024 * 1024
_MEMORY_REPLY = {"status": "memory", "returncode": 1, "error": "MemoryError", "answer": None}


def _read_exact(fd, size):
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _receive(fd):
    header = _read_exact(fd, 4)
    if header is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", header)[0])
    return None if body is None else json.loads(body)


def _send(fd, message):
    body = json.dumps(message).encode()
    os.write(fd, struct.pack(">I", len(body)) + body)


def _apply_limits(limits):
    mb = 1024 * 1024
    pairs = [
        (resource.RLIMIT_AS, limits["memory_mb"] * mb, 0),
        (resource.RLIMIT_FSIZE, limits["max_file_mb"] * mb, 0),
        (resource.RLIMIT_NOFILE, limits["max_open_files"], 0),
        (resource.RLIMIT_NPROC, limits["max_processes"], 0),
        (resource.RLIMIT_CORE, 0, 0),
        # A second of margin above the soft CPU limit: at the soft limit the kernel sends SIGXCPU (a timeout),
        # at the hard one SIGKILL, which would read as a crash.
        (resource.RLIMIT_CPU, limits["cpu_hard_seconds"], 1),
    ]
    for which, value, margin in pairs:
        try:
            resource.setrlimit(which, (value, value + margin))
        except (ValueError, OSError):
            # A limit above the inherited hard limit cannot be raised: keep the stricter inherited one.
            _, hard = resource.getrlimit(which)
            resource.setrlimit(which, (hard, hard))


def _become_subreaper():
    """Without namespaces, keep orphaned descendants (double forks) in this process's tree for the kill."""
    import ctypes

    pr_set_child_subreaper = 36
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _cpu_used():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _set_cpu_budget(seconds):
    # The soft limit sends SIGXCPU once this call has used its share; the hard limit stays fixed.
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(_cpu_used() + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard - 1)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _flush():
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the program may have closed or replaced its streams
            stream.flush()


def _last_line(error):
    # The traceback's last line, as math-evaluation-harness reports errors: of a message that spans lines, its
    # last line ("No algorithms are implemented to solve equation ...").
    lines = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()
    return (lines[-1].strip() if lines else type(error).__name__)[:_ERROR_CHARS]


def _tidy_after_call(handlers):
    """Cancel the timers a program set and restore the signal handlers it replaced, so nothing it left armed
    fires while the session waits for the next call."""
    signal.alarm(0)
    for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
        signal.setitimer(timer, 0)
    for number, handler in handlers.items():
        with contextlib.suppress(Exception):
            if signal.getsignal(number) is not handler:
                signal.signal(number, handler)


def _run(request, namespace, ballast):
    reply = {"status": "ok", "returncode": 0, "error": None, "answer": None}
    try:
        code = compile(request["code"], request.get("filename") or "<program>", "exec")
        exec(code, namespace)
        if request.get("answer_expr"):
            value = eval(request["answer_expr"], namespace)
            reply["answer"] = None if value is None else str(value)[:_ANSWER_CHARS]
    except SystemExit as stop:
        code = stop.code
        reply["returncode"] = code if isinstance(code, int) else (0 if code is None else 1)
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
        if reply["returncode"] != 0:
            reply.update(status="error", error=f"SystemExit: {code}"[:_ERROR_CHARS])
    except MemoryError:
        ballast.clear()  # room to report it; the program's own data may still fill the limit
        return dict(_MEMORY_REPLY)
    except BaseException as error:  # the program's own failure, reported as Python would
        try:
            traceback.print_exc()
            reply.update(status="error", returncode=1, error=_last_line(error))
        except MemoryError:
            ballast.clear()
            return dict(_MEMORY_REPLY)
    return reply


def main():
    limits = json.loads(sys.argv[1])
    sys.argv = ["program.py"]
    if limits.get("subreaper"):
        _become_subreaper()
    handlers = {number: signal.getsignal(number) for number in signal.valid_signals()}
    handlers = {number: handler for number, handler in handlers.items() if handler is not None}
    _apply_limits(limits)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    ballast = bytearray(_BALLAST_BYTES)
    while True:
        try:
            request = _receive(limits["request_fd"])
        except Exception:  # a malformed request: nothing sensible can follow it
            return
        if request is None:
            return
        _set_cpu_budget(request.get("cpu_seconds", limits["cpu_hard_seconds"]))
        reply = _run(request, namespace, ballast)
        _flush()
        _tidy_after_call(handlers)
        try:
            _send(limits["reply_fd"], reply)
        except OSError:  # the program closed the reply channel: the parent sees the exit instead
            _flush()
            os._exit(reply["returncode"] or 0)
        if len(ballast) < _BALLAST_BYTES:
            with contextlib.suppress(MemoryError):
                ballast.extend(bytes(_BALLAST_BYTES - len(ballast)))


main()
