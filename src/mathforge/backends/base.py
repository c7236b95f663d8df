"""The one protocol every inference engine implements, and the records that cross it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings. temperature == 0 means greedy (then n must be 1)."""

    max_new_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Completion:
    """One generated continuation of a prompt (stop strings removed)."""

    text: str
    tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length"


@dataclass
class Generation:
    """The n completions of one prompt."""

    completions: list[Completion] = field(default_factory=list)


@runtime_checkable
class Backend(Protocol):
    """An engine that turns prompt strings into completions.

    `generate` gets a batch of prompts (the runner picks the batch size) and returns one `Generation` per prompt,
    in order. Engines that batch (transformers, vLLM) use the whole batch; others loop. `seed_offsets` lets
    sampling be reproducible per item, whatever the batch boundaries: item i is sampled with seed+offset[i].
    """

    name: str

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]: ...

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """The prompt string the model's own chat template makes of `messages` (generation prompt added)."""
        ...

    def identity(self) -> dict[str, Any]:
        """What exactly was evaluated: path or hub id, and a file hash or hub revision."""
        ...

    def close(self) -> None: ...


def sample_seed(seed: int, item: int, sample: int = 0) -> int:
    """A 31-bit seed for one (run seed, item, sample), mixed by hashing.

    Adding the numbers (seed + item + sample) would make --seed 1 repeat most samples of --seed 0; a hash keeps
    every run seed's stream independent of the others.
    """
    digest = hashlib.sha256(f"{seed}:{item}:{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one was found.

    Engines that cannot stop on strings during decoding (or that return the stop string) share this cut so
    that every backend produces the same completion text.
    """
    cut = min((index for s in stop if (index := text.find(s)) != -1), default=-1)
    return (text[:cut], True) if cut != -1 else (text, False)


def chat_prompt(tokenizer: Any, messages: list[dict[str, str]], model_ref: str) -> str:
    """The prompt a transformers tokenizer's chat template makes of `messages`, with one-line errors for a
    model without a template and for a template that refuses the messages (hf and vllm engines)."""
    from mathforge.errors import MathforgeError

    if not getattr(tokenizer, "chat_template", None):
        raise MathforgeError(
            f"{model_ref} has no chat template (a base model?); use --prompt few-shot or zero-shot"
        )
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as error:  # jinja2 errors and templates that raise on, e.g., a system message
        raise MathforgeError(f"{model_ref}'s chat template rejected the messages: {error}") from None
