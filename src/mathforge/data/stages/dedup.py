"""Deduplication stages: `exact_dedup` (the same text after normalisation) and `fuzzy_dedup` (near-duplicates
by MinHash-LSH, or by exact TF-IDF cosine for small sets).

A row is a duplicate of an earlier row, so both stages see every row in input order in one process
(`parallel = False`) and keep their index across batches; the first row of each cluster is kept. The
per-row text work (normalising, shingling, MinHash signatures) goes to the `--workers` processes when there
are some. A drop names the kept row's line: `info={"duplicate_of": line, "similarity": s}` (exact: 1.0;
minhash: exact Jaccard; tfidf: cosine).
The engine and the measurements behind the defaults are in `mathforge.data.dedup`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field

from mathforge.data.dedup import (
    ExactIndex,
    Match,
    MinHashIndex,
    Shingling,
    TfidfIndex,
    exact_keys,
    shingle_batch,
    sketch_batch,
)
from mathforge.data.stages.base import Drop, Stage, StageContext, StageOptions, Verdict, register, text_of
from mathforge.errors import MathforgeError

Method = Literal["minhash", "tfidf"]
# The similarity at or above which two rows are near-duplicates, when the options do not say.
DEFAULT_THRESHOLD: dict[Method, float] = {"minhash": 0.8, "tfidf": 0.85}
_MEASURE: dict[Method, str] = {"minhash": "Jaccard", "tfidf": "TF-IDF cosine"}

# Rows a worker sketches at a time: small enough that the first chunk of a batch is soon ready.
SKETCH_CHUNK_ROWS = 200

T = TypeVar("T")


def _split(items: list[T], parts: int) -> list[list[T]]:
    """`items` in at most `parts` consecutive chunks of one size: one per worker process."""
    size = -(-len(items) // max(parts, 1))
    return [items[start : start + size] for start in range(0, len(items), size)]


def _joined(parts: Sequence[list[T]]) -> list[T]:
    return [item for part in parts for item in part]


def _text(context: StageContext, row: dict[str, Any], field: str, line: int, stage: str) -> str:
    """The field's text; a row without the field is an error (a misnamed field would make every row equal)."""
    if field not in row:
        raise MathforgeError(f"{context.source}:{line}: no field '{field}' ({stage} compares it)")
    return text_of(row, field)


def _drop(reason: str, match: Match | None, detail: str) -> Verdict:
    """The verdict on a row with this match; `detail` is formatted with the match's `line` and `similarity`."""
    if match is None:
        return None
    similarity = round(match.similarity, 4)
    return Drop(
        reason,
        detail.format(line=match.line, similarity=similarity),
        {"duplicate_of": match.line, "similarity": similarity},
    )


class ExactDedupOptions(StageOptions):
    """The options of the `exact_dedup` stage."""

    fields: list[str] = Field(
        default_factory=lambda: ["question"],
        min_length=1,
        description="Row fields compared: rows whose fields all have the same normalised text are duplicates",
    )


@register
class ExactDedup(Stage):
    """Drops a row whose fields, normalised (case, punctuation, spacing, Unicode forms), equal an earlier row's
    (`duplicate`)."""

    name: ClassVar[str] = "exact_dedup"
    options = ExactDedupOptions
    parallel: ClassVar[bool] = False
    opts: ExactDedupOptions

    def setup(self) -> None:
        self._index = ExactIndex()

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        fields = self.opts.fields
        texts = [
            [_text(self.context, row, field, line, self.name) for field in fields]
            for row, line in zip(rows, lines, strict=True)
        ]
        keys = _joined(self.context.map(exact_keys, _split(texts, self.context.workers)))
        detail = "the same normalised text as line {line}"
        return [_drop("duplicate", match, detail) for match in self._index.add(keys, lines)]


