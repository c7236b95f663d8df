"""transformers engine: hub ids, local directories and GGUF files; CPU or GPU; batched generation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, cast

from pydantic import Field

from mathforge.backends.base import (
    Completion,
    Generation,
    SamplingParams,
    TokenScores,
    chat_prompt,
    cut_at_stop,
    hf_scoring_sequences,
    sample_seed,
)
from mathforge.backends.identity import directory_sha256, file_sha256
from mathforge.config import Options
from mathforge.errors import ContextOverflow, MathforgeError, first_line
from mathforge.hub import offline_unless_hub_reachable

DTYPES = ("auto", "float32", "float16", "bfloat16")


class HFOptions(Options):
    """Options of the hf (transformers) engine."""

    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {"dtype": lambda: DTYPES}

    dtype: str = Field("auto", description="hf, vllm: auto, float32, float16 or bfloat16")
    device: str | None = Field(None, description="hf: cpu, cuda, cuda:1 ... [default: cuda if available]")
    revision: str | None = Field(None, description="hf, vllm: hub revision (branch, tag or commit)")


class HFBackend:
    name = "hf"
    options = HFOptions
    packages = ("torch", "transformers")
    default_batch_size = 8
    score_batch_size = 8  # hf splits a batch further to keep one pass's logits within _SCORE_LOGITS_BUDGET
    # Batching changes padding numerics and which samples share an RNG stream: a resumed run keeps its size.
    batch_changes_outputs = True

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        device: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError:
            raise MathforgeError(
                "the hf backend needs transformers and torch: pip install 'mathforge[hf]'"
            ) from None
        self.torch = torch
        self.model_ref = model
        self.revision = revision
        self.device = _check_device(torch, device)
        source, gguf_file = _split_gguf(model)
        if not Path(source).exists():
            offline_unless_hub_reachable()
        load_args: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        if gguf_file:
            load_args["gguf_file"] = gguf_file
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, **load_args)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                source, dtype=_torch_dtype(torch, dtype, self.device), **load_args
            ).to(self.device)  # type: ignore[arg-type]  # @wraps on `to` loses the bound self
        except (OSError, ValueError) as error:
            raise MathforgeError(
                f"cannot load model '{model}' with transformers: {first_line(error, 300)} "
                "(offline? pass a local directory or a .gguf file)"
            ) from None
        self.model.eval()
        self.eos_ids = self._eos_ids()
        # Decoding uses only what mathforge sets: a model's own generation_config may carry a repetition penalty,
        # min_p or sampling defaults that would make its scores differ from the other engines and the papers.
        own = self.model.generation_config
        self.generation_config = transformers.GenerationConfig(
            bos_token_id=own.bos_token_id, eos_token_id=own.eos_token_id, pad_token_id=own.pad_token_id
        )
        # Decoder-only batching: pad on the left so every row's last prompt token sits at the same position.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        torch = self.torch
        # Batches share one RNG stream: seeded from the first item, so a rerun with the same batches repeats.
        torch.manual_seed(sample_seed(params.seed, seed_offsets[0] if seed_offsets else 0))
        # A chat template may already have written BOS; do not add a second one.
        bos = self.tokenizer.bos_token
        add_special = not (bos and all(p.startswith(bos) for p in prompts))
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=add_special)
        batch = batch.to(self.device)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and batch["input_ids"].shape[1] + params.max_new_tokens > limit:
            raise MathforgeError(
                f"a prompt of {batch['input_ids'].shape[1]} tokens plus --max-new-tokens {params.max_new_tokens} "
                f"exceeds the model's {limit} positions; lower --max-new-tokens or use fewer --shots"
            )
        sampling: dict[str, Any] = (
            {"do_sample": False}
            if params.greedy
            else {
                "do_sample": True,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": params.top_k,
            }
        )
        with torch.inference_mode():
            output = self.model.generate(
                **batch,
                generation_config=self.generation_config,
                max_new_tokens=params.max_new_tokens,
                num_return_sequences=params.n,
                stop_strings=list(params.stop) or None,
                tokenizer=self.tokenizer,
                pad_token_id=self.tokenizer.pad_token_id,
                use_cache=True,
                **sampling,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        generations = [Generation() for _ in prompts]
        for row, tokens in enumerate(new_tokens.tolist()):
            generations[row // params.n].completions.append(self._completion(tokens, params))
        return generations

    def _completion(self, tokens: list[int], params: SamplingParams) -> Completion:
        # The completion ends at the first EOS; rows that finished early are padded after it. Like llama.cpp,
        # count the tokens before EOS (and no padding).
        end = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
        kept = tokens[:end] if end is not None else [t for t in tokens if t != self.tokenizer.pad_token_id]
        # One sequence of ids decodes to one string (the stubs' return type also allows a batch's list).
        decoded = cast(str, self.tokenizer.decode(kept, skip_special_tokens=True))
        text, stopped = cut_at_stop(decoded, params.stop)
        finished = stopped or end is not None or len(tokens) < params.max_new_tokens
        return Completion(text=text, tokens=len(kept), finish_reason="stop" if finished else "length")

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return chat_prompt(self.tokenizer, messages, self.model_ref)

    def identity(self) -> dict[str, Any]:
        source, gguf_file = _split_gguf(self.model_ref)
        ident: dict[str, Any] = {
            "backend": self.name,
            "model": self.model_ref,
            "dtype": str(self.model.dtype),
        }
        if gguf_file:
            ident["sha256"] = file_sha256(Path(source) / gguf_file)
        elif Path(source).is_dir():
            ident["path"] = str(Path(source).resolve())
            ident["sha256"] = directory_sha256(source)
        else:
            ident["revision"] = getattr(self.model.config, "_commit_hash", None) or self.revision
        return ident

    def close(self) -> None:
        del self.model

    # -- token scoring ----------------------------------------------------------------------------------------

    def score(self, texts: list[str], contexts: list[str] | None = None) -> list[TokenScores]:
        """See `Backend.score`. Rows are run shortest first in groups that fit `_SCORE_LOGITS_BUDGET`, right
        padded: with causal attention a row's real tokens never see the padding after them, and the attention
        mask keeps the padding's own positions harmless."""
        sequences = hf_scoring_sequences(self.tokenizer, texts, contexts)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        for ids, _ in sequences:
            if limit and len(ids) > limit:
                raise ContextOverflow(f"a text of {len(ids)} tokens exceeds the model's {limit} positions")
        results = [TokenScores(ids[first:], []) for ids, first in sequences]
        runnable = [index for index, (ids, first) in enumerate(sequences) if first < len(ids)]
        runnable.sort(key=lambda index: len(sequences[index][0]))
        vocab = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
        groups: list[list[int]] = []
        for index in runnable:  # ascending length: the row added is the longest of its group
            if groups and (len(groups[-1]) + 1) * len(sequences[index][0]) * vocab <= _SCORE_LOGITS_BUDGET:
                groups[-1].append(index)
            else:
                groups.append([index])
        for group in groups:
            rows = self._score_rows([sequences[index] for index in group])
            for index, logprobs in zip(group, rows, strict=True):
                results[index].logprobs = logprobs
        return results

    def _score_rows(self, sequences: list[tuple[list[int], int]]) -> list[list[float]]:
        """Log-probabilities of ids[first:] for each (ids, first), in one forward pass."""
        torch = self.torch
        width = max(len(ids) for ids, _ in sequences)
        input_ids = torch.full((len(sequences), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, (ids, _) in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        input_ids = input_ids.to(self.device)
        with torch.inference_mode():
            # Without padding no mask is passed, so that a single text runs exactly as `model(input_ids)` does
            # (a mask can select another attention kernel, which rounds differently).
            if bool(mask.all()):
                logits = self.model(input_ids=input_ids).logits
            else:
                logits = self.model(input_ids=input_ids, attention_mask=mask.to(self.device)).logits
            scored = []
            for row, (ids, first) in enumerate(sequences):
                # Position i's logits predict token i + 1: the predictions for ids[first:] sit at first-1 .. n-2.
                # log_softmax in float32 whatever the model's dtype: bf16 would round log-probabilities to 2-3
                # significant digits.
                logprobs = logits[row, first - 1 : len(ids) - 1].float().log_softmax(-1)
                targets = input_ids[row, first : len(ids)]
                scored.append(logprobs.gather(-1, targets[:, None])[:, 0].tolist())
        return scored


# The logits of one forward pass (rows x tokens x vocabulary) are held at once: about 512 MiB in float32, that is
# 512 tokens of Gemma 3's 262k vocabulary (a longer text still runs, alone).
_SCORE_LOGITS_BUDGET = 2**27


def _split_gguf(model: str) -> tuple[str, str | None]:
    """transformers loads a GGUF file as (its folder, gguf_file=its name)."""
    path = Path(model)
    return (str(path.parent), path.name) if path.suffix == ".gguf" else (model, None)


def _check_device(torch: Any, device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise MathforgeError(
            f"--device: not a torch device: '{device}' (cpu, cuda, cuda:1, mps, ...)"
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise MathforgeError(f"--device {device}: this torch build sees no CUDA GPU")
    return device


def _torch_dtype(torch: Any, dtype: str, device: str) -> Any:
    if dtype == "auto":
        # bf16 halves memory on GPUs that support it; CPUs run float32 fastest.
        return (
            torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        )
    return getattr(torch, dtype)
