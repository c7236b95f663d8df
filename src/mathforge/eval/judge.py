"""An LLM judge (a "compare model", as the JiuZhang-8B card uses) for the verdicts the rules leave uncertain.

The rules in `mathforge.grading` decide most answers; a `Verdict` with `certain == False` (a timeout, an
answer no parser understood, a numeric match SymPy could not prove) is one they could not. `Judge` asks a
language model, through any backend, whether the predicted answer is mathematically equivalent to the gold
answer, and its "Yes"/"No" replaces the rule verdict. Output that says neither (verdict None) keeps the
rule verdict; both are recorded.

Every judgement is cached in a JSONL file keyed by a hash of (judge model identity, judge prompt, question,
gold, pred), so a re-run, a resumed run or a regrade asks nothing twice. Appends are fsynced; a torn line (a
kill in the middle of a write) is skipped when the file is read.

Use from other code (the `regrade` command, notebooks)::

    from mathforge.eval.judge import Judge, JudgeCase, default_cache_path

    with Judge.load("gemma3-270m", cache=default_cache_path(Path("runs"), "gemma3-270m")) as judge:
        decided = judge.decide_many([JudgeCase(question, gold, pred, verdict), ...])  # 4-tuples work too
    for case, d in zip(cases, decided, strict=True):
        correct = d.correct if d else case.verdict.correct  # None: the rules decided, the judge was not asked
        record = d.record() if d else None  # what `mathforge eval --judge` stores per completion

`Judge.load(model, backend)` resolves `model` as `--model` does (GGUF file, packaged alias, hub id or
directory); `Judge(backend)` wraps an engine already loaded. `judge_rows` applies a judge to sample rows
(samples.jsonl) in place, and `summarize` counts what the judge did over rows, for metrics.json.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mathforge.backends import Backend, Generation, SamplingParams, load_backend, resolve_model
from mathforge.errors import MathforgeError, first_line
from mathforge.grading import Verdict
from mathforge.io import append_jsonl, read_resumable
from mathforge.naming import slug

# Bump when the prompt or decoding changes: cached judgements made with another prompt are then not reused.
PROMPT_VERSION = 1
CACHE_DIR = "judge-cache"
MAX_NEW_TOKENS = 8
_RAW_CHARS = 200  # judge output kept per sample row
_CACHE_RAW_CHARS = 1000
_QUESTION_CHARS, _ANSWER_CHARS = 4000, 1000  # a prompt must fit a small judge's context window

_INSTRUCTION = (
    "Decide whether a student's final answer to a math problem is mathematically equivalent to the reference "
    "answer. Different forms of the same value (a fraction and its decimal, reordered terms, simplified "
    "expressions) are equivalent; different values are not."
)
_ASK = "Are these two answers mathematically equivalent? Answer Yes or No."
_EXAMPLES = (
    ("What is 1/2 + 1/4?", "\\frac{3}{4}", "0.75", "Yes"),
    ("Solve x^2 = 4 for x.", "\\pm 2", "2", "No"),
    ("Expand (x+1)^2.", "x^2+2x+1", "1 + 2x + x^2", "Yes"),
    ("How many minutes are in 2 hours?", "120", "100", "No"),
)


class JudgeCase(NamedTuple):
    """One completion to judge: the question, the gold answer, the extracted answer and the rule verdict."""

    question: str
    gold: str
    pred: str | None
    verdict: Verdict


@dataclass(frozen=True)
class JudgeVerdict:
    """What the judge said about one uncertain case."""

    verdict: bool | None  # equivalent or not; None: its output said neither, so the rule verdict stands
    rule_correct: bool
    rule: str
    raw: str  # the judge's output
    cached: bool  # answered from the cache (or by an identical case in the same call), not generated for it

    @property
    def correct(self) -> bool:
        return self.rule_correct if self.verdict is None else self.verdict

    @property
    def overruled(self) -> bool:
        return self.verdict is not None and self.verdict != self.rule_correct

    def record(self) -> dict[str, Any]:
        """The entry of a sample row's `judge` list."""
        return {
            "verdict": self.verdict,
            "rule_correct": self.rule_correct,
            "rule": self.rule,
            "raw": self.raw[:_RAW_CHARS],
            "cached": self.cached,
        }


