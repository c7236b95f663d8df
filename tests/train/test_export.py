"""`mathforge export`: llama.cpp's own converter (from the llama-cpp-python source setup installs) and quantize
API. A tiny Llama round-trips and its F16 GGUF decodes greedily as transformers does; a Q4_K_M file is K-quantised
by llama.cpp and generates; the packaged Gemma 3 architecture round-trips; an unknown architecture or tokenizer,
an adapter, a missing or mismatched converter are one line each."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from mathforge.backends import Backend, SamplingParams, load_backend
from mathforge.errors import Interrupted, MathforgeError
from mathforge.train.export import (
    QUANTIZED_TYPES,
    ExportOptions,
    converter_dir,
    converter_environment,
    export_gguf,
)

PROMPTS = [
    "Olivia is baking 6 batches of scones.",
    "He drives 55 * 5 = ",
    "Question: How many cups of flour does she need?\nAnswer:",
    "A train travels 120 km in 2 hours. What is its speed?",
]


@pytest.fixture(scope="module")
def tiny_spm_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose tokenizer llama.cpp's converter reads (SentencePiece; the byte-level BPE of
    `tiny_llama` has a pre-tokenizer llama.cpp does not list, see the test below).

    Rows of 256 so that llama.cpp's K-quants apply (their blocks are 256 wide; narrower rows fall back to Q5_0).
    Weights rounded to float16 values, so the F16 file holds exactly the model transformers runs. The output rows
    of the special and byte-fallback tokens are zero, so the model writes only whole pieces: a random model's byte
    tokens make invalid UTF-8, which each engine prints its own way.
    """
    import torch
    from tiny_models import build_tiny_llama_sentencepiece
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = build_tiny_llama_sentencepiece(tmp_path_factory.mktemp("tiny-spm-llama"), hidden_size=256)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory)
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    silent = [i for i, piece in enumerate(pieces) if piece.startswith("<")]  # <unk>, <s>, </s>, <0x00>...
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
        model.lm_head.weight[silent] = 0.0
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_f16(tiny_spm_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("f16") / "tiny.f16.gguf"
    return out, export_gguf(tiny_spm_llama, out, ExportOptions.build(quant="F16", quiet=True))


def llama_cpp(model: Path) -> Backend:
    # One thread: a tiny model gains nothing from more, and llama.cpp's spinning workers slow it tenfold on a
    # machine whose cores are busy with other work.
    return load_backend("llamacpp", str(model), n_threads=1)


def greedy(engine: str, model: Path) -> list[tuple[str, int]]:
    backend = llama_cpp(model) if engine == "llamacpp" else load_backend(engine, str(model))
    try:
        results = backend.generate(PROMPTS, SamplingParams(max_new_tokens=16))
        return [(result.completions[0].text, result.completions[0].tokens) for result in results]
    finally:
        backend.close()


def tensor_types(path: Path) -> Counter[str]:
    import gguf

    return Counter(tensor.tensor_type.name for tensor in gguf.GGUFReader(str(path)).tensors)


def test_f16_gguf_decodes_as_transformers(tiny_spm_llama: Path, tiny_f16: tuple[Path, dict]) -> None:
    out, report = tiny_f16
    assert report["architecture"] == "LlamaForCausalLM" and report["bytes"] == out.stat().st_size
    assert report["quant"] == "F16" and "llama-cpp-python" in report["converter"]
    assert sorted(path.name for path in out.parent.iterdir()) == [out.name]  # no scratch folder left
    assert set(tensor_types(out)) == {"F16", "F32"}  # matrices F16, norms F32, as llama.cpp writes them
    expected = greedy("hf", tiny_spm_llama)
    assert all(text and tokens == 16 for text, tokens in expected)
    assert greedy("llamacpp", out) == expected


def test_transformers_parses_a_gguf_file_once_per_load(
    tiny_f16: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers opens a GGUF file for the config, the tokenizer and the weights; gguf-py parses it once (25 s
    each for the packaged Gemma's vocabulary), and gguf is left as it was."""
    import gguf

    from mathforge.train.models import load_model, load_tokenizer

    parsed: list[str] = []

    class CountingReader(gguf.GGUFReader):
        def __init__(self, path: str, mode: str = "r") -> None:
            parsed.append(str(path))
            super().__init__(path, mode)

    monkeypatch.setattr(gguf, "GGUFReader", CountingReader)
    gguf_path = str(tiny_f16[0])
    backend = load_backend("hf", gguf_path, device="cpu")  # the tokenizer and the model
    try:
        assert backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=4))[0].completions[0].tokens == 4
    finally:
        backend.close()
    assert parsed == [gguf_path]
    load_model(gguf_path, dtype="float32", device="cpu")  # the config and the weights
    assert parsed == [gguf_path] * 2
    load_tokenizer(gguf_path)
    assert parsed == [gguf_path] * 3
    assert gguf.GGUFReader is CountingReader


def test_k_quant_goes_through_llama_cpp_quantize(
    tiny_spm_llama: Path, tiny_f16: tuple[Path, dict], tmp_path: Path
) -> None:
    out = tmp_path / "tiny.q4_k_m.gguf"
    report = export_gguf(tiny_spm_llama, out, ExportOptions.build(quant="q4_k_m", threads=1, quiet=True))
    assert report["quant"] == "Q4_K_M" and report["bytes"] < tiny_f16[1]["bytes"] / 2
    # Q4_K_M as llama-quantize writes it: Q4_K matrices, Q6_K for the output and half of attn_v / ffn_down.
    assert tensor_types(out) == Counter({"Q4_K": 13, "Q6_K": 3, "F32": 5})
    assert sorted(path.name for path in tmp_path.iterdir()) == [out.name]  # the 16-bit intermediate is gone
    assert all(text and tokens == 16 for text, tokens in greedy("llamacpp", out))


def test_every_quantized_type_is_a_llama_cpp_file_type() -> None:
    import llama_cpp

    assert [name for name in QUANTIZED_TYPES if not hasattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}")] == []


@pytest.mark.slow
def test_gemma3_architecture_round_trips(gemma_model_dir: Path, gemma_gguf: Path, tmp_path: Path) -> None:
    """The packaged Gemma 3 270M, loaded by transformers and saved as a model directory (as `merge` writes one),
    back to GGUF: the same tensors as llama.cpp's own file, and it still writes sense."""
    out = tmp_path / "gemma3.bf16.gguf"
    report = export_gguf(gemma_model_dir, out, ExportOptions.build(quant="BF16", quiet=True))
    assert report["architecture"] == "Gemma3ForCausalLM"
    # llama.cpp loads a file only when it holds exactly the tensors its gemma3 graph names, each of the expected
    # shape; the same parameter count as the packaged file then says no tensor was dropped or reshaped. (gguf-py's
    # reader would list the tensors too, but it parses the 262k-entry vocabulary field by field: 25 s per file.)
    from llama_cpp import Llama

    packaged = Llama(model_path=str(gemma_gguf), n_ctx=64, verbose=False)
    packaged_parameters = packaged._model.n_params()
    packaged.close()
    backend = llama_cpp(out)
    try:
        assert backend.llm.metadata["general.architecture"] == "gemma3"
        assert backend.llm._model.n_params() == packaged_parameters
        text = backend.generate(["The capital of France is"], SamplingParams(max_new_tokens=8))[0]
        # The packaged model writes " the capital of the country of France." here; so does its export.
        assert "France" in text.completions[0].text, text
    finally:
        backend.close()


def test_an_unknown_architecture_is_one_line(tiny_spm_llama: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "unknown"
    shutil.copytree(tiny_spm_llama, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "architectures": ["NoSuchForCausalLM"]}))
    out = tmp_path / "out" / "x.gguf"
    with pytest.raises(MathforgeError) as error:
        export_gguf(model_dir, out, ExportOptions.build(quiet=True))
    assert str(error.value) == (
        f"cannot convert {model_dir} to GGUF: llama.cpp's converter does not know the architecture NoSuchForCausalLM"
    )
    assert list(out.parent.iterdir()) == []  # neither OUT nor the scratch folder


