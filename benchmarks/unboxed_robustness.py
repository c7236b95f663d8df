"""How mathforge's grading holds up when completions state their answer without \\boxed{} or "Final Answer:".

    .venv/bin/python benchmarks/unboxed_robustness.py [--file FILE] [--bench math500] [--data-dir DIR]
        [--workers 1] [--verbose] [--json] [--save-rewritten PATH]

FILE defaults to Rho-Math-1B's released MATH-500 chain-of-thought outputs in ../shared (math-evaluation-harness
rows: `idx`, `question`, `gt`, `code` with one completion, `pred`, `score`). Every completion is rewritten:

- every Minerva "Final Answer: The final answer is ... I hope it is correct." line is dropped (the whole line);
- then every \\boxed{X} (and \\fbox{X}, and the "\\\\boxed{X}" some completions write with doubled backslashes)
  becomes X, delimited as math: `$X$` where the box stands in text, plain X where it already stands in math
  (`$\\boxed{5}$` -> `$5$`, `\\[\\boxed{5}\\]` -> `\\[5\\]`, inside `\\begin{align*}`, `$$...$$`, `\\(...\\)`), so
  that no `$$5$$`-style nesting is created. The argument is found by brace matching (nested braces and `\\{`
  escapes respected), boxes inside a box are unwrapped too, and a box the completion never closes is left as it
  is (counted as `unterminated`).

Math mode is tracked through the completion with TeX's rules (`$`, `$$`, `\\[`, `\\(`, math environments;
`\\$` is a dollar sign, `\\\\$` a line break and a delimiter) plus two: a blank line ends any math, since TeX
allows none there and a stray `$` in a model's text must not flip the rest of it; and a box that reads as text
but touches a `$` goes in bare, so that lost tracking never makes `$$9$`.

Both files, the original and the rewritten one (same file name, in a temporary directory, so it is read the
same way), are regraded with `mathforge.eval.regrade.regrade_file(path, bench, data_dir=DIR)` (golds from the
benchmark's data, matched by question). Reported: both accuracies and their difference (target: the rewritten
accuracy within 1 point of the original's), how many completions the rewrite changed, how many had a box and a
Final Answer line, where the boxes stood, which extraction rule found each answer, and the completions whose
verdict flipped (original correct -> rewritten wrong, and the reverse) with both extracted answers (listed with
--verbose, and always in --json). Nothing is written into the repository (unless --save-rewritten
says so).

Second, MATH-500's own reference solutions (`DIR/math500/test.jsonl`, `solution`) are rewritten the same way,
and the share whose gold answer extraction and grading read back is reported, with and without the boxes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathforge.eval.regrade import regrade_file
from mathforge.grading.latex import brace_partners

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_FILE = (
    SHARED / "data/published/rho-1/rho-math-1b-v0.1/minerva_math/test_cot_-1_seed0_t0.0_s0_e-1.jsonl"
)
DEFAULT_DATA_DIR = SHARED / "data/benchmarks"
TARGET_POINTS = 1.0

# --- the rewrite

# A Minerva statement line, whole ("Final Answer: The final answer is $5$. I hope it is correct."), and the
# same statement left at the end of a line of text.
_FINAL_ANSWER_LINE = re.compile(r"^[ \t]*Final Answer:[^\n]*(?:\n|\Z)", re.MULTILINE)
_FINAL_ANSWER_TAIL = re.compile(r"[ \t]*Final Answer:[ \t]*The final answer is[^\n]*")

_MATH_ENVIRONMENTS = frozenset(
    {"equation", "align", "alignat", "flalign", "gather", "multline", "eqnarray", "displaymath", "math"}
)
# The rewrite tracks math mode with TeX's own rules, not with mathforge.grading.latex.math_spans: that scanner
# is part of what is measured (its Pandoc and prose heuristics decide what the grader reads), and input built
# with it would agree with the grader by construction.
# What changes math mode, in the order tried at one position. TeX's rules, except that a run of backslashes
# before boxed/begin/end counts as one: some completions double every backslash ("$\\boxed{\\frac{1}{3}}$"), and
# mathforge reads "\\boxed{" as a box. Before "$", "[", "(" TeX's rule holds: "\$" is a dollar sign, "\\$" a
# line break and then a math delimiter (the reading that balances the "$c\\cdot\\$2500=k" of such completions).
_TOKEN = re.compile(
    r"(?P<blank>\n[ \t]*+\n)"
    r"|(?P<box>\\++(?:boxed|fbox)(?![a-zA-Z]))"
    r"|\\++(?P<env>begin|end)[ \t]*+\{(?P<name>[a-zA-Z]++)\*?\}"
    r"|\\(?P<delim>[\[\]()$])"  # "\$": an escaped dollar, no delimiter
    r"|(?P<dollars>\${1,2})"
    r"|\\\\"  # a line break (or an escaped backslash): its second backslash escapes nothing
)
_SPACES = re.compile(r"[ \t]*+")
_SPACED_ARGUMENT = re.compile(r"[ \t]++([^\s$]++)")  # "\boxed 5"
_ESCAPE_OR_DOLLAR = re.compile(r"\\[\s\S]|\$")  # a dollar that a backslash escapes is part of its escape
_CLOSERS = {"$": "$", "$$": "$$", "[": "]", "(": ")"}


@dataclass
class Rewrite:
    text: str
    final_answer_lines: int = 0
    # Where each unwrapped box stood: "text", "$", "$$", "[", "(", "env:align", "box" (inside a box), or
    # "text next to $".
    boxes: list[str] = field(default_factory=list)
    doubled_backslash_boxes: int = 0
    unterminated_boxes: int = 0


def _delimiter_at(text: str, index: int) -> bool:
    """Whether text[index] is a "$" that no backslash escapes."""
    if not 0 <= index < len(text) or text[index] != "$":
        return False
    backslashes = 0
    while index - backslashes > 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 0


def _unbox(text: str, result: Rewrite, inside_box: bool = False) -> str:
    """`text` with every box replaced by its content, delimited as math where it stood in text."""
    out: list[str] = []
    copied = position = 0
    mode: str | None = "box" if inside_box else None  # None: text; otherwise the math being in
    partners = brace_partners(text)
    while (token := _TOKEN.search(text, position)) is not None:
        position = token.end()
        if token.group("blank") is not None:
            if not inside_box:
                mode = None
        elif token.group("box") is not None:
            brace = _SPACES.match(text, position).end()
            if text.startswith("{", brace):
                close = partners.get(brace)
                if close is None:
                    result.unterminated_boxes += 1
                    continue
                argument, end = text[brace + 1 : close], close + 1
            else:
                spaced = _SPACED_ARGUMENT.match(text, position)
                if spaced is None:
                    result.unterminated_boxes += 1
                    continue
                argument = spaced.group(1).rstrip(".")  # "\boxed 5." : the period ends the sentence
                end = spaced.start(1) + len(argument)
            # A box against a "$" in what reads as text sits at the edge of some math the tracking lost: its
            # content goes in bare, never as "$$9$" nesting.
            if mode is None and (_delimiter_at(text, token.start() - 1) or _delimiter_at(text, end)):
                mode = "text next to $"
            result.boxes.append(mode or "text")
            if token.group("box").startswith("\\\\"):
                result.doubled_backslash_boxes += 1
            inner = _unbox(argument, result, inside_box=True)
            if mode is not None:  # already math: the content alone
                replacement = _ESCAPE_OR_DOLLAR.sub(lambda m: "" if m.group() == "$" else m.group(), inner)
            elif any(m.group() == "$" for m in _ESCAPE_OR_DOLLAR.finditer(inner)):
                # "\boxed{$5$}" in text: the content brings its own delimiters
                replacement = inner.strip()
            else:
                replacement = f"${inner.strip()}$"
            out.append(text[copied : token.start()])
            out.append(replacement)
            copied = position = end
            if mode == "text next to $":
                mode = None
        elif inside_box:
            continue
        elif token.group("env") is not None:
            name = token.group("name")
            if token.group("env") == "begin" and mode is None and name in _MATH_ENVIRONMENTS:
                mode = f"env:{name}"
            elif token.group("env") == "end" and mode == f"env:{name}":
                mode = None
        elif token.group("delim") is not None:
            delim = token.group("delim")
            if mode is None and delim in "[(":  # (an escaped "\\$" changes nothing)
                mode = delim
            elif mode in ("[", "(") and delim == _CLOSERS[mode]:
                mode = None
        elif token.group("dollars") is not None:
            dollars = token.group("dollars")
            if mode is None:
                mode = dollars
            elif mode == dollars:
                mode = None
            # "$$" inside "$...$" closes it and opens the next one; "$" inside "$$...$$" is malformed: ignored.
    out.append(text[copied:])
    return "".join(out)


def rewrite(text: str) -> Rewrite:
    """The completion with its Final Answer line(s) dropped and every box unwrapped (see the module doc)."""
    result = Rewrite(text)
    text, lines = _FINAL_ANSWER_LINE.subn("", text)
    text, tails = _FINAL_ANSWER_TAIL.subn("", text)
    result.final_answer_lines = lines + tails
    result.text = _unbox(text, result)
    return result


_CONTEXT_NAMES = {
    "text": "text",
    "$": "$...$",
    "$$": "$$...$$",
    "[": "\\[...\\]",
    "(": "\\(...\\)",
    "box": "a box",
    "text next to $": "text next to a $ (left bare)",
}


def context_name(mode: str) -> str:
    return _CONTEXT_NAMES.get(mode) or "\\begin{" + mode.removeprefix("env:") + "}"


# --- the measurement


def rewrite_file(source: Path, target: Path) -> list[list[Rewrite]]:
    """Write `source`'s rows to `target` with every completion (`code`) rewritten; the rewrites, per row."""
    rewrites = []
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as sink:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            done = [rewrite(text) for text in row["code"]]
            rewrites.append(done)
            sink.write(json.dumps({**row, "code": [r.text for r in done]}, ensure_ascii=False) + "\n")
    return rewrites


