"""Fuzzy deduplication (`fuzzy_dedup`, MinHash-LSH) against a plain datasketch loop, in the same run.

    .venv/bin/python benchmarks/fuzzy_dedup.py [--rows 100000] [--planted 10000] [--workers 2]
        [--batch-rows 1000] [--sample 5000] [--baseline-rows N] [--shared PATH] [--json]

Rows: GSM8K's training questions (BENCHMARK_DATA/gsm8k_openai/train.jsonl, from --shared or MATHFORGE_SHARED,
as tests/conftest.py reads it) and `arith` training questions up to --rows, of which --planted are
near-duplicates of an earlier row, in five kinds taken in turn: every number changed, a name swapped,
punctuation changed, case changed, one word inserted. Each is placed at a random position after its original.

Timed, each from the raw texts to the verdicts:
- ours: the `fuzzy_dedup` stage at its defaults, in batches of --batch-rows, in this process (as `curate` and
  `mathforge dedup` run it by default; the ratios use this time), and again with a spawned pool of --workers
  processes (as `--workers` gives it; the pool's start is timed too) that sketch while this process looks up;
- datasketch (vectorised): the same algorithm with datasketch in place of rensa: `MinHash.bulk` with an
  xxhash hash function, `MinHashLSH` with our bands, the same exact checks (why rensa was chosen);
- baseline: the plain datasketch loop: per row `MinHash(num_perm)`, `update` per shingle, `lsh.query`, then
  `lsh.insert` when the query found nothing (indexing only those rows makes the baseline faster, not slower),
  over the same shingles (word bigrams, numbers masked). --baseline-rows times it on a prefix and says so.

Accuracy: on --sample rows drawn at random (in input order), the rows the stage drops against the rows an exact
reference drops: the same first-of-cluster rule with the exact Jaccard similarity of every pair's shingle sets.
Precision = shared drops / our drops, recall = shared drops / reference drops. The planted variants found on the
whole set are counted by kind.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from datasketch import LeanMinHash, MinHash, MinHashLSH
from scipy import sparse

from mathforge.benchmarks import arith
from mathforge.data.dedup import MinHashIndex, Shingling, shingles
from mathforge.data.stages import StageContext
from mathforge.data.stages.dedup import FuzzyDedup, FuzzyDedupOptions
from mathforge.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
KINDS = ("numbers", "name", "punctuation", "case", "inserted_word")
INSERTED = ("also", "then", "really", "exactly", "only", "still", "just", "now", "first", "later")
NAMES = ("Alice", "Bruno", "Carmen", "Dmitri", "Esther", "Farid", "Greta", "Hiro", "Ines", "Jonas")
# Capitalised words that start sentences rather than name people.
_NOT_NAMES = set(
    [
        "A",
        "An",
        "And",
        "After",
        "All",
        "At",
        "Before",
        "But",
        "By",
        "Each",
        "Every",
        "For",
        "From",
        "He",
        "Her",
        "His",
        "How",
        "If",
        "In",
        "It",
        "Its",
        "Last",
        "Next",
        "On",
        "One",
        "She",
        "So",
        "Some",
        "That",
        "The",
        "Their",
        "Then",
        "There",
        "These",
        "They",
        "This",
        "To",
        "Two",
        "Three",
        "What",
        "When",
        "Where",
        "Which",
        "While",
        "Who",
        "Why",
        "With",
        "You",
        "Your",
    ]
)
_NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")
_NUMBER = re.compile(r"\d+")


# --- the rows ---------------------------------------------------------------------------------------------


def base_questions(shared: Path, count: int) -> list[str]:
    gsm8k = [
        row["question"]
        for _, row in read_jsonl(shared / "data" / "benchmarks" / "gsm8k_openai" / "train.jsonl")
    ]
    questions = gsm8k[:count]
    questions += [row["question"] for row in arith.generate(count - len(questions), seed=0, split="train")]
    return questions


def variant(question: str, kind: str, rng: random.Random) -> str | None:
    """`question` changed in one way, or None when it has nothing of that kind (no number, no name)."""
    if kind == "numbers":
        if not _NUMBER.search(question):
            return None
        return _NUMBER.sub(lambda m: str(int(m.group()) + rng.randint(1, 9)), question)
    if kind == "name":
        names = [name for name in _NAME.findall(question) if name not in _NOT_NAMES]
        if not names:
            return None
        return re.sub(rf"\b{names[0]}\b", rng.choice([n for n in NAMES if n != names[0]]), question)
    if kind == "punctuation":
        return question.replace(",", "").replace("?", ".").replace(". ", "; ", 1)
    if kind == "case":
        return question.upper() if rng.random() < 0.5 else question.lower()
    words = question.split()
    at = rng.randrange(1, len(words))
    return " ".join([*words[:at], rng.choice(INSERTED), *words[at:]])


def planted_rows(bases: list[str], planted: int, seed: int) -> tuple[list[str], dict[int, tuple[int, str]]]:
    """The rows in input order, and each planted row's index -> (its original's index, its kind)."""
    rng = random.Random(seed)
    keyed: list[tuple[float, str, int, str | None]] = [(i, text, i, None) for i, text in enumerate(bases)]
    made = 0
    for origin in rng.sample(range(len(bases)), len(bases)):
        if made == planted:
            break
        kind = KINDS[made % len(KINDS)]
        text = variant(bases[origin], kind, rng)
        if text is not None:
            keyed.append((rng.uniform(origin + 0.5, len(bases)), text, origin, kind))
            made += 1
    keyed.sort(key=lambda entry: entry[0])
    position = {entry[2]: index for index, entry in enumerate(keyed) if entry[3] is None}
    truth = {index: (position[origin], kind) for index, (_, _, origin, kind) in enumerate(keyed) if kind}
    return [entry[1] for entry in keyed], truth


# --- the three ways -----------------------------------------------------------------------------------------


def run_ours(texts: list[str], workers: int, batch_rows: int) -> tuple[list[Any], float]:
    """The stage's verdicts (index 0 is line 1) and the seconds they took, pool start included."""
    started = time.perf_counter()
    # Spawned, as curate's pool is: a forked child of a process whose rensa threads have run can hang.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn) if workers > 1 else _no_pool() as pool:
        stage = FuzzyDedup(FuzzyDedupOptions(), StageContext(workers=workers, pool=pool))
        stage.setup()
        verdicts = []
        rows = [{"question": text} for text in texts]
        for start in range(0, len(rows), batch_rows):
            lines = list(range(start + 1, min(start + batch_rows, len(rows)) + 1))
            verdicts += stage.check(rows[start : start + batch_rows], lines)
        stage.close()
    return verdicts, time.perf_counter() - started