_LEAD = re.compile(r"^[\s*_`'\"#>:.\-]+")
_ANSWER_PREFIX = re.compile(r"^(?:final\s+)?(?:answer|verdict|judg(?:e)?ment)\s*[:\-]\s*", re.IGNORECASE)
_NEGATED = re.compile(
    r"(?:\bnot|n't|\bnever)\s+(?:\w+\s+){0,2}equivalent\b|\b(?:in|non-?)equivalent\b|\bnot\s+the\s+same\b"
)
_WORD = re.compile(r"[a-z']+")
_ECHO = re.compile(r"\byes\s*(?:or|/)\s*no\b|\bno\s*(?:or|/)\s*yes\b")


def parse_judgement(text: str) -> bool | None:
    """Yes/No ("equivalent"/"not equivalent", True/False) in the first non-empty line; None if unclear."""
    line = next((part for part in text.splitlines() if _LEAD.sub("", part)), "")
    line = _ANSWER_PREFIX.sub("", _LEAD.sub("", line)).casefold()
    if not line or _ECHO.search(line):  # an echo of the question ("Yes or No") says neither
        return None
    first = _WORD.match(line)
    if first and first.group(0) in ("yes", "true", "correct"):
        return True
    if first and first.group(0) in ("no", "false", "incorrect", "wrong", "different"):
        return False
    if _NEGATED.search(line):
        return False
    if re.search(r"\bequivalent\b", line):
        return True
    words = set(_WORD.findall(line))
    if ("yes" in words) != ("no" in words):
        return "yes" in words
    return None


def resolve_judge(model: str | None, backend: str | None = None) -> tuple[str, str]:
    """(engine, model reference) for a judge model spec, as for --model; errors name --judge."""
    try:
        return resolve_model(model, backend)
    except MathforgeError as error:
        raise MathforgeError(f"--judge: {error}") from None


def default_cache_path(root: Path, model: str | None) -> Path:
    """Where `mathforge eval --out ROOT --judge MODEL` keeps its cache: ROOT/judge-cache/<model>.jsonl."""
    return Path(root) / CACHE_DIR / f"{slug(model)}.jsonl"


