"""The --judge compare model: parsing, what is sent, the cache, row recording, fingerprints and the CLI.

The judge is the real packaged Gemma 3 270M through llama.cpp; its verdicts need not be smart, so the tests check
the plumbing (and seed the cache file by hand where a test needs a known verdict).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mathforge.backends import Backend, Generation, SamplingParams, load_backend
from mathforge.cli import main
from mathforge.errors import MathforgeError
from mathforge.eval import EvalConfig, evaluate
from mathforge.eval import judge as judge_module
from mathforge.eval.judge import (
    Judge,
    JudgeCase,
    JudgeVerdict,
    default_cache_path,
    judge_rows,
    parse_judgement,
    rule_rows,
    summarize,
)
from mathforge.grading import Verdict, grade

UNCERTAIN = Verdict(False, "unparsed", certain=False)
UNCERTAIN_RIGHT = Verdict(True, "numeric_eval", certain=False)
CERTAIN_RIGHT = Verdict(True, "numeric")
CERTAIN_WRONG = Verdict(False, "mismatch")


class Counting:
    """A real backend, counting what reaches `generate`."""

    def __init__(self, backend: Backend) -> None:
        self.inner = backend
        self.name = backend.name
        self.calls = 0
        self.prompts: list[str] = []

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        self.calls += 1
        self.prompts += prompts
        return self.inner.generate(prompts, params, seed_offsets)

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return self.inner.apply_chat_template(messages)

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def close(self) -> None:
        pass  # the module's Gemma is shared


@pytest.fixture(scope="module")
def gemma_backend(gemma_gguf: Path):
    backend = load_backend("llamacpp", str(gemma_gguf), n_ctx=2048)
    yield backend
    backend.close()


@pytest.fixture
def counting(gemma_backend: Backend) -> Counting:
    return Counting(gemma_backend)


def _judge(backend: Backend, cache: Path | None) -> Judge:
    return Judge(backend, cache=cache, owns_backend=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" Yes", True),
        ("Yes, both are 1/2.", True),
        ("**Yes**", True),
        ("Answer: yes", True),
        ("TRUE", True),
        ("They are equivalent.", True),
        ("\n\n  Yes\nNo", True),
        (" No", False),
        ("No.", False),
        ("no, 0.5 is not 2", False),
        ("False", False),
        ("They are not equivalent.", False),
        ("not mathematically equivalent", False),
        ("Inequivalent", False),
        ("The answers aren't equivalent", False),
        ("I think the answer is yes", True),
        ("", None),
        ("   \n", None),
        ("Maybe", None),
        ("42", None),
        ("yes or no", None),
        ("Nope", None),
    ],
)
def test_parse_judgement(text: str, expected: bool | None) -> None:
    assert parse_judgement(text) is expected


def test_judge_verdict_record_and_correct() -> None:
    kept = JudgeVerdict(None, rule_correct=True, rule="numeric_eval", raw="hmm" * 100, cached=False)
    assert kept.correct is True and not kept.overruled
    assert kept.record() == {
        "verdict": None,
        "rule_correct": True,
        "rule": "numeric_eval",
        "raw": ("hmm" * 100)[:200],
        "cached": False,
    }
    overruled = JudgeVerdict(False, rule_correct=True, rule="numeric_eval", raw=" No", cached=True)
    assert overruled.correct is False and overruled.overruled


def test_only_uncertain_verdicts_are_sent(counting: Counting, tmp_path: Path) -> None:
    judge = _judge(counting, tmp_path / "cache.jsonl")
    assert not judge.chat  # the packaged Gemma is a base model: plain completion prompt
    cases = [
        JudgeCase("What is 1/2?", "\\frac{1}{2}", "0.5", CERTAIN_RIGHT),
        JudgeCase("What is 2+2?", "4", "5", CERTAIN_WRONG),
        JudgeCase("What is 10/2?", "\\frac{10}{", "5", UNCERTAIN),
        JudgeCase("What is 3+3?", "6", None, Verdict(False, "no_answer", certain=False)),
        ("What is 10/2?", "\\frac{10}{", "5", UNCERTAIN),  # a plain tuple, repeating case 2
    ]
    decided = judge.decide_many(cases)
    assert decided[0] is None and decided[1] is None and decided[3] is None
    assert isinstance(decided[2], JudgeVerdict) and isinstance(decided[4], JudgeVerdict)
    assert counting.calls == 1 and len(counting.prompts) == 1 and judge.asked == 1
    prompt = counting.prompts[0]
    assert prompt.endswith(
        "Problem: What is 10/2?\nReference answer: \\frac{10}{\nStudent's answer: 5\n"
        "Are these two answers mathematically equivalent? Answer Yes or No.\nAnswer:"
    )
    assert prompt.count("Answer Yes or No.") == 1 + len(judge_module._EXAMPLES)  # few-shot examples first
    first, repeat = decided[2], decided[4]
    assert first.rule == "unparsed" and first.rule_correct is False and not first.cached
    assert repeat.cached and repeat.raw == first.raw and repeat.verdict == first.verdict
    assert first.verdict == parse_judgement(first.raw)
    assert first.correct == (first.verdict if first.verdict is not None else False)


def test_cache_hit_on_second_call_and_second_run(counting: Counting, tmp_path: Path) -> None:
    cache = tmp_path / "judge-cache" / "gemma.jsonl"
    case = JudgeCase("What is 0.1 + 0.2?", "0.3", "\\frac{3}{10}", UNCERTAIN_RIGHT)
    judge = _judge(counting, cache)
    first = judge.decide_many([case])[0]
    assert counting.calls == 1 and not first.cached
    again = judge.decide_many([case])[0]
    assert counting.calls == 1 and again.cached and judge.cache_hits == 1
    # A new Judge (a re-run, a resumed run, a regrade) reads the file and asks nothing.
    rerun = _judge(counting, cache)
    hit = rerun.decide_many([case])[0]
    assert counting.calls == 1 and rerun.asked == 0 and rerun.cache_hits == 1
    assert hit.cached and (hit.verdict, hit.raw) == (first.verdict, first.raw)
    entry = json.loads(cache.read_text().splitlines()[0])
    assert entry["gold"] == "0.3" and entry["pred"] == "\\frac{3}{10}" and entry["raw"] == first.raw
    # Another prediction, or another judge prompt version, is another question.
    rerun.decide(case.question, case.gold, "0.30000001", UNCERTAIN)
    assert counting.calls == 2


def test_prompt_version_is_part_of_the_key(
    counting: Counting, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache.jsonl"
    case = JudgeCase("q", "1", "x", UNCERTAIN)
    old = _judge(counting, cache)
    old.decide_many([case])
    monkeypatch.setattr(judge_module, "PROMPT_VERSION", judge_module.PROMPT_VERSION + 1)
    new = _judge(counting, cache)
    assert new.key(case) != old.key(case) and new.fingerprint() != old.fingerprint()
    new.decide_many([case])
    assert counting.calls == 2


def test_cache_survives_a_torn_line(counting: Counting, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    known = JudgeCase("What is 6*7?", "42", "6 \\cdot 7", UNCERTAIN)
    _judge(counting, cache).decide_many([known])
    with cache.open("ab") as handle:  # a kill in the middle of an append
        handle.write(b'{"key": "abc", "verdict": tr')
    judge = _judge(counting, cache)
    assert judge.decide_many([known])[0].cached and counting.calls == 1
    other = JudgeCase("What is 6*7?", "42", "41+1", UNCERTAIN)
    judge.decide_many([other])
    assert counting.calls == 2
    lines = cache.read_bytes().split(b"\n")
    assert lines[-1] == b"" and lines[1] == b'{"key": "abc", "verdict": tr'  # the new entry got its own line
    assert json.loads(lines[2])["pred"] == "41+1"
    fresh = _judge(counting, cache)
    assert all(d.cached for d in fresh.decide_many([known, other])) and counting.calls == 2


def test_judge_rows_records_and_overrules(counting: Counting, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    judge = _judge(counting, cache)
    rows = [
        {"id": "0", "question": "What is 10/2?", "gold": "\\frac{10}{", "preds": ["5", "7"], "correct": []},
        {"id": "1", "question": "What is 1+1?", "gold": "2", "preds": ["2"], "correct": [True]},
    ]
    # A judgement already in the cache file (written by an earlier run) decides "5" without generating.
    seeded = judge.key(JudgeCase(rows[0]["question"], rows[0]["gold"], "5", UNCERTAIN))
    cache.write_text(json.dumps({"key": seeded, "verdict": True, "raw": " Yes"}) + "\n")
    judge = _judge(counting, cache)
    verdicts = [[UNCERTAIN, CERTAIN_WRONG], [CERTAIN_RIGHT]]
    judge_rows(judge, rows, verdicts)
    assert counting.calls == 0
    assert rows[0]["judge"] == [
        {"verdict": True, "rule_correct": False, "rule": "unparsed", "raw": " Yes", "cached": True},
        None,
    ]
    assert rows[0]["correct"] == [True, False]  # the judge overruled the uncertain rule verdict
    assert rows[1]["judge"] == [None] and rows[1]["correct"] == [True]
    assert summarize(rows) == {
        "asked": 1,
        "decided": 1,
        "unparsed": 0,
        "overruled": 1,
        "overruled_to_correct": 1,
        "overruled_to_wrong": 0,
        "cached": 1,
    }
    assert [r["correct"] for r in rule_rows(rows)] == [[False, False], [True]]
    no_judge = [{"correct": [True]}]  # the rows of a run without a judge
    assert summarize(no_judge) == dict.fromkeys(summarize(rows), 0)


def test_judge_load_errors_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(MathforgeError, match=r"^--judge: model file not found: .*missing\.gguf$"):
        Judge.load(str(tmp_path / "missing.gguf"))
    with pytest.raises(MathforgeError, match=r"^--judge: the llamacpp backend needs a \.gguf file"):
        Judge.load("some/hub-model", "llamacpp")


def test_chat_models_get_their_chat_template(tiny_llama: Path) -> None:
    with Judge.load(str(tiny_llama), cache=None, device="cpu") as judge:
        assert judge.chat and judge.fingerprint()["prompt"]["format"] == "chat"
        prompt = judge.render(JudgeCase("What is 2+2?", "4", "four", UNCERTAIN))
        assert prompt.startswith("<s><|user|>\nDecide whether") and prompt.endswith("<|assistant|>\n")
        assert prompt.count("<|assistant|>\n") == len(judge_module._EXAMPLES) + 1
        decided = judge.decide("What is 2+2?", "4", "four", UNCERTAIN)
        assert decided is not None and decided.verdict == parse_judgement(decided.raw)


def test_config_validates_judge_options() -> None:
    assert EvalConfig.build(judge="gemma3-270m", judge_backend="hf").judge_backend == "hf"
    with pytest.raises(MathforgeError, match=r"invalid option --judge-backend: must be one of llamacpp, hf"):
        EvalConfig.build(judge="gemma3-270m", judge_backend="vllm-nope")
    with pytest.raises(MathforgeError, match=r"--judge-backend needs --judge MODEL"):
        EvalConfig.build(judge_backend="hf")
    with pytest.raises(MathforgeError, match=r"invalid option --judge: expected a model"):
        EvalConfig.build(judge=" ")


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--judge", "nowhere/judge.gguf"], r"--judge: model file not found: nowhere/judge\.gguf"),
        (["--judge", "./no-such-judge"], r"--judge: model path not found: \./no-such-judge"),
        (["--judge", "gemma3-270m", "--judge-backend", "x"], r"--judge-backend: must be one of llamacpp, hf"),
        (["--judge-backend", "hf"], r"--judge-backend needs --judge MODEL"),
    ],
)
def test_cli_bad_judge_is_one_line(args: list[str], pattern: str, tmp_path: Path) -> None:
    result = _run_cli("eval", "--limit", "1", "--out", str(tmp_path), *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.search(r"^mathforge: error: .*" + pattern, lines[0]), lines[0]
    assert not (tmp_path / "gemma3-270m").exists()  # nothing was evaluated


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_eval_with_judge_end_to_end(gemma_gguf: Path, tmp_path: Path) -> None:
    """`mathforge eval --judge gemma3-270m` on a tiny local benchmark whose first gold the rules cannot parse."""
    data = tmp_path / "data"
    (data / "math500").mkdir(parents=True)
    items = [
        {"problem": "What is 10 divided by 2?", "answer": "\\frac{10}{"},
        {"problem": "What is 3 plus 4?", "answer": "7"},
    ]
    (data / "math500" / "test.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    template = tmp_path / "short.jinja"
    template.write_text("Question: {{ question }}\nAnswer: The answer is")  # a short answer on one line
    out = tmp_path / "runs"
    options = dict(
        benchmarks=["math500"],
        data_dir=data,
        prompt_template=template,
        stop=["\n"],
        max_new_tokens=16,
        out=out,
    )
    main(  # in this process: the CLI as users call it, without starting Python, Gemma and SymPy again
        [
            "eval",
            "--judge",
            "gemma3-270m",
            "--bench",
            "math500",
            "--data-dir",
            str(data),
            "--prompt-template",
            str(template),
            "--stop",
            "\\n",
            "--max-new-tokens",
            "16",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    run_dir = next(out.glob("gemma3-270m/math500__custom__*"))
    rows = _rows(run_dir)
    assert len(rows) == 2 and all(len(row["judge"]) == 1 for row in rows)
    # Exactly the completions the real grader leaves uncertain went to the judge.
    uncertain = []
    for row in rows:
        verdict = grade(row["preds"][0], row["gold"], "expression")
        entry = row["judge"][0]
        assert (entry is not None) == (not verdict.certain), (row["preds"], row["gold"], verdict)
        if entry is None:
            assert row["correct"] == [verdict.correct]
        else:
            uncertain.append(row)
            assert entry["rule"] == verdict.rule and entry["rule_correct"] == verdict.correct
            assert entry["verdict"] == parse_judgement(entry["raw"]) and entry["cached"] is False
            assert row["correct"] == [entry["verdict"] if entry["verdict"] is not None else verdict.correct]
    assert uncertain, "the unparsable gold should leave the first answer uncertain"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["judge"]["model"] == "gemma3-270m" and metrics["judge"]["asked"] == len(uncertain)
    assert metrics["judge"]["identity"]["backend"] == "llamacpp"
    assert {"overruled", "decided", "unparsed", "cached", "rule_acc"} <= set(metrics["judge"])
    assert metrics["config"]["judge"] == "gemma3-270m"
    assert metrics["fingerprint"]["judge"]["prompt"]["version"] == judge_module.PROMPT_VERSION
    cache = default_cache_path(out, "gemma3-270m")
    assert cache == out / "judge-cache" / "gemma3-270m.jsonl"
    cached_lines = cache.read_text()
    assert len(cached_lines.splitlines()) == len(uncertain)

    # The same run again from scratch: the judge is answered from its cache, and asks nothing.
    again = evaluate(EvalConfig(**options, judge="gemma3-270m", fresh=True), show_progress=False)[0]
    assert again.path == run_dir
    assert [row["judge"] for row in _rows(run_dir)] == [
        [dict(entry, cached=True) if entry else None for entry in row["judge"]] for row in rows
    ]
    assert again.metrics["judge"]["cached"] == len(uncertain)
    assert cache.read_text() == cached_lines

    # Without a judge: another run directory, rows without a `judge` key, no judge in metrics or fingerprint.
    plain = evaluate(EvalConfig(**options), show_progress=False)[0]
    assert plain.path != run_dir and plain.path.name.startswith("math500__custom__")
    assert all("judge" not in row for row in _rows(plain.path))
    assert "judge" not in plain.metrics and "judge" not in plain.metrics["fingerprint"]
    assert [row["completions"] for row in _rows(plain.path)] == [row["completions"] for row in rows]
