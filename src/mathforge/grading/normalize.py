"""String normalisation of answers, and the exact parsing of plain numbers.

`clean` removes what never changes an answer's meaning (math delimiters, units, spacing macros, LaTeX
spelling variants) and keeps single spaces, which the LaTeX parser needs ("\\pi r"); `compact` then drops the
spaces for string comparison.
"""

from __future__ import annotations

import re
from fractions import Fraction

from mathforge.grading.latex import boxes

# \text{...}-like wrappers: their content is either a unit (dropped) or the answer itself (unwrapped).
_TEXT_MACRO = re.compile(
    r"\\(text|textbf|textrm|textit|textnormal|textsf|mbox|mathrm|mathbf|mathit|mathsf|operatorname)\s*\{([^{}]*)\}"
)
# Words in plain text after a value are its unit: "10\text{ cm}", "5\mathrm{~kg}", "3\text{ students}".
_UNIT_MACROS = {"text", "textrm", "textnormal", "mbox", "mathrm"}
_UNIT_TEXT = re.compile(r"[a-zA-Z][a-zA-Z .\-]*")
_TEXT_EXPONENT = re.compile(r"^\s*\^\s*\{?\s*[23]\s*\}?")
# "40 apples", "18 dollars", "5 cm": plain words after a value. A word needs three letters or to be a short
# unit, so that the product "\frac{1}{2} ab" keeps its variables.
_WORD = r"(?:[a-zA-Z]{3,}|sq|cm|mm|km|kg|mg|ml|ft|yd|mi|oz|lb|hr|am|pm)"
_TRAILING_WORDS = re.compile(rf"^(.*?[\d}}])\s+(?!(?:and|or)\b){_WORD}(?:\s+{_WORD})*\.?$")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")
# "x = 3", "\theta =", "a_1 =", "f(x) =", "x \in": a single named variable left of the answer.
_VARIABLE_PREFIX = re.compile(
    r"^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?|\([a-zA-Z]\))?\s*(?:=(?!=)|\\in(?![a-zA-Z]))\s*"
)

# "=" that is not part of "<=", ">=", "!=", "==" or ":=".
EQUALS = re.compile(r"(?<![<>!=:])=(?!=)")
# A name that a value is given to: "x", "AB", "\\theta", "a_1", "f(0)", "f(x)", "P(A)".
_NAME = re.compile(r"\s*+(?:[a-zA-Z]|[A-Z]{2,3}|\\[a-zA-Z]++)(?:_\{?\w+\}?)?(?:\([^()=]*+\))?\s*+")


def is_name(s: str) -> bool:
    """Whether `s` names a value: "x", "AB", "\\theta", "a_1", "f(0)" (not "5x" or "x + y")."""
    return bool(_NAME.fullmatch(s))


def assignments(items: list[str]) -> list[tuple[str, str]] | None:
    """(name, value) for each item when every one gives a value to a name ("p = 5"), else None."""
    pairs = [EQUALS.split(item) for item in items]
    if not all(len(pair) == 2 and is_name(pair[0]) and pair[1].strip() for pair in pairs):
        return None
    return [(name.strip(), value.strip()) for name, value in pairs]


def named_values(items: list[str]) -> list[tuple[str, str]] | None:
    """ "p = 5, q = 2", "AB = 4, CD = 5": values given to different names, in their order. None otherwise, and
    for "x = 2, x = -3", alternatives for one name."""
    pairs = assignments(items) if len(items) > 1 else None
    return pairs if pairs and len({name for name, _ in pairs}) == len(pairs) else None