class _no_pool:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def run_datasketch_vectorised(texts: list[str], batch_rows: int) -> tuple[int, float]:
    """Our algorithm with datasketch's MinHash and LSH: (rows dropped, seconds)."""
    started = time.perf_counter()
    options = FuzzyDedupOptions()
    index = MinHashIndex(0.8, num_perm=options.num_perm)  # only for its bands and rows
    lsh = MinHashLSH(threshold=0.8, num_perm=index.num_perm, params=(index.bands, index.rows))
    kept: list[set[int]] = []
    dropped = 0
    for start in range(0, len(texts), batch_rows):
        sets = [shingles(text, options.shingling()) for text in texts[start : start + batch_rows]]
        encoded = [[s.encode() for s in row] for row in sets]
        sketches = MinHash.bulk(encoded, num_perm=index.num_perm, hashfunc=xxhash.xxh32_intdigest)
        for row, sketch in zip(encoded, sketches, strict=True):
            lean = LeanMinHash(sketch)
            mine = {xxhash.xxh3_64_intdigest(s) for s in row}
            if any(len(mine & kept[key]) >= 0.8 * len(mine | kept[key]) for key in lsh.query(lean)):
                dropped += 1
                continue
            lsh.insert(len(kept), lean)
            kept.append(mine)
    return dropped, time.perf_counter() - started


