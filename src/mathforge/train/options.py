"""The options every training kind shares: the base model, the adapter (LoRA, QLoRA or none), the optimiser and
its schedule, checkpointing and logging, and the before/after evaluation.

A training kind's options model derives from `TrainOptions` and adds its data options (`SftOptions` in
`train/sft.py`; continued pre-training and Selective Language Modeling next), so that `--lr`, `--resume` or
`--eval-bench` mean the same in each of them, in flags and in YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from mathforge.config import OptionError, Options

METHODS = ("lora", "qlora", "full")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")
# transformers' optimiser names that mathforge documents; any other name transformers knows is passed through.
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adamw_8bit", "paged_adamw_8bit", "adafactor", "sgd")
ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


class TrainOptions(Options):
    """Shared by every training kind."""

    cli_names: ClassVar[dict[str, str]] = {
        "json_output": "json",
        "learning_rate": "lr",
        "per_device_batch_size": "batch-size",
        "gradient_accumulation_steps": "grad-accum",
        "eval_benchmarks": "eval-bench",
    }
    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {
        "method": lambda: METHODS,
        "lr_scheduler": lambda: SCHEDULERS,
        "attn_implementation": lambda: ATTENTION,
    }

    # --- the model ---
    model: str | None = Field(
        None,
        description="base model: HF hub id, local directory or .gguf file [default: the packaged Gemma 3 270M]",
    )
    revision: str | None = Field(None, description="hub revision of the base model (branch, tag or commit)")
    dtype: str = Field(
        "auto", description="weights' dtype: auto (bf16 on GPUs that have it, else fp32), bf16, fp16, fp32"
    )
    device: str | None = Field(
        None,
        description="cpu or cuda (the first visible GPU: pick it with CUDA_VISIBLE_DEVICES) [default: cuda if available]",
    )
    attn_implementation: str | None = Field(
        None, description="sdpa, eager, flash_attention_2 ... [default: transformers' choice for the model]"
    )
    gradient_checkpointing: bool = Field(False, description="recompute activations: less memory, ~30% slower")

    # --- what is trained ---
    method: str = Field("lora", description="lora (peft), qlora (4-bit NF4 base, CUDA), or full fine-tuning")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(16, gt=0, description="LoRA alpha (the update is scaled by alpha / r)")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: list[str] = Field(
        default_factory=lambda: ["all-linear"],
        description="modules LoRA adapts: all-linear (every linear layer but the output head) or names, "
        "e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    )

    # --- optimiser and schedule ---
    epochs: float = Field(3.0, gt=0, description="passes over the data (ignored when --max-steps is set)")
    max_steps: int | None = Field(None, ge=1, description="optimiser steps to train (overrides --epochs)")
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate")
    lr_scheduler: str = Field("cosine", description="learning-rate schedule after warmup")
    warmup_steps: int = Field(10, ge=0, description="linear warmup steps")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    optimizer: str = Field(
        "adamw_torch",
        description="transformers optimiser name: adamw_torch, adamw_8bit (bitsandbytes, CUDA), "
        "paged_adamw_8bit, adafactor ...",
    )
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping (0: off)")
    per_device_batch_size: int = Field(4, ge=1, description="sequences (or packed rows) per device per step")
    gradient_accumulation_steps: int = Field(
        1,
        ge=1,
        description="micro-batches per optimiser step (effective batch = batch-size x grad-accum x GPUs)",
    )
    seed: int = Field(0, description="seed of initialisation, shuffling and dropout")

    # --- run directory, checkpoints, logs ---
    out: str | None = Field(None, description="run directory [default: runs/train/<kind>-<model>-<data>]")
    resume: bool = Field(False, description="continue the run in --out from its last checkpoint, exactly")
    fresh: bool = Field(False, description="discard what --out holds and start again")
    save_steps: int = Field(50, ge=1, description="checkpoint every N optimiser steps (and at the end)")
    save_total_limit: int | None = Field(2, ge=1, description="checkpoints kept (the newest)")
    logging_steps: int = Field(1, ge=1, description="log loss, lr, grad norm and tokens/s every N steps")
    tensorboard: bool = Field(True, description="also log to TensorBoard (<out>/tensorboard)")

    # --- before/after evaluation ---
    eval_benchmarks: list[str] = Field(
        default_factory=list, description="evaluate the base and the result on these benchmarks (comma list)"
    )
    eval_limit: int | None = Field(None, ge=1, description="items per benchmark for --eval-bench")
    eval_prompt: str | None = Field(
        None, description="prompt format of --eval-bench [default: the one matching --format]"
    )
    eval_max_new_tokens: int = Field(512, ge=1, description="token budget of --eval-bench")
    eval_batch_size: int = Field(8, ge=1, description="generation batch size of --eval-bench")
    eval_data_dir: str | None = Field(None, description="benchmark data directory for --eval-bench")

    json_output: bool = Field(False, description="print the summary as one JSON line (the last on stdout)")
    quiet: bool = Field(False, description="no progress bar")

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        from mathforge.train.models import DTYPE_ALIASES, DTYPES

        value = DTYPE_ALIASES.get(value, value)
        if value not in DTYPES:
            raise ValueError(f"must be one of auto, bf16, fp16, fp32; got '{value}'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainOptions:
        if self.resume and self.fresh:
            raise OptionError("fresh", "invalid options: --resume and --fresh contradict each other", "fresh")
        return self

    @property
    def uses_adapter(self) -> bool:
        return self.method in ("lora", "qlora")