# Spelling variants of one LaTeX meaning, applied in order.
_REPLACEMENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"\u2212", "-"),  # unicode minus
        (r"\\\$", ""),
        (r"\$", ""),
        (r"\\(?:left|right|big|Big|bigl|bigr|Bigl|Bigr)(?![a-zA-Z])", ""),
        (r"\\displaystyle", ""),
        (r"~", " "),
        (r"(?<=\d),\\[!,]\s*(?=\d{3}(?!\d))", ","),  # MATH's thousands separator: "10,\!080"
        (r"(?<!\\)\\[!,;:]|(?<!\\)\\ ", " "),  # spacing macros; "1\,000" becomes "1 000" and then 1000
        (r"\\[dt]frac", r"\\frac"),
        (r"\\frac\s*([a-zA-Z0-9])\s*([a-zA-Z0-9])", r"\\frac{\1}{\2}"),  # \frac12 -> \frac{1}{2}
        (r"\\frac\s*([a-zA-Z0-9])\s*\{", r"\\frac{\1}{"),
        (r"\\frac\s*\{([^{}]*)\}\s*([a-zA-Z0-9])", r"\\frac{\1}{\2}"),
        (r"\\sqrt\s*([a-zA-Z0-9])", r"\\sqrt{\1}"),
        (r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°", ""),  # degrees
        (r"\\%|%", ""),  # a percent is read as a unit: "35\%" grades like "35"
        (r"\{,\}", ""),  # LaTeX's thousands separator 1{,}000
        (r"\\le(?![a-zA-Z])|\\leqslant|<=|≤", r"\\leq "),
        (r"\\ge(?![a-zA-Z])|\\geqslant|>=|≥", r"\\geq "),
        (r"\\ne(?![a-zA-Z])|!=|≠", r"\\neq "),
        (r"\\varnothing", r"\\emptyset"),
    )
)


def strip_delimiters(text: str) -> str:
    """Remove math-mode delimiters around the whole answer: $x$, $$x$$, \\(x\\), \\[x\\]."""
    s = text.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)].strip()
    return s


# What may stand between the boxes of one multi-part answer: math delimiters, punctuation, "and"/"or",
# \quad, line breaks, and the variable the next box gives a value to ("x = \boxed{2} or x = \boxed{-3}").
BETWEEN_BOXES = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;.&]|\\\\|\b(?:and|or)\b|\\(?:text|textrm|mbox)\{\s*+(?:and|or|,)?\s*+\}"
    r"|(?:[a-zA-Z]|\\[a-zA-Z]++)(?:_\{?\w+\}?)?\s*+="
    r"|\\q?quad\b)*+"
)

def unwrap(text: str) -> str:
    """The answer inside what wraps it in other harnesses' files and in golds from hub datasets: "$1/3$",
    "\\(\\boxed{C}\\)", "$x = 5$." and "\\boxed{1}, \\boxed{2}" (several boxes: their contents, joined)."""
    s = text.strip()
    while True:
        before = s
        s = _unbox(strip_delimiters(s.rstrip(" .。")))
        if s == before:
            return s


def _unbox(s: str) -> str:
    """The contents of the boxes that are all of `s` but for connectives; `s` itself otherwise."""
    if "box" not in s:
        return s
    top: list = []
    for box in boxes(s):
        if box.inner is None:
            return s
        if not top or box.start >= top[-1].end:  # a box inside a box is unwrapped on the next round
            top.append(box)
    if not top:
        return s
    gaps = zip([0] + [box.end for box in top], [box.start for box in top] + [len(s)], strict=True)
    if not BETWEEN_BOXES.fullmatch("".join(s[start:end] for start, end in gaps)):
        return s
    contents = (box.content(s) for box in top)
    return ", ".join(dict.fromkeys(content for content in contents if content))


def _drop_or_unwrap_text(s: str) -> str:
    """\\text{ cm} after a value is a unit and goes; \\text{Evelyn} alone is the answer and is unwrapped."""
    out, pos = [], 0
    for match in _TEXT_MACRO.finditer(s):
        before = s[pos : match.start()]
        out.append(before)
        macro, content = match.group(1), match.group(2).strip()
        rest = s[match.end() :]
        has_value_before = bool("".join(out).strip())
        if content.lower() in {"or", "and", ","}:
            out.append(",")  # "2 \text{ or } 3" lists two answers
        elif has_value_before and macro in _UNIT_MACROS and _UNIT_TEXT.fullmatch(content):
            exponent = _TEXT_EXPONENT.match(rest)  # \text{ cm}^2 : the square belongs to the unit
            if exponent:
                pos = match.end() + exponent.end()
                continue
        else:
            out.append(content)
        pos = match.end()
    out.append(s[pos:])
    return "".join(out)


