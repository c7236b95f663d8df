"""`evaluate()` over a scripted server: completions known to be right, wrong, unanswered and looping, and the
verdicts, answers and metrics they must give (computed by hand below, not by the code under test)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from backends.test_openai_backend import FakeServer, _send, completion_json

from mathforge.backends.base import sample_seed
from mathforge.eval import EvalConfig, evaluate

SEED = 3
# (question, gold, [completion of sample 0, completion of sample 1]); finish "length" for the loop.
ITEMS = [
    (
        "Ducks lay 16 eggs and she keeps none.",
        "16",
        ["She sells 16 eggs. The answer is 16.", "The answer is 16."],
    ),
    ("Three robes need how many bolts?", "3", ["It takes 4 bolts. The answer is 4.", "So 2 + 1 = 3 bolts."]),
    ("How much profit did Josh make?", "70000", ["I cannot tell from the question.", "1\n" * 80]),
    ("How many meters does James run a week?", "540", ["The answer is 540.", "The answer is 5400."]),
]


def _write_data(root: Path) -> Path:
    folder = root / "data" / "gsm8k"
    folder.mkdir(parents=True)
    rows = [{"question": q, "answer": f"Worked out.\n#### {gold}"} for q, gold, _ in ITEMS]
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root / "data"


def _script() -> dict[int, tuple[str, str]]:
    """The server's answer for each seed mathforge sends: sample s of item i gets seed sample_seed(SEED, i, s)."""
    script = {}
    for position, (_, _, completions) in enumerate(ITEMS):
        for sample, text in enumerate(completions):
            script[sample_seed(SEED, position, sample)] = (
                text,
                "length" if text.startswith("1\n") else "stop",
            )
    return script


def test_verdicts_and_metrics_of_known_completions(tmp_path: Path) -> None:
    script = _script()

    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        text, finish = script[fake.bodies[n]["seed"]]
        _send(handler, 200, completion_json(text, finish, tokens=len(text.split())))

    with FakeServer(answer) as fake:
        config = EvalConfig.build(
            benchmarks=["gsm8k"],
            data_dir=_write_data(tmp_path),
            prompt="zero-shot",
            backend="openai",
            model="fake",
            base_url=fake.base_url,
            n=2,
            temperature=0.7,
            seed=SEED,
            out=tmp_path / "runs",
        )
        (result,) = evaluate(config, show_progress=False)

    rows = [json.loads(line) for line in (result.path / "samples.jsonl").read_text().splitlines()]
    assert [row["correct"] for row in rows] == [[True, True], [False, True], [False, False], [True, False]]
    assert [row["preds"] for row in rows] == [["16", "16"], ["4", "3"], [None, None], ["540", "5400"]]
    assert rows[2]["finish_reasons"] == ["stop", "length"]
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["n"] == 4
    assert metrics["acc"] == 50.0  # mean share of right samples: (1 + 1/2 + 0 + 1/2) / 4
    assert metrics["no_answer"] == 25.0  # item 3 answers nothing in either sample
    assert metrics["pass@1"] == 50.0
    assert metrics["pass@2"] == 75.0  # items 1, 2 and 4 have a right sample
    assert metrics["maj@1"] == 50.0  # the first samples of items 1 and 4 are right
    # Item 2's tie (4 vs 3) goes to the answer seen first, 4 (wrong); item 4's (540 vs 5400) to 540 (right).
    assert metrics["maj@2"] == 50.0
    assert metrics["finish_reasons"] == {"stop": 7, "length": 1, "loop": 0}
    assert result.metrics == metrics


def test_a_loop_stopped_early_keeps_its_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same looping completion, streamed: stopped at the loop by default, decoded to the budget with
    --no-stop-on-loop; the verdicts and answers agree, and metrics.json counts the stop."""
    from backends.test_openai_loops import LOOP, Script

    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text(json.dumps({"question": "3 + 4?", "answer": "#### 7"}) + "\n")
    runs, paths = {}, {}
    # True and False into two directories; None: the run made without stopping, repeated with it.
    for stop, out in ((True, "stopped"), (False, "full"), (None, "full")):
        script = Script(LOOP, finish="length")
        with script.serve() as fake:
            config = EvalConfig.build(
                benchmarks=["gsm8k"],
                data_dir=tmp_path / "data",
                prompt="zero-shot",
                backend="openai",
                model="fake",
                base_url=fake.base_url,
                stop_on_loop=stop is not False,
                out=tmp_path / out,
            )
            (result,) = evaluate(config, show_progress=False)
        paths[stop] = result.path
        row = json.loads((result.path / "samples.jsonl").read_text())
        runs[stop] = (row, result.metrics)
    (stopped, stopped_metrics), (full, full_metrics) = runs[True], runs[False]
    assert stopped["finish_reasons"] == ["loop"] and full["finish_reasons"] == ["length"]
    assert stopped["tokens"][0] < full["tokens"][0] == len(LOOP)
    assert (stopped["preds"], stopped["correct"]) == (full["preds"], full["correct"])
    assert stopped_metrics["finish_reasons"]["loop"] == 1 and stopped_metrics["stop_on_loop"] is True
    assert full_metrics["finish_reasons"]["loop"] == 0 and full_metrics["stop_on_loop"] is False
    # Stopping loops changes no verdict, so it is not part of the run: the run made without it resumes.
    assert paths[None] == paths[False]
    assert f"resuming: 1 of 1 gsm8k items done ({paths[False]})" in capsys.readouterr().err
