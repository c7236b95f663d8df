"""Shared fixtures: paths to ../shared, a tiny Llama model built on the spot, the packaged Gemma GGUF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MATHFORGE_SHARED", REPO.parent / "shared"))
BENCHMARK_DATA = SHARED / "data" / "benchmarks"
PROMPTS = SHARED / "data" / "prompts" / "math-evaluation-harness"
# Tests never contact the hub: set before any test imports datasets or huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hash caches and hub lookups stay inside the test session; the hub is never contacted.
    monkeypatch.setenv("MATHFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "mathforge-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    from mathforge.backends import packaged_model_path

    return packaged_model_path()


@pytest.fixture(scope="session")
def gemma_model_dir(gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged Gemma 3 270M as transformers reads it from the GGUF (dequantised to float32), saved once as a
    plain model directory. Reading the GGUF costs transformers about a minute here (gguf-py's parse of the
    262k-entry vocabulary, the dequantisation, the tokenizer's conversion); the tests that need the model, not the
    GGUF path, load this instead.
    """
    from mathforge.backends.hf import reading_gguf_once
    from mathforge.train.models import load_model, load_tokenizer

    directory = tmp_path_factory.mktemp("gemma3-270m")
    with reading_gguf_once():  # the model and the tokenizer from one parse of the GGUF
        load_model(str(gemma_gguf), dtype="float32", device="cpu").save_pretrained(directory)
        load_tokenizer(str(gemma_gguf)).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with a word-level tokenizer trained here; no downloads."""
    from tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
