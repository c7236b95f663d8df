"""Bad input gives one line on stderr naming what is wrong, exit status 2, and no traceback."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def _gsm8k_dir(tmp_path: Path, rows: str) -> Path:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text(rows)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (
            ["eval", "--bench", "gsm9k"],
            r"unknown benchmark 'gsm9k' \(did you mean gsm8k\?\); known benchmarks: arith",
        ),
        (["eval", "--bench", "minerva_math"], r"ambiguous.*math500.*ocw"),
        (["eval", "--model", "nowhere/model.gguf"], r"model file not found: nowhere/model.gguf"),
        (["eval", "--model", "./no-such-dir"], r"model path not found: ./no-such-dir"),
        (["eval", "--temperature", "-1"], r"--temperature: Input should be greater than or equal to 0"),
        (["eval", "--n", "4"], r"n > 1 needs sampling: set --temperature above 0"),
        (["eval", "--n", "0"], r"--n: Input should be greater than or equal to 1"),
        (["eval", "--limit", "abc"], r"Invalid value for '--limit'"),
        (["eval", "--k", "1,x", "--n", "2", "--temperature", "1"], r"--k: expected comma-separated integers"),
        (["eval", "--backend", "vllm-nope"], r"--backend: must be one of llamacpp, hf, vllm, openai"),
        (["eval", "--prompt", "socratic"], r"--prompt: must be one of zero-shot, few-shot, chat, custom"),
        (["eval", "--no-such-option"], r"No such option: --no-such-option"),
        (["eval", "--data-dir", "/nonexistent-dir"], r"--data-dir: no such directory"),
        (["report", "/nonexistent-runs"], r"no such directory"),
        (["eval", "--stop", ""], r"--stop: an empty stop string would stop every completion"),
        (["eval", "--seed", "-1"], r"--seed: Input should be greater than or equal to 0"),
        (["eval", "--prompt", "custom"], r"--prompt custom needs --prompt-template FILE"),
        (["eval", "--prompt-file", "/nonexistent.md", "--limit", "1"], r"--prompt-file not found"),
        (
            ["eval", "--model", "Qwen/Qwen2.5-Math-1.5B"],
            r"cannot load model 'Qwen/Qwen2.5-Math-1.5B' .*offline\?",
        ),
        (["eval", "--extractor", "psychic", "--limit", "1"], r"--extractor: must be one of"),
    ],
)
def test_bad_options(args: list[str], pattern: str) -> None:
    assert_one_line_error(_run(*args), pattern)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["eval", "--bench", "gsm8"], r"unknown benchmark 'gsm8' \(did you mean gsm8k\?\); known benchmarks: "),
        (["eval", "--bench", "arith,MATH50"], r"unknown benchmark 'MATH50' \(did you mean math500\?\)"),
        (["eval", "--prompt", "few-shoot"], r"--prompt: must be one of .*; got 'few-shoot' \(did you mean few-shot\?\)$"),
        (["eval", "--backend", "lamacpp"], r"--backend: must be one of .*; got 'lamacpp' \(did you mean llamacpp\?\)$"),
        (["regrade", "{file}", "--bench", "gsm8k", "--format", "lm_eval"], r"--format: .*; got 'lm_eval' \(did you mean lm-eval\?\)$"),
        (["regrade", "{file}", "--bench", "svmp"], r"unknown benchmark 'svmp' \(did you mean svamp\?\)"),
        # Nothing close: no guess.
        (["eval", "--bench", "zzz"], r"unknown benchmark 'zzz'; known benchmarks: arith"),
        (["eval", "--backend", "tensorrt"], r"--backend: must be one of .*; got 'tensorrt'$"),
    ],
)  # fmt: skip
def test_unknown_names_suggest_the_closest(tmp_path: Path, args: list[str], pattern: str) -> None:
    file = tmp_path / "in.jsonl"
    file.write_text('{"idx": 0, "question": "q", "gt": "1", "code": ["1"]}\n')
    assert_one_line_error(_run(*(arg.format(file=file) for arg in args)), pattern)


_NO_TOKENIZER = (
    r"no tokenizer files \(tokenizer.json, tokenizer.model, tokenizer_config.json or vocab files\)"
)
_NO_WEIGHTS = r"no weights \(\*.safetensors, pytorch_model\*.bin or a .gguf\)"


def test_model_directory_without_model_files_says_what_is_missing(tmp_path: Path) -> None:
    # Not transformers' "Couldn't instantiate the backend tokenizer" and a hub hint: the directory is local.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(
        _run("eval", "--model", str(empty), "--backend", "hf", "--limit", "1", "--out", str(tmp_path)),
        rf"cannot load model directory {re.escape(str(empty))}: it has no config.json, {_NO_TOKENIZER}, {_NO_WEIGHTS}$",
    )


def test_model_directory_without_weights(tiny_llama: Path, tmp_path: Path) -> None:
    unweighted = tmp_path / "unweighted"
    shutil.copytree(tiny_llama, unweighted, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    assert_one_line_error(
        _run("eval", "--model", str(unweighted), "--limit", "1", "--out", str(tmp_path)),
        rf"cannot load model directory {re.escape(str(unweighted))}: it has {_NO_WEIGHTS}$",
    )


def test_malformed_jsonl_names_file_and_line(tmp_path: Path, gemma_gguf: Path) -> None:
    data = _gsm8k_dir(tmp_path, '{"question": "q", "answer": "#### 1"}\n{"question": \n')
    assert_one_line_error(
        _run("eval", "--bench", "gsm8k", "--data-dir", str(data), "--prompt", "zero-shot"),
        r"gsm8k/test.jsonl:2: malformed JSON line",
    )


def test_missing_field_names_file_line_and_field(tmp_path: Path, gemma_gguf: Path) -> None:
    data = _gsm8k_dir(
        tmp_path, '{"question": "q", "answer": "#### 1"}\n{"problem": "q", "answer": "#### 2"}\n'
    )
    assert_one_line_error(
        _run("eval", "--bench", "gsm8k", "--data-dir", str(data), "--prompt", "zero-shot"),
        r"gsm8k/test.jsonl:2: missing field 'question'",
    )


@pytest.mark.parametrize("prompt", [[], ["--prompt", "zero-shot"]])
def test_an_empty_benchmark_file_is_an_error_not_a_result(
    tmp_path: Path, gemma_gguf: Path, prompt: list[str]
) -> None:
    """With the default few-shot prompt too: the test split is checked before anything looks for exemplars
    (gsm8k's come from a train file this data dir does not have)."""
    data = _gsm8k_dir(tmp_path, "\n")
    out = tmp_path / "runs"
    assert_one_line_error(
        _run("eval", "--bench", "gsm8k", "--data-dir", str(data), "--out", str(out), *prompt),
        rf"{re.escape(str(data / 'gsm8k' / 'test.jsonl'))}: no items in the test split of 'gsm8k'$",
    )
    assert not out.exists()  # no run directory, so no "n 0" run for `report` to find


def test_hub_unreachable_offline(gemma_gguf: Path) -> None:
    assert_one_line_error(
        _run("eval", "--bench", "gsm8k", "--prompt", "zero-shot"),
        r"cannot load openai/gsm8k .*HF hub.*--data-dir",
    )


def test_chat_on_base_model_says_so(gemma_gguf: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        _run("eval", "--prompt", "chat", "--limit", "1", "--out", str(tmp_path)),
        r"has no chat template \(a base model\?\)",
    )


def test_benchmarks_command_lists_registry() -> None:
    result = _run("benchmarks")
    assert result.returncode == 0
    for name in ("arith", "gsm8k", "math500", "ocw", "cn_middle_school", "carp_en"):
        assert name in result.stdout


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mathforge"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "eval" in result.stdout and "report" in result.stdout


def test_out_that_is_a_file(tmp_path: Path, gemma_gguf: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert_one_line_error(_run("eval", "--limit", "1", "--out", str(blocker)), r"a-file.*Not a directory")


def test_prompt_file_not_utf8(tmp_path: Path, gemma_gguf: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"Question: caf\xe9?\nAnswer: 1\n")
    assert_one_line_error(
        _run("eval", "--limit", "1", "--prompt-file", str(bad), "--out", str(tmp_path)),
        r"prompt file: .*bad.md is not UTF-8 text",
    )


def test_cuda_device_without_gpu(tiny_llama: Path) -> None:
    import torch

    if torch.cuda.is_available():  # on a GPU machine the option is valid: check the parse error instead
        assert_one_line_error(
            _run("eval", "--model", str(tiny_llama), "--device", "gpu0"), r"--device: not a torch device"
        )
    else:
        assert_one_line_error(
            _run("eval", "--model", str(tiny_llama), "--device", "cuda"), r"sees no CUDA GPU"
        )
