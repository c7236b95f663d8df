"""Engine-independent backend pieces: model resolution, seeds, stop strings, model identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathforge.backends import resolve_model
from mathforge.backends.base import cut_at_stop, sample_seed
from mathforge.backends.identity import directory_sha256
from mathforge.errors import MathforgeError
from mathforge.eval import EvalConfig


def test_sample_seeds_are_independent_across_run_seeds() -> None:
    run0 = {sample_seed(0, item, sample) for item in range(50) for sample in range(8)}
    run1 = {sample_seed(1, item, sample) for item in range(50) for sample in range(8)}
    assert len(run0) == 400 and not run0 & run1  # additive seeds would share most of these
    assert all(0 <= seed < 2**31 for seed in run0)
    assert sample_seed(3, 4, 5) == sample_seed(3, 4, 5)


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("The answer is 4.\nQuestion: next", ("\nQuestion:",), ("The answer is 4.", True)),
        ("a\nProblem: b\nQuestion: c", ("\nQuestion:", "\nProblem:"), ("a", True)),
        ("no stop here", ("\nQuestion:",), ("no stop here", False)),
        ("", ("x",), ("", False)),
    ],
)
def test_cut_at_stop(text: str, stop: tuple[str, ...], expected: tuple[str, bool]) -> None:
    assert cut_at_stop(text, stop) == expected


def test_resolve_model(gemma_gguf: Path, tmp_path: Path) -> None:
    assert resolve_model(None, None) == ("llamacpp", str(gemma_gguf))
    assert resolve_model("gemma3-270m", "hf") == ("hf", str(gemma_gguf))
    assert resolve_model(str(gemma_gguf), None) == ("llamacpp", str(gemma_gguf))
    assert resolve_model("Qwen/Qwen2.5-Math-1.5B", None) == ("hf", "Qwen/Qwen2.5-Math-1.5B")
    assert resolve_model(str(tmp_path), None) == ("hf", str(tmp_path))
    with pytest.raises(MathforgeError, match="the llamacpp backend needs a .gguf file"):
        resolve_model("Qwen/Qwen2.5-Math-1.5B", "llamacpp")
    with pytest.raises(MathforgeError, match="model file not found"):
        resolve_model(str(tmp_path / "missing.gguf"), None)


def test_directory_hash_ignores_subfolders(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    before = directory_sha256(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "events.log").write_text("training log")
    assert directory_sha256(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert directory_sha256(tmp_path) != before


def test_stop_option_understands_escapes() -> None:
    assert EvalConfig.build(stop=["\\n\\n", "END", "答案", "é\\t", "a\\\\n"]).stop == [
        "\n\n",
        "END",
        "答案",
        "é\t",
        "a\\n",
    ]
