"""`mathforge merge`: a real peft LoRA (non-zero B, so the adapter changes the logits) merged into a tiny Llama,
saved, loaded back by transformers, and compared with the unmerged base + adapter; one-line errors for an
adapter whose base does not match, and an output directory that holds something else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import assert_one_line_error

from mathforge.errors import MathforgeError
from mathforge.train.merge import REPORT, MergeOptions, merge_adapter

TEXT = "Question: Tom has 7 boxes of 12 pens. Solution: 7 * 12 = 84. The answer is 84."


def _save_adapter(base_ref: str, base: Any, directory: Path, targets: Any, b_std: float) -> Path:
    """A LoRA with random (not zero) B, saved as `train` saves it: peft's files plus mathforge_base.json."""
    import torch
    from peft import LoraConfig, get_peft_model

    from mathforge.io import write_json_atomic
    from mathforge.train.models import base_identity

    torch.manual_seed(1)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: the adapter would change nothing
                parameter.normal_(std=b_std)
    model.save_pretrained(directory)
    write_json_atomic(directory / "mathforge_base.json", base_identity(base_ref, base))
    return directory


def _tiny_adapter(tiny_llama: Path, directory: Path, b_std: float) -> Path:
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return _save_adapter(str(tiny_llama), base, directory, targets, b_std)


@pytest.fixture(scope="module")
def adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA on every projection of the tiny Llama that changes its logits by about 1."""
    return _tiny_adapter(tiny_llama, tmp_path_factory.mktemp("run") / "adapter", b_std=0.2)


def _merge(adapter: Path | str, out: Path, **options: Any) -> dict[str, Any]:
    return merge_adapter(MergeOptions.build(adapter=str(adapter), out=str(out), device="cpu", **options))


def _one_line_error(match: str, adapter: Path | str, out: Path, **options: Any) -> str:
    with pytest.raises(MathforgeError, match=match) as caught:
        _merge(adapter, out, **options)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def _logits(model: Any, tokenizer: Any, text: str = TEXT) -> Any:
    import torch

    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits[0]


def _base_plus_adapter(base: Path, adapter: Path) -> Any:
    """What the merge must equal: peft's unmerged base + adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return PeftModel.from_pretrained(model, str(adapter)).eval()


def test_fp32_merge_equals_base_plus_adapter_when_loaded_back(
    tiny_llama: Path, adapter: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    report = _merge(adapter, out, base=str(tiny_llama), dtype="fp32")

    assert report["max_abs_logit_diff"] < 1e-4 and report["verified"] and report["warning"] is None
    assert report["adapter_effect"] > 0.5  # the check compares something the adapter really changes
    assert report["dtype"] == "float32"
    assert report["tolerance"] == pytest.approx(1e-3 * report["adapter_effect"])
    assert report["base"]["model"] == str(tiny_llama) and report["base_weights"] == "as saved (16 or 32 bits)"
    assert report["lora"]["r"] == 4 and report["lora"]["lora_alpha"] == 8
    assert report["lora"]["target_modules"] == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    assert report["versions"]["peft"] and report["versions"]["transformers"]
    assert json.loads((out / REPORT).read_text()) == report
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("adapter_*"))
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["merged"]  # no scratch directory left

    # Loaded as any transformers user would, on a text the merge did not check.
    tokenizer = AutoTokenizer.from_pretrained(out)
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    combined = _base_plus_adapter(tiny_llama, adapter)
    expected = _logits(combined, tokenizer)
    assert float((_logits(merged, tokenizer) - expected).abs().max()) < 1e-4
    with combined.disable_adapter():
        assert float((_logits(combined, tokenizer) - expected).abs().max()) > 0.05


