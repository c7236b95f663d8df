"""The configuration system: YAML keyed by option names, flags over it, one-line FILE:line errors, engine
options checked against the chosen engine, and a run repeated from its metrics.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error

from mathforge.errors import MathforgeError
from mathforge.eval import EvalConfig


def _mathforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_yaml_keys_are_option_names_with_dashes_or_underscores(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text(
        "bench: gsm8k,math500\nmax_new_tokens: 512\nmax-new-tokens: 256\nk: 1,2\nn: 2\n"
        "temperature: 0.7\nthreads: 3\nstop:\n  - END\n"
    )
    config = EvalConfig.load(file)
    assert config.benchmarks == ["gsm8k", "math500"]
    assert config.max_new_tokens == 256  # the later key of the two spellings
    assert config.k == [1, 2] and config.stop == ["END"]
    assert config.engine_options == {"n_ctx": 4096, "n_threads": 3}


def test_a_repeatable_option_takes_one_string_whole(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text('stop: "\\n\\nQ:, or"\n')
    assert EvalConfig.load(file).stop == ["\n\nQ:, or"]  # escapes decoded as on the command line


def test_flags_override_the_file(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("bench: gsm8k\nlimit: 5\nseed: 1\n")
    config = EvalConfig.load(file, {"limit": 7})
    assert (config.benchmarks, config.limit, config.seed) == (["gsm8k"], 7, 1)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "bench: gsm8k\nmax_new_tokenz: 5\n",
            r"run.yaml:2: unknown key 'max_new_tokenz'; did you mean 'max-new-tokens'\?",
        ),
        ("seed: 1\n\nlimit: many\n", r"run.yaml:3: key 'limit': Input should be a valid integer"),
        ("temperature: -1\n", r"run.yaml:1: key 'temperature': Input should be greater than or equal to 0"),
        ("backend: hf\nn_ctx: 2048\n", r"run.yaml:2: key 'n_ctx': --n-ctx is not an option of the hf engine"),
        (
            "dtype: float8\nbackend: hf\n",
            r"run.yaml:1: key 'dtype': must be one of auto, float32, float16, bfloat16; got 'float8' \(did you mean float32\?\)$",
        ),
        ("bench: [gsm8k\n", r"run.yaml:2: not valid YAML \(expected ',' or '\]'"),
        ("- gsm8k\n", r"run.yaml: expected a mapping of option names to values, got list"),
        ("fresh: true\nconfig: x\n", r"run.yaml:2: unknown key 'config'"),
        ("fresh: true\nengine_options: {n_ctx: 5}\n", r"run.yaml:2: unknown key 'engine_options'"),
    ],
)
def test_bad_config_files_give_file_line_and_key(tmp_path: Path, text: str, pattern: str) -> None:
    file = tmp_path / "run.yaml"
    file.write_text(text)
    with pytest.raises(MathforgeError, match=pattern):
        EvalConfig.load(file)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (
            ["--backend", "hf", "--n-ctx", "2048"],
            r"--n-ctx is not an option of the hf engine \(its options: --dtype, --device, --revision\)",
        ),
        (["--threads", "2", "--backend", "openai"], r"--threads is not an option of the openai engine"),
        (["--base-url", "http://x/v1"], r"--base-url is not an option of the llamacpp engine"),
        (["--dtype", "float16"], r"--dtype is not an option of the llamacpp engine"),
        (
            ["--model", "org/model", "--tensor-parallel-size", "2"],
            r"--tensor-parallel-size is not an option of the hf engine",
        ),
    ],
)
def test_an_option_the_engine_does_not_take_is_an_error(args: list[str], pattern: str) -> None:
    assert_one_line_error(_mathforge("eval", *args), pattern)


def test_config_file_errors_reach_the_command_line(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("bench: arith\nlimt: 2\n")
    assert_one_line_error(
        _mathforge("eval", "--config", str(file)), r"run.yaml:2: unknown key 'limt'; did you mean 'limit'"
    )
    assert_one_line_error(
        _mathforge("eval", "--config", str(tmp_path / "none.yaml")), r"--config: cannot read"
    )


@pytest.mark.slow
def test_a_run_repeats_from_its_metrics_json(tmp_path: Path, gemma_gguf: Path) -> None:
    """`eval --config <run>/metrics.json` is the same run: same directory, nothing generated again."""
    file = tmp_path / "run.yaml"
    file.write_text(f"bench: arith\nlimit: 2\nmax-new-tokens: 24\nn_ctx: 1024\nout: {tmp_path / 'runs'}\n")
    first = _mathforge("eval", "--config", str(file), "--seed", "3", "--fresh", "--quiet")
    assert first.returncode == 0, first.stderr
    [metrics_file] = (tmp_path / "runs").rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["config"]["seed"] == 3 and metrics["config"]["engine_options"]["n_ctx"] == 1024
    samples = (metrics_file.parent / "samples.jsonl").read_bytes()
    again = _mathforge("eval", "--config", str(metrics_file), "--quiet")
    assert again.returncode == 0, again.stderr
    assert list((tmp_path / "runs").rglob("metrics.json")) == [metrics_file]  # the same run directory
    assert (metrics_file.parent / "samples.jsonl").read_bytes() == samples  # resumed: nothing regenerated
    repeated = json.loads(metrics_file.read_text())
    assert repeated["config"] == {**metrics["config"], "fresh": False}  # --fresh is not repeated
    assert repeated["acc"] == metrics["acc"]
    assert EvalConfig.load(metrics_file, {"n_ctx": 2048}).engine_options["n_ctx"] == 2048  # flags win
    # A flag still overrides the file: another seed is another run.
    other = _mathforge("eval", "--config", str(metrics_file), "--seed", "4", "--quiet")
    assert other.returncode == 0, other.stderr
    assert len(list((tmp_path / "runs").rglob("metrics.json"))) == 2


def test_a_saved_config_from_before_engine_options_reads_back(tmp_path: Path) -> None:
    """metrics.json of earlier versions kept every engine's options at the top level of "config"."""
    old = {"benchmarks": ["arith"], "model": None, "backend": None, "dtype": "auto", "device": None,
           "n_ctx": 2048, "n_threads": None, "revision": None, "base_url": None, "concurrency": 8,
           "tensor_parallel_size": 1, "limit": 2, "fresh": True}  # fmt: skip
    file = tmp_path / "metrics.json"
    file.write_text(json.dumps({"benchmark": "arith", "config": old, "fingerprint": {}}, indent=2))
    config = EvalConfig.load(file)
    assert config.engine_options == {"n_ctx": 2048, "n_threads": None} and config.limit == 2
    assert config.fresh is False