def _drop_thousands_separators(s: str) -> str:
    # "(1,000, 2)" is ambiguous; inside brackets a comma separates coordinates, so only bare numbers qualify.
    if s[:1] in "([" or s.startswith("\\{"):
        return s
    return _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), s)


def clean(text: str, *, keep_equation: bool = False) -> str:
    """The answer without presentation: delimiters, units, spacing macros, "x =" prefixes, final period.

    `keep_equation` keeps an "y =" prefix, for comparing an equation with an equation.
    """
    s = unwrap(text)
    for pattern, repl in _REPLACEMENTS:
        s = pattern.sub(repl, s)
    s = _drop_or_unwrap_text(s)
    s = re.sub(r"\s+", " ", s).strip()
    s = unwrap(_TRAILING_WORDS.sub(r"\1", s))  # "\boxed{3} apples"
    s = re.sub(r" (?:and|or) ", ",", s)  # "2 or 3" lists two answers, like "2, 3"
    if not keep_equation and len(EQUALS.findall(s)) <= 1:  # "p = 5, q = 2" names two values: keep both
        s = _VARIABLE_PREFIX.sub("", s, count=1) or s
    # After the prefix: in "x \in (2,12) \cup (12,102)" the commas separate interval ends.
    s = _drop_thousands_separators(s)
    s = re.sub(r"[.,;\s]+$", "", s)  # not "!": "5!" is a factorial
    # The mixed number "2 1/2" in LaTeX's spelling, before dropping spaces could make it 21/2.
    return re.sub(r"^([-+]?\d+) (\d+)/(\d+)$", r"\1\\frac{\2}{\3}", s)


def compact(s: str) -> str:
    """`clean`'s output without spaces, except where one ends a macro name: "\\pi r" must not become "\\pir"."""
    s = re.sub(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])", "\\1\x00", s)
    return re.sub(r"\s+", "", s).replace("\x00", " ")


def normalize(text: str) -> str:
    """Canonical string form of an answer: equal strings mean equal answers."""
    return compact(clean(text))


_DECIMAL = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_SLASH = re.compile(r"([-+]?\d+)/(\d+)")
_FRAC = re.compile(r"([-+]?)\\frac\{([-+]?(?:\d+(?:\.\d+)?|\.\d+))\}\{([-+]?(?:\d+(?:\.\d+)?|\.\d+))\}")
_MIXED = re.compile(r"([-+]?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}")


def parse_number(cleaned: str) -> Fraction | None:
    """The exact value of a plain number (12, -0.5, 3/4, \\frac{3}{4}, 2\\frac{1}{2}), or None otherwise.

    Takes `clean`'s output, which spells the mixed number "2 1/2" as 2\\frac{1}{2}.
    """
    mixed = _MIXED.fullmatch(cleaned)
    if mixed:
        sign, whole = mixed.group(1), int(mixed.group(2))
        num, den = int(mixed.group(3)), int(mixed.group(4))
        # Only a proper fraction reads as a mixed number; "2 \frac{5}{3}" is left to the symbolic test.
        if 0 < num < den:
            value = whole + Fraction(num, den)
            return -value if sign == "-" else value
        return None
    s = compact(cleaned)
    if _DECIMAL.fullmatch(s):
        return Fraction(s)
    slash = _SLASH.fullmatch(s)
    if slash and int(slash.group(2)) != 0:
        return Fraction(int(slash.group(1)), int(slash.group(2)))
    frac = _FRAC.fullmatch(s)
    if frac and Fraction(frac.group(3)) != 0:
        value = Fraction(frac.group(2)) / Fraction(frac.group(3))
        return -value if frac.group(1) == "-" else value
    return None