def test_a_run_directory_as_adapter_finds_its_base_and_dtype_from_the_records(
    tiny_llama: Path, adapter: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(adapter, run / "adapter")
    texts = ["12 + 30 = 42", "The answer is 7."]
    report = _merge(run, tmp_path / "merged", verify_texts=texts)  # no --base, --dtype auto
    assert report["adapter"] == str(run / "adapter") and report["verify_texts"] == texts
    assert report["base"]["model"] == str(tiny_llama)  # from mathforge_base.json
    assert report["dtype"] == "float32"  # the tiny Llama was saved in fp32
    assert report["max_abs_logit_diff"] < 1e-4
    _one_line_error("no adapter_config.json there", tmp_path, tmp_path / "other")


def test_a_bf16_merge_reports_its_larger_difference(tiny_llama: Path, adapter: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    fp32 = _merge(adapter, tmp_path / "fp32", dtype="fp32")
    bf16 = _merge(adapter, tmp_path / "bf16", dtype="bf16")
    assert bf16["dtype"] == "bfloat16"
    assert bf16["max_abs_logit_diff"] > 10 * fp32["max_abs_logit_diff"]
    assert bf16["verified"] and bf16["tolerance"] == pytest.approx(0.5 * bf16["adapter_effect"])
    with safe_open(str(tmp_path / "bf16" / "model.safetensors"), framework="pt") as handle:
        name = next(iter(handle.keys()))
        assert str(handle.get_tensor(name).dtype) == "torch.bfloat16"


def test_a_bf16_merge_that_rounds_away_a_small_adapter_says_so(tiny_llama: Path, tmp_path: Path) -> None:
    small = _tiny_adapter(tiny_llama, tmp_path / "small", b_std=0.0005)
    fp32 = _merge(small, tmp_path / "fp32", dtype="fp32")
    assert fp32["verified"] and fp32["warning"] is None
    # Through the CLI: the model and its report are kept, and the exit status says the check failed.
    out = tmp_path / "bf16"
    result = subprocess.run(
        [sys.executable, "-m", "mathforge.cli", "merge", "--adapter", str(small), "--out", str(out)]
        + ["--dtype", "bf16", "--device", "cpu", "--json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert_one_line_error(result, rf"merge check failed: .*round away.*--dtype fp32.*kept in {out}")
    bf16 = json.loads(result.stdout.strip().splitlines()[-1])
    assert bf16 == json.loads((out / REPORT).read_text(encoding="utf-8"))
    assert not bf16["verified"] and bf16["max_abs_logit_diff"] > bf16["tolerance"]
    assert (out / "model.safetensors").is_file()


def test_an_adapter_for_another_hidden_size_is_one_line(
    adapter: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tiny_models import build_tiny_llama

    narrow = build_tiny_llama(tmp_path_factory.mktemp("narrow-llama"), hidden_size=32)
    unrecorded = tmp_path / "adapter"
    shutil.copytree(adapter, unrecorded)
    (unrecorded / "mathforge_base.json").unlink()  # so that peft's own loading meets the mismatch
    message = _one_line_error("does not fit --base", unrecorded, tmp_path / "out", base=str(narrow))
    assert "size mismatch" in message and str(narrow) in message and str(unrecorded) in message
    assert not (tmp_path / "out").exists()


def test_a_base_with_another_config_is_refused_by_the_recorded_digest(
    tiny_llama: Path, adapter: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Three layers of the same shapes: peft would load the two-layer adapter without a word."""
    from tiny_models import build_tiny_llama

    deeper = build_tiny_llama(tmp_path_factory.mktemp("deeper-llama"), layers=3)
    message = _one_line_error("was trained on", adapter, tmp_path / "out", base=str(deeper))
    assert str(tiny_llama) in message and str(deeper) in message

    unrecorded = tmp_path / "adapter"
    shutil.copytree(adapter, unrecorded)
    (unrecorded / "mathforge_base.json").unlink()
    message = _one_line_error("have no saved weights", unrecorded, tmp_path / "out", base=str(deeper))
    assert "layers.2." in message


def test_an_output_directory_holding_something_else_is_refused_and_an_earlier_merge_replaced(
    adapter: Path, tmp_path: Path
) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    _one_line_error("is not empty and holds no earlier merge", adapter, busy, dtype="fp32")
    assert sorted(path.name for path in busy.iterdir()) == ["notes.txt"]
    _one_line_error("is --adapter's directory", adapter, adapter)

    out = tmp_path / "merged"
    _merge(adapter, out, dtype="fp32")
    (out / "stale.txt").write_text("from the earlier merge")
    report = _merge(adapter, out, dtype="bf16")
    assert report["dtype"] == "bfloat16" and not (out / "stale.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["busy", "merged"]


def test_an_interrupted_merge_leaves_no_output_that_looks_finished(
    adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mathforge.train.merge as merge

    def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt  # Ctrl-C while the saved model is checked: its weights are on disk already

    monkeypatch.setattr(merge, "_saved_logits", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _merge(adapter, tmp_path / "merged", dtype="fp32")
    assert list(tmp_path.iterdir()) == []


def test_merging_onto_a_4bit_base_needs_a_gpu(adapter: Path, tmp_path: Path) -> None:
    _one_line_error("--from-4bit needs a CUDA GPU", adapter, tmp_path / "out", from_4bit=True)