def test_a_config_key_of_a_person_is_not_a_saved_run(tmp_path: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text("bench: gsm8k\nconfig: {limit: 3}\n")
    with pytest.raises(MathforgeError, match=r"run.yaml:2: unknown key 'config'"):
        EvalConfig.load(file)


def test_options_of_the_judges_engine_are_the_judges() -> None:
    config = EvalConfig.build(model="x.gguf", judge="org/judge", device="cpu", n_ctx=1024)
    assert config.engine_options == {"n_ctx": 1024, "n_threads": None}
    assert config.judge_engine_options == {"device": "cpu"}
    with pytest.raises(MathforgeError, match=r"--device is not an option of the llamacpp engine"):
        EvalConfig.build(model="x.gguf", device="cpu")


def test_keyword_options_take_flag_names_too() -> None:
    assert EvalConfig.build(bench="gsm8k,math500", threads=2).benchmarks == ["gsm8k", "math500"]
    with pytest.raises(MathforgeError, match=r"unknown option 'benchmark'"):
        EvalConfig.build(benchmark="gsm8k")


def test_regrade_reads_its_options_from_a_file_too(tmp_path: Path) -> None:
    rows = tmp_path / "test_cot_out.jsonl"
    rows.write_text('{"idx": 0, "question": "q", "gt": "1", "code": ["The answer is 1."]}\n')
    config = tmp_path / "regrade.yaml"
    config.write_text("bench: gsm8k\njson: true\n")
    result = _mathforge("regrade", str(rows), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["acc"] == 100.0
    config.write_text("json: true\n")
    assert_one_line_error(
        _mathforge("regrade", str(rows), "--config", str(config)), r"Missing option '--bench'"
    )


def test_a_repeated_run_keeps_its_judges_options_and_takes_saved_ones_only_where_they_fit(
    tmp_path: Path,
) -> None:
    config = EvalConfig.build(model="x.gguf", judge="org/judge", dtype="bfloat16", n_ctx=1024)
    file = tmp_path / "metrics.json"
    file.write_text(json.dumps({"fingerprint": {}, "config": config.model_dump(mode="json")}, indent=2))
    again = EvalConfig.load(file)
    assert again.judge_engine_options == {"dtype": "bfloat16"} and again.engine_options["n_ctx"] == 1024
    # The same run on another engine: the saved llamacpp options do not fit it and are left out, not refused.
    other = EvalConfig.load(file, {"model": "org/other", "revision": "v2"})
    assert other.engine_options == {"dtype": "auto", "device": None, "revision": "v2"}
    assert other.judge_engine_options == {}  # the judge now shares the model's engine


def test_the_judge_never_gets_the_models_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    from mathforge.eval import judge, runner

    loaded: dict[str, object] = {}
    monkeypatch.setattr(judge.Judge, "load", classmethod(lambda cls, *ref, **options: loaded.update(options)))
    config = EvalConfig.build(model="org/model", revision="v2", judge="org/judge", device="cpu")
    runner._load_judge(config, ("hf", "org/judge"), ("hf", "org/model"), backend=None)  # type: ignore[arg-type]
    assert loaded["device"] == "cpu" and loaded["dtype"] == "auto" and "revision" not in loaded
    config = EvalConfig.build(model="m.gguf", judge="org/judge", device="cuda", n_ctx=1024)
    runner._load_judge(config, ("hf", "org/judge"), ("llamacpp", "m.gguf"), backend=None)  # type: ignore[arg-type]
    assert loaded["device"] == "cuda" and "n_ctx" not in loaded