class Judge:
    """A judge model behind any backend, with its persistent cache.

    `cache`: the JSONL cache file (None: remember within this object only). `chat`: whether to prompt through
    the model's chat template (None: when it has one). `owns_backend`: whether `close` closes the engine
    (False when the engine is shared with the model being evaluated). The counters `asked` (prompts
    generated) and `cache_hits` say what the calls cost.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        cache: Path | str | None = None,
        batch_size: int = 8,
        chat: bool | None = None,
        owns_backend: bool = True,
    ) -> None:
        self.backend = backend
        self.owns_backend = owns_backend
        self.batch_size = max(1, batch_size)
        self.chat = _has_chat_template(backend) if chat is None else chat
        self.model_identity = backend.identity()
        # What decides the judge's output: weights and engine, not where the file lies or the context size.
        self._engine = {k: v for k, v in self.model_identity.items() if k not in ("path", "n_ctx")}
        probe_case = JudgeCase("{question}", "{gold}", "{pred}", Verdict(False, "probe", certain=False))
        probe = self.render(probe_case)
        self._prompt = {
            "version": PROMPT_VERSION,
            "format": "chat" if self.chat else "completion",
            "sha256": hashlib.sha256(probe.encode()).hexdigest(),
        }
        self.params = SamplingParams(max_new_tokens=MAX_NEW_TOKENS, temperature=0.0, n=1, stop=("\n",))
        self.cache_path = Path(cache) if cache is not None else None
        self._cache = _read_cache(self.cache_path) if self.cache_path else {}
        self.asked = 0
        self.cache_hits = 0

    @classmethod
    def load(
        cls,
        model: str | None,
        backend: str | None = None,
        *,
        cache: Path | str | None = None,
        batch_size: int = 8,
        chat: bool | None = None,
        **engine_options: Any,
    ) -> Judge:
        """A judge from a model spec as --model takes it; `engine_options` (n_ctx, dtype...) go to it."""
        engine, ref = resolve_judge(model, backend)
        try:
            loaded = load_backend(engine, ref, **engine_options)
        except MathforgeError as error:
            raise MathforgeError(f"--judge: {error}") from None
        try:
            return cls(loaded, cache=cache, batch_size=batch_size, chat=chat)
        except BaseException:
            loaded.close()
            raise

    def fingerprint(self) -> dict[str, Any]:
        """What makes this judge's verdicts what they are (for run fingerprints)."""
        return {"engine": self._engine, "prompt": self._prompt}

    def key(self, case: JudgeCase) -> str:
        payload = {
            "judge": self._engine,
            "prompt": self._prompt,
            "question": case.question,
            "gold": case.gold,
            "pred": case.pred,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def render(self, case: JudgeCase) -> str:
        """The prompt for one case: the model's chat template, or a plain few-shot completion prompt."""
        question = _clip(case.question, _QUESTION_CHARS)
        gold, pred = _clip(case.gold, _ANSWER_CHARS), _clip(case.pred or "", _ANSWER_CHARS)
        if self.chat:
            messages: list[dict[str, str]] = []
            for index, (q, g, p, answer) in enumerate(_EXAMPLES):
                lead = f"{_INSTRUCTION}\n\n" if index == 0 else ""
                messages += [
                    {"role": "user", "content": lead + _block(q, g, p)},
                    {"role": "assistant", "content": answer},
                ]
            messages.append({"role": "user", "content": _block(question, gold, pred)})
            return self.backend.apply_chat_template(messages)
        shots = "".join(f"{_block(q, g, p)}\nAnswer: {answer}\n\n" for q, g, p, answer in _EXAMPLES)
        return f"{_INSTRUCTION}\n\n{shots}{_block(question, gold, pred)}\nAnswer:"

    def decide_many(
        self, cases: Sequence[JudgeCase | tuple[str, str, str | None, Verdict]]
    ) -> list[JudgeVerdict | None]:
        """One entry per case: None where the rules were certain (or there is no answer), else the judgement.

        Only uncertain verdicts are sent; cached ones and repeats within the call are asked once; new
        judgements are appended to the cache batch by batch.
        """
        to_judge = [case if isinstance(case, JudgeCase) else JudgeCase(*case) for case in cases]
        results: list[JudgeVerdict | None] = [None] * len(to_judge)
        pending: dict[str, list[int]] = {}
        for index, case in enumerate(to_judge):
            if case.verdict.certain or case.pred is None or not case.pred.strip():
                continue
            key = self.key(case)
            if key in self._cache:
                self.cache_hits += 1
                results[index] = _judgement(case, self._cache[key]["raw"], cached=True)
            else:
                pending.setdefault(key, []).append(index)
        keys = list(pending)
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            generations = self._generate([self.render(to_judge[pending[key][0]]) for key in chunk])
            entries = []
            for key, generation in zip(chunk, generations, strict=True):
                raw = generation.completions[0].text if generation.completions else ""
                first = to_judge[pending[key][0]]
                entry: dict[str, Any] = {
                    "key": key,
                    "verdict": parse_judgement(raw),
                    "raw": raw[:_CACHE_RAW_CHARS],
                    "gold": first.gold,
                    "pred": first.pred,
                    "prompt_version": self._prompt["version"],
                }
                self._cache[key] = entry
                entries.append(entry)
                for repeat, index in enumerate(pending[key]):
                    results[index] = _judgement(to_judge[index], entry["raw"], cached=repeat > 0)
            self.asked += len(chunk)
            self._append(entries)
        return results

    def decide(self, question: str, gold: str, pred: str | None, verdict: Verdict) -> JudgeVerdict | None:
        return self.decide_many([JudgeCase(question, gold, pred, verdict)])[0]

    def _generate(self, prompts: list[str]) -> list[Generation]:
        try:
            return self.backend.generate(prompts, self.params)
        except (MathforgeError, RuntimeError, ValueError, IndexError, MemoryError) as error:
            raise MathforgeError(
                f"the judge ({self.backend.name}) failed: {first_line(error)}; "
                "finished items are saved, re-run the same command to resume"
            ) from None

    def _append(self, entries: list[dict[str, Any]]) -> None:
        if self.cache_path is None or not entries:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.cache_path, entries)

    def close(self) -> None:
        if self.owns_backend:
            self.backend.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def judge_rows(judge: Judge, rows: list[dict[str, Any]], verdicts: Sequence[Sequence[Verdict]]) -> None:
    """Judge the uncertain verdicts of sample rows, in place: each row gets `judge` (one entry per completion:
    None where the rules decided, else `JudgeVerdict.record()`), and `correct` takes the judge's verdict where
    it gave one. `verdicts[i][j]` is the rule verdict of completion j of row i."""
    cases = [
        JudgeCase(_question(row), row["gold"], pred, verdict)
        for row, row_verdicts in zip(rows, verdicts, strict=True)
        for pred, verdict in zip(row["preds"], row_verdicts, strict=True)
    ]
    decided = iter(judge.decide_many(cases))
    for row, row_verdicts in zip(rows, verdicts, strict=True):
        judged = [next(decided) for _ in row_verdicts]
        row["judge"] = [d.record() if d else None for d in judged]
        row["correct"] = [d.correct if d else v.correct for d, v in zip(judged, row_verdicts, strict=True)]


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Counts over rows' `judge` entries: asked (uncertain verdicts sent), decided, unparsed, overruled (and
    to which side), cached."""
    entries = [entry for row in rows for entry in (row.get("judge") or []) if entry]
    decided = [e for e in entries if e["verdict"] is not None]
    overruled = [e for e in decided if e["verdict"] != e["rule_correct"]]
    return {
        "asked": len(entries),
        "decided": len(decided),
        "unparsed": len(entries) - len(decided),
        "overruled": len(overruled),
        "overruled_to_correct": sum(e["verdict"] for e in overruled),
        "overruled_to_wrong": sum(not e["verdict"] for e in overruled),
        "cached": sum(bool(e.get("cached")) for e in entries),
    }


def rule_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with `correct` as the rules alone decided it (for comparing scores with and without the judge)."""
    out = []
    for row in rows:
        entries = row.get("judge") or []
        if any(entries):
            rule = [e["rule_correct"] if e else c for e, c in zip(entries, row["correct"], strict=True)]
            row = {**row, "correct": rule}
        out.append(row)
    return out


