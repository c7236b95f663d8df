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
import struct
import sys

_ANSWER_CHARS = 10_000


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
        (resource.RLIMIT_AS, limits["memory_mb"] * mb),
        (resource.RLIMIT_FSIZE, limits["max_file_mb"] * mb),
        (resource.RLIMIT_NOFILE, limits["max_open_files"]),
        (resource.RLIMIT_NPROC, limits["max_processes"]),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_CPU, limits["cpu_hard_seconds"]),
    ]
    for which, value in pairs:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            # A limit above the inherited hard limit cannot be raised: keep the stricter inherited one.
            _, hard = resource.getrlimit(which)
            resource.setrlimit(which, (hard, hard))


def _cpu_used():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _set_cpu_budget(seconds, hard):
    # The soft limit sends SIGXCPU (which kills) once this call has used its share; the hard limit stays fixed.
    soft = min(hard, int(_cpu_used() + seconds) + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _flush():
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the program may have closed or replaced its streams
            stream.flush()


def _last_line(error):
    import traceback  # only when a program fails: it costs every start a few milliseconds otherwise

    lines = traceback.format_exception_only(type(error), error)
    return lines[-1].strip() if lines else type(error).__name__


def _run(request, namespace):
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
            reply.update(status="error", error=f"SystemExit: {code}")
    except MemoryError as error:
        reply.update(status="memory", returncode=1, error=_last_line(error))
    except BaseException as error:  # the program's own failure, reported as Python would
        import traceback

        traceback.print_exc()
        reply.update(status="error", returncode=1, error=_last_line(error))
    _flush()
    return reply


def main():
    limits = json.loads(sys.argv[1])
    sys.argv = ["program.py"]
    _apply_limits(limits)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    while True:
        request = _receive(limits["request_fd"])
        if request is None:
            return
        _set_cpu_budget(request.get("cpu_seconds", limits["cpu_hard_seconds"]), limits["cpu_hard_seconds"])
        reply = _run(request, namespace)
        try:
            _send(limits["reply_fd"], reply)
        except OSError:  # the program closed the reply channel: the parent sees the exit instead
            _flush()
            os._exit(reply["returncode"] or 0)


main()