class FuzzyDedupOptions(StageOptions):
    """The options of the `fuzzy_dedup` stage."""

    field: str = Field("question", description="The row field compared")
    method: Method = Field(
        "minhash",
        description="minhash: Jaccard similarity of shingle sets, by MinHash-LSH (any size); tfidf: exact "
        "TF-IDF cosine of the shingles against every kept row (small sets: quadratic)",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Similarity at or above which a row duplicates a kept one [default: minhash 0.8 "
        "(Jaccard), tfidf 0.85 (cosine)]",
    )
    shingle: Literal["word", "char"] = Field(
        "word", description="Shingles are n-grams of words or of characters"
    )
    ngram: int = Field(
        2,
        ge=1,
        le=50,
        description="Words (or characters) per shingle; word bigrams suit problem-length texts",
    )
    mask_numbers: bool = Field(
        True, description="Compare every number as the same placeholder: a re-numbered problem is a duplicate"
    )
    num_perm: int = Field(
        128,
        ge=2,
        le=1024,
        description="MinHash permutations at most; LSH uses the whole bands that fit, chosen so that a pair at "
        "the threshold is a candidate 98% of the time (candidates are checked exactly)",
    )
    seed: int = Field(1, ge=0, description="Seed of the MinHash permutations")

    def resolved_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLD[self.method]

    def shingling(self) -> Shingling:
        return Shingling(self.shingle, self.ngram, self.mask_numbers)


@register
class FuzzyDedup(Stage):
    """Drops a row whose text is near an earlier kept row's (`near_duplicate`): by default Jaccard >= 0.8 of
    word bigrams with numbers masked, so a question that differs only by case, punctuation, its numbers or one
    inserted word is a near-duplicate, and different GSM8K questions are not."""

    name: ClassVar[str] = "fuzzy_dedup"
    options = FuzzyDedupOptions
    parallel: ClassVar[bool] = False
    opts: FuzzyDedupOptions

    def setup(self) -> None:
        opts = self.opts
        threshold = opts.resolved_threshold()
        self._shingling = opts.shingling()
        self._index: MinHashIndex | TfidfIndex = (
            MinHashIndex(threshold, self._shingling, opts.num_perm, opts.seed)
            if opts.method == "minhash"
            else TfidfIndex(threshold)
        )
        self._detail = (
            f"near line {{line}}: {_MEASURE[opts.method]} {{similarity}} of {self._shingling.describe()}"
        )

    def check(self, rows: list[dict[str, Any]], lines: list[int]) -> list[Verdict]:
        field = self.opts.field
        texts = [
            _text(self.context, row, field, line, self.name) for row, line in zip(rows, lines, strict=True)
        ]
        return [_drop("near_duplicate", match, self._detail) for match in self._matches(texts, lines)]

    def _matches(self, texts: list[str], lines: list[int]) -> list[Match | None]:
        if isinstance(self._index, MinHashIndex):
            return self._minhash_matches(self._index, texts, lines)
        chunks = _split(texts, self.context.workers)
        shingle_sets = _joined(
            self.context.map(shingle_batch, [(chunk, self._shingling) for chunk in chunks])
        )
        return self._index.add(shingle_sets, lines)

    def _minhash_matches(self, index: MinHashIndex, texts: list[str], lines: list[int]) -> list[Match | None]:
        """The index's matches, chunk by chunk. With a pool, the workers sketch the next chunks while this
        process looks the current one up (the lookups are sequential and take most of the time, so a `map`
        that waited for every chunk would leave this process idle while the workers sketch)."""
        size = SKETCH_CHUNK_ROWS
        jobs = [index.job(texts[start : start + size]) for start in range(0, len(texts), size)]
        pool = self.context.pool
        sketched = (
            pool.map(sketch_batch, jobs) if pool is not None and len(jobs) > 1 else map(sketch_batch, jobs)
        )
        matches: list[Match | None] = []
        for start, part in zip(range(0, len(texts), size), sketched, strict=True):
            matches += index.add(part, lines[start : start + size])
        return matches
