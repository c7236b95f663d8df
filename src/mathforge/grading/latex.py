"""Scanning the LaTeX in a completion: braces, \\boxed{}, math-mode spans and numeric expressions.

Completions are untrusted and may be long and degenerate, so every scan here is linear: braces are matched in
one pass with a stack, delimiters are found in one regex pass and paired by bisection, and the numeric scan
moves forward on every step. Nothing here backtracks over the text.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import NamedTuple

# --- braces and \boxed{}

BOX = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
# An escaped brace \{ is a literal set brace in LaTeX and does not group; \\ is an escaped backslash.
_BRACE_TOKEN = re.compile(r"\\[\\{}]|[{}]")
_SPACES = re.compile(r"[ \t]*+")
_SPACED_ARGUMENT = re.compile(r"\s++([^\s$]++)")  # "\boxed 5"


def _after_spaces(text: str, at: int) -> int:
    """Where the spaces and tabs from `at` on end."""
    match = _SPACES.match(text, at)
    assert match is not None  # the pattern matches the empty string too
    return match.end()


def brace_partners(text: str) -> dict[int, int]:
    """The index of each "{" mapped to that of its "}", found in one pass (unmatched braces are left out)."""
    partners: dict[int, int] = {}
    open_at: list[int] = []
    for match in _BRACE_TOKEN.finditer(text):
        token = match.group()
        if token == "{":
            open_at.append(match.start())
        elif token == "}" and open_at:
            partners[open_at.pop()] = match.start()
    return partners


class Box(NamedTuple):
    start: int
    end: int  # just past the closing brace
    inner: slice | None  # where the content is; None: the completion stops inside the box

    def content(self, text: str) -> str | None:
        # Sliced only when asked for: nested boxes would make slicing them all quadratic.
        return None if self.inner is None else text[self.inner].strip()


def boxes(text: str) -> list[Box]:
    """Every \\boxed{}/\\fbox{} in order of its start (nested braces belong to the content)."""
    starts = list(BOX.finditer(text))
    if not starts:
        return []
    partners = brace_partners(text)
    found = []
    for match in starts:
        brace = _after_spaces(text, match.end())
        if text.startswith("{", brace):
            close = partners.get(brace)
            inner = None if close is None else slice(brace + 1, close)
            found.append(Box(match.start(), len(text) if close is None else close + 1, inner))
            continue
        spaced = _SPACED_ARGUMENT.match(text, match.end())
        if spaced:  # "\\boxed 5." : the final period ends the sentence
            token_end = spaced.start(1) + len(spaced.group(1).rstrip("."))
            found.append(Box(match.start(), spaced.end(), slice(spaced.start(1), token_end)))
        else:
            found.append(Box(match.start(), match.end(), None))
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} or \\fbox{...} (nested braces kept), or of "\\boxed 5".

    None when there is no box or the text stops inside the last one: a fragment is no answer.
    """
    found = boxes(text)
    return found[-1].content(text) if found else None


# --- brackets

_OPENERS, _CLOSERS = "([{", ")]}"


def split_top_level(s: str, separator: str | re.Pattern[str]) -> list[str]:
    """Split on `separator` (a string or a pattern) where it is outside every bracket, any mix of (, [, {:
    intervals mix them. The parts come back stripped."""
    pattern = separator if isinstance(separator, re.Pattern) else re.compile(re.escape(separator))
    depth, depths = 0, []
    for char in s:
        depths.append(depth)
        depth += (char in _OPENERS) - (char in _CLOSERS)
    parts, start = [], 0
    for match in pattern.finditer(s):
        if match.start() >= start and depths[match.start()] == 0:
            parts.append(s[start : match.start()])
            start = match.end()
    parts.append(s[start:])
    return [part.strip() for part in parts]


def encloses(s: str) -> bool:
    """Whether the first character's bracket closes at the last character: "(1,2)" yes, "(1)(2)" no."""
    depth = 0
    for i, char in enumerate(s):
        depth += char in _OPENERS
        depth -= char in _CLOSERS
        if depth == 0 and i < len(s) - 1:
            return False
    return depth == 0


# Macros whose argument is text, not math: an answer written as words ("\textbf{odd}"), a unit ("\text{ cm}").
TEXT_MACROS = r"\\(?:text|textbf|textrm|textit|textnormal|textsf|mbox|mathrm|mathbf|operatorname)"


