"""`mathforge dedup` and `mathforge decontam`: the two stages users most often want alone, as commands.

Each is a one-stage `curate` pipeline (the same stage classes, streaming and `--workers`), with a report made
for the question the command answers: which rows duplicate which, which rows overlap which benchmark items.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from mathforge.config import Options
from mathforge.data.pipeline import Dropped, run_single


class DedupOptions(Options):
    """The options of `mathforge dedup` (the input file is its argument)."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json"}

    out: Path = Field(description="Output file of the kept rows: the first of each cluster, in input order")
    field: str = Field("question", description="The row field compared")
    method: Literal["minhash", "exact", "tfidf"] = Field(
        "minhash",
        description="minhash: MinHash-LSH near-duplicates (any size); exact: the same text after "
        "normalisation; tfidf: exact TF-IDF cosine (small sets: quadratic)",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Similarity at or above which rows are duplicates [default: minhash 0.8 (Jaccard), "
        "tfidf 0.85 (cosine)]",
    )
    workers: int = Field(1, ge=1, le=256, description="Processes for computing signatures")
    json_output: bool = Field(False, description="Print the result as one JSON line instead of the table")
    quiet: bool = Field(False, description="No progress bar")

    def stage(self) -> dict[str, Any]:
        if self.method == "exact":
            return {"exact_dedup": {"fields": [self.field]}}
        options: dict[str, Any] = {"field": self.field, "method": self.method}
        if self.threshold is not None:
            options["threshold"] = self.threshold
        return {"fuzzy_dedup": options}


def dedup_file(path: str | Path, opts: DedupOptions) -> dict[str, Any]:
    """Deduplicate `path` into `opts.out`; the report: kept, dropped, and each dropped row's line and the line
    of the row it duplicates."""
    funnel, dropped = run_single(
        path, opts.stage(), out=opts.out, workers=opts.workers, quiet=opts.quiet, rejects=None
    )
    duplicates = [
        {
            "line": d.line,
            "duplicate_of": d.drop.info.get("duplicate_of"),
            "similarity": d.drop.info.get("similarity"),
        }
        for d in dropped
    ]
    return {
        "input": str(path),
        "out": str(opts.out),
        "rejects": funnel.rejects,
        "method": opts.method,
        "rows": funnel.rows,
        "kept": funnel.kept,
        "dropped": funnel.dropped,
        "duplicates": duplicates,
    }


class DecontamOptions(Options):
    """The options of `mathforge decontam` (the input file is its argument)."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json", "against": "against"}

    against: list[str] = Field(description="Benchmarks whose test items are looked for, or 'all'")
    data_dir: Path | None = Field(
        None, description="Benchmark data layout (as eval's --data-dir) [default: each benchmark's source]"
    )
    field: str = Field("question", description="The row field checked")
    ngram: int = Field(
        13, ge=1, le=200, description="Words per n-gram (Llemma 30, DeepSeekMath 10, lm-eval 13, Tülu 3 8)"
    )
    out: Path | None = Field(None, description="Write the rows that are not flagged here")
    workers: int = Field(1, ge=1, le=256, description="Processes, each with its own index")
    json_output: bool = Field(False, description="Print the result as one JSON line instead of the table")
    quiet: bool = Field(False, description="No progress bar")

    def stage(self) -> dict[str, Any]:
        return {"decontam": {"against": self.against, "fields": [self.field], "ngram": self.ngram}}


def decontam_file(path: str | Path, opts: DecontamOptions) -> dict[str, Any]:
    """Find the rows of `path` that overlap benchmark items; with `opts.out`, write the others there."""
    with tempfile.TemporaryDirectory(prefix="mathforge-decontam-") as scratch:
        out = opts.out if opts.out is not None else Path(scratch) / "clean.jsonl"
        funnel, dropped = run_single(
            path,
            opts.stage(),
            out=out,
            rejects=Path(scratch) / "flagged.jsonl" if opts.out is None else None,
            data_dir=opts.data_dir,
            workers=opts.workers,
            quiet=opts.quiet,
        )
    overlaps = [_overlap(d) for d in dropped]
    return {
        "input": str(path),
        "out": str(opts.out) if opts.out is not None else None,
        "rows": funnel.rows,
        "flagged": [d.line for d in dropped],
        "by_benchmark": dict(Counter(o["benchmark"] for o in overlaps).most_common()),
        "by_match": dict(Counter(o["match"] for o in overlaps).most_common()),
        "overlaps": overlaps,
    }


def _overlap(dropped: Dropped) -> dict[str, Any]:
    info = dropped.drop.info
    return {
        "line": dropped.line,
        "benchmark": info.get("benchmark"),
        "item": info.get("item"),
        "match": info.get("match"),
        "score": info.get("score"),
        "ngram": info.get("ngram"),
    }
