"""Safe execution of model-written Python: isolation by bubblewrap, resource limits, pools and sessions.

    from mathforge.sandbox import Limits, Sandbox
    result = Sandbox(Limits(timeout=5)).run("print(6 * 7)")
    result.status, result.stdout          # ("ok", "42\n")

`Sandbox.run` starts a fresh process per program; `Sandbox.session()` keeps one process across calls so that a
tool-integrated trajectory keeps its variables; `SandboxPool` runs many programs at once.
"""

from mathforge.sandbox.isolation import isolation_error
from mathforge.sandbox.pool import SandboxPool
from mathforge.sandbox.process import Sandbox, Session
from mathforge.sandbox.types import STATUSES, ExecResult, Limits, Status

__all__ = [
    "STATUSES",
    "ExecResult",
    "Limits",
    "Sandbox",
    "SandboxPool",
    "Session",
    "Status",
    "isolation_error",
]
