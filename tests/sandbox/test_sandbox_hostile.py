"""Hostile programs: each is contained, reported with the right status, and leaves the caller unharmed.

Most run in the bubblewrap sandbox (CI installs bubblewrap; a machine without it fails these tests rather than
skipping them). The ones that resource limits alone can contain also run without isolation.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mathforge.sandbox import ExecResult, Limits, Sandbox, SandboxPool, isolation_error

LIMITS = Limits(timeout=3, memory_mb=512, max_processes=32, max_file_mb=16, tmp_mb=64)


@pytest.fixture(scope="module")
def isolated() -> Sandbox:
    assert isolation_error() is None, f"these tests need bubblewrap: {isolation_error()}"
    return Sandbox(LIMITS, isolate=True)


@pytest.fixture(scope="module")
def bare() -> Sandbox:
    return Sandbox(LIMITS, isolate=False)


@pytest.fixture(params=["isolated", "bare"])
def any_sandbox(request: pytest.FixtureRequest) -> Sandbox:
    return request.getfixturevalue(request.param)


def _processes_with(text: str) -> list[int]:
    """Live processes whose command line holds `text` (a zombie's command line reads as empty)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if text.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    found.append(int(name))
            except OSError:
                continue
    return found


@pytest.fixture
def sleep_marker() -> Iterator[str]:
    """A unique duration for `sleep`, which puts it on the sleeper's command line where `_processes_with` finds
    it from outside any sandbox (a marker only in the program text is on no command line: the code travels
    through a pipe). It is half a minute, longer than any wait here, so a leaked sleeper is still there to be
    seen; whatever carries it at teardown is killed, so a failing test leaves nothing running."""
    marker = f"30.{uuid.uuid4().int % 10**12:012d}"
    yield marker
    for pid in _processes_with(_sleeping(marker)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _sleeping(marker: str) -> str:
    return f"sleep\x00{marker}\x00"


def _run_watching(
    sandbox: Sandbox, code: str, needle: str, on_seen: Callable[[list[int]], None] | None = None
) -> tuple[ExecResult, int]:
    """Run `code`, watching /proc meanwhile for processes whose command line holds `needle`: the result and
    the most of them seen alive at once, the proof that the program really started what must not outlive it.
    `on_seen` is called with them each time some are seen.

    The program runs on the calling thread and the watcher on another: bwrap's --die-with-parent fires when
    the thread that started it ends, so a sandbox run on a short-lived thread would be cleaned up by that
    thread's end even where the sandbox itself failed to."""
    most = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal most
        while not done.is_set():
            alive = _processes_with(needle)
            most = max(most, len(alive))
            if alive and on_seen is not None:
                on_seen(alive)
            done.wait(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = sandbox.run(code)
    finally:
        done.set()
        watcher.join()
    return result, most


def _left_alive(needle: str, within: float = 2.0) -> list[int]:
    """What still carries `needle` once `within` seconds have passed; returns as soon as nothing does (killed
    processes take a moment to go, and a pid namespace's to be torn down)."""
    deadline = time.monotonic() + within
    while (alive := _processes_with(needle)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def _still_works(sandbox: Sandbox) -> None:
    """The caller, and the sandbox, are fine afterwards."""
    result = sandbox.run("print(sum(range(10)))")
    assert (result.status, result.stdout) == ("ok", "45\n")


def test_infinite_loop_times_out(any_sandbox: Sandbox) -> None:
    started = time.perf_counter()
    result = any_sandbox.run("print('started', flush=True)\nwhile True:\n    pass\n")
    assert result.status == "timeout"
    assert result.stdout == "started\n"  # what it printed before hanging is kept
    assert time.perf_counter() - started < LIMITS.timeout + 2
    _still_works(any_sandbox)


def test_sigterm_ignored_then_sleeping(any_sandbox: Sandbox) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(1000)\n"
    started = time.perf_counter()
    result = any_sandbox.run(code)
    assert result.status == "timeout"
    assert time.perf_counter() - started < LIMITS.timeout + 2


def test_fork_bomb(any_sandbox: Sandbox, sleep_marker: str) -> None:
    # Each child becomes `sleep <marker>`, so the test can count the live ones from outside the sandbox.
    code = (
        "import os, time\n"
        "children = 0\n"
        "while True:\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as error:\n"
        "        print('fork refused after', children, error.strerror, flush=True)\n"
        "        break\n"
        "    if pid == 0:\n"
        "        try:\n"
        f"            os.execvp('sleep', ['sleep', '{sleep_marker}'])\n"
        "        finally:\n"
        "            os._exit(1)\n"
        "    children += 1\n"
        "time.sleep(60)\n"
    )
    result, most_alive = _run_watching(any_sandbox, code, _sleeping(sleep_marker))
    assert result.status == "timeout"
    assert "fork refused after" in result.stdout  # the process limit stopped it, not the machine
    refused_after = int(result.stdout.split("fork refused after ")[1].split()[0])
    # The limit allows max_processes less the few the sandbox itself runs (bwrap, its init, the interpreter).
    assert LIMITS.max_processes // 2 <= refused_after <= LIMITS.max_processes
    assert most_alive == refused_after  # every child it made was seen alive while it ran...
    assert _left_alive(_sleeping(sleep_marker)) == []  # ...and none is left after it
    _still_works(any_sandbox)


def test_memory_bomb(any_sandbox: Sandbox) -> None:
    result = any_sandbox.run("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n")
    assert result.status == "memory"
    assert result.error == "MemoryError"
    _still_works(any_sandbox)


def test_huge_allocation_at_once(any_sandbox: Sandbox) -> None:
    assert any_sandbox.run("x = [0] * (10 ** 10)").status == "memory"


def test_writing_a_10gb_file(any_sandbox: Sandbox) -> None:
    code = "chunk = b'x' * 2**20\nwith open('big.bin', 'wb') as f:\n    for _ in range(10 * 1024):\n        f.write(chunk)\n"
    result = any_sandbox.run(code)
    # The file-size limit (max_file_mb) is below the private /tmp's size (tmp_mb), so it is what stops the
    # program, isolated or not (a tmpfs's size cap is tested on /dev/shm, sized alike, below).
    assert LIMITS.max_file_mb < LIMITS.tmp_mb
    assert (result.status, result.error) == ("error", "OSError: [Errno 27] File too large")
    _still_works(any_sandbox)


def test_no_network_not_even_the_callers_loopback(isolated: Sandbox) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    code = (
        f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')\n"
    )
    result = isolated.run(code)
    thread.join()
    server.close()
    # Its own loopback is up with nothing listening on it: refused, not unreachable.
    assert result.status == "error"
    assert result.error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert "connected" not in result.stdout
    assert accepted == []


@pytest.fixture
def secret_in_home() -> Path:
    secret = Path.home() / f".mathforge-sandbox-secret-{uuid.uuid4().hex[:8]}"
    secret.write_text("the user's secret")
    yield secret
    secret.unlink()


def test_cannot_read_the_users_home(isolated: Sandbox, secret_in_home: Path) -> None:
    result = isolated.run(f"print(open({str(secret_in_home)!r}).read())")
    assert result.status == "error"
    assert "No such file" in result.error
    assert "secret" not in result.stdout
    listing = isolated.run(f"import os\nprint(os.listdir({str(Path.home())!r}))")
    assert secret_in_home.name not in listing.stdout


def test_cannot_read_the_project() -> None:
    sandbox = Sandbox(LIMITS, isolate=True)
    project_file = Path(__file__).resolve()
    result = sandbox.run(f"print(open({str(project_file)!r}).read()[:100])")
    assert result.status == "error"
    assert "No such file" in result.error
    assert result.stdout == ""


def test_cannot_write_outside_its_temporary_directory(isolated: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "planted.txt"
    for path in (target, Path("/usr/planted.txt"), Path("/etc/planted.txt")):
        result = isolated.run(f"open({str(path)!r}, 'w').write('x')")
        assert result.status == "error", path
        assert not path.exists()
    inside = isolated.run("open('note.txt', 'w').write('fine')\nprint(open('note.txt').read())")
    assert (inside.status, inside.stdout) == ("ok", "fine\n")


def test_killing_its_parent(any_sandbox: Sandbox) -> None:
    # Both signals go to the parent it had: once that one is gone this process is adopted by another (init, or
    # whatever subreaper runs the tests), which a second os.getppid() would hit. Orphaned, it waits to be
    # killed, so that the outcome does not hang on whether its reply or its parent's death is seen first.
    code = (
        "import os, signal, time\n"
        "parent = os.getppid()\n"
        "os.kill(parent, signal.SIGKILL)\n"
        "os.kill(parent, signal.SIGTERM)\n"
        "deadline = time.monotonic() + 1\n"
        "while os.getppid() == parent and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "if os.getppid() != parent:\n"
        "    time.sleep(2)\n"
        "print('parent', 'alive' if os.getppid() == parent else 'gone')\n"
    )
    result = any_sandbox.run(code)
    if any_sandbox.isolated:
        # Its parent is the namespace's init, which ignores signals from inside: the program carries on.
        assert (result.status, result.stdout, result.error) == ("ok", "parent alive\n", None)
    else:
        # Its parent is the sandbox's own process (a shell kept between caller and program): the run ends
        # when that dies, reported as its death.
        assert (result.status, result.stdout, result.error) == ("killed", "", "killed by SIGKILL")
    _still_works(any_sandbox)  # either way the caller lives on


def test_cannot_see_or_signal_other_processes(isolated: Sandbox) -> None:
    code = f"import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\nos.kill({os.getpid()}, 9)\n"
    result = isolated.run(code)
    assert result.status == "error"
    assert "ProcessLookupError" in result.error
    assert max(eval(result.stdout)) < 10  # only its own namespace's few processes


def test_detached_child_does_not_outlive_the_program(any_sandbox: Sandbox, sleep_marker: str) -> None:
    # The program reports only once the test has seen its child alive and answered with SIGUSR1 (blocked, so
    # that it waits in sigtimedwait), so the check that nothing is left afterwards is about a real process.
    code = (
        "import signal, subprocess\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
        f"subprocess.Popen(['sleep', '{sleep_marker}'], start_new_session=True)\n"
        "print('spawned' if signal.sigtimedwait({signal.SIGUSR1}, 2) else 'never seen')\n"
    )
    answered: set[int] = set()

    def answer(sleepers: list[int]) -> None:
        for parent in {_parent(pid) for pid in sleepers} - answered:
            # Only the sandbox's interpreter: never signal whatever adopted an orphan.
            if b'"reply_fd"' in _cmdline(parent):
                with contextlib.suppress(OSError):
                    os.kill(parent, signal.SIGUSR1)
                answered.add(parent)

    result, most_alive = _run_watching(any_sandbox, code, _sleeping(sleep_marker), on_seen=answer)
    assert (result.status, result.stdout, most_alive) == ("ok", "spawned\n", 1)
    assert _left_alive(_sleeping(sleep_marker)) == []


def test_double_forked_daemon_is_killed_on_timeout(any_sandbox: Sandbox, sleep_marker: str) -> None:
    code = (
        "import os, subprocess, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    subprocess.Popen(['sleep', '{sleep_marker}'])\n"
        "    os._exit(0)\n"
        "time.sleep(100)\n"
    )
    result, most_alive = _run_watching(any_sandbox, code, _sleeping(sleep_marker))
    assert (result.status, most_alive) == ("timeout", 1)  # the daemon was alive while the program ran
    assert _left_alive(_sleeping(sleep_marker)) == []


def test_closing_stdout(any_sandbox: Sandbox) -> None:
    result = any_sandbox.run("import os, sys\nprint('before', flush=True)\nos.close(1)\nprint('after')\n")
    assert result.stdout == "before\n"
    # Output is unbuffered (-u), so the second print writes to the closed descriptor at once and fails.
    assert (result.status, result.error) == ("error", "OSError: [Errno 9] Bad file descriptor")
    _still_works(any_sandbox)


def test_closing_every_descriptor(any_sandbox: Sandbox) -> None:
    result = any_sandbox.run("import os\nos.closerange(0, 1024)\nx = 1\n")
    assert result.status == "ok"  # it exits cleanly without a reply channel: seen as its exit status
    _still_works(any_sandbox)


def test_flooding_output_is_capped(any_sandbox: Sandbox) -> None:
    result = any_sandbox.run("import sys\nwhile True:\n    sys.stdout.write('spam ' * 1000)\n")
    assert result.status == "timeout"
    assert result.truncated
    assert len(result.stdout.encode()) == LIMITS.max_output_bytes


def test_finite_flood_is_truncated_but_ok(any_sandbox: Sandbox) -> None:
    result = any_sandbox.run("print('y' * 10**7)\nprint('end')")
    assert result.status == "ok"
    assert result.truncated
    assert result.stdout.startswith("yyyy")


def test_recursion_bomb(any_sandbox: Sandbox) -> None:
    default = any_sandbox.run("def f(n):\n    return f(n + 1)\nf(0)\n")
    assert default.status == "error"
    assert default.error.startswith("RecursionError")
    raised = any_sandbox.run(
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return [n] + f(n + 1)\nf(0)\n"
    )
    assert raised.status in ("memory", "killed", "timeout")
    _still_works(any_sandbox)


def test_os_exit(any_sandbox: Sandbox) -> None:
    failed = any_sandbox.run("import os\nprint('bye', flush=True)\nos._exit(3)\n")
    assert (failed.status, failed.returncode, failed.stdout) == ("error", 3, "bye\n")
    clean = any_sandbox.run("import os\nos._exit(0)\n")
    assert (clean.status, clean.returncode) == ("ok", 0)


def test_segfault_is_killed(any_sandbox: Sandbox) -> None:
    result = any_sandbox.run("import ctypes\nctypes.string_at(0)\n")
    assert result.status == "killed"
    assert result.error == "killed by SIGSEGV"


def test_a_pool_of_hostile_programs_leaves_the_good_ones_alone(isolated: Sandbox) -> None:
    hostile = [
        "while True:\n    pass",
        "x = bytearray(10**10)",
        "import os\nos.kill(os.getppid(), 9)",
        "import sys\nwhile True:\n    sys.stdout.write('z' * 4096)",
        "import os\nos._exit(9)",
    ]
    good = [f"print({i} * {i})" for i in range(10)]
    programs = [code for pair in zip(good, hostile * 2, strict=True) for code in pair]
    with SandboxPool(isolated, workers=4) as pool:
        results = pool.map(programs)
    answers = [r.stdout for code, r in zip(programs, results, strict=True) if code in good]
    assert answers == [f"{i * i}\n" for i in range(10)]
    statuses = [r.status for code, r in zip(programs, results, strict=True) if code not in good]
    assert statuses == ["timeout", "memory", "ok", "timeout", "error"] * 2


# --- attacks on the sandbox's own machinery (found by review)

_REPLY_FD = 'json.loads(open("/proc/self/cmdline", "rb").read().split(b"\\0")[-2])["reply_fd"]'


def test_forged_or_oversized_reply_is_an_error_not_a_crash(any_sandbox: Sandbox) -> None:
    forged = (
        f"import json, os, struct\nfd = {_REPLY_FD}\n"
        'body = json.dumps({"status": "ok"}).encode()\nos.write(fd, struct.pack(">I", len(body)) + body)\n'
    )
    result = any_sandbox.run(forged)
    assert (result.status, result.error) == ("error", "the program wrote to the sandbox's reply channel")
    flood = f"import json, os\nfd = {_REPLY_FD}\nos.set_blocking(fd, False)\nwhile True:\n    os.write(fd, b'\\xff' * 4096)\n"
    assert any_sandbox.run(flood).status == "error"
    _still_works(any_sandbox)


def test_huge_exception_message_is_capped(any_sandbox: Sandbox) -> None:
    result = any_sandbox.run("raise ValueError('x' * 50_000_000)")
    assert result.status == "error"
    assert len(result.error) <= 2000
    assert len(result.stderr.encode()) <= LIMITS.max_output_bytes


def test_memory_bomb_of_small_objects_reports_memory(any_sandbox: Sandbox) -> None:
    # A smaller address space and a longer timeout than LIMITS: filling 512 MB with small objects took more than
    # the 3 s timeout on a busy 2-core machine, and then the test measured the machine, not the memory limit.
    sandbox = Sandbox(Limits(timeout=30, memory_mb=160), isolate=any_sandbox.isolated)
    result = sandbox.run("a = []\nwhile True:\n    a.append(str(len(a)) * 10)\n")
    assert (result.status, result.error) == ("memory", "MemoryError")


def test_cpu_limit_with_threads_is_a_timeout(any_sandbox: Sandbox) -> None:
    sandbox = Sandbox(Limits(timeout=30, cpu_seconds=1), isolate=any_sandbox.isolated)
    code = (
        "import hashlib, threading\n"
        "def spin():\n    while True:\n        hashlib.sha256(b'x' * 10**6).digest()\n"
        "threads = [threading.Thread(target=spin) for _ in range(2)]\n"
        "[t.start() for t in threads]\n[t.join() for t in threads]\n"
    )
    result = sandbox.run(code)
    assert (result.status, result.error) == ("timeout", "Timeout: CPU time limit exceeded")


def test_shared_memory_is_capped(isolated: Sandbox) -> None:
    # Files each under the file-size limit, twice /dev/shm's size in all: only the tmpfs's cap can stop them.
    file_mb = LIMITS.max_file_mb // 2
    code = (
        f"for i in range({2 * LIMITS.tmp_mb // file_mb}):\n"
        f"    with open(f'/dev/shm/fill{{i}}', 'wb') as f:\n"
        f"        f.write(b'x' * {file_mb} * 2**20)\n"
        "    print(i, flush=True)\n"
    )
    result = isolated.run(code)
    assert (result.status, result.error) == ("error", "OSError: [Errno 28] No space left on device")
    assert len(result.stdout.split()) * file_mb <= LIMITS.tmp_mb


def test_large_program_to_a_stopped_session_still_times_out(any_sandbox: Sandbox) -> None:
    sandbox = Sandbox(Limits(timeout=2), isolate=any_sandbox.isolated)
    with sandbox.session() as session:
        stop_later = "import os, signal, threading\nthreading.Timer(0.2, os.kill, (os.getpid(), signal.SIGSTOP)).start()"
        assert session.run(stop_later).status == "ok"
        time.sleep(0.5)
        started = time.perf_counter()
        result = session.run("x = 1\n" * 40_000)  # 240 KB: more than a pipe holds
        assert result.status == "timeout"
        assert time.perf_counter() - started < 5


def test_session_survives_an_armed_alarm_and_dead_processes_are_replaced(any_sandbox: Sandbox) -> None:
    with any_sandbox.session() as session:
        armed = "import signal\ndef boom(*_):\n    raise TimeoutError('late')\nsignal.signal(signal.SIGALRM, boom)\nsignal.alarm(1)\ntotal = 45\nprint(total)"
        assert session.run(armed).stdout == "45\n"
        time.sleep(1.5)  # the alarm was cancelled when the call ended
        later = session.run("print(total * 2)")
        assert (later.status, later.stdout, session.restarts) == ("ok", "90\n", 0)
        session.run("import os, threading\nthreading.Timer(0.2, os._exit, (0,)).start()")
        time.sleep(0.6)  # the process is gone before the next call
        fresh = session.run("print('ran')")
        assert (fresh.status, fresh.stdout, session.restarts) == ("ok", "ran\n", 1)


def test_output_printed_between_calls_does_not_leak_into_the_next(any_sandbox: Sandbox) -> None:
    with any_sandbox.session() as session:
        session.run("import threading, time\nthreading.Timer(0.2, lambda: print('LATE', flush=True)).start()")
        time.sleep(0.5)
        assert session.run("print('now')").stdout == "now\n"


def test_double_fork_with_a_clean_environment_is_killed_without_cgroups(
    monkeypatch: pytest.MonkeyPatch, sleep_marker: str
) -> None:
    from mathforge.sandbox import process

    monkeypatch.setattr(process, "make_cgroup", lambda tasks: None)  # as a non-root user runs it
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execve('/bin/sleep', ['sleep', '{sleep_marker}'], {{}})\n"
        "    os._exit(0)\n"
        "time.sleep(100)\n"
    )
    sandbox = Sandbox(Limits(timeout=2), isolate=False)
    result, most_alive = _run_watching(sandbox, code, _sleeping(sleep_marker))
    assert (result.status, most_alive) == ("timeout", 1)  # the orphan was alive while the program ran
    assert _left_alive(_sleeping(sleep_marker)) == []


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
