"""The one exception type for bad input: the CLI prints its message on one line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class MathforgeError(Exception):
    """A problem with the user's input (a file, an option, a model, the network), not a bug.

    The message must say what is wrong and where (file:line, field, option), on one line.
    """

    exit_code = 2


class ContextOverflow(MathforgeError):
    """A prompt longer than the engine's context window. Tool-integrated generation catches it to end a
    trajectory that has outgrown the window; anywhere else it is a one-line error like any other."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, `timeout`, `kill`), raised where Ctrl-C raises KeyboardInterrupt (the CLI installs the
    handler), so that a terminated run keeps and reports its work as an interrupted one does."""

    signal_number = 15


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run: the message says how much is done and how to go on; the exit status is
    128 + the signal's number, as a shell reports a process the signal killed. Still a KeyboardInterrupt, so
    that a Python caller's `except Exception` does not swallow the user's Ctrl-C."""

    def __init__(self, message: str, signal_number: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type's name if it has none), cut to `limit`.

    Library errors (transformers, datasets, vLLM, CUDA) span many lines; a one-line error keeps the first.
    """
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    line = lines[0].strip() if lines else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def close_match(name: Any, known: Iterable[Any]) -> str | None:
    """The one of `known` that `name` most likely misspells, or None. Case is ignored: `--bench GSM8K` means
    gsm8k. The one matcher behind every "did you mean" (names, option values, config keys)."""
    by_folded = {str(option).lower(): str(option) for option in known}
    found = difflib.get_close_matches(str(name).lower(), list(by_folded), n=1)
    return by_folded[found[0]] if found else None


def did_you_mean(name: Any, known: Iterable[Any]) -> str:
    """What an "unknown name" error appends: ' (did you mean gsm8k?)' for a likely typo of one of `known`, else
    nothing."""
    match = close_match(name, known)
    return f" (did you mean {match}?)" if match is not None else ""


def read_text(path: str | Path, what: str) -> str:
    """A UTF-8 text file's content, or a one-line error naming `what` (an option or a role) and the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise MathforgeError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise MathforgeError(f"{what}: {path} is not UTF-8 text (byte {error.start})") from None
