"""`mathforge score` end to end with the real command: the fields it writes, resuming, and one-line errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_in_process

from mathforge.backends.hf import HFBackend
from mathforge.scoring import score_file

ROWS = [
    {"id": 0, "text": "Question: What is 3 + 4?\nAnswer: 3 + 4 = 7. The answer is 7."},
    {"id": 1, "text": "12 - 5 = 7", "tokens": "replaced"},
    {"id": 2, "text": ""},
    {"id": 3, "text": "Question: 6 * 7 = ?\nAnswer: 42", "meta": {"source": "arith"}},
    {"id": 4, "text": "x"},
    {"id": 5, "text": "The answer is 19."},
]


def _mathforge(*args: str) -> subprocess.CompletedProcess:
    # transformers draws a "Loading weights" bar on stderr while the hf engine loads, whatever --quiet says.
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


def _write(path: Path, rows: list[dict], blank_after: int | None = None) -> Path:
    lines = [json.dumps(row) for row in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")  # blank lines are skipped, and do not shift the rows' order
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _summary(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_score_writes_tokens_nll_ppl_and_resumes(tiny_llama: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "texts.jsonl", ROWS, blank_after=2)
    common = ["--model", str(tiny_llama), "--batch-size", "2", "--json", "--quiet"]
    summary = _summary(_mathforge("score", str(source), *common))
    out = tmp_path / "texts.scored.jsonl"  # the default: beside the input
    assert summary["out"] == str(out) and summary["rows"] == 6 and summary["scored_now"] == 6
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == list(range(6))
    backend = HFBackend(str(tiny_llama))
    expected = backend.score([row["text"] for row in ROWS])
    backend.close()
    for source_row, row, scores in zip(ROWS, rows, expected, strict=True):
        assert {key: row[key] for key in source_row if key != "tokens"} == {
            key: value for key, value in source_row.items() if key != "tokens"
        }
        assert row["tokens"] == scores.count  # an input field of the same name is replaced
        if scores.count:
            assert row["nll"] == pytest.approx(scores.nll, abs=1e-5)
            assert row["ppl"] == pytest.approx(math.exp(row["nll"]))
        else:  # the empty text, and "x": one token, which nothing predicts (the tiny tokenizer adds no BOS)
            assert row["nll"] is None and row["ppl"] is None
    tokens = sum(row["tokens"] for row in rows)
    assert summary["tokens"] == tokens > 0
    total = sum(row["nll"] * row["tokens"] for row in rows if row["tokens"])
    assert summary["nll"] == pytest.approx(total / tokens) and summary["ppl"] == pytest.approx(
        math.exp(total / tokens)
    )
    assert summary["model"]["backend"] == "hf" and summary["tokens_per_second"] > 0

    # Resume: an output holding the first 4 rows (as a killed run leaves it, with a torn last line) gets the
    # last 2 scored, and ends as the one-shot run's output.
    partial = tmp_path / "partial.jsonl"
    whole = out.read_text(encoding="utf-8").splitlines(keepends=True)
    partial.write_text("".join(whole[:4]) + whole[4][:10], encoding="utf-8")
    # The resumes in this process (the first run above was the subprocess): it spares two imports of torch.
    resumed = _summary(run_in_process("score", str(source), *common, "--out", str(partial)))
    assert (resumed["resumed"], resumed["scored_now"], resumed["rows"]) == (4, 2, 6)
    assert partial.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    assert {key: resumed[key] for key in ("tokens", "nll", "ppl")} == {
        key: summary[key] for key in ("tokens", "nll", "ppl")
    }
    # Done: nothing is scored again.
    again = _summary(run_in_process("score", str(source), *common, "--out", str(partial)))
    assert (again["resumed"], again["scored_now"]) == (6, 0)


def test_resume_keeps_the_rows_already_written(tiny_llama: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "texts.jsonl", ROWS)
    out = tmp_path / "scored.jsonl"
    # Rows an earlier run wrote, with values no model gives: kept as they are, not scored again.
    earlier = [{**row, "tokens": 1, "nll": 123.0, "ppl": math.exp(123.0)} for row in ROWS[:3]]
    _write(out, earlier)
    summary = score_file(source, str(tiny_llama), out=out, batch_size=2, show_progress=False)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[:3] == earlier and [row["id"] for row in rows] == list(range(6))
    assert all(row["nll"] != 123.0 for row in rows[3:]) and summary["scored_now"] == 3


@pytest.mark.parametrize(
    ("lines", "args", "pattern"),
    [
        (['{"text": "a b"}', '{"text": "c"}', '{"body": "d"}'], [], r"texts\.jsonl:3: no field 'text'"),
        (['{"text": "a b"}', "", '{"text": 7}'], [], r"texts\.jsonl:3: field 'text' is int, not a string$"),
        (['{"text": "a b"}', '{"text": "c"'], [], r"texts\.jsonl:2: malformed JSON line"),
        (
            ['{"body": "a b"}', '["body"]'],
            ["--field", "body"],
            r"texts\.jsonl:2: expected a JSON object, got list$",
        ),
        ([], [], r"texts\.jsonl: no rows to score$"),
        (['{"text": "a b"}'], ["--batch-size", "0"], r"invalid option --batch-size: Input should be greater than or equal to 1$"),
        (['{"text": "a b"}'], ["--n-ctx", "512"], r"--n-ctx is not an option of the hf engine \(its options: --dtype, --device, --revision\)$"),
    ],
)
def test_bad_input_is_one_line_with_file_and_line(
    tiny_llama: Path, tmp_path: Path, lines: list[str], args: list[str], pattern: str
) -> None:
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    result = _mathforge("score", str(source), "--model", str(tiny_llama), "--quiet", *args)
    assert_one_line_error(result, pattern)
    assert not (tmp_path / "texts.scored.jsonl").exists()


def test_an_output_of_another_file_is_refused(tiny_llama: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "texts.jsonl", ROWS)
    out = _write(tmp_path / "other.jsonl", [{"text": "something else", "tokens": 2, "nll": 1.0, "ppl": 2.7}])
    result = _mathforge("score", str(source), "--model", str(tiny_llama), "--out", str(out))
    assert_one_line_error(
        result, r"other\.jsonl:1: not the scoring of .*texts\.jsonl:1 \(another file or --field\?\)"
    )
    result = _mathforge("score", str(source), "--model", str(tiny_llama), "--out", str(source))
    assert_one_line_error(result, r"--out .*texts\.jsonl is the input file")


def test_a_text_too_long_for_the_model_names_its_line(tiny_llama: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "texts.jsonl", [ROWS[0], ROWS[1], {"id": 9, "text": "1 + 2 = 3. " * 1500}])
    result = _mathforge("score", str(source), "--model", str(tiny_llama), "--quiet")
    assert_one_line_error(result, r"texts\.jsonl:3: a text of \d+ tokens exceeds the model's 4096 positions$")


def test_batches_are_the_engines_unless_given(
    tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    score = HFBackend.score

    def recording(self: HFBackend, texts: list[str], contexts: list[str] | None = None) -> list:
        sizes.append(len(texts))
        return score(self, texts, contexts)

    monkeypatch.setattr(HFBackend, "score", recording)
    source = _write(tmp_path / "texts.jsonl", [{"text": f"{n} + {n} = {2 * n}"} for n in range(10)])
    score_file(source, str(tiny_llama), out=tmp_path / "a.jsonl", show_progress=False)
    assert sizes == [HFBackend.score_batch_size, 10 - HFBackend.score_batch_size]
    sizes.clear()
    score_file(source, str(tiny_llama), out=tmp_path / "b.jsonl", batch_size=3, show_progress=False)
    assert sizes == [3, 3, 3, 1]
