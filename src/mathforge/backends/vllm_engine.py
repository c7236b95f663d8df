"""vLLM engine (offline `vllm.LLM`): hub ids and local directories on one or more CUDA GPUs.

vLLM schedules its own continuous batches, so each `generate` call hands it the whole batch at once: one
request per prompt, each with its own `vllm.SamplingParams` (n samples, and a seed from the item's position,
so that sampling does not depend on where the batch boundaries fall).

Parameter names were checked by hand against vLLM's source (`vllm/sampling_params.py`, `vllm/entrypoints/llm.py`,
`vllm/engine/arg_utils.py`); no test checks them against vLLM itself (it needs a GPU to install and run):
`benchmarks/vllm_gpu_check.py` does, on a GPU machine. No top-k cut is sent as `top_k=-1`: recent versions take 0 or -1, while older ones
(the extra allows 0.6) refuse 0 ("top_k must be -1 (disable), or at least 1").
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

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
from mathforge.backends.hf import HFOptions
from mathforge.backends.identity import directory_sha256
from mathforge.config import Options
from mathforge.errors import ContextOverflow, MathforgeError, first_line
from mathforge.hub import offline_unless_hub_reachable

INSTALL_HINT = "the vllm backend needs vLLM and a GPU: pip install 'mathforge[vllm]'"


class VLLMOptions(Options):
    """Options of the vllm engine (its shared ones described where the hf and llamacpp engines declare them)."""

    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = HFOptions.choices

    dtype: str = Field("auto", description="hf, vllm: auto, float32, float16 or bfloat16")
    revision: str | None = Field(None, description="hf, vllm: hub revision (branch, tag or commit)")
    n_ctx: int = Field(4096, ge=256, description="llamacpp, vllm: context window (prompt and completion)")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per model")
    gpu_memory_utilization: float = Field(
        0.9, gt=0.0, le=1.0, description="vllm: share of GPU memory for weights and KV cache"
    )


class VLLMBackend:
    name = "vllm"
    options = VLLMOptions
    packages = ("vllm", "torch", "transformers")
    default_batch_size = 256  # vLLM schedules its own continuous batches: hand it many prompts at once
    # No --stop-on-loop: the other engines stop a completion once its text passes `stuck_in_a_loop`, tested while
    # it is decoded, and vLLM's v1 engine has no per-request callback to run that test. SamplingParams stops on
    # strings and token ids; recent versions' `repetition_detection` stops on repeated token n-grams, another rule
    # whose stops would differ from the other engines'; v1's logits processors are batch-level classes loaded when
    # the engine starts, which could only force an EOS that vLLM reports as an ordinary "stop". So with the option
    # vllm decodes loops to the budget, as without it.
    stops_loops: ClassVar[bool] = False
    score_batch_size = 256

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        revision: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        n_ctx: int = 4096,
        seed: int = 0,
        trust_remote_code: bool = False,
        engine: Any = None,
    ) -> None:
        if model.endswith(".gguf"):
            raise MathforgeError(
                f"the vllm backend takes a hub id or a model directory, not a GGUF file ('{model}'); "
                "use --backend llamacpp or hf"
            )
        self.model_ref = model
        self.revision = revision
        self.dtype = dtype
        self.tensor_parallel_size = tensor_parallel_size
        self.n_ctx = n_ctx
        self.vllm = _import_vllm()
        if engine is None:
            if not Path(model).exists():
                _offline_unless_hub_reachable()
            engine = self._start(model, gpu_memory_utilization, seed, trust_remote_code)
        self.llm = engine
        self.tokenizer = self.llm.get_tokenizer()
        self.adds_bos = _adds_bos(self.tokenizer)

    def _start(self, model: str, gpu_memory_utilization: float, seed: int, trust_remote_code: bool) -> Any:
        try:
            return self.vllm.LLM(
                model=model,
                revision=self.revision,
                tokenizer_revision=self.revision,
                dtype=self.dtype,
                tensor_parallel_size=self.tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                # mathforge's --n-ctx (4096 by default) bounds prompt + completion, as with llama.cpp; vLLM would
                # otherwise reserve KV cache for the model's whole window (32k and more for recent models).
                max_model_len=self.n_ctx,
                seed=seed,
                trust_remote_code=trust_remote_code,
            )
        # RuntimeError (no GPU, CUDA out of memory), ValueError (config), OSError (files), vLLM's own errors.
        except Exception as error:
            reason = first_line(error, 10_000)
            hint = (
                f"lower --n-ctx (now {self.n_ctx})"
                if "max_model_len" in reason
                else "a CUDA GPU is needed; on CPU use --backend hf or llamacpp"
            )
            raise MathforgeError(f"cannot start vLLM for '{model}': {reason[:300]} ({hint})") from None

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        offsets = seed_offsets or [0] * len(prompts)
        try:
            requests = [self._sampling_params(params, offset) for offset in offsets]
        except Exception as error:  # vLLM checks them (recent versions refuse a temperature above 2)
            raise MathforgeError(f"vLLM rejected the sampling settings: {first_line(error, 300)}") from None
        if len(requests) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(requests)} seed offsets")
        try:
            outputs = self.llm.generate(
                [self._without_added_bos(prompt) for prompt in prompts], requests, use_tqdm=False
            )
        except Exception as error:
            # vLLM's own errors (VLLMError in recent versions) are not RuntimeErrors; the runner turns these into
            # one line that says how to resume.
            if _raised_by_vllm(error):
                raise RuntimeError(first_line(error, 10_000)) from error
            raise
        return [
            Generation(
                [
                    self._completion(choice, params, len(output.prompt_token_ids or ()))
                    for choice in output.outputs
                ]
            )
            for output in outputs
        ]

    def _sampling_params(self, params: SamplingParams, offset: int) -> Any:
        # Only what mathforge sets: vLLM's defaults for the rest (no repetition, presence or frequency penalty,
        # min_p 0) leave the distribution alone. Greedy requests have n == 1 (the config guarantees it).
        # Samples of one request differ: vLLM draws them from the request's one seeded stream.
        return self.vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop),
            seed=sample_seed(params.seed, offset, 0),
        )

    def _completion(self, choice: Any, params: SamplingParams, prompt_tokens: int) -> Completion:
        # vLLM leaves stop strings out of the text already; the shared cut keeps every engine's text the same.
        text, _ = cut_at_stop(choice.text, params.stop)
        tokens = list(choice.token_ids)
        # vLLM counts the EOS token it stopped on; like the other engines, count the tokens before it.
        if tokens and tokens[-1] == getattr(self.tokenizer, "eos_token_id", None):
            tokens = tokens[:-1]
        finish = "length" if choice.finish_reason == "length" else "stop"
        return Completion(text=text, tokens=len(tokens), finish_reason=finish, prompt_tokens=prompt_tokens)

    def _without_added_bos(self, prompt: str) -> str:
        """A chat template may have written BOS already, and vLLM's tokenizer adds one: drop the written one.

        The hf engine instead tokenizes such prompts without special tokens; either way the model sees one BOS.
        """
        bos = getattr(self.tokenizer, "bos_token", None)
        return prompt.removeprefix(bos) if bos and self.adds_bos else prompt

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return chat_prompt(self.tokenizer, messages, self.model_ref)

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {
            "backend": self.name,
            "model": self.model_ref,
            "dtype": self._loaded_dtype(),
            "tensor_parallel_size": self.tensor_parallel_size,
        }
        if Path(self.model_ref).is_dir():
            ident["path"] = str(Path(self.model_ref).resolve())
            ident["sha256"] = directory_sha256(self.model_ref)
        else:
            ident["revision"] = _hub_commit(self.model_ref, self.revision) or self.revision
        return ident

    def _loaded_dtype(self) -> str:
        """The dtype vLLM chose (as the hf engine records it: 'torch.bfloat16'), else the one asked for."""
        try:
            return str(self.llm.llm_engine.model_config.dtype)
        except AttributeError:
            return self.dtype

    def close(self) -> None:
        llm = self.__dict__.pop("llm", None)
        if llm is None:
            return
        # vLLM's engine core runs in a child process in recent versions; stop it before dropping the engine.
        with contextlib.suppress(Exception):
            llm.llm_engine.engine_core.shutdown()
        del llm
        with contextlib.suppress(Exception):
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        gc.collect()
        torch = sys.modules.get("torch")  # only where vLLM (or another engine) loaded it
        with contextlib.suppress(Exception):
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()

    # -- token scoring ----------------------------------------------------------------------------------------

    def score(self, texts: list[str], contexts: list[str] | None = None) -> list[TokenScores]:
        """See `Backend.score`: vLLM's prompt log-probabilities, the whole list in one `generate` call.

        The texts are tokenized here, with the tokenizer vLLM loaded and the same rules as the hf engine, and
        sent as token prompts ({"prompt_token_ids": ...}), so that both engines score the same tokens whatever
        vLLM would add to a text prompt. `prompt_logprobs=1` returns, for every prompt position but the first
        (None), a {token id: Logprob} dict that always holds the prompt's own token (plus the top-1 token when
        that differs); 1 rather than 0 because older vLLM V1 engines read 0 as "no prompt log-probabilities".
        Greedy settings with no penalties leave the logits they come from unscaled (recent versions take them
        before any processing anyway: logprobs_mode "raw_logprobs"). vLLM must generate at least one token
        (max_tokens=1); that token is ignored, and a text must leave room for it within --n-ctx.
        """
        sequences = hf_scoring_sequences(self.tokenizer, texts, contexts)
        for ids, _ in sequences:
            if len(ids) >= self.n_ctx:
                raise ContextOverflow(
                    f"a text of {len(ids)} tokens does not fit --n-ctx {self.n_ctx} "
                    "(vLLM also needs a position for one generated token); raise --n-ctx"
                )
        results = [TokenScores(ids[first:], []) for ids, first in sequences]
        runnable = [index for index, (ids, first) in enumerate(sequences) if first < len(ids)]
        if not runnable:
            return results
        request = self.vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        try:
            outputs = self.llm.generate(
                [{"prompt_token_ids": sequences[index][0]} for index in runnable], request, use_tqdm=False
            )
        except Exception as error:
            if _raised_by_vllm(error):  # as in generate: one line for the caller to report
                raise RuntimeError(first_line(error, 10_000)) from error
            raise
        for index, output in zip(runnable, outputs, strict=True):
            ids, first = sequences[index]
            entries = output.prompt_logprobs
            if entries is None or len(entries) != len(ids):
                raise RuntimeError(
                    f"vLLM returned {0 if entries is None else len(entries)} prompt log-probabilities "
                    f"for a {len(ids)}-token prompt"
                )
            results[index].logprobs = [
                float(entries[position][ids[position]].logprob) for position in range(first, len(ids))
            ]
        return results


def _import_vllm() -> Any:
    # vLLM logs every engine step at INFO; keep its warnings and errors so progress bars stay readable.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        import vllm
    except ImportError:
        raise MathforgeError(INSTALL_HINT) from None
    except Exception as error:  # an install that cannot load (a CUDA build without its libraries)
        raise MathforgeError(f"{INSTALL_HINT} (importing vllm failed: {first_line(error, 200)})") from None
    return vllm


def _offline_unless_hub_reachable() -> None:
    """mathforge's hub check, passed on to vLLM's engine process (recent versions start one) by environment."""
    offline_unless_hub_reachable()
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        os.environ["HF_HUB_OFFLINE"] = "1"


def _adds_bos(tokenizer: Any) -> bool:
    """Whether encoding a prompt puts BOS in front (Llama, Gemma), as vLLM does with text prompts."""
    try:
        ids = tokenizer("1").input_ids
        return bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id
    except Exception:  # tokenizers of other shapes: leave prompts as they are
        return False


def _hub_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit of a hub model in the local cache (vLLM downloads through huggingface_hub), if found."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:  # not a valid repo id, no huggingface_hub
        return None
    return Path(found).parent.name if isinstance(found, str) else None


def _raised_by_vllm(error: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] == "vllm" for cls in type(error).__mro__)