def run_baseline(texts: list[str], num_perm: int) -> tuple[int, float]:
    """The plain datasketch loop: (rows dropped, seconds)."""
    started = time.perf_counter()
    shingling = FuzzyDedupOptions().shingling()
    lsh = MinHashLSH(threshold=0.8, num_perm=num_perm)
    dropped = 0
    for index, text in enumerate(texts):
        sketch = MinHash(num_perm=num_perm)
        for shingle in shingles(text, shingling):
            sketch.update(shingle.encode())
        if lsh.query(sketch):
            dropped += 1
        else:
            lsh.insert(index, sketch)
    return dropped, time.perf_counter() - started


# --- accuracy -----------------------------------------------------------------------------------------------


def reference_drops(texts: list[str], threshold: float) -> set[int]:
    """The rows (indices) that the first-of-cluster rule drops with exact pairwise Jaccard similarity."""
    shingling = FuzzyDedupOptions().shingling()
    similarity = pair_similarities([set(shingles(text, shingling)) for text in texts])
    kept = np.zeros(len(texts), dtype=bool)
    dropped = set()
    for row in range(len(texts)):
        if np.any(similarity[row, :row][kept[:row]] >= threshold):
            dropped.add(row)
        else:
            kept[row] = True
    return dropped


def accuracy(texts: list[str], sample: int, seed: int, batch_rows: int) -> dict[str, Any]:
    chosen = sorted(random.Random(seed).sample(range(len(texts)), min(sample, len(texts))))
    subset = [texts[i] for i in chosen]
    verdicts, _ = run_ours(subset, 1, batch_rows)
    ours = {i for i, verdict in enumerate(verdicts) if verdict is not None}
    reference = reference_drops(subset, 0.8)
    shared = len(ours & reference)
    return {
        "rows": len(subset),
        "reference_drops": len(reference),
        "our_drops": len(ours),
        "precision": round(shared / len(ours), 4) if ours else 1.0,
        "recall": round(shared / len(reference), 4) if reference else 1.0,
    }


def planted_found(verdicts: list[Any], truth: dict[int, tuple[int, str]]) -> dict[str, dict[str, int]]:
    """Per kind: planted rows whose original was kept, and those dropped as its duplicates; planted rows whose
    original was itself dropped (a duplicate of an earlier row), and those dropped too. The second pair is
    lower by design: such a row is compared with the kept row its original duplicates, not with the original."""
    found: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for index, (origin, kind) in truth.items():
        verdict = verdicts[index]
        if verdicts[origin] is None:
            found[kind]["original_kept"] += 1
            found[kind]["dropped_as_its_duplicate"] += (
                verdict is not None and verdict.info["duplicate_of"] == origin + 1
            )
        else:
            found[kind]["original_dropped"] += 1
            found[kind]["dropped_too"] += verdict is not None
    return {kind: dict(counts) for kind, counts in found.items()}


# --- the shingling defaults ----------------------------------------------------------------------------------

SHINGLINGS = {
    "word 1-grams": Shingling("word", 1),
    "word 2-grams (default)": Shingling("word", 2),
    "word 3-grams": Shingling("word", 3),
    "char 5-grams": Shingling("char", 5),
    "word 2-grams, numbers kept": Shingling("word", 2, mask_numbers=False),
}


def shingling_report(shared: Path, threshold: float = 0.8) -> dict[str, Any]:
    """Per way of shingling: how many planted variants of the first 2,000 GSM8K training questions reach the
    threshold against their original, and how many pairs of distinct training questions do (all 27.9 million
    pairs, exactly, by a sparse product)."""
    questions = base_questions(shared, 7473)
    report = {}
    for label, shingling in SHINGLINGS.items():
        sets = [set(shingles(q, shingling)) for q in questions]
        rng = random.Random(0)
        found: dict[str, list[int]] = {kind: [0, 0] for kind in KINDS}
        for question, original in zip(questions[:2000], sets, strict=False):
            for kind in KINDS:
                text = variant(question, kind, rng)
                if text is not None:
                    other = set(shingles(text, shingling))
                    found[kind][0] += len(original & other) / len(original | other) >= threshold
                    found[kind][1] += 1
        similarity = pair_similarities(sets)
        distinct = int(np.count_nonzero(np.triu(similarity >= threshold, k=1)))
        report[label] = {kind: f"{hit}/{total}" for kind, (hit, total) in found.items()}
        report[label]["distinct_pairs_reaching"] = distinct
    return report