# --- math mode: $...$, $$...$$, \(...\), \[...\] and display environments

_MATH_ENVIRONMENTS = "equation|align|alignat|gather|multline|eqnarray|displaymath|math|flalign"
_DELIMITER = re.compile(
    r"\\\\"  # an escaped backslash (a LaTeX line break), so that "\\[2pt]" opens nothing
    r"|\\\$"  # a currency sign
    r"|\$\$|\$"
    r"|\\[()\[\]]"
    rf"|\\(begin|end)\{{((?:{_MATH_ENVIRONMENTS})\*?)\}}"
)
_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_BLANK_LINE = re.compile(r"\n[ \t]*+\n")
# Words of prose inside would-be "$" math: "$18 for 3 apples, so $" is two prices, not math. Only common
# function words count, outside \text{}: "$2ab$" and "$\sin x$" are math.
_PROSE_WORD = re.compile(
    r"(?<![\\a-zA-Z{])(?:so|and|then|where|which|the|we|is|are|for|of|to|that|this|with|since|because|therefore"
    r"|thus|each|per|but|it|has|have|was)(?![a-zA-Z])",
    re.IGNORECASE,
)
_TEXT_GROUP = re.compile(TEXT_MACROS + r"\s*+\{[^{}]*+\}")
_INLINE_MAX_CHARS = 2000


class MathSpan(NamedTuple):
    start: int  # at the opening delimiter
    end: int  # just past the closing delimiter
    inner_start: int
    inner_end: int

    def content(self, text: str) -> str:
        return text[self.inner_start : self.inner_end].strip()


@dataclass(frozen=True)
class _Token:
    kind: str  # "$", "$$", "\\(", "\\)", "\\[", "\\]", "begin:align*", "end:align*"
    start: int
    end: int


def _delimiter_tokens(text: str) -> list[_Token]:
    tokens = []
    for match in _DELIMITER.finditer(text):
        if match.group(1):
            tokens.append(_Token(f"{match.group(1)}:{match.group(2)}", match.start(), match.end()))
        elif match.group() not in ("\\\\", "\\$"):
            tokens.append(_Token(match.group(), match.start(), match.end()))
    return tokens


def _can_open_inline(text: str, token: _Token) -> bool:
    # Pandoc's rule, which tells math from currency: "$" opens only before a non-space ("$18 and $5" is money);
    # and not right after a digit or before punctuation, where it is a price written after its number ("10$,").
    if token.end >= len(text) or text[token.end].isspace() or text[token.end] in ",.;:!?":
        return False
    return token.start == 0 or not text[token.start - 1].isdigit()


def _can_close_inline(text: str, token: _Token) -> bool:
    # ... and closes only after a non-space and not before a digit.
    after = text[token.end : token.end + 1]
    return token.start > 0 and not text[token.start - 1].isspace() and not after.isdigit()


def math_spans(text: str) -> list[MathSpan]:
    """The math-mode spans of `text` in order, outermost only. Inline "$" math follows Pandoc's rule (no space
    inside the delimiters, no digit after the closing one) and never crosses a blank line, so that prices
    written with "$" are not read as math; an opening delimiter that is never closed opens nothing."""
    tokens = _delimiter_tokens(text)
    if not tokens:
        return []
    closers: dict[str, list[int]] = {}  # token indices that can close each kind, in order
    for index, token in enumerate(tokens):
        if token.kind != "$" or _can_close_inline(text, token):
            closers.setdefault(token.kind, []).append(index)
    blank_lines = [match.start() for match in _BLANK_LINE.finditer(text)]
    spans, index = [], 0
    while index < len(tokens):
        opener = tokens[index]
        closer_kind = _CLOSER.get(opener.kind) or (
            "end:" + opener.kind[6:] if opener.kind.startswith("begin:") else None
        )
        candidates = closers.get(closer_kind or "", [])
        at = bisect.bisect_right(candidates, index)
        if (
            closer_kind is None
            or at == len(candidates)
            or (opener.kind == "$" and not _can_open_inline(text, opener))
        ):
            index += 1
            continue
        closer = tokens[candidates[at]]
        if opener.kind == "$" and not _inline_math(text, opener, closer, blank_lines):
            index += 1
            continue
        spans.append(MathSpan(opener.start, closer.end, opener.end, closer.start))
        index = candidates[at] + 1
    return spans