def flip(original: dict[str, Any], rewritten: dict[str, Any], number: int) -> dict[str, Any]:
    return {
        "id": original["id"],
        "bench_id": original.get("bench_id"),
        "completion": number,
        "gold": original["gold"],
        "original_pred": original["preds"][number],
        "original_rule": original["extract_rules"][number],
        "rewritten_pred": rewritten["preds"][number],
        "rewritten_rule": rewritten["extract_rules"][number],
    }


def measure(path: Path, bench: str, data_dir: Path, workers: int, save: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="unboxed-") as folder:
        rewritten_path = Path(folder) / path.name  # same name: read as the same harness format
        rewrites = rewrite_file(path, rewritten_path)
        original = regrade_file(path, bench, data_dir=data_dir, workers=workers)
        rewritten = regrade_file(rewritten_path, bench, data_dir=data_dir, workers=workers)
        if save is not None:
            shutil.copyfile(rewritten_path, save)
    flat = [r for row in rewrites for r in row]
    texts = [text for row in original.rows for text in row["completions"]]
    lost: list[dict[str, Any]] = []
    gained: list[dict[str, Any]] = []
    rules: dict[str, Counter[str]] = {"original": Counter(), "rewritten": Counter()}
    for before, after in zip(original.rows, rewritten.rows, strict=True):
        assert before["id"] == after["id"]
        for number, (was, now) in enumerate(zip(before["correct"], after["correct"], strict=True)):
            rules["original"][before["extract_rules"][number]] += 1
            rules["rewritten"][after["extract_rules"][number]] += 1
            if was and not now:
                lost.append(flip(before, after, number))
            elif now and not was:
                gained.append(flip(before, after, number))
    acc = {"original": original.metrics["acc"], "rewritten": rewritten.metrics["acc"]}
    difference = round(acc["rewritten"] - acc["original"], 4)
    contexts = Counter(context_name(mode) for r in flat for mode in r.boxes)
    return {
        "file": str(path.relative_to(REPO.parent) if path.is_relative_to(REPO.parent) else path),
        "benchmark": original.benchmark,
        "format": original.format,
        "n_rows": len(original.rows),
        "n_completions": len(flat),
        "acc": acc,
        "difference_points": difference,
        "target_points": TARGET_POINTS,
        "target_met": abs(difference) <= TARGET_POINTS,
        "source_acc": original.metrics.get("source_acc"),  # the file's own `score`, for reference
        "changed": sum(r.text != text for r, text in zip(flat, texts, strict=True)),
        "with_box": sum(bool(r.boxes) for r in flat),
        "with_several_boxes": sum(len(r.boxes) > 1 for r in flat),
        "with_final_answer_line": sum(r.final_answer_lines > 0 for r in flat),
        "with_box_and_final_answer": sum(bool(r.boxes) and r.final_answer_lines > 0 for r in flat),
        "with_neither": sum(
            not r.boxes and not r.final_answer_lines and not r.unterminated_boxes for r in flat
        ),
        "boxes_unwrapped": sum(len(r.boxes) for r in flat),
        "box_contexts": dict(contexts.most_common()),
        "doubled_backslash_boxes": sum(r.doubled_backslash_boxes for r in flat),
        "unterminated_boxes": sum(r.unterminated_boxes for r in flat),
        "extract_rules": {side: dict(counter.most_common()) for side, counter in rules.items()},
        "flips": {"correct_to_wrong": len(lost), "wrong_to_correct": len(gained)},
        "correct_to_wrong": lost,
        "wrong_to_correct": gained,
        "regrade_seconds": {
            "original": original.metrics["seconds"],
            "rewritten": rewritten.metrics["seconds"],
        },
    }