def _question(row: dict[str, Any]) -> str:
    choices = row.get("choices")
    if not choices:
        return row["question"]
    options = ", ".join(f"({chr(ord('A') + i)}) {text}" for i, text in enumerate(choices))
    return f"{row['question']}\nOptions: {options}"


def _block(question: str, gold: str, pred: str) -> str:
    return f"Problem: {question}\nReference answer: {gold}\nStudent's answer: {pred}\n{_ASK}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _judgement(case: JudgeCase, raw: str, cached: bool) -> JudgeVerdict:
    # The verdict is parsed from the stored text each time, so a better parser improves cached judgements too.
    return JudgeVerdict(parse_judgement(raw), case.verdict.correct, case.verdict.rule, raw, cached)


def _has_chat_template(backend: Backend) -> bool:
    try:
        backend.apply_chat_template([{"role": "user", "content": "1+1?"}])
    except Exception:  # no template (a base model), or one that rejects the probe
        return False
    return True


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Cached judgements by key; lines that do not parse (a torn line) are skipped."""
    try:
        rows = read_resumable(path, skip_bad=True)
    except OSError as error:
        raise MathforgeError(f"judge cache {path}: {error.strerror or error}") from None
    return {entry["key"]: entry for entry in rows if _is_entry(entry)}


def _is_entry(entry: object) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(entry.get("raw"), str)