def _inline_math(text: str, opener: _Token, closer: _Token, blank_lines: list[int]) -> bool:
    """Whether "$" ... "$" is inline math: within one paragraph, not too long, and not two prices."""
    if closer.start - opener.end > _INLINE_MAX_CHARS:
        return False
    blank = bisect.bisect_left(blank_lines, opener.end)
    if blank < len(blank_lines) and blank_lines[blank] < closer.start:
        return False
    return not _PROSE_WORD.search(_TEXT_GROUP.sub(" ", text[opener.end : closer.start]))


def final_paragraph_start(text: str, spans: list[MathSpan]) -> int:
    """Where the last paragraph of `text` starts: after its last blank line outside math."""
    starts = [span.start for span in spans]
    start = 0
    for match in _BLANK_LINE.finditer(text):
        inside = bisect.bisect_right(starts, match.start()) - 1
        if inside < 0 or spans[inside].end <= match.start():
            start = match.end()
    return start


# --- numeric expressions: what the last-number fallback reads

# A plain number: "1,000", "1{,}000", "10,\\!080", "-3.5", "3/4", ".5".
_PLAIN_NUMBER = re.compile(
    r"\d{1,3}(?:(?:,|\{,\}|,\\!)\d{3})++(?![\d])(?:\.\d++)?|\d++(?:\.\d++)?(?:/\d++)?|\.\d++"
)
_FRACTION_MACRO = re.compile(r"\\(?:[dt]?frac|[dt]?binom)(?![a-zA-Z])")
_ROOT_MACRO = re.compile(r"\\sqrt(?![a-zA-Z])(?:\s*+\[[^\[\]\n]{0,20}+\])?")
_CONSTANT = re.compile(r"\\pi(?![a-zA-Z])")
_MACRO = re.compile(r"\\(?:[a-zA-Z]++|.)", re.DOTALL)
_SCRIPT = re.compile(r"\s*+[\^_]")
# Where something may begin: a number, a macro, or a base that carries a script ("x^2", "a_{37}", ")^2").
_START = re.compile(r"\d|\.\d|\\|[a-zA-Z)\]}](?=\s*+[\^_])")
# "3 \times 10^{5}", "2.5 \cdot 10^3": a power of ten multiplied in.
_TIMES_TEN = re.compile(r"[ \t]*+\\(?:times|cdot)[ \t]*+(?=10[ \t]*+\^)")
_DIGIT = re.compile(r"\d")
_UNIT_AFTER_NUMBER = re.compile(r"\d\s?[a-zA-Z]$")
_NON_NUMERIC = re.compile(r"[a-zA-Z]")
_MACRO_NAME = re.compile(r"\\[a-zA-Z]++")


class _Scan(NamedTuple):
    end: int
    numeric: bool  # no variables in it: a number the fallback may read


