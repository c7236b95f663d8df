"""Benchmark decontamination: an index of benchmark texts by word n-grams, and the matcher that says which
item a text copies, how (verbatim, numbers changed, a short item whole) and how much.

Texts are compared as words: lower case, punctuation and LaTeX markup dropped, thousands separators joined,
a "Problem:" label removed, so that reformatting a question changes nothing. Three passes, as published
practice does them plus the near-copy it misses (docs/decontamination.md):

- exact: the text shares an n-gram of words with an item (lm-eval 13, DeepSeekMath 10, Llemma 30, Tülu 3 8);
- numbers: with every number replaced by one placeholder, at least `numbers_min_score` of its n-grams are
  in the item, and more than match exactly: an item with its numbers changed, which the exact pass sees as a
  few scattered n-gram hits or none;
- short: an item too short for an n-gram (at least `min_words` words) equals the text, or with
  `short_match="contained"` appears in it, word for word (DeepSeekMath's rule below 10 words).

The index is plain Python sets and dicts of n-gram hashes: the work is a set lookup per n-gram, which no
library does faster from Python, and the libraries that package it (lm-eval's janitor, datatrove's n-gram
filter, open-instruct's Elasticsearch scripts) bring their own task registries, services or tokenizers.
Clean rows are the vast majority, so a row costs one pass of number-blind n-gram lookups (they catch all that
exact n-grams catch); only rows with a hit are classified further.

Hashes are Python's `hash` of word tuples: salted per process (PYTHONHASHSEED), which is enough because each
process (each `--workers` process, each Ray task) builds its own index in `Stage.setup` and queries only it.
Every reported overlap is checked on the words themselves, so a hash collision cannot make one up.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mathforge.benchmarks import REGISTRY, BenchmarkSpec, get_spec, load_items
from mathforge.errors import MathforgeError
from mathforge.io import read_rows

MatchKind = Literal["exact", "numbers", "short"]
ShortMatch = Literal["equal", "contained"]
ALL = "all"  # every registered benchmark, as `against` takes it

_KIND_RANK: dict[MatchKind, int] = {"short": 2, "exact": 1, "numbers": 0}
# Every number becomes this in the number-blind pass; words never contain "#", so it cannot clash with one.
NUMBER = "#"

# A label that reformatting adds to a question or removes: "Problem:", "Question 3.", "**Q:**", "Exercise)".
_LABEL = re.compile(r"^\W*(?:problem|question|exercise|q)\s*\d*\s*\**\s*[:.)]", re.IGNORECASE)
# "1,000" is the number 1000: a comma before a group of three digits goes ("1, 2, 3" stays three numbers). Not
# checking for a digit before it is faster, and changes no word: after a letter the comma splits words anyway.
_THOUSANDS = re.compile(r",(?=\d{3}(?!\d))")
# Kana, CJK ideographs and Hangul are written without spaces: each character is a word of its own.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_WORD = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+|\d+(?:\.\d+)?")
_ASCII_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?")  # the same on ASCII text, and a third faster


def words(text: str) -> list[str]:
    """The words of `text` as every pass compares them: runs of letters and numbers, lower case; punctuation,
    spacing, LaTeX markup characters and a leading "Problem:" label are dropped (`\\frac{1}{2}` is
    frac 1 2)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # full-width digits, ligatures, non-breaking spaces
    text = _LABEL.sub("", text, count=1)
    if "," in text:
        text = _THOUSANDS.sub("", text)
    return (_ASCII_WORD if text.isascii() else _WORD).findall(text.lower())


def number_blind(tokens: Sequence[str]) -> list[str]:
    """`tokens` with every number replaced by `NUMBER`."""
    return [NUMBER if token[0].isdigit() else token for token in tokens]


def ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """The n-grams of `tokens`, in order (none when there are fewer than n)."""
    return zip(*(tokens[start:] for start in range(n)), strict=False)


def ngram_hashes(tokens: Sequence[str], n: int) -> Iterator[int]:
    """The hashes of the n-grams of `tokens` (Python's `hash`: valid within one process, see above)."""
    return map(hash, ngrams(tokens, n))


@dataclass(frozen=True)
class Source:
    """One indexed text: a benchmark item's question or solution (or a seed row's field)."""

    benchmark: str
    item: str
    field: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Overlap:
    """What a text shares with one indexed item.

    `score`: the fraction of the text's n-grams found in the item (number-blind ones for a `numbers` match),
    1.0 for a `short` match. `coverage`: the fraction of the item text's words inside shared n-grams (Tülu 3's
    measure, from the benchmark's side). `ngram`: one shared n-gram in the item's words (for a `numbers`
    match, one whose numbers differ; for `short`, the whole item text).
    """

    benchmark: str
    item: str
    field: str
    match: MatchKind
    score: float
    coverage: float
    ngram: str

    def closeness(self) -> tuple[float, int]:
        """The key that orders overlaps, the closest greatest: by score, then a short item or a verbatim copy
        before a numbers-changed one."""
        return self.score, _KIND_RANK[self.match]

    def info(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "item": self.item,
            "ngram": self.ngram,
            "score": round(self.score, 4),
            "match": self.match,
            "item_field": self.field,
            "coverage": round(self.coverage, 4),
        }


