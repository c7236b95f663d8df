"""Deduplication of problem-length texts: exact (a hash of the normalised text), near-duplicates by
MinHash-LSH (any size), and exact TF-IDF cosine (small sets: quadratic).

Every index keeps the first row of each cluster: a row is compared with the rows kept before it (earlier
batches, then earlier rows of its own batch) and dropped when it is close enough to one of them, which it
then names. Dropped rows are not indexed, so a chain A ~ B ~ C where C is far from A keeps A and C: every
dropped row is close to the kept row it names, never only to another dropped row.

Normalisation (`words`): Unicode NFKC, casefold, sentence punctuation to spaces, whitespace collapsed, an
apostrophe inside a word dropped ("Natalia's" and "Natalias" are one word), thousands separators joined. Math
symbols and the punctuation that means something in a formula (`- / * % ! ( ) [ ] { } \\ '`) are kept as
words of their own, so that "7 - 3" and "7 * 3" stay apart under exact deduplication. For near-duplicates
numbers become one placeholder (`mask_numbers`): a problem with its numbers changed is the same problem.

Near-duplicate defaults (word bigrams, numbers masked, Jaccard 0.8), measured by `benchmarks/fuzzy_dedup.py
--shingling` on the first 2,000 GSM8K training questions with planted variants, and on all 27.9 million pairs
of distinct training questions:

| shingles                   | case | punctuation | a word inserted | numbers | a name | distinct pairs |
|----------------------------|------|-------------|-----------------|---------|--------|----------------|
| word 1-grams               | 100% | 100%        | 100%            | 100%    | 99.7%  | 29             |
| word 2-grams (the default) | 100% | 100%        | 99.95%          | 100%    | 87%    | 5              |
| word 3-grams               | 100% | 100%        | 95%             | 100%    | 76%    | 4              |
| char 5-grams               | 100% | 100%        | 99.95%          | 100%    | 92%    | 7              |
| word 2-grams, numbers kept | 100% | 100%        | 99.95%          | 25%     | 89%    | 1              |

(The share of variants at Jaccard >= 0.8 with their original, per change: case, punctuation, one inserted
word, every number, one name; and the pairs of distinct questions at >= 0.8.)

The 5 distinct pairs are the same problem re-numbered or re-named within GSM8K itself (lines 1138/5003,
1175/7234, 1315/5163, 2484/6692, 4998/5420); the one inserted word missed is in a 14-word question whose masked
bigrams repeat ("198 passengers fit into 9 buses..."; Jaccard 0.75). Unigrams let unrelated questions through,
trigrams miss inserted words, characters cost five times the shingles for little.

MinHash and LSH are rensa's (Rust, `rensa` on PyPI): on 20,000 of the benchmark's rows its signatures were 11
times faster than datasketch's `MinHash.bulk` with an xxhash hash function, and its LSH lookups and inserts 20
times faster than datasketch's `MinHashLSH`; the whole stage runs 2.6 to 3.6 times faster (three runs)
than the same algorithm on datasketch (benchmarks/fuzzy_dedup.py; shingling and exact checks, the same in
both, take the rest).
LSH only proposes candidates: the exact Jaccard similarity of the shingle sets (64-bit hashes) decides, so the
reported similarity is exact and a drop is never a sketch's error. A row names, among the kept rows whose
exact similarity reaches the threshold, the one with the highest estimated similarity (in practice the most
similar one).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
import rensa

from mathforge.errors import MathforgeError

Unit = Literal["word", "char"]

# Every number becomes this under `mask_numbers`: it is a word of its own, like the number it replaces.
NUMBER = "0"
# The probability that LSH proposes a pair exactly at the threshold (pairs above it are proposed more often).
LSH_RECALL = 0.98

# A word: a run of letters and digits, or one character of a formula (ASCII symbols and the punctuation that
# means something in one), or one non-ASCII character that is neither (`words` drops the punctuation among
# those). ASCII sentence punctuation and control characters match nothing, so they become spaces.
_WORD = re.compile(r"\w+|[-/*%!()\[\]{}\\'$+<=>^`|~]|[^\x00-\x7f\w\s]")
_APOSTROPHES = ("'", "\u2019", "\u02bc")
_APOSTROPHE = re.compile(r"(?<=[^\W\d_])['\u2019\u02bc](?=[^\W\d_])")
# Thousands separators: "1,000" is 1000; "1, 2, 3" stays three numbers.
_GROUPED = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
# Punctuation that carries meaning in a formula (a minus, a quotient, a factorial, brackets, a prime).
_FORMULA_PUNCTUATION = frozenset("-/*%!()[]{}\\'")


@cache
def _dropped(char: str) -> bool:
    """Whether a one-character word is sentence punctuation (or a control character), which normalising drops."""
    category = unicodedata.category(char)
    return category[0] == "C" or (category[0] == "P" and char not in _FORMULA_PUNCTUATION)


def words(text: str, *, mask_numbers: bool = False) -> list[str]:
    """The normalised words of `text` (see the module's docstring); `mask_numbers` makes each number `NUMBER`."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if any(mark in text for mark in _APOSTROPHES):  # the check is cheap, the look-around pattern is not
        text = _APOSTROPHE.sub("", text)
    if mask_numbers:
        text = _NUMBER.sub(NUMBER, text)
    elif "," in text:
        text = _GROUPED.sub(lambda number: number.group().replace(",", ""), text)
    found = _WORD.findall(text)
    return found if text.isascii() else [word for word in found if not _dropped(word[0])]


def normalize_text(text: str, *, mask_numbers: bool = False) -> str:
    """`text` as exact deduplication compares it: its normalised words, one space apart."""
    return " ".join(words(text, mask_numbers=mask_numbers))


# --- exact ------------------------------------------------------------------------------------------------


def exact_key(texts: Sequence[str]) -> bytes:
    """A stable 128-bit key of the normalised texts (a row's fields, in order): equal keys, equal texts."""
    normal = json.dumps([normalize_text(text) for text in texts], ensure_ascii=False)
    return hashlib.blake2b(normal.encode(), digest_size=16).digest()


def exact_keys(rows_texts: Sequence[Sequence[str]]) -> list[bytes]:
    """`exact_key` of each row (module-level, for `StageContext.map`)."""
    return [exact_key(texts) for texts in rows_texts]


@dataclass(frozen=True)
class Match:
    """The kept row a new row duplicates: its 1-based input line, and how similar the two are."""

    line: int
    similarity: float


class ExactIndex:
    """The line of the first row of each key."""

    def __init__(self) -> None:
        self._first: dict[bytes, int] = {}

    def add(self, keys: Sequence[bytes], lines: Sequence[int]) -> list[Match | None]:
        matches: list[Match | None] = []
        for key, line in zip(keys, lines, strict=True):
            first = self._first.setdefault(key, line)
            matches.append(None if first == line else Match(first, 1.0))
        return matches


# --- shingles ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shingling:
    """How a text becomes the set that near-duplicate methods compare: n-grams of words or of characters."""

    unit: Unit = "word"
    ngram: int = 2
    mask_numbers: bool = True

    def describe(self) -> str:
        return f"{self.unit} {self.ngram}-grams"


def shingles(text: str, shingling: Shingling) -> list[str]:
    """The n-grams of `text`'s normalised words, in order, repeats included (word n-grams joined by spaces;
    character n-grams of the words one space apart). A text shorter than n is one shingle, itself; so is the
    empty text, so that two empty texts are equal and an empty text is like no other."""
    tokens = words(text, mask_numbers=shingling.mask_numbers)
    n = shingling.ngram
    if shingling.unit == "char":
        joined = " ".join(tokens)
        return [joined[start : start + n] for start in range(max(len(joined) - n + 1, 1))]
    if len(tokens) <= n:
        return [" ".join(tokens)]
    # The slices end together at the last whole n-gram: zip stops at the shortest on purpose.
    return list(map(" ".join, zip(*(tokens[start:] for start in range(n)), strict=False)))


def shingle_batch(job: tuple[list[str], Shingling]) -> list[list[str]]:
    """`shingles` of each text (module-level, for `StageContext.map`)."""
    texts, shingling = job
    return [shingles(text, shingling) for text in texts]


# --- MinHash-LSH ------------------------------------------------------------------------------------------


def lsh_bands(threshold: float, num_perm: int, recall: float = LSH_RECALL) -> tuple[int, int]:
    """(bands, rows per band) for LSH over at most `num_perm` permutations: the most rows per band (the fewest
    false candidates) with which a pair exactly at `threshold` still shares a band with probability `recall`.

    datasketch's optimiser weighs false positives and negatives equally, which for problem-length texts leaves
    a pair at Jaccard 0.8 a candidate 40% of the time (9 bands of 13); candidates here are checked exactly, so
    false candidates cost a set intersection each and recall is what to buy.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


@dataclass(frozen=True)
class SketchJob:
    """A chunk of texts to sketch, with how (plain data, so that it pickles to a worker process)."""

    texts: list[str]
    shingling: Shingling
    num_perm: int
    seed: int


@dataclass(frozen=True)
class Sketched:
    """Texts as MinHash-LSH compares them: each one's MinHash signature and the hashes of its shingles."""

    sketches: list[rensa.RMinHash]
    hashes: list[list[int]]

    @classmethod
    def joined(cls, parts: Sequence[Sketched]) -> Sketched:
        return cls([s for part in parts for s in part.sketches], [h for part in parts for h in part.hashes])


def sketch_batch(job: SketchJob) -> Sketched:
    """The texts' signatures and shingle hashes (module-level, for `StageContext.map`: a worker process does
    the Python part of the work, the shingling, as well as rensa's)."""
    shingle_sets = [shingles(text, job.shingling) for text in job.texts]
    return Sketched(
        rensa.RMinHash.from_token_sets(shingle_sets, job.num_perm, job.seed),
        rensa.RMinHash.hash_token_sets(shingle_sets),
    )


class MinHashIndex:
    """The kept rows in LSH bands of their MinHash signatures (rensa), with their signatures and shingle hashes.

    A candidate is checked in two steps: the signatures' estimate of its similarity (a fraction of a
    microsecond in rensa) sets aside those clearly below the threshold, and the exact Jaccard similarity of the
    shingle sets decides the rest (a set intersection: a kept row's hashes are an `array` of 64-bit integers, a
    seventh of a frozenset's memory). Templated problems make many candidates just below the threshold: the
    estimate spares most of their intersections. A row whose shingle set equals an earlier row's (a copy up to
    case, punctuation or numbers) is found by the set's hash before any LSH lookup, and names what that row
    named (itself, when it was kept). Shingles are 64-bit hashes throughout: a collision between two of
    a million rows' sets has a chance near 1e-7.
    """

    def __init__(
        self, threshold: float, shingling: Shingling = Shingling(), num_perm: int = 128, seed: int = 1
    ) -> None:
        self.threshold = threshold
        self.shingling = shingling
        self.seed = seed
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self.num_perm = self.bands * self.rows  # rensa needs whole bands; the spare permutations are unused
        # The estimate's standard error is sqrt(J(1 - J) / num_perm), largest for the pairs at or above the
        # threshold at J = max(threshold, 0.5) (0.036 at 0.8 with 126): four of them below the threshold, such a
        # pair is set aside once in 30,000 times.
        spread = max(threshold, 0.5)
        self.margin = 4 * (spread * (1 - spread) / self.num_perm) ** 0.5
        self._lsh = rensa.RMinHashLSH(threshold, self.num_perm, self.bands)
        self._kept_sketches: list[rensa.RMinHash] = []
        self._kept_hashes: list[array[int]] = []
        self._kept_lines: list[int] = []
        self._by_set: dict[int, Match] = {}  # hash of a row's shingle set -> the kept row it is or duplicates

    def job(self, texts: list[str]) -> SketchJob:
        """What `sketch_batch` needs to sketch `texts` for this index."""
        return SketchJob(texts, self.shingling, self.num_perm, self.seed)

    def add(self, sketched: Sketched, lines: Sequence[int]) -> list[Match | None]:
        """Each row's match among the rows kept before it, in order; a row without one is kept."""
        matches: list[Match | None] = []
        for sketch, row_hashes, line in zip(sketched.sketches, sketched.hashes, lines, strict=True):
            distinct = frozenset(row_hashes)
            key = hash(distinct)
            match = self._by_set.get(key) or self._best(sketch, distinct, self._lsh.query(sketch))
            if match is None:
                self._keep(sketch, distinct, line)
            self._by_set.setdefault(key, match or Match(line, 1.0))
            matches.append(match)
        return matches

    def _keep(self, sketch: rensa.RMinHash, distinct: frozenset[int], line: int) -> None:
        key = len(self._kept_lines)
        self._lsh.insert(key, sketch)
        self._kept_sketches.append(sketch)
        self._kept_hashes.append(array("Q", distinct))
        self._kept_lines.append(line)

    def _best(self, sketch: rensa.RMinHash, row: frozenset[int], candidates: list[int]) -> Match | None:
        """The candidate with the highest estimated similarity (the earliest of equals) whose exact similarity
        reaches the threshold, or None. In that order the first that passes is the answer, so a duplicate
        usually costs one intersection; only a row that is kept has every plausible candidate checked."""
        floor = self.threshold - self.margin
        estimates = map(sketch.jaccard, map(self._kept_sketches.__getitem__, candidates))  # loops in C
        plausible = sorted(
            (-estimate, key) for estimate, key in zip(estimates, candidates, strict=True) if estimate >= floor
        )
        for _, key in plausible:
            kept = self._kept_hashes[key]
            common = len(row.intersection(kept))
            similarity = common / (len(row) + len(kept) - common)
            if similarity >= self.threshold:
                return Match(self._kept_lines[key], similarity)
        return None


# --- TF-IDF cosine ----------------------------------------------------------------------------------------


def _identity(document: list[str]) -> list[str]:
    return document


class TfidfIndex:
    """Exact TF-IDF cosine similarity of every new row with every kept row: for small sets (quadratic).

    The inverse document frequencies are those of all rows seen so far, this batch included, so an input that
    fits in one batch is judged with the IDF of the whole input, and a longer one with the IDF of its prefix.
    The vectors are scikit-learn's `TfidfVectorizer` (smoothed IDF, L2-normalised) over the same shingles as
    MinHash, each counted once (binary, like the sets that Jaccard compares: with counts, questions that share
    a template's repeated phrases come closer, and 17 pairs of distinct GSM8K training questions reach 0.85
    instead of 5); they are recomputed each batch, since every new row changes the IDF. At 0.85 the GSM8K
    variants of the table above are found as often as by MinHash at 0.8 (a name 96%, a word inserted 100%),
    and the 5 distinct pairs are 4 of MinHash's and 2528/3644, another re-templated pair.
    """

    # Rows of the batch compared at a time: bounds the dense similarity block to CHUNK x rows seen.
    CHUNK = 256

    def __init__(self, threshold: float) -> None:
        try:
            from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
        except ImportError:
            raise MathforgeError("the tfidf method needs scikit-learn: pip install scikit-learn") from None
        self._vectorizer = TfidfVectorizer(analyzer=_identity, binary=True, dtype=np.float32)
        self.threshold = threshold
        self._documents: list[list[str]] = []
        self._lines: list[int] = []
        self._kept = np.zeros(0, dtype=bool)

    def add(self, shingle_sets: Sequence[list[str]], lines: Sequence[int]) -> list[Match | None]:
        start = len(self._documents)
        self._documents.extend(shingle_sets)
        self._lines.extend(lines)
        self._kept = np.concatenate([self._kept, np.zeros(len(lines), dtype=bool)])
        vectors = self._vectorizer.fit_transform(self._documents)
        matches: list[Match | None] = []
        for chunk_start in range(start, len(self._documents), self.CHUNK):
            chunk_end = min(chunk_start + self.CHUNK, len(self._documents))
            similarities = (vectors[chunk_start:chunk_end] @ vectors[:chunk_end].T).toarray()
            for offset, row_similarities in enumerate(similarities):
                matches.append(self._judge(chunk_start + offset, row_similarities))
        return matches

    def _judge(self, index: int, similarities: np.ndarray[Any, Any]) -> Match | None:
        """Row `index`'s most similar earlier kept row at or above the threshold; keeps the row when none is."""
        earlier = np.flatnonzero(self._kept[:index])
        close = earlier[similarities[earlier] >= self.threshold - 1e-6]  # float32: 1.0 may read 0.9999999
        if close.size == 0:
            self._kept[index] = True
            return None
        best = close[np.argmax(similarities[close])]  # argmax: the earliest of equals
        return Match(self._lines[best], min(1.0, float(similarities[best])))