class _NumericScanner:
    """Reads LaTeX numbers as the expressions they are: "\\frac13", "\\sqrt3", "2\\pi", "10^{-3}", "1{,}000";
    and skips what only looks like a number, "x^2", "a_{37}", "\\frac{x}{2}", "3x", so that no rule can read
    13 from "\\frac13" or 2 from "x^2"."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.partners = brace_partners(text)

    def expressions(self, start: int, end: int) -> list[tuple[int, int, bool]]:
        """(start, end, numeric) of each expression with digits in text[start:end], in order. Non-numeric ones
        ("x^2", "a_{37}", "3x", "\\frac{x}{2}") are listed too: a text that ends on one ends on no number."""
        text, position = self.text, start
        found: list[tuple[int, int, bool]] = []
        while True:
            match = _START.search(text, position, end)
            if match is None:
                return found
            at = match.start()
            if text[at] == "\\" and self._atom(at) is None:
                # any other macro, with the scripts it carries ("\log_2", "\sum_{i=1}^{9}", "\text{ cm}^2")
                macro = _MACRO.match(text, at)  # None: a lone backslash ends the text
                position = self._skip_scripts(at + 1 if macro is None else macro.end())
                continue
            if text[at] not in "\\.0123456789":  # a base with a script: "x^2", "(x+1)^2", "cm^2"
                position = self._skip_scripts(at + 1)
                if self._is_variable(at) and _DIGIT.search(text, at, position):
                    found.append((at, position, False))
                continue
            scan = self._expression(at)
            if scan.end <= end:
                found.append((self._with_sign(at), scan.end, scan.numeric))
            position = max(scan.end, at + 1)

    def _is_variable(self, at: int) -> bool:
        """Whether the letter at `at` is a variable: not part of a word ("cm^2") nor a unit after a number
        ("25 m^2")."""
        text = self.text
        if not text[at].isalpha() or (at > 0 and text[at - 1].isalpha()):
            return False
        return not _UNIT_AFTER_NUMBER.search(text, max(0, at - 2), at + 1)

    def _with_sign(self, at: int) -> int:
        # "-5", but not the dash of "5-3" or of "x-3".
        text = self.text
        if at > 0 and text[at - 1] == "-" and (at < 2 or not re.match(r"[\w)\]}]", text[at - 2])):
            return at - 1
        return at

    def _expression(self, at: int) -> _Scan:
        """Atoms written side by side ("2\\pi", "3\\sqrt{2}", "2\\frac{1}{2}"), a quotient of atoms
        ("\\sqrt{2}/2") and scientific notation ("3 \\times 10^{5}"). A letter glued on ("12m", "100g", "2L")
        is left out, as before: in prose it is most often a unit."""
        text = self.text
        scan = self._atom(at)
        assert scan is not None
        end, numeric = self._scripts(scan.end, scan.numeric)
        while True:
            times_ten = _TIMES_TEN.match(text, end)
            nxt = times_ten.end() if times_ten else _after_spaces(text, end)
            if times_ten or text.startswith("\\", nxt):
                following = self._atom(nxt)
            elif text.startswith("/", end):
                following = self._atom(end + 1)
            else:
                break
            if following is None:
                break
            end, more = self._scripts(following.end, following.numeric)
            numeric &= more
        return _Scan(end, numeric)

    def _atom(self, at: int) -> _Scan | None:
        text = self.text
        fraction = _FRACTION_MACRO.match(text, at)
        if fraction:
            first = self._argument(fraction.end())
            second = self._argument(first[0]) if first else None
            if first is None or second is None:
                return None
            return _Scan(second[0], is_numeric(first[1]) and is_numeric(second[1]))
        root = _ROOT_MACRO.match(text, at)
        if root:
            argument = self._argument(root.end())
            return None if argument is None else _Scan(argument[0], is_numeric(argument[1]))
        constant = _CONSTANT.match(text, at)
        if constant:
            return _Scan(constant.end(), True)
        number = _PLAIN_NUMBER.match(text, at)
        return _Scan(number.end(), True) if number else None

    def _argument(self, at: int) -> tuple[int, str] | None:
        """A macro argument: "{...}" (nested braces kept), a macro, or one character ("\\frac13")."""
        text = self.text
        at = _after_spaces(text, at)
        if at >= len(text):
            return None
        if text[at] == "{":
            close = self.partners.get(at)
            return None if close is None else (close + 1, text[at + 1 : close])
        if text[at] == "\\":
            macro = _MACRO.match(text, at)  # None: a lone backslash ends the text
            return None if macro is None else (macro.end(), macro.group())
        if text[at] in "}$":
            return None
        return at + 1, text[at]

    def _scripts(self, at: int, numeric: bool) -> tuple[int, bool]:
        """Superscripts and subscripts after an atom: "10^{-3}" is numeric, "2^n" is not."""
        while True:
            script = _SCRIPT.match(self.text, at)
            argument = self._argument(script.end()) if script else None
            if argument is None:
                return at, numeric
            at, numeric = argument[0], numeric and is_numeric(argument[1])

    def _skip_scripts(self, at: int) -> int:
        return self._scripts(at, False)[0]


def is_numeric(latex: str) -> bool:
    """Whether a LaTeX fragment has no variables: letters only in macro names."""
    return not _NON_NUMERIC.search(_MACRO_NAME.sub("", latex))


def numeric_expressions(text: str, start: int = 0) -> list[tuple[int, int]]:
    """(start, end) of every numeric expression in text[start:], read whole, in order."""
    return [(begin, end) for begin, end, numeric in _NumericScanner(text).expressions(start, len(text)) if numeric]


def last_numeric_expression(text: str, start: int = 0) -> str | None:
    """The last numeric expression in text[start:], read whole ("\\frac13", "2\\pi", "10^{-3}"), or None."""
    found = _NumericScanner(text).expressions(start, len(text))
    if not found or not found[-1][2]:
        return None
    begin, end, _ = found[-1]
    return text[begin:end]