# --- the report


def _short(value: str | None, width: int = 40) -> str:
    text = "(none)" if value is None else " ".join(value.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(report: dict[str, Any], verbose: bool) -> None:
    acc = report["acc"]
    print(
        f"{report['file']} ({report['benchmark']}, {report['format']}, {report['n_completions']} completions)"
    )
    print()
    print("| file | acc | extracted by |")
    print("|---|---:|---|")
    for side in ("original", "rewritten"):
        rules = ", ".join(f"{rule} {count}" for rule, count in report["extract_rules"][side].items())
        print(f"| {side} | {acc[side]:.1f} | {rules} |")
    verdict = "met" if report["target_met"] else "NOT met"
    print(
        f"| **difference** | **{report['difference_points']:+.1f}** | target: within "
        f"{report['target_points']:g} point ({verdict}) |"
    )
    print()
    print(
        f"rewrite: {report['changed']} completions changed; {report['with_box']} had a box "
        f"({report['with_several_boxes']} several), {report['with_final_answer_line']} a Final Answer line "
        f"({report['with_box_and_final_answer']} both, {report['with_neither']} neither); "
        f"{report['boxes_unwrapped']} boxes unwrapped, {report['doubled_backslash_boxes']} written "
        f"\\\\boxed, {report['unterminated_boxes']} unterminated (left)"
    )
    contexts = ", ".join(f"{context} {count}" for context, count in report["box_contexts"].items())
    print(f"boxes stood in: {contexts}")
    print(
        f"flips: {report['flips']['correct_to_wrong']} correct -> wrong, "
        f"{report['flips']['wrong_to_correct']} wrong -> correct"
    )
    for name in ("correct_to_wrong", "wrong_to_correct"):
        if report[name]:
            print(f"  {name}: ids {', '.join(item['id'] for item in report[name])}")
    if verbose:
        for name in ("correct_to_wrong", "wrong_to_correct"):
            if not report[name]:
                continue
            print()
            print(f"{name.replace('_', ' ')}:")
            print("| id | gold | original pred (rule) | rewritten pred (rule) |")
            print("|---|---|---|---|")
            for item in report[name]:
                print(
                    f"| {item['id']} | {_short(item['gold'], 24)} | {_short(item['original_pred'])} "
                    f"({item['original_rule']}) | {_short(item['rewritten_pred'])} ({item['rewritten_rule']}) |"
                )


def measure_reference_solutions(data_dir: Path) -> dict[str, Any]:
    """MATH-500's own reference solutions, rewritten the same way: how often the gold comes back from each."""
    from mathforge.grading import asks_for_several, extract_answer, grade

    counts = {"n": 0, "original": 0, "rewritten": 0}
    for line in (data_dir / "math500" / "test.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        several = asks_for_several(row["problem"])
        counts["n"] += 1
        for side, text in (("original", row["solution"]), ("rewritten", rewrite(row["solution"]).text)):
            answer = extract_answer(text, several=several).answer
            counts[side] += grade(answer, row["answer"], "expression").correct
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help="a math-evaluation-harness output file"
    )
    parser.add_argument("--bench", default="math500")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="benchmark data (the golds)")
    parser.add_argument("--workers", type=int, default=1, help="grading processes, passed to regrade_file")
    parser.add_argument("--verbose", action="store_true", help="list every flipped completion")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON instead")
    parser.add_argument("--save-rewritten", type=Path, help="also copy the rewritten file here (for a look)")
    args = parser.parse_args()
    report = measure(args.file.resolve(), args.bench, args.data_dir, args.workers, args.save_rewritten)
    references = measure_reference_solutions(args.data_dir)
    report["reference_solutions"] = references
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_table(report, args.verbose)
        n = references["n"]
        print(
            f"\nMATH-500 reference solutions, the gold read back: {references['original']}/{n} with their boxes, "
            f"{references['rewritten']}/{n} rewritten the same way"
        )


if __name__ == "__main__":
    main()
