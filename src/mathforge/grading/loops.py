"""Whether a completion never reached an answer: it loops, or it stops mid-expression or inside a box.

Such a completion's last number (or last math) is noise, and grading it, as Math-Verify and the public
harnesses do, credits luck. Loops are found by comparing strings, never by regex backreferences, so that the
test stays linear on long degenerate output.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator

from mathforge.grading.latex import boxes

# A line that is only markup ("$$", "\end{align*}") may repeat in a sound solution.
_MARKUP_LINE = re.compile(r"[\W_]*+|\\(?:begin|end)\{[^}]*+\}.*+")
_SEGMENT_BREAK = re.compile(r"\n|(?<=[.!?])\s++")
_DIGITS = re.compile(r"\d++(?:[.,]\d++)*+")
# A text that stops on one of these was cut off mid-expression: "so it took 16 -", "(29,4),$ $(".
_OPEN_ENDINGS = ("=", "+", "*", "/", "^", "_", "(", "[", "{", ",", "\\", "&", "\\cdot", "\\times")
_LOOP_REPEATS = 5
_COUNTING_REPEATS = 10
_LETTERS = re.compile(r"[a-zA-Z]")
# A segment that ends a sentence: the conclusion after an enumeration does, a line cut off by the budget not.
_ENDS_SENTENCE = re.compile(r"[.!?。][\"')\]$*]*+$")


def ends_mid_expression(text: str) -> bool:
    """Whether the text stops on an operator or an opening bracket, or inside a ``` code block."""
    s = text.rstrip()
    return s.endswith(_OPEN_ENDINGS) or (s.endswith("-") and not s.endswith("--")) or s.count("```") % 2 == 1


def ends_in_a_loop(text: str) -> bool:
    """Whether the text ends repeating a line or sentence: the same one five times, or one that counts on ("On
    day 48, it is ... feet tall. On day 49, ...") ten times, up to its end or to a last line that ends no
    sentence (the budget cut it short). Only repeated content counts: a sound solution may check 41 pairs in 41 lines of the same shape, or
    repeat a short remark between them, and then ends with a sentence of its own, its conclusion."""
    segments = [
        segment
        for segment in map(str.strip, _SEGMENT_BREAK.split(text))
        if len(segment) >= 3 and not _MARKUP_LINE.fullmatch(segment)
    ]
    if not segments:
        return False
    shapes = [_DIGITS.sub("0", segment) for segment in segments]
    same, alike = Counter(segments), Counter(shapes)

    def repeated(index: int) -> bool:
        counting = alike[shapes[index]] >= _COUNTING_REPEATS and len(_LETTERS.findall(shapes[index])) >= 3
        return same[segments[index]] >= _LOOP_REPEATS or counting

    if repeated(len(segments) - 1):
        return True
    # The budget may have cut the last line short: "She paid $2 for a pack of grape", "The total is $27+9".
    return len(segments) >= 2 and repeated(len(segments) - 2) and not _ENDS_SENTENCE.search(segments[-1])


def loops_at_the_end(text: str) -> bool:
    """Whether the same 4-200 characters end the text six times over ("3 + 3 + 3 + ...")."""
    return any(_repeated_units(text.rstrip()[-1200:], range(4, 201), lambda size: 6))


def _repeated_units(tail: str, sizes: range, repeats: Callable[[int], int]) -> Iterator[str]:
    """Each piece of `tail`'s last `sizes` characters that ends it `repeats(size)` times over, shortest first."""
    for size in sizes:
        if 2 * size > len(tail):
            return
        unit = tail[-size:]
        # The cheap test first: most units do not even repeat once.
        if unit == tail[-2 * size : -size] and tail.endswith(unit * repeats(size)):
            yield unit


def is_degenerate(text: str) -> bool:
    """Whether the completion never reached an answer: it stops inside a \\boxed{ or mid-expression, or loops."""
    found = boxes(text)
    if found and found[-1].inner is None:
        return True
    return ends_mid_expression(text) or ends_in_a_loop(text) or loops_at_the_end(text)


# Stopping decides from a prefix of the completion, so it must be far stricter than `is_degenerate`, which judges
# a finished text: "3 + 3 + 3 + 3 + 3 + 3 = 18" and "0.3333333333333333" pass through repeats that a loop test
# on the whole text would flag if the text ended there.
_STOP_REPEATS = 8
_STOP_SPAN = 96
_STOP_UNIT = 400
_ALNUM = re.compile(r"[^\W_]")


def stuck_in_a_loop(text: str) -> bool:
    """Whether generation should stop: the text ends with the same piece of 1-400 characters, holding a letter or
    digit, repeated verbatim at least 8 times and over at least 96 characters ("1\\n1\\n1\\n...", the same
    sentence again and again).

    Only verbatim repeats count. A loop that counts on ("On day 48 ... On day 49 ...") is left to run: its later
    lines hold other numbers, so cutting it could change what a grader reads. A verbatim loop adds nothing a
    grader could read differently, which is what keeps the verdicts of stopped completions unchanged.
    """
    units = _repeated_units(
        text[-_STOP_UNIT * _STOP_REPEATS :],
        range(1, _STOP_UNIT + 1),
        lambda size: max(_STOP_REPEATS, -(-_STOP_SPAN // size)),  # at least 8 times and 96 characters
    )
    return any(_ALNUM.search(unit) for unit in units)
