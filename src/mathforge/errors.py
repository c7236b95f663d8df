"""The one exception type for bad input: the CLI prints its message on one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class MathforgeError(Exception):
    """A problem with the user's input (a file, an option, a model, the network), not a bug.

    The message must say what is wrong and where (file:line, field, option), on one line.
    """

    exit_code = 2


class ContextOverflow(MathforgeError):
    """A prompt longer than the engine's context window. Tool-integrated generation catches it to end a
    trajectory that has outgrown the window; anywhere else it is a one-line error like any other."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type's name if it has none), cut to `limit`.

    Library errors (transformers, datasets, vLLM, CUDA) span many lines; a one-line error keeps the first.
    """
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    line = lines[0].strip() if lines else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def read_text(path: str | Path, what: str) -> str:
    """A UTF-8 text file's content, or a one-line error naming `what` (an option or a role) and the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise MathforgeError(f"{what}: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise MathforgeError(f"{what}: {path} is not UTF-8 text (byte {error.start})") from None
