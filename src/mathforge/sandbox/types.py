"""What a sandboxed execution is allowed (`Limits`) and what it reports (`ExecResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "error", "timeout", "memory", "killed"]
STATUSES: tuple[Status, ...] = ("ok", "error", "timeout", "memory", "killed")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one execution (a session applies them to each call)."""

    timeout: float = 10.0  # wall-clock seconds; the whole process tree is killed after it
    cpu_seconds: float | None = None  # None: the wall timeout, rounded up
    memory_mb: int = 2048  # address space of each process
    max_processes: int = 64  # processes and threads the program may add
    max_file_mb: int = 64  # largest file it may write
    tmp_mb: int = 256  # size of its private writable /tmp (isolated runs)
    max_open_files: int = 256
    max_output_bytes: int = (
        64 * 1024
    )  # of stdout and of stderr each; the rest is dropped and marked truncated

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.memory_mb < 32:
            raise ValueError(f"memory_mb must be at least 32, got {self.memory_mb}")

    @property
    def cpu(self) -> int:
        return int(self.cpu_seconds if self.cpu_seconds is not None else self.timeout) + 1


@dataclass
class ExecResult:
    """The outcome of running one program.

    status: ok (returned normally or exited 0), error (an exception or a non-zero exit), timeout (wall clock or
    CPU limit), memory (MemoryError: the address-space limit), killed (a signal: a crash, a kill from inside).
    `error` is the last line of the traceback ("NameError: name 'x' is not defined"); `answer` is the value of
    the answer expression (PAL's `solution()`), when one was asked for.
    """

    status: Status
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    wall_seconds: float = 0.0
    truncated: bool = False
    error: str | None = None
    answer: str | None = None
    isolated: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExecResult:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)
