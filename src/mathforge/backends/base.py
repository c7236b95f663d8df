"""The one protocol every inference engine implements, and the records that cross it."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
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
    # End a completion once it repeats itself verbatim (`grading.loops.stuck_in_a_loop`): finish_reason "loop".
    stop_on_loop: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Completion:
    """One generated continuation of a prompt (stop strings removed)."""

    text: str
    tokens: int
    finish_reason: str  # "stop" (EOS or a stop string), "length" (the token budget) or "loop" (see below)
    # The prompt's tokens as the engine read them for this completion (a server bills them per request, so the
    # n completions of one prompt each carry them); 0 where the engine does not say. Not compared: two
    # completions are the same text and ending however the prompt was counted.
    prompt_tokens: int = field(default=0, compare=False)


# Completions that ended before they could finish: at the token budget, or stopped in a verbatim loop (which would
# have run to the budget). Both are graded alike, so stopping loops never changes a verdict.
CUT_SHORT = frozenset({"length", "loop"})
# Engines that stop loops test the text every this many tokens: the test is cheap, decoding a row is not free.
LOOP_CHECK_STRIDE = 4


@dataclass
class Generation:
    """The n completions of one prompt."""

    completions: list[Completion] = field(default_factory=list)


@dataclass
class TokenScores:
    """The log-probabilities (natural log) of the scored tokens of one text, in order.

    `tokens` are token ids where mathforge tokenizes (hf, llamacpp, vllm) and the server's token strings where
    only the server knows the ids (openai). Which tokens are scored: see `Backend.score`.
    """

    tokens: list[int] | list[str]
    logprobs: list[float]

    @property
    def count(self) -> int:
        return len(self.logprobs)

    @property
    def total_nll(self) -> float:
        """The summed negative log-likelihood (nats); fsum, so that long texts do not lose digits."""
        return -math.fsum(self.logprobs)

    @property
    def nll(self) -> float:
        """Mean negative log-likelihood per token (nats); NaN when no token was scored."""
        return self.total_nll / self.count if self.count else math.nan

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll) if self.count else math.nan


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

    def score(self, texts: list[str], contexts: list[str] | None = None) -> list[TokenScores]:
        """Per-token log-probabilities of each text under the model (teacher forcing), one `TokenScores` each.

        Without contexts every token of a text is scored: where the model's tokenizer puts BOS in front of a
        text (Gemma, Llama), BOS is prepended and predicts the first token; where it does not (Qwen, GPT-2) the
        first token has nothing to be predicted from and is left out (a text of n tokens scores n - 1).

        With `contexts[i]`, `texts[i]` is scored as the continuation of it: context + text is tokenized as one
        string (as the model would read it) and only the tokens after the context are scored. The boundary is
        the longest common prefix of the context's own tokens and the joint tokens, so a token that straddles
        it (context "12" + text "3" read as one token "123") belongs to the continuation and is scored.

        Engines that batch (hf, vllm) score the whole list at once; the others loop.
        """
        ...

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


def scoring_sequence(ids: list[int], context_ids: list[int] | None, bos: int | None) -> tuple[list[int], int]:
    """(the tokens to run through the model, the index of the first scored token) for `Backend.score`.

    `ids`: the tokens of context + text, `context_ids`: those of the context alone (None: no context), both
    encoded without special tokens; `bos`: the BOS id where the model's tokenizer adds one, else None. A text
    that already starts with BOS (a rendered chat template) does not get a second one. The index is at least
    1: position 0 is never predicted.
    """
    if bos is not None:
        ids = ids if ids[:1] == [bos] else [bos, *ids]
        if context_ids is not None and context_ids[:1] != [bos]:
            context_ids = [bos, *context_ids]
    first = 1
    if context_ids is not None:
        common = 0
        for ours, theirs in zip(ids, context_ids, strict=False):
            if ours != theirs:
                break
            common += 1
        first = max(1, common)
    return ids, first


def scoring_pairs(texts: Sequence[str], contexts: Sequence[str] | None) -> list[tuple[str, str | None]]:
    """(text, context or None) for each text; an empty context counts as none."""
    if contexts is None:
        return [(text, None) for text in texts]
    if len(contexts) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(contexts)} contexts")
    return [(text, context or None) for text, context in zip(texts, contexts, strict=True)]


def hf_scoring_sequences(
    tokenizer: Any, texts: list[str], contexts: list[str] | None
) -> list[tuple[list[int], int]]:
    """`scoring_sequence` for each text, with a transformers tokenizer (hf and vllm engines).

    Texts are encoded without special tokens (some tokenizers would also append EOS) and BOS is put in front
    only where the tokenizer itself adds it to a text, as it does for the prompts the model generates from.
    """
    pairs = scoring_pairs(texts, contexts)
    bos = tokenizer.bos_token_id
    adds_bos = bos is not None and tokenizer("1").input_ids[:1] == [bos]
    joint = tokenizer([(context or "") + text for text, context in pairs], add_special_tokens=False).input_ids
    with_context = [context for _, context in pairs if context is not None]
    context_ids = iter(tokenizer(with_context, add_special_tokens=False).input_ids if with_context else [])
    return [
        scoring_sequence(
            list(ids), list(next(context_ids)) if context is not None else None, bos if adds_bos else None
        )
        for ids, (_, context) in zip(joint, pairs, strict=True)
    ]


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
