"""`mathforge compare` (and `train --eval-bench`): two models on the same items, with a paired significance test
per benchmark.

The cards this tool serves compare models by differences of one to a few points on 500-1,319 items: within that
range a difference can be noise. Both tests here are paired, because the two models answered the same items:

- McNemar's exact test on the per-item verdicts: only the discordant items count (b: right before and wrong
  after, c: wrong before and right after); under "no difference" each of them is a fair coin, so p is the
  two-sided binomial tail of min(b, c) in b + c flips;
- a paired bootstrap percentile interval of the accuracy difference: items (with both their verdicts) resampled
  with replacement.

McNemar needs one binary verdict per item and side. A greedy run has it (its one completion's); a run with
several samples per item is judged by its majority answer, as `maj@n` counts it (answers grouped by
equivalence, ties to the first seen), so the accuracies shown for such runs are maj@n, not the mean over
samples that metrics.json calls `acc`; the table's notes say so.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from mathforge.config import Options
from mathforge.errors import MathforgeError
from mathforge.io import read_jsonl, write_json_atomic, write_text_atomic

FORMATS = ("markdown", "csv")
# What may differ between the two runs of a benchmark besides the model: the item set (they are compared on the
# items both answered, and the table says how many were left out).
_MAY_DIFFER = ("items",)


class CompareOptions(Options):
    """The options of `mathforge compare` (the two run directories are its arguments)."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json", "fmt": "format"}
    choices: ClassVar = {"fmt": lambda: FORMATS}

    out: str | None = Field(
        None, description="Also write comparison.md and comparison.json into this directory"
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Significance level: significant when McNemar's p < alpha; the interval is (1 - alpha)",
    )
    resamples: int = Field(10_000, ge=100, description="Bootstrap resamples of the items")
    seed: int = Field(0, description="Seed of the bootstrap (the same seed gives the same interval)")
    fmt: str = Field("markdown", description="Table format: markdown or csv")
    json_output: bool = Field(False, description="Print the comparison as one JSON line instead of the table")


# --- the two tests ------------------------------------------------------------------------------------------


