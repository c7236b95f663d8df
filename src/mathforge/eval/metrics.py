"""Metrics over sample rows: accuracy, the no-answer share, maj@k, pass@k, and subset breakdowns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

Equivalent = Callable[[str, str], bool]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k), as a stable product."""
    if not 0 < k <= n:
        raise ValueError(f"pass@k needs 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    result = 1.0
    for i in range(n - c + 1, n + 1):
        result *= 1.0 - k / i
    return 1.0 - result


def majority_correct(preds: Sequence[str | None], correct: Sequence[bool], equivalent: Equivalent) -> bool:
    """Whether the most common answer among `preds` is correct.

    Answers are grouped by equivalence (so "0.5" and "\\frac{1}{2}" vote together); "no answer" never votes;
    ties go to the answer seen first, as in the Minerva maj@k protocol.
    """
    groups: list[tuple[str, int, bool]] = []  # (representative, votes, verdict of the representative)
    for pred, ok in zip(preds, correct, strict=True):
        if pred is None:
            continue
        for index, (representative, votes, verdict) in enumerate(groups):
            if pred == representative or equivalent(pred, representative):
                groups[index] = (representative, votes + 1, verdict)
                break
        else:
            groups.append((pred, 1, ok))
    if not groups:
        return False
    best_votes = max(votes for _, votes, _ in groups)
    return next(verdict for _, votes, verdict in groups if votes == best_votes)


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks = [k for k in (2**p for p in range(16)) if k <= n]
    return ks if ks[-1] == n else [*ks, n]


def aggregate(rows: Iterable[Mapping[str, Any]], ks: Sequence[int], equivalent: Equivalent) -> dict[str, Any]:
    """Metrics of a finished (or partial) run. Percentages are in 0-100.

    `acc` is the mean over items of the share of correct completions (with n = 1: plain accuracy; with n > 1 it
    equals pass@1).
    """
    rows = list(rows)
    if not rows:
        return {"n": 0, "acc": 0.0, "no_answer": 0.0}
    n_samples = min(len(row["correct"]) for row in rows)
    metrics: dict[str, Any] = {
        "n": len(rows),
        "acc": _percent(_share(row["correct"]) for row in rows),
        "no_answer": _percent(_share([p is None for p in row["preds"]]) for row in rows),
        "samples_per_item": n_samples,
    }
    if n_samples > 1:
        for k in (k for k in ks if k <= n_samples):
            metrics[f"pass@{k}"] = _percent(pass_at_k(len(r["correct"]), sum(r["correct"]), k) for r in rows)
            metrics[f"maj@{k}"] = _percent(
                float(majority_correct(r["preds"][:k], r["correct"][:k], equivalent)) for r in rows
            )
    subsets = _by_subset(rows)
    if subsets:
        metrics["subsets"] = subsets
    return metrics


def _by_subset(rows: list[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    grouped: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        for name, value in (row.get("subsets") or {}).items():
            grouped[name][str(value)].append(_share(row["correct"]))
    return {
        name: {value: {"n": len(scores), "acc": _percent(scores)} for value, scores in sorted(values.items())}
        for name, values in grouped.items()
    }


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _percent(values: Iterable[float]) -> float:
    values = list(values)
    return round(100.0 * sum(values) / len(values), 4) if values else 0.0
