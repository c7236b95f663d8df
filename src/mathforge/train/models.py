"""One place where training loads models and tokenizers: hub ids, local directories and GGUF files, in the
dtype asked for, optionally 4-bit (QLoRA), and the identity of the base model that run records and merge checks.

Every training kind (sft now; continued pre-training and Selective Language Modeling next), `merge` and `export`
load through here, so a model reference means the same thing to each of them as it does to `eval`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from mathforge.backends import resolve_model
from mathforge.backends.hf import reading_gguf_once, split_gguf
from mathforge.errors import MathforgeError, first_line

DTYPES = ("auto", "float32", "bfloat16", "float16")
# Short names as users type them (`--dtype bf16`) -> torch's names.
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_base(model: str | None) -> str:
    """The reference transformers loads for what the user typed: a hub id, a local directory, or a .gguf file
    (the packaged Gemma 3 270M for no model or its alias), with a one-line error for a path that is not there."""
    return resolve_model(model, "hf")[1]


def torch_dtype(dtype: str, device: str) -> Any:
    """The torch dtype of `--dtype` (auto: bf16 on GPUs that support it, float32 on CPUs)."""
    import torch

    dtype = DTYPE_ALIASES.get(dtype, dtype)
    if dtype == "auto":
        cuda = device.startswith("cuda") and torch.cuda.is_available()
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    if dtype not in DTYPES:
        raise MathforgeError(
            f"--dtype must be one of {', '.join(DTYPES)} (or bf16, fp16, fp32), got '{dtype}'"
        )
    return getattr(torch, dtype)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(ref: str, revision: str | None = None) -> Any:
    """The tokenizer of a hub id, directory or GGUF file, with a pad token (the EOS token where it has none)."""
    import transformers

    source, gguf_file = split_gguf(ref)
    args = _load_args(revision, gguf_file)
    try:
        with reading_gguf_once():
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, **args)
    except (OSError, ValueError) as error:
        raise _load_error(ref, error) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    ref: str,
    *,
    dtype: str = "auto",
    device: str | None = None,
    revision: str | None = None,
    load_in_4bit: bool = False,
    attn_implementation: str | None = None,
) -> Any:
    """A causal LM ready to train or merge.

    A GGUF file is dequantised by transformers on load; the result is copied into a plain model of the same
    config, because a GGUF-loaded model keeps GGUF-specific state that `save_pretrained` and peft trip over.
    `load_in_4bit` quantises with bitsandbytes (NF4, double quantisation, bf16 compute): CUDA only.
    """
    import transformers

    device = device or default_device()
    source, gguf_file = split_gguf(ref)
    args: dict[str, Any] = _load_args(revision, gguf_file)
    args["dtype"] = torch_dtype(dtype, device)
    if attn_implementation:
        args["attn_implementation"] = attn_implementation
    if load_in_4bit:
        args["quantization_config"] = qlora_config(device)
        args["device_map"] = {"": device}
    try:
        with reading_gguf_once():  # the config and the weights: one parse of a GGUF file
            model = transformers.AutoModelForCausalLM.from_pretrained(source, **args)
    except (OSError, ValueError, ImportError) as error:
        raise _load_error(ref, error) from None
    if gguf_file:
        model = _plain_copy(model, args["dtype"], attn_implementation)
    if not load_in_4bit:
        model = model.to(device)  # type: ignore[arg-type]  # @wraps on `to` loses the bound self
    return model


def qlora_config(device: str) -> Any:
    """bitsandbytes 4-bit NF4 with double quantisation and bf16 compute (the QLoRA paper's settings), or a
    one-line error where bitsandbytes cannot run (no CUDA GPU, or the package missing)."""
    import torch
    import transformers

    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise MathforgeError(
            "--method qlora needs a CUDA GPU (bitsandbytes 4-bit NF4); on this machine use --method lora or full"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise MathforgeError("--method qlora needs bitsandbytes: pip install 'mathforge[qlora]'") from None
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return transformers.BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def base_identity(ref: str, model: Any | None = None, revision: str | None = None) -> dict[str, Any]:
    """What a run records about its base model and `merge` checks an adapter against: the reference, the
    revision, the architecture and a digest of its config (which tells two bases apart when names do not)."""
    config = model.config if model is not None else _config_of(ref, revision)
    return {
        "model": ref,
        "revision": revision,
        "architecture": (getattr(config, "architectures", None) or [type(config).__name__])[0],
        "config_sha256": config_digest(config),
    }


def config_digest(config: Any) -> str:
    """A digest of the parts of a model config that decide its weights' shapes and meaning (not dtype, paths,
    or transformers' version), so the same base loaded from the hub, a directory or a GGUF file agrees."""
    keys = (
        "model_type",
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
    )
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    values = {key: getattr(text_config, key, None) for key in keys}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def _config_of(ref: str, revision: str | None) -> Any:
    import transformers

    source, gguf_file = split_gguf(ref)
    try:
        return transformers.AutoConfig.from_pretrained(source, **_load_args(revision, gguf_file))
    except (OSError, ValueError) as error:
        raise _load_error(ref, error) from None


def _plain_copy(model: Any, dtype: Any, attn_implementation: str | None) -> Any:
    import transformers

    args = {"attn_implementation": attn_implementation} if attn_implementation else {}
    config = copy.deepcopy(model.config)
    # Saved with it, this would tell every loader (and llama.cpp's converter) the weights are still GGUF-quantised.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype, **args)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    return plain


def _load_args(revision: str | None, gguf_file: str | None) -> dict[str, Any]:
    from mathforge.hub import offline_unless_hub_reachable

    args: dict[str, Any] = {}
    if revision:
        args["revision"] = revision
    if gguf_file:
        args["gguf_file"] = gguf_file
    else:
        offline_unless_hub_reachable()
    return args


def _load_error(ref: str, error: Exception) -> MathforgeError:
    hint = "" if Path(split_gguf(ref)[0]).exists() else " (offline? pass a local directory or a .gguf file)"
    return MathforgeError(f"cannot load model '{ref}' with transformers: {first_line(error, 300)}{hint}")