def test_ctrl_c_stops_the_converter_and_leaves_nothing(tiny_spm_llama: Path, tmp_path: Path) -> None:
    # The converter takes seconds to start (it imports torch): the signal comes while export waits on it.
    out = tmp_path / "out" / "x.gguf"
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(
            Interrupted, match=r"^interrupted: .*x.gguf was not written; run the same command again"
        ):
            export_gguf(tiny_spm_llama, out, ExportOptions.build(quiet=True))
    finally:
        timer.cancel()
    assert list(out.parent.iterdir()) == []


def test_a_tokenizer_llama_cpp_does_not_list_is_one_line(tiny_llama: Path, tmp_path: Path) -> None:
    # The shared tiny Llama's byte-level BPE is trained in the tests: its pre-tokenizer hash is in no list.
    with pytest.raises(
        MathforgeError, match=r"^cannot convert .* does not recognise the tokenizer \(its BPE"
    ):
        export_gguf(tiny_llama, tmp_path / "x.gguf", ExportOptions.build(quiet=True))


def test_what_is_not_a_model_directory_is_one_line(tiny_spm_llama: Path, tmp_path: Path) -> None:
    with pytest.raises(MathforgeError, match="not a transformers model directory"):
        export_gguf(tmp_path, tmp_path / "x.gguf", ExportOptions.build())
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(MathforgeError, match=r"adapter is a LoRA adapter, not a model: merge it first"):
        export_gguf(run, tmp_path / "x.gguf", ExportOptions.build())
    (run / "model").mkdir()
    (run / "model" / "config.json").write_text("{}")
    shutil.rmtree(run / "adapter")
    with pytest.raises(MathforgeError, match=r"run is a training run; its model is .*run/model: export that"):
        export_gguf(run, tmp_path / "x.gguf", ExportOptions.build())
    with pytest.raises(MathforgeError, match="OUT must be a .gguf file"):
        export_gguf(tiny_spm_llama, tmp_path / "x.bin", ExportOptions.build())
    with pytest.raises(MathforgeError, match="invalid option --quant: must be one of F32, F16.*got 'Q7_K'"):
        ExportOptions.build(quant="Q7_K")


def test_the_converter_is_setups_at_the_engines_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    folder = converter_dir()
    assert (folder / "VERSION").read_text().strip() == llama_cpp.__version__
    # It runs on its own gguf-py, not on the pip `gguf` package (another version, other keys).
    where = subprocess.run(
        [sys.executable, "-c", "import gguf; print(gguf.__file__)"],
        env=converter_environment(folder),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(folder / "gguf-py")

    monkeypatch.setenv("MATHFORGE_LLAMA_CPP_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(
        MathforgeError, match=r"llama.cpp's converter is not in .*nowhere: run scripts/setup.sh"
    ):
        converter_dir()
    old = tmp_path / "old"
    old.mkdir()
    (old / "convert_hf_to_gguf.py").write_text("")
    (old / "VERSION").write_text("0.2.0\n")
    monkeypatch.setenv("MATHFORGE_LLAMA_CPP_DIR", str(old))
    with pytest.raises(
        MathforgeError, match=r"is from llama-cpp-python 0.2.0 but the engine is .*setup.sh again"
    ):
        converter_dir()
