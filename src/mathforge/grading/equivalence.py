"""Whether a predicted answer equals the gold answer, cheapest test first.

Order: normalised strings, then exact rational numbers, then structure (tuples, intervals, sets, lists of
answers, each element compared recursively), then SymPy. Numbers never fall through to SymPy: two plain
numbers that differ are different (326.53 is not 326.5), and no float tolerance applies anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mathforge.grading.choices import parse_letters
from mathforge.grading.normalize import clean, compact, parse_number, strip_delimiters

# SymPy can hang on power towers (2^{3^{4}}) and huge exponents; skip it for those and for long strings.
# A proper process-level timeout around the symbolic test comes in a later change.
_SYMPY_MAX_CHARS = 300
_POWER_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\d+\s*\^|\^\s*\{?\s*-?\d{4,}")
_OPENERS, _CLOSERS = "([{", ")]}"


@dataclass(frozen=True)
class Verdict:
    correct: bool
    rule: str  # the test that decided: "string", "numeric", "tuple", "set", "symbolic", "choice", ...


def grade(pred: str | None, gold: str, answer_type: str) -> Verdict:
    """Grade one extracted answer against the gold answer. Never raises: an error is a wrong answer."""
    if pred is None or not pred.strip():
        return Verdict(False, "no_answer")
    try:
        if answer_type == "choice":
            return _grade_choice(pred, gold)
        if answer_type == "text":
            return _grade_text(pred, gold)
        # "number", "expression", and (rather than raising) any unknown type: the full math comparison.
        rule = _equal(clean(pred), clean(gold))
    except Exception:  # normalisation or SymPy failing on odd input means "not shown equal"
        return Verdict(False, "error")
    return Verdict(True, rule) if rule else Verdict(False, "mismatch")


def answers_equivalent(a: str, b: str, answer_type: str) -> bool:
    """Whether two extracted answers count as the same vote in majority voting."""
    return grade(a, b, answer_type).correct


def _grade_choice(pred: str, gold: str) -> Verdict:
    pred_letters, gold_letters = parse_letters(pred), parse_letters(gold)
    if gold_letters is None:
        # A gold that is not letters (cn_middle_school mixes letters and values): compare as math.
        rule = _equal(clean(pred), clean(gold))
        return Verdict(True, rule) if rule else Verdict(False, "mismatch")
    return Verdict(pred_letters == gold_letters, "choice" if pred_letters == gold_letters else "mismatch")


def _text_key(s: str) -> str:
    s = strip_delimiters(s)
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", s)
    return re.sub(r"\s+", " ", s).strip(" .!").casefold()


def _grade_text(pred: str, gold: str) -> Verdict:
    if _text_key(pred) == _text_key(gold):
        return Verdict(True, "string")
    # Text benchmarks (TabMWP) also have numeric golds: "1,000" and "1000.00" are the same answer.
    pred_value, gold_value = parse_number(clean(pred)), parse_number(clean(gold))
    if pred_value is not None and pred_value == gold_value:
        return Verdict(True, "numeric")
    return Verdict(False, "mismatch")


def _equal(pred: str, gold: str) -> str | None:
    """The rule that shows two cleaned answers equal, or None when none does."""
    if compact(pred) == compact(gold):
        return "string"
    pred_value, gold_value = parse_number(pred), parse_number(gold)
    if pred_value is not None and gold_value is not None:
        return "numeric" if pred_value == gold_value else None
    pred_parts, gold_parts = _structure(pred), _structure(gold)
    if pred_parts or gold_parts:
        return _equal_structures(pred_parts, gold_parts)
    return "symbolic" if _sympy_equal(pred, gold) else None


# --- structures: "(1, 2)", "[2, 5)", "\{1, 2\}", "2, -3", "(-\infty, 1) \cup (2, \infty)"


@dataclass(frozen=True)
class _Parts:
    ordered: bool  # tuples and intervals are ordered; sets, unions and lists of answers are not
    brackets: str  # "(]" etc. for ordered parts: an interval's open and closed ends matter
    items: tuple[str, ...]


def _split_top_level(s: str, separator: str) -> list[str]:
    """Split on `separator` where it is outside every bracket (any mix of (, [, {: intervals mix them)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        if s[i] in _OPENERS:
            depth += 1
        elif s[i] in _CLOSERS:
            depth -= 1
        elif depth == 0 and s.startswith(separator, i):
            parts.append(s[start:i])
            start = i + len(separator)
            i = start
            continue
        i += 1
    parts.append(s[start:])
    return [part.strip() for part in parts]


def _encloses(s: str) -> bool:
    """Whether the first character's bracket closes at the last character: "(1,2)" yes, "(1)(2)" no."""
    depth = 0
    for i, char in enumerate(s):
        depth += char in _OPENERS
        depth -= char in _CLOSERS
        if depth == 0 and i < len(s) - 1:
            return False
    return depth == 0


def _expand_pm(items: list[str]) -> list[str]:
    # "1 \pm \sqrt{2}" is the two answers 1 + \sqrt{2} and 1 - \sqrt{2}.
    out = []
    for item in items:
        if item.count("\\pm") == 1:
            out += [item.replace("\\pm", "+"), item.replace("\\pm", "-")]
        else:
            out.append(item)
    return out


def _structure(s: str) -> _Parts | None:
    """Split a compound answer into its parts (each cleaned again: "x=2, y=3"); None for a single value."""
    parts = _split_parts(s)
    if parts is None:
        return None
    return _Parts(parts.ordered, parts.brackets, tuple(clean(item) for item in parts.items))


def _split_parts(s: str) -> _Parts | None:
    pieces = _split_top_level(s, "\\cup")
    if len(pieces) > 1:
        return _Parts(False, "", tuple(pieces))
    if s.startswith("\\{") and s.endswith("\\}") and _encloses(s[1:]):
        return _Parts(False, "", tuple(_expand_pm(_split_top_level(s[2:-2], ","))))
    if s[:1] in "([" and s[-1:] in ")]" and _encloses(s):
        items = _split_top_level(s[1:-1], ",")
        if len(items) > 1:
            return _Parts(True, s[0] + s[-1], tuple(items))
    items = _split_top_level(s, ",")
    if len(items) > 1 or "\\pm" in s:
        return _Parts(False, "", tuple(_expand_pm(items)))
    return None


def _equal_structures(pred: _Parts | None, gold: _Parts | None) -> str | None:
    if pred is None or gold is None or pred.ordered != gold.ordered or len(pred.items) != len(gold.items):
        return None
    if pred.ordered:
        same = pred.brackets == gold.brackets and all(
            _equal(p, g) for p, g in zip(pred.items, gold.items, strict=True)
        )
        return "tuple" if same else None
    # Order-free: pair every gold item with a distinct equal predicted item.
    unused = list(pred.items)
    for g in gold.items:
        match = next((p for p in unused if _equal(p, g)), None)
        if match is None:
            return None
        unused.remove(match)
    return "set"


# --- symbolic


def _sympy_equal(pred: str, gold: str) -> bool:
    if any(len(s) > _SYMPY_MAX_CHARS or _POWER_TOWER.search(s) for s in (pred, gold)):
        return False
    # Imported here: SymPy and the LaTeX parser take about a second to import.
    import sympy
    from latex2sympy2_extended import latex2sympy

    try:
        a, b = latex2sympy(pred), latex2sympy(gold)
        if a == b:
            return True
        if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
            return bool(sympy.simplify(a - b) == 0)
        if isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase):
            return a.shape == b.shape and bool(sympy.simplify(a - b).is_zero_matrix)
    except Exception:  # unparsable LaTeX or a SymPy failure means "not shown equal"
        return False
    return False