def mcnemar_exact(only_before: int, only_after: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: b (right only before) and c (right only
    after). 1.0 when no item changed: nothing speaks for a difference."""
    from scipy.stats import binomtest

    if only_before < 0 or only_after < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_before} and {only_after}")
    discordant = only_before + only_after
    if discordant == 0:
        return 1.0
    return float(binomtest(min(only_before, only_after), discordant, 0.5).pvalue)


def paired_bootstrap(
    before: Sequence[bool],
    after: Sequence[bool],
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of accuracy(after) - accuracy(before), in points, resampling items (pairs of
    verdicts) with replacement."""
    import numpy as np

    if len(before) != len(after) or not before:
        raise ValueError("paired_bootstrap needs two equally long, non-empty verdict lists")
    change = np.asarray(after, dtype=np.int64) - np.asarray(before, dtype=np.int64)  # +1, 0 or -1 per item
    n = len(change)
    gains, losses = np.count_nonzero(change == 1) / n, np.count_nonzero(change == -1) / n
    shares = [float(gains), float(losses), max(0.0, 1.0 - gains - losses)]
    # A resample's difference depends only on how many of its n draws are gains and how many losses, and those
    # counts are multinomial: drawing them is the item resampling itself, in O(resamples) memory instead of an
    # index matrix of resamples x n (1.3e7 entries for GSM8K, 5e7 for MATH).
    counts = np.random.default_rng(seed).multinomial(n, shares, size=resamples)
    differences = (counts[:, 0] - counts[:, 1]) * (100.0 / n)
    tail = (1.0 - confidence) / 2 * 100.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    return round(float(low), 4), round(float(high), 4)


# --- pairing the runs -----------------------------------------------------------------------------------


@dataclass
class _Side:
    """One argument of compare: its runs, one per benchmark, all of one model."""

    path: Path
    model: str
    runs: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def compare_runs(before: Path, after: Path, opts: CompareOptions) -> dict[str, Any]:
    """Pair the runs of each benchmark found under `before` and `after` (a run directory or any folder above
    runs), test each pair, and return the comparison; with `opts.out`, also write comparison.md / .json."""
    old, new = _side(Path(before)), _side(Path(after))
    shared = _in_registry_order(set(old.runs) & set(new.runs))
    if not shared:
        raise MathforgeError(
            f"no benchmark has runs in both {old.path} ({', '.join(old.runs)}) and {new.path} "
            f"({', '.join(new.runs)})"
        )
    rows = [_compare_pair(old.runs[name], new.runs[name], opts) for name in shared]
    result: dict[str, Any] = {
        "before": {"path": str(old.path), "model": old.model},
        "after": {"path": str(new.path), "model": new.model},
        "alpha": opts.alpha,
        "confidence": 1.0 - opts.alpha,
        "resamples": opts.resamples,
        "seed": opts.seed,
        "test": "McNemar's exact test (two-sided) on per-item verdicts; paired bootstrap percentile interval",
        "benchmarks": rows,
        "notes": [*old.notes, *new.notes, *_notes(rows, old, new)],
    }
    if opts.out:
        _write(result, Path(opts.out))
    return result


def _in_registry_order(names: set[str]) -> list[str]:
    """Benchmarks in registry order (report's column order), then unknown ones alphabetically."""
    from mathforge.benchmarks import REGISTRY

    known = list(REGISTRY)
    return sorted(names, key=lambda name: (known.index(name) if name in known else len(known), name))


def _side(path: Path) -> _Side:
    """The runs under one argument: one model's, one run per benchmark (the most recent of equal settings; runs
    of a benchmark with other settings are ambiguous, so an error)."""
    from mathforge.report.tables import find_runs

    runs = find_runs([path])
    models = sorted({run["model"] for run in runs})
    if len(models) > 1:
        raise MathforgeError(
            f"{path} holds runs of several models ({', '.join(models)}); give one model's runs on each side"
        )
    side = _Side(path, models[0], {})
    for run in sorted(runs, key=_finished, reverse=True):
        kept = side.runs.setdefault(run["benchmark"], run)
        if kept is run:
            continue
        if _settings(kept) != _settings(run):
            raise MathforgeError(
                f"{path} holds runs of {run['benchmark']} with other settings ({kept['path']}, {run['path']}); "
                "give one run directory for each side"
            )
        side.notes.append(
            f"{run['benchmark']}: kept the most recent run {kept['path']}, ignored {run['path']}"
        )
    return side


def _finished(run: dict[str, Any]) -> tuple[str, str]:
    # ISO timestamps in UTC sort as text; the path breaks ties so the choice does not depend on walk order.
    return str(run.get("finished_at") or ""), str(run["path"])


def _settings(run: dict[str, Any]) -> dict[str, Any]:
    """A run's settings (report's: prompt, its text, sampling, budget, extractor, judge, tool) but the items."""
    from mathforge.report.tables import run_settings

    return {key: value for key, value in run_settings(run).items() if key not in _MAY_DIFFER}


def _check_same_settings(before: dict[str, Any], after: dict[str, Any]) -> None:
    old, new = _settings(before), _settings(after)
    for key in old:
        if old[key] != new.get(key):
            raise MathforgeError(
                f"{before['benchmark']}: the runs differ in {key.replace('_', ' ')} ({_shown(old[key])} in "
                f"{before['path']}, {_shown(new.get(key))} in {after['path']}); compare runs with the same settings"
            )


def _shown(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


# --- one benchmark --------------------------------------------------------------------------------------


def _compare_pair(before: dict[str, Any], after: dict[str, Any], opts: CompareOptions) -> dict[str, Any]:
    _check_same_settings(before, after)
    (verdicts_before, rule), (verdicts_after, _) = _verdicts(before), _verdicts(after)
    ids = [item for item in verdicts_before if item in verdicts_after]
    if not ids:
        raise MathforgeError(
            f"{before['benchmark']}: {before['path']} and {after['path']} share no item id; nothing to compare"
        )
    old = [verdicts_before[item] for item in ids]
    new = [verdicts_after[item] for item in ids]
    only_before = sum(o and not n for o, n in zip(old, new, strict=True))
    only_after = sum(n and not o for o, n in zip(old, new, strict=True))
    p_value = mcnemar_exact(only_before, only_after)
    low, high = paired_bootstrap(old, new, opts.resamples, 1.0 - opts.alpha, opts.seed)
    acc_before, acc_after = 100.0 * sum(old) / len(ids), 100.0 * sum(new) / len(ids)
    return {
        "benchmark": before["benchmark"],
        "prompt": before.get("prompt"),
        "verdict": rule,
        "n": len(ids),
        "only_in_before": len(verdicts_before) - len(ids),
        "only_in_after": len(verdicts_after) - len(ids),
        "before": round(acc_before, 4),
        "after": round(acc_after, 4),
        "difference": round(acc_after - acc_before, 4),
        "only_before": only_before,
        "only_after": only_after,
        "p_value": p_value,
        "ci": [low, high],
        "significant": p_value < opts.alpha,
        "before_path": str(before["path"]),
        "after_path": str(after["path"]),
    }


def _verdicts(run: dict[str, Any]) -> tuple[dict[str, bool], str]:
    """Per item id its one verdict, and how it was decided: "greedy" (one completion: its verdict) or "maj@N"
    (N samples: the majority answer's verdict, as maj@N counts it; McNemar needs a yes or no per item)."""
    samples = Path(run["path"]) / "samples.jsonl"
    if not samples.exists():
        raise MathforgeError(f"{run['path']}: no samples.jsonl (the per-item verdicts are needed)")
    majority = _majority_vote(run)
    verdicts: dict[str, bool] = {}
    largest = 1
    for line, row in read_jsonl(samples):
        correct = row.get("correct")
        if not isinstance(correct, list) or not correct or "id" not in row:
            raise MathforgeError(f"{samples}:{line}: a sample row without 'id' or verdicts ('correct')")
        largest = max(largest, len(correct))
        if len(correct) == 1:
            verdicts[str(row["id"])] = bool(correct[0])
            continue
        preds = row.get("preds")
        if not isinstance(preds, list) or len(preds) != len(correct):
            raise MathforgeError(
                f"{samples}:{line}: {len(correct)} verdicts but no answer ('preds') for each"
            )
        verdicts[str(row["id"])] = majority(preds, [bool(ok) for ok in correct])
    return verdicts, "greedy" if largest == 1 else f"maj@{largest}"


def _majority_vote(run: dict[str, Any]) -> Callable[[list[Any], list[bool]], bool]:
    """eval's maj@k vote with eval's equivalence of answers (the benchmark's answer type, the run's timeout);
    the benchmark is looked up only when a row has several samples."""
    from mathforge.eval.metrics import majority_correct
    from mathforge.grading import answers_equivalent

    timeout = (run.get("config") or {}).get("grade_timeout")

    def vote(preds: list[Any], correct: list[bool]) -> bool:
        from mathforge.benchmarks import get_spec

        answer_type = get_spec(run["benchmark"]).answer_type
        return majority_correct(
            preds, correct, lambda a, b: answers_equivalent(a, b, answer_type, timeout=timeout)
        )

    return vote


def _notes(rows: list[dict[str, Any]], old: _Side, new: _Side) -> list[str]:
    """What the table cannot show in its cells: items or benchmarks left out, how multi-sample runs were judged."""
    notes: list[str] = []
    for row in rows:
        if row["only_in_before"] or row["only_in_after"]:
            notes.append(
                f"{row['benchmark']}: compared on the {row['n']} items both runs answered (left out: "
                f"{row['only_in_before']} answered only before, {row['only_in_after']} only after)"
            )
        excludes_zero = row["ci"][0] > 0 or row["ci"][1] < 0
        if excludes_zero != row["significant"]:
            # Seen on small samples: the percentile interval is too narrow there, the exact test is not.
            notes.append(
                f"{row['benchmark']}: the interval {'excludes' if excludes_zero else 'includes'} 0 but McNemar's "
                f"p is {_p_value(row['p_value'])}; 'Significant' follows the exact test (the bootstrap interval "
                "is approximate, and too narrow on few items)"
            )
        if row["verdict"] != "greedy":
            notes.append(
                f"{row['benchmark']}: several samples per item; each item's verdict is its majority answer's "
                f"({row['verdict']}), so before and after are {row['verdict']} accuracies"
            )
    one_sided = {
        "before": sorted(set(old.runs) - set(new.runs)),
        "after": sorted(set(new.runs) - set(old.runs)),
    }
    for side, names in one_sided.items():
        if names:
            notes.append(f"run only {side}, not compared: {', '.join(names)}")
    if len(rows) > 1:
        notes.append(
            "each benchmark is tested on its own: p-values are not pooled nor corrected for multiple tests"
        )
    return notes


# --- the table ------------------------------------------------------------------------------------------


def render_comparison(result: dict[str, Any], fmt: str = "markdown") -> str:
    """The before/after table in `report`'s look (markdown), or plain numbers (csv), from compare_runs' result."""
    if fmt == "markdown":
        return _markdown(result)
    if fmt == "csv":
        return _csv(result)
    raise MathforgeError(f"--format must be markdown or csv, got '{fmt}'")


def _level(result: dict[str, Any]) -> str:
    return f"{100 * (1 - result['alpha']):g}%"


def _markdown(result: dict[str, Any]) -> str:
    header = [
        "Benchmark",
        "n",
        "Before",
        "After",
        "Δ",
        f"{_level(result)} CI",
        "b / c",
        "McNemar p",
        "Significant",
    ]
    body = [
        [
            row["benchmark"],
            str(row["n"]),
            f"{row['before']:.1f}",
            f"{row['after']:.1f}",
            f"{row['difference']:+.1f}",
            f"[{row['ci'][0]:+.1f}, {row['ci'][1]:+.1f}]",
            f"{row['only_before']} / {row['only_after']}",
            _p_value(row["p_value"]),
            "yes" if row["significant"] else "no",
        ]
        for row in result["benchmarks"]
    ]
    lines = [
        f"Before: {result['before']['model']} ({result['before']['path']})",
        f"After: {result['after']['model']} ({result['after']['path']})",
        "",
        *_grid([header, *body]),
        "",
        "Notes:",
        f"- accuracy in % on the items both runs answered; Δ = after - before, in points; b / c: items right only "
        f"before / only after. McNemar's exact test (two-sided binomial on b and c) on the per-item verdicts; "
        f"significant: p < {result['alpha']:g}. The {_level(result)} interval is a paired bootstrap of Δ "
        f"({result['resamples']} resamples of the items, seed {result['seed']})",
        *(f"- {note}" for note in result["notes"]),
    ]
    return "\n".join(lines) + "\n"


def _grid(rows: list[list[str]]) -> list[str]:
    """Rows as a markdown table, `report`'s look: the first column left-aligned, numbers on the right."""
    rows = [[text.replace("|", "\\|") for text in row] for row in rows]
    widths = [max(3, *(len(row[i]) for row in rows)) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        cells = [
            row[0].ljust(widths[0]),
            *(text.rjust(w) for text, w in zip(row[1:], widths[1:], strict=True)),
        ]
        return "| " + " | ".join(cells) + " |"

    rule = "| :" + "-" * (widths[0] - 1) + " | " + " | ".join("-" * (w - 1) + ":" for w in widths[1:]) + " |"
    return [line(rows[0]), rule, *(line(row) for row in rows[1:])]


def _p_value(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


_CSV_COLUMNS = ("benchmark", "n", "before", "after", "difference", "only_before", "only_after", "p_value")


def _csv(result: dict[str, Any]) -> str:
    """Plain numbers, one row per benchmark, so that spreadsheets and pandas read it as is."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_CSV_COLUMNS, "ci_low", "ci_high", "significant", "verdict"])
    for row in result["benchmarks"]:
        writer.writerow([*(row[key] for key in _CSV_COLUMNS), *row["ci"], row["significant"], row["verdict"]])
    return buffer.getvalue()


def _write(result: dict[str, Any], out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "comparison.json", result)
        write_text_atomic(out / "comparison.md", render_comparison(result, "markdown"))
    except OSError as error:
        raise MathforgeError(f"cannot write the comparison into {out}: {error.strerror or error}") from None