def pair_similarities(sets: list[set[str]]) -> np.ndarray:
    """The exact Jaccard similarity of every pair of sets, as a dense matrix."""
    vocabulary: dict[str, int] = {}
    columns: list[int] = []
    starts = [0]
    for shingle_set in sets:
        columns += [vocabulary.setdefault(s, len(vocabulary)) for s in shingle_set]
        starts.append(len(columns))
    matrix = sparse.csr_matrix(
        (np.ones(len(columns), np.float32), columns, starts), (len(sets), len(vocabulary))
    )
    common = (matrix @ matrix.T).toarray()
    sizes = np.diff(starts).astype(np.float32)
    return common / (sizes[:, None] + sizes[None, :] - common)


def timed(label: str, function: Callable[[], Any]) -> Any:
    print(f"... {label}", file=sys.stderr, flush=True)
    return function()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=1000, help="curate's default")
    parser.add_argument("--sample", type=int, default=5000)
    parser.add_argument("--baseline-rows", type=int, default=None, help="time the baseline on a prefix")
    parser.add_argument("--seed", type=int, default=0)
    default_shared = Path(os.environ.get("MATHFORGE_SHARED", REPO.parent / "shared"))
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--shingling",
        action="store_true",
        help="only compare ways of shingling on GSM8K (the defaults' evidence)",
    )
    args = parser.parse_args()
    if args.shingling:
        print(json.dumps(shingling_report(args.shared), indent=1))
        return

    texts, truth = planted_rows(
        base_questions(args.shared, args.rows - args.planted), args.planted, args.seed
    )
    verdicts, ours = timed("ours", lambda: run_ours(texts, 1, args.batch_rows))
    pooled_verdicts, pooled = timed(
        "ours with a pool", lambda: run_ours(texts, args.workers, args.batch_rows)
    )
    assert pooled_verdicts == verdicts, "the pool changed the verdicts"
    vectorised_dropped, vectorised = timed(
        "datasketch vectorised", lambda: run_datasketch_vectorised(texts, args.batch_rows)
    )
    baseline_texts = texts[: args.baseline_rows] if args.baseline_rows else texts
    baseline_dropped, baseline = timed(
        "baseline", lambda: run_baseline(baseline_texts, FuzzyDedupOptions().num_perm)
    )
    # A baseline timed on a prefix is compared with our time scaled to the same number of rows.
    scale = len(baseline_texts) / len(texts)
    report = {
        "rows": len(texts),
        "planted_pairs": len(truth),
        "batch_rows": args.batch_rows,
        "our_seconds": round(ours, 2),
        f"our_seconds_with_{args.workers}_workers": round(pooled, 2),
        "our_dropped": sum(verdict is not None for verdict in verdicts),
        "datasketch_vectorised_seconds": round(vectorised, 2),
        "datasketch_vectorised_dropped": vectorised_dropped,
        "baseline_rows": len(baseline_texts),
        "baseline_seconds": round(baseline, 2),
        "baseline_dropped": baseline_dropped,
        "ratio_baseline_to_ours": round(baseline / (ours * scale), 1),
        "ratio_datasketch_vectorised_to_ours": round(vectorised / ours, 1),
        "planted_found": planted_found(verdicts, truth),
        "accuracy": timed("accuracy", lambda: accuracy(texts, args.sample, args.seed, args.batch_rows)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
        f"Python {platform.python_version()}",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    if args.json:
        print(json.dumps(report))
        return
    for key, value in report.items():
        print(f"{key:38} {value}")


if __name__ == "__main__":
    main()
