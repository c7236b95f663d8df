"""The one exception type for bad input: the CLI prints its message on one line and exits with status 2."""

from __future__ import annotations


class MathforgeError(Exception):
    """A problem with the user's input (a file, an option, a model, the network), not a bug.

    The message must say what is wrong and where (file:line, field, option), on one line.
    """

    exit_code = 2