class OverlapIndex:
    """Indexed texts (benchmark items, seed rows) and the matcher that finds a text's overlap with them.

    Long texts are indexed by the hashes of their number-blind n-grams; short ones (`min_words` words up to
    one under `ngram`) whole, or by their first `min_words` words with `short_match="contained"`.
    `numbers_min_score`: the share of a text's n-grams that must match an item number-blind for a `numbers`
    match (None: no numbers matches, as published rules). `min_coverage`: the share of the item text's words
    that shared n-grams must cover for an n-gram match (0: one shared n-gram is enough, as lm-eval,
    DeepSeekMath and Llemma count; Tülu 3 uses 0.5).
    """

    def __init__(
        self,
        ngram: int = 13,
        min_words: int = 3,
        numbers_min_score: float | None = 0.5,
        min_coverage: float = 0.0,
        short_match: ShortMatch = "equal",
    ) -> None:
        self.n = ngram
        self.min_words = min_words
        self.numbers_min_score = numbers_min_score
        self.min_coverage = min_coverage
        self.short_match = short_match
        self.sources: list[Source] = []
        # n-gram hash -> the one source holding it. Most n-grams belong to a single text, and an int per key
        # keeps the index small and quick to build; keys that several sources hold list them in `_shared`.
        self._owner: dict[int, int] = {}
        self._shared: dict[int, list[int]] = {}
        self._short: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.sources)

    def add(self, benchmark: str, item: str, field: str, text: str) -> None:
        tokens = tuple(words(text))
        if len(tokens) < self.min_words:  # "72", "Yes": a text containing these copies nothing
            return
        ordinal = len(self.sources)
        self.sources.append(Source(benchmark, item, field, tokens))
        if len(tokens) < self.n:
            filed_under = tokens if self.short_match == "equal" else tokens[: self.min_words]
            self._short.setdefault(hash(filed_under), []).append(ordinal)
            return
        for key in set(ngram_hashes(number_blind(tokens), self.n)):
            owner = self._owner.setdefault(key, ordinal)
            if owner != ordinal:
                self._shared.setdefault(key, [owner]).append(ordinal)

    def find(self, text: str) -> Overlap | None:
        """The overlap of `text` with its closest indexed item, or None."""
        tokens = words(text)
        if self._short and (short := self._short_overlap(tokens)) is not None:
            return short
        blind = number_blind(tokens)
        # The one step every row pays: number-blind n-grams catch all that exact ones do, and most rows are
        # clean, so nothing else is computed for a row without a hit.
        if self._owner.keys().isdisjoint(ngram_hashes(blind, self.n)):
            return None
        return self._closest(tokens, blind)

    # --- short items -------------------------------------------------------------------------------------

    def _short_overlap(self, tokens: list[str]) -> Overlap | None:
        if self.short_match == "equal":
            return self._short_at(tokens, 0, hash(tuple(tokens)), len(tokens))
        for start, key in enumerate(ngram_hashes(tokens, self.min_words)):
            if (found := self._short_at(tokens, start, key)) is not None:
                return found
        return None

    def _short_at(self, tokens: list[str], start: int, key: int, length: int | None = None) -> Overlap | None:
        """The short source filed under `key` whose words are `tokens` from `start` (checked word by word)."""
        for ordinal in self._short.get(key, ()):
            source = self.sources[ordinal]
            if length is not None and length != len(source.words):
                continue
            if tuple(tokens[start : start + len(source.words)]) == source.words:
                text = " ".join(source.words)
                return Overlap(source.benchmark, source.item, source.field, "short", 1.0, 1.0, text)
        return None

    # --- n-gram overlaps ---------------------------------------------------------------------------------

    def _closest(self, tokens: list[str], blind: list[str]) -> Overlap | None:
        """Classify the sources sharing number-blind n-grams with the text, most shared first; a source whose
        count cannot reach the best score so far is not looked at (a common phrase can touch many items)."""
        row = _Ngrams(set(ngrams(tokens, self.n)), set(ngrams(blind, self.n)))
        hits = self._blind_hits(blind)
        best: Overlap | None = None
        for ordinal, count in hits.most_common():
            if best is not None and count / len(row.blind) < best.score:
                break
            found = self._classify(row, tokens, self.sources[ordinal])
            if found is not None and (best is None or found.closeness() > best.closeness()):
                best = found
        return best

    def _blind_hits(self, blind: list[str]) -> Counter[int]:
        """Source -> how many of the text's distinct number-blind n-grams it holds (by hash)."""
        hits: Counter[int] = Counter()
        for key in set(ngram_hashes(blind, self.n)):
            owner = self._owner.get(key)
            if owner is not None:
                hits.update(self._shared.get(key, (owner,)))
        return hits

    def _classify(self, row: _Ngrams, tokens: list[str], source: Source) -> Overlap | None:
        """The overlap of the text with one source, computed on the words themselves (no hash collisions)."""
        item_blind = number_blind(source.words)
        # Only n-grams that are mostly words say that two texts are one problem with other numbers: in a
        # stretch of calculations ("45 * 30000 = 1350000") number-blind n-grams match any other calculation.
        blind_shared = {gram for gram in row.blind.intersection(ngrams(item_blind, self.n)) if _wordy(gram)}
        exact_shared = row.exact.intersection(ngrams(source.words, self.n))
        blind_score = len(blind_shared) / len(row.blind)
        exact_score = len(exact_shared) / len(row.exact)
        numbers_min = self.numbers_min_score
        if numbers_min is not None and blind_score > exact_score and blind_score >= numbers_min:
            # More of the text matches once numbers are ignored: the item with its numbers changed.
            return self._overlap(source, "numbers", blind_score, blind_shared, item_blind, tokens)
        if exact_shared:
            return self._overlap(source, "exact", exact_score, exact_shared, source.words, tokens)
        return None

    def _overlap(
        self,
        source: Source,
        kind: MatchKind,
        score: float,
        shared: set[tuple[str, ...]],
        item_tokens: Sequence[str],
        tokens: list[str],
    ) -> Overlap | None:
        item_grams = list(ngrams(item_tokens, self.n))
        coverage = _coverage(item_grams, shared, self.n)
        if coverage < self.min_coverage:
            return None
        example = _example(item_grams, shared, source.words, tokens, kind, self.n)
        return Overlap(source.benchmark, source.item, source.field, kind, score, coverage, example)


