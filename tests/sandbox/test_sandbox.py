"""The sandbox's statuses, answer expressions, sessions, pool and fallback, on ordinary programs."""

from __future__ import annotations

import shutil

import pytest

from mathforge.errors import MathforgeError
from mathforge.sandbox import ExecResult, Limits, Sandbox, SandboxPool, isolation, isolation_error

LIMITS = Limits(timeout=5, memory_mb=1024)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    assert isolation_error() is None, f"these tests need bubblewrap: {isolation_error()}"
    return Sandbox(LIMITS, isolate=True)


@pytest.mark.parametrize(
    ("code", "status", "returncode", "error"),
    [
        ("print('hi')", "ok", 0, None),
        ("import sys\nsys.exit()", "ok", 0, None),
        ("import sys\nsys.exit(4)", "error", 4, "SystemExit: 4"),
        ("import sys\nsys.exit('bad input')", "error", 1, "SystemExit: bad input"),
        ("1 / 0", "error", 1, "ZeroDivisionError: division by zero"),
        ("def f(:\n    pass", "error", 1, "SyntaxError: invalid syntax"),
        ("print(undefined_name)", "error", 1, "NameError: name 'undefined_name' is not defined"),
        ("x = ' ' * (2 ** 40)", "memory", 1, "MemoryError"),
    ],
)
def test_statuses(sandbox: Sandbox, code: str, status: str, returncode: int, error: str | None) -> None:
    result = sandbox.run(code)
    assert (result.status, result.returncode, result.error) == (status, returncode, error)
    assert result.isolated


def test_exception_traceback_goes_to_stderr(sandbox: Sandbox) -> None:
    result = sandbox.run("print('partial')\nraise KeyError('k')", filename="solution.py")
    assert result.stdout == "partial\n"
    assert 'File "solution.py", line 2' in result.stderr
    assert result.stderr.rstrip().endswith("KeyError: 'k'")


def test_answer_expression_is_the_return_value(sandbox: Sandbox) -> None:
    code = "def solution():\n    print('working')\n    return 7 / 2\n"
    result = sandbox.run(code, answer_expr="solution()")
    assert (result.status, result.answer, result.stdout) == ("ok", "3.5", "working\n")
    assert sandbox.run("x = 1", answer_expr="solution()").error.startswith("NameError")
    assert sandbox.run("def solution():\n    pass", answer_expr="solution()").answer is None


def test_sympy_and_numpy_are_importable(sandbox: Sandbox) -> None:
    code = (
        "import numpy, sympy\nx = sympy.symbols('x')\nprint(sympy.solve(x**2 - 4, x), numpy.arange(3).sum())"
    )
    assert sandbox.run(code).stdout == "[-2, 2] 3\n"


def test_unicode_and_binary_output(sandbox: Sandbox) -> None:
    result = sandbox.run("import sys\nprint('π ≈ 3.14')\nsys.stdout.buffer.write(b'\\xff\\n')")
    assert result.stdout == "π ≈ 3.14\n\ufffd\n"


def test_large_program_text(sandbox: Sandbox) -> None:
    code = "total = 0\n" + "total += 1\n" * 50_000 + "print(total)"
    assert sandbox.run(code).stdout == "50000\n"


def test_result_round_trips_through_json(sandbox: Sandbox) -> None:
    result = sandbox.run("print(1)")
    assert ExecResult.from_json(result.to_json()) == result


def test_session_keeps_variables_and_restarts_after_a_timeout() -> None:
    sandbox = Sandbox(Limits(timeout=2), isolate=True)
    with sandbox.session() as session:
        assert session.run("from sympy import Rational\nx = Rational(1, 3)").status == "ok"
        assert session.run("print(x * 3)").stdout == "1\n"
        assert session.run("raise ValueError('oops')").status == "error"
        assert session.run("print(x)").stdout == "1/3\n"  # an exception does not end the session
        assert session.restarts == 0
        assert session.run("while True:\n    pass").status == "timeout"
        after = session.run("print(x)")
        assert (after.status, session.restarts) == ("error", 1)
        assert after.error == "NameError: name 'x' is not defined"
        assert session.run("y = 2\nprint(y)").stdout == "2\n"


def test_session_survives_memory_errors_and_exit() -> None:
    with Sandbox(LIMITS, isolate=True).session() as session:
        session.run("keep = 41")
        assert session.run("big = bytearray(2 ** 40)").status == "memory"
        assert session.run("print(keep + 1)").stdout == "42\n"
        assert session.run("import os\nos._exit(2)").returncode == 2
        assert session.run("print('fresh')").stdout == "fresh\n"
        assert session.restarts == 1


def test_session_cpu_limit_applies_per_call() -> None:
    sandbox = Sandbox(Limits(timeout=30, cpu_seconds=1), isolate=True)
    with sandbox.session() as session:
        for _ in range(3):  # each call may use its second; together they exceed it
            assert (
                session.run(
                    "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.7:\n    pass"
                ).status
                == "ok"
            )
        spin = session.run("while True:\n    pass")
        assert spin.status == "timeout"
        assert spin.wall_seconds < 10


def test_pool_returns_results_in_order(sandbox: Sandbox) -> None:
    programs = [f"import time\ntime.sleep({0.2 if i % 2 else 0})\nprint({i})" for i in range(12)]
    with SandboxPool(sandbox, workers=4) as pool:
        results = pool.map(programs)
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(12)]
        answers = pool.map(["def solution():\n    return 6 * 7"], answer_expr="solution()")
        assert answers[0].answer == "42"


def test_require_isolation_fails_clearly_without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    isolation.isolation_error.cache_clear()
    try:
        with pytest.raises(MathforgeError, match="isolation required but unavailable: bubblewrap"):
            Sandbox(LIMITS, isolate=True)
        assert not Sandbox(LIMITS).isolated  # the default falls back (with a one-time warning)
    finally:
        isolation.isolation_error.cache_clear()


def test_fallback_warns_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from mathforge.sandbox import process

    monkeypatch.setattr(shutil, "which", lambda name: None)
    isolation.isolation_error.cache_clear()
    process._warned.clear()
    try:
        first, second = Sandbox(LIMITS), Sandbox(LIMITS)
        result = first.run("print('still runs')")
        assert (result.status, result.isolated) == ("ok", False)
        warnings = capsys.readouterr().err.count("not isolated")
        assert warnings == 1
        assert not second.isolated
    finally:
        isolation.isolation_error.cache_clear()


def test_environment_switch_requires_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATHFORGE_REQUIRE_ISOLATION", "1")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    isolation.isolation_error.cache_clear()
    try:
        with pytest.raises(MathforgeError, match="isolation required but unavailable"):
            Sandbox(LIMITS)
        assert not Sandbox(LIMITS, isolate=False).isolated  # an explicit choice still wins
    finally:
        isolation.isolation_error.cache_clear()


def test_python_under_tmp_stays_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout (and its .venv) under /tmp, as CI has it, must not be hidden by the sandbox's own /tmp."""
    venv = f"{isolation.WORKDIR}/checkout/.venv"  # under the directory the sandbox mounts its tmpfs on
    monkeypatch.setattr(isolation, "_python_roots", lambda: [venv])
    argv = isolation.bwrap_argv(tmp_mb=16)
    tmpfs_at = argv.index(isolation.WORKDIR, argv.index("--tmpfs"))
    bound_at = argv.index(venv)
    assert argv[tmpfs_at - 1] == "--tmpfs" and bound_at > tmpfs_at
