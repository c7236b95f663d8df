"""What sandboxing costs per program: bare subprocesses vs mathforge's sandbox, in the same run.

    .venv/bin/python benchmarks/sandbox_throughput.py [--programs 100] [--rounds 3] [--session-calls 1000]

Every measurement runs `--programs` trivial programs (`print(1)`) and reports executions per second:

- bare: `subprocess.run([sys.executable, "-I", "-c", "print(1)"], capture_output=True)` per program, no limits,
  no isolation: the floor that starting a Python interpreter sets. Sequentially, and on a ThreadPoolExecutor of
  2 workers.
- limits: `Sandbox(isolate=False).run("print(1)")`, resource limits only (a shell between caller and program,
  rlimits, a temporary working directory, the kill of the process tree afterwards).
- isolated: `Sandbox(isolate=True).run("print(1)")`, the same inside bubblewrap (namespaces, read-only mounts,
  a private /tmp). Both sandboxes run sequentially and through `SandboxPool(sandbox, workers=2).map(programs)`.
- session: `Sandbox(...).session()`; after `session.run("x = 0")` (its start, timed apart), `--session-calls`
  calls of `session.run("x = x + 1\\nprint(x)")` in the one process, for both sandboxes.

Run as root, every sandboxed process also joins its own pids cgroup (see src/mathforge/sandbox/cgroup.py); the
JSON says whether that happened. Rounds alternate all measurements (the order rotates each round) so that
machine drift hits all of them; the median of each is reported, and the ratios are taken between medians.
Every result is checked (status "ok", the expected stdout, isolated as asked; the session's counter): a
benchmark of failures would be worthless, so `all_ok` must be true.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mathforge.sandbox import ExecResult, Sandbox, SandboxPool
from mathforge.sandbox.cgroup import pids_hierarchy

PROGRAM = "print(1)"
EXPECTED = "1\n"
WORKERS = 2


def bare_once(_: object = None) -> bool:
    done = subprocess.run([sys.executable, "-I", "-c", PROGRAM], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout == EXPECTED


def sandbox_ok(result: ExecResult, isolated: bool) -> bool:
    return result.status == "ok" and result.stdout == EXPECTED and result.isolated == isolated


def timed(work: Callable[[], tuple[int, int]]) -> dict:
    """Run `work` (returning executions done and how many were right) and time it."""
    started = time.perf_counter()
    done, good = work()
    seconds = time.perf_counter() - started
    return {"n": done, "ok": good, "seconds": seconds, "per_second": done / seconds}


def measurements(programs: int, session_calls: int) -> dict[str, Callable[[], dict]]:
    sandboxes = {"limits": Sandbox(isolate=False), "isolated": Sandbox(isolate=True)}

    def bare_sequential() -> tuple[int, int]:
        return programs, sum(bare_once() for _ in range(programs))

    def bare_pool() -> tuple[int, int]:
        with ThreadPoolExecutor(max_workers=WORKERS) as executor:
            return programs, sum(executor.map(bare_once, range(programs)))

    def sequential(name: str) -> Callable[[], tuple[int, int]]:
        sandbox = sandboxes[name]

        def work() -> tuple[int, int]:
            results = [sandbox.run(PROGRAM) for _ in range(programs)]
            return len(results), sum(sandbox_ok(r, sandbox.isolated) for r in results)

        return work

    def pool(name: str) -> Callable[[], tuple[int, int]]:
        sandbox = sandboxes[name]

        def work() -> tuple[int, int]:
            with SandboxPool(sandbox, workers=WORKERS) as runner:
                results = runner.map([PROGRAM] * programs)
            return len(results), sum(sandbox_ok(r, sandbox.isolated) for r in results)

        return work

    def session(name: str) -> Callable[[], dict]:
        sandbox = sandboxes[name]

        def measure() -> dict:
            with sandbox.session() as current:
                started = time.perf_counter()
                first = current.run("x = 0")
                start_seconds = time.perf_counter() - started

                def work() -> tuple[int, int]:
                    good = 0
                    for number in range(1, session_calls + 1):
                        result = current.run("x = x + 1\nprint(x)")
                        good += result.status == "ok" and result.stdout == f"{number}\n"
                    return session_calls, good

                figures = timed(work)
                clean = first.status == "ok" and first.isolated == sandbox.isolated and current.restarts == 0
            return figures | {"ok": figures["ok"] if clean else 0, "start_seconds": start_seconds}

        return measure

    table: dict[str, Callable[[], dict]] = {
        "bare_sequential": lambda: timed(bare_sequential),
        "bare_pool": lambda: timed(bare_pool),
    }
    for name in sandboxes:
        table[f"{name}_sequential"] = lambda name=name: timed(sequential(name))
        table[f"{name}_pool"] = lambda name=name: timed(pool(name))
        table[f"{name}_session"] = session(name)
    return table


def bwrap_version() -> str | None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    return subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--programs", type=int, default=100, help="programs per measurement (default 100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--session-calls", type=int, default=1000, help="calls per session (default 1000)")
    args = parser.parse_args()

    table = measurements(args.programs, args.session_calls)
    names = list(table)
    for _ in range(3):  # warm-up (page cache, the first cgroup), not counted; bwrap's probe ran above
        bare_once()
        Sandbox(isolate=False).run(PROGRAM)
        Sandbox(isolate=True).run(PROGRAM)

    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(table[name]())

    median = {name: statistics.median(r["per_second"] for r in values) for name, values in runs.items()}
    checks = {
        name: f"{sum(r['ok'] for r in values)}/{sum(r['n'] for r in values)}" for name, values in runs.items()
    }
    all_ok = all(r["ok"] == r["n"] for values in runs.values() for r in values)

    def ratio(a: str, b: str) -> float:
        return round(median[a] / median[b], 3)

    def added_ms(a: str, b: str) -> float:
        return round(1000 / median[a] - 1000 / median[b], 2)

    report = {
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {bwrap_version()}",
        # Other work on the machine competes for its cores; the 1-minute load average before and after the run.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "root": os.geteuid() == 0,
        "pids_cgroup": str(pids_hierarchy()) if pids_hierarchy() else None,
        "programs": args.programs,
        "session_calls": args.session_calls,
        "rounds": args.rounds,
        "all_ok": all_ok,
        "checks": checks,
        "per_second_median": {name: round(value, 1) for name, value in median.items()},
        "ms_per_execution_median": {name: round(1000 / value, 2) for name, value in median.items()},
        "per_second_all_rounds": {
            name: [round(r["per_second"], 1) for r in values] for name, values in runs.items()
        },
        "session_start_seconds": {
            name: [round(r["start_seconds"], 3) for r in runs[f"{name}_session"]]
            for name in ("limits", "isolated")
        },
        # Throughput ratios (executions/s of the first ÷ of the second): below 1 means the first is slower.
        "ratios": {
            "isolated_vs_bare_sequential": ratio("isolated_sequential", "bare_sequential"),
            "isolated_vs_bare_pool": ratio("isolated_pool", "bare_pool"),
            "limits_vs_bare_sequential": ratio("limits_sequential", "bare_sequential"),
            "isolated_vs_limits_sequential": ratio("isolated_sequential", "limits_sequential"),
            "isolated_vs_limits_pool": ratio("isolated_pool", "limits_pool"),
            "pool_vs_sequential_bare": ratio("bare_pool", "bare_sequential"),
            "pool_vs_sequential_limits": ratio("limits_pool", "limits_sequential"),
            "pool_vs_sequential_isolated": ratio("isolated_pool", "isolated_sequential"),
            "session_vs_one_shot_limits": ratio("limits_session", "limits_sequential"),
            "session_vs_one_shot_isolated": ratio("isolated_session", "isolated_sequential"),
        },
        # Wall time each sequential execution adds over the other (milliseconds).
        "added_ms_per_execution": {
            "limits_over_bare": added_ms("limits_sequential", "bare_sequential"),
            "isolated_over_bare": added_ms("isolated_sequential", "bare_sequential"),
            "isolated_over_limits": added_ms("isolated_sequential", "limits_sequential"),
        },
    }

    print(f"{'measurement':<22} {'exec/s (median)':>16} {'ms/exec':>9}  checks")
    for name in names:
        print(f"{name:<22} {median[name]:>16.1f} {1000 / median[name]:>9.2f}  {checks[name]}")
    print(f"all_ok: {all_ok}\n")
    print(json.dumps(report, indent=2))
    if not all_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
