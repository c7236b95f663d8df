"""The hard time limit: work in the grading child is stopped at its deadline, from any thread or process."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import threading
import time

import pytest

from mathforge.grading import grade, limits

# The pairs below need the child (structures or SymPy), so they exercise the limit machinery.
SYMBOLIC_CASES = [
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("(x+1)^2", "x^2+2x+1", True),
    ("\\sin^2 x + \\cos^2 x", "1", True),
    ("2\\pi r", "\\pi d", False),
    ("1000(26)", "26000", True),
    ("\\{1, 2\\}", "\\{2, 1\\}", True),
]


def test_work_within_the_limit_returns_its_value() -> None:
    outcome = limits.call_limited("mathforge.grading.limits:_sleep", (0.05,), timeout=5)
    assert outcome == limits.Outcome("ok", 0.05)


def test_work_past_the_limit_is_stopped_and_the_next_call_gets_a_fresh_child() -> None:
    started = time.monotonic()
    outcome = limits.call_limited("mathforge.grading.limits:_sleep", (60,), timeout=0.5)
    assert outcome.status == "timeout"
    assert time.monotonic() - started < 5
    assert limits.call_limited("mathforge.grading.limits:_sleep", (0,), timeout=30).status == "ok"


def test_only_listed_functions_run_in_the_child() -> None:
    outcome = limits.call_limited("os:system", ("true",), timeout=30)
    assert outcome.status == "error"
    assert "not callable" in outcome.value


def test_a_dead_idle_child_is_replaced() -> None:
    limits.call_limited("mathforge.grading.limits:_sleep", (0,), timeout=30)  # leaves an idle child
    for child in list(limits._POOL._idle):
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.wait()
    assert limits.call_limited("mathforge.grading.limits:_sleep", (0,), timeout=30).status == "ok"


def test_a_child_that_dies_mid_request_is_an_error_then_replaced() -> None:
    limits.call_limited("mathforge.grading.limits:_sleep", (0,), timeout=30)
    victim = limits._POOL._idle[-1].process.pid
    threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
    outcome = limits.call_limited("mathforge.grading.limits:_sleep", (30,), timeout=60)
    assert outcome.status == "error"
    assert "died" in outcome.value
    assert limits.call_limited("mathforge.grading.limits:_sleep", (0,), timeout=30).status == "ok"


def test_a_runaway_power_tower_times_out_as_an_uncertain_wrong_answer() -> None:
    started = time.monotonic()
    verdict = grade("9^{9^{9^{9}}}", "1", "expression", timeout=1)
    assert (verdict.correct, verdict.rule, verdict.certain) == (False, "timeout", False)
    assert time.monotonic() - started < 6  # the 1 s limit, plus starting a fresh child at worst


def test_a_huge_factorial_is_stopped() -> None:
    verdict = grade("10^{10^{10}}!", "5", "expression", timeout=1)
    assert not verdict.correct
    assert verdict.rule in {"timeout", "error"}


def test_grading_from_many_threads_gives_the_sequential_verdicts() -> None:
    expected = [grade(p, g, "expression").correct for p, g, _ in SYMBOLIC_CASES]
    assert expected == [want for _, _, want in SYMBOLIC_CASES]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        # Different timeouts make distinct cache keys, so every thread really asks a child.
        futures = [
            pool.submit(grade, p, g, "expression", timeout=10 + i)
            for i, (p, g, _) in enumerate(SYMBOLIC_CASES * 2)
        ]
        got = [f.result().correct for f in futures]
    assert got == expected * 2


def test_a_timeout_in_one_thread_does_not_disturb_another() -> None:
    results: dict[str, object] = {}

    def slow() -> None:
        results["slow"] = grade("9^{9^{9^{9}}}", "2", "expression", timeout=1)

    thread = threading.Thread(target=slow)
    thread.start()
    results["fast"] = grade("(x+1)^2", "x^2+2x+1", "expression", timeout=20)
    thread.join()
    assert results["fast"].correct
    assert results["slow"].rule == "timeout"


def _grade_in_worker(pair: tuple[str, str]) -> bool:
    return grade(pair[0], pair[1], "expression", timeout=30).correct


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_grading_inside_worker_processes(start_method: str) -> None:
    # Warm a child in this process first: a forked worker must not talk to its parent's child.
    grade("\\sqrt{8}", "2\\sqrt{2}", "expression", timeout=31)
    context = multiprocessing.get_context(start_method)
    pairs = [(p, g) for p, g, _ in SYMBOLIC_CASES]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        got = list(pool.map(_grade_in_worker, pairs))
    assert got == [want for _, _, want in SYMBOLIC_CASES]


def test_the_child_process_ends_with_its_parent(tmp_path) -> None:
    # A parent killed mid-grading must not leave a SymPy process spinning: the child dies with it.
    script = tmp_path / "parent.py"
    pid_file = tmp_path / "child.pid"
    script.write_text(
        "import sys, threading\n"
        "from mathforge.grading import limits\n"
        "limits.call_limited('mathforge.grading.limits:_sleep', (0,), 30)\n"
        f"open({str(pid_file)!r}, 'w').write(str(limits._POOL._idle[0].process.pid))\n"
        "limits.call_limited('mathforge.grading.limits:_sleep', (600,), 600)\n"
    )
    import subprocess
    import sys

    parent = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    time.sleep(0.5)  # the parent is now waiting on the 600 s request
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