def _wordy(gram: tuple[str, ...]) -> bool:
    """Whether at least half of a number-blind n-gram is words."""
    return 2 * gram.count(NUMBER) <= len(gram)


@dataclass
class _Ngrams:
    """A text's distinct n-grams, exact and number-blind."""

    exact: set[tuple[str, ...]]
    blind: set[tuple[str, ...]]


def _coverage(item_grams: list[tuple[str, ...]], shared: set[tuple[str, ...]], n: int) -> float:
    """The fraction of an item text's words inside at least one of its n-grams that are in `shared`."""
    covered = [False] * (len(item_grams) + n - 1)
    for start, gram in enumerate(item_grams):
        if gram in shared:
            covered[start : start + n] = [True] * n
    return sum(covered) / len(covered)


def _example(
    item_grams: list[tuple[str, ...]],
    shared: set[tuple[str, ...]],
    item_words: tuple[str, ...],
    row_words: list[str],
    kind: MatchKind,
    n: int,
) -> str:
    """A shared n-gram in the item's words: the first, or for a numbers match the first whose numbers differ
    from the text's (what shows it is the item with numbers changed)."""
    starts = [start for start, gram in enumerate(item_grams) if gram in shared]
    if kind == "numbers":
        row_exact = set(ngrams(row_words, n))
        changed = [start for start in starts if item_words[start : start + n] not in row_exact]
        starts = changed or starts
    return " ".join(item_words[starts[0] : starts[0] + n])


# --- what is indexed: benchmark test items, seed rows ---------------------------------------------------


def benchmark_names(against: Sequence[str], data_dir: Path | None) -> tuple[list[str], list[str]]:
    """The benchmarks `against` means, in order, and those `all` leaves out because their test split cannot be
    read from the source in use (no file under `data_dir`; no hub copy without one). A benchmark named
    explicitly is never left out: loading it says what is missing."""
    names: list[str] = []
    skipped: list[str] = []
    for name in against:
        expanded = list(REGISTRY) if name == ALL else [name]
        for each in expanded:
            if each in names or each in skipped:
                continue
            if name == ALL and not _readable(get_spec(each), data_dir):
                skipped.append(each)
            else:
                names.append(each)
    return names, skipped


def _readable(spec: BenchmarkSpec, data_dir: Path | None) -> bool:
    if spec.generator:
        return True
    if data_dir is None:
        return spec.test.hub is not None
    local = spec.test.local
    return local is not None and all((data_dir / local.folder / name).is_file() for name in local.files)


def benchmark_texts(name: str, data_dir: Path | None) -> Iterator[tuple[str, str, str]]:
    """(item id, field, text) for the question and reference solution of each test item of `name`: the split
    and the item ids `mathforge eval` uses."""
    for item in load_items(get_spec(name), "test", data_dir):
        yield item.id, "question", item.question
        if item.solution:
            yield item.id, "solution", item.solution


SEED_FIELDS = ("question", "solution", "answer")


def seed_texts(path: Path) -> Iterator[tuple[str, str, str]]:
    """(line, field, text) for the question, solution and answer of each row of a seed file (JSONL or
    Parquet); a row without a question is a `FILE:line` error."""
    if not path.is_file():
        raise MathforgeError(f"seed file not found: {path}")
    for line, row in read_rows(path):
        if not isinstance(row.get("question"), str):
            raise MathforgeError(f"{path}:{line}: a seed row needs a 'question' text")
        for field in SEED_FIELDS:
            if isinstance(row.get(field), str | int | float):
                yield str(line), field, str(row[field])
