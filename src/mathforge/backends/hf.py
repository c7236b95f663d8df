"""transformers engine: hub ids, local directories and GGUF files; CPU or GPU; batched generation."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

from pydantic import Field

from mathforge.backends.base import (
    LOOP_CHECK_STRIDE,
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
from mathforge.grading.loops import stuck_in_a_loop
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
    # Each (item, sample) row draws from its own seeded generator whatever the batch, but the padding a batch adds
    # may change the model's float rounding (see generate): a resumed run keeps its batch size.
    batch_changes_outputs = True
    stops_loops: ClassVar[bool] = True  # a stopping criterion inside generation (see _LoopStop)

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
        source, gguf_file = split_gguf(model)
        if not Path(source).exists():
            offline_unless_hub_reachable()
        load_args: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        if gguf_file:
            load_args["gguf_file"] = gguf_file
        try:
            with reading_gguf_once():
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(source, **load_args)
                self.model = transformers.AutoModelForCausalLM.from_pretrained(
                    source, dtype=_torch_dtype(torch, dtype, self.device), **load_args
                ).to(self.device)  # type: ignore[arg-type]  # @wraps on `to` loses the bound self
        except (OSError, ValueError) as error:
            raise _load_error(model, source, gguf_file, error) from None
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
        """See `Backend.generate`. Rows are prompt-major (row r: prompt r // n, sample r % n); sampled rows each
        draw from a generator seeded with sample_seed(seed, offset, sample) (`_RowSampler`), so an item samples
        the same tokens in any batch, as on the engines that generate one item at a time.

        Left padding is masked and generate() derives position ids from the mask, so a row sees the same tokens
        at the same positions in any batch. What padding (and a batch's shape) still changes is float rounding
        in the model's kernels: up to 2e-7 of a logit for the tests' tiny Llama and 5e-5 for Gemma 3 270M, in
        float32 on a CPU, more in bf16. That moves a token only near a tie (and then the rest of its completion):
        rare, not impossible. `batch_changes_outputs` keeps a resumed run's batch size, not its batches' rows.
        """
        import transformers

        torch = self.torch
        offsets = seed_offsets if seed_offsets is not None else [0] * len(prompts)
        if len(offsets) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(offsets)} seed offsets")
        # A chat template may already have written BOS; do not add a second one.
        bos = self.tokenizer.bos_token
        add_special = not (bos and all(p.startswith(bos) for p in prompts))
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=add_special)
        batch = batch.to(self.device)
        width = batch["input_ids"].shape[1]
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and width + params.max_new_tokens > limit:
            raise MathforgeError(
                f"a prompt of {width} tokens plus --max-new-tokens {params.max_new_tokens} "
                f"exceeds the model's {limit} positions; lower --max-new-tokens or use fewer --shots"
            )
        processors = transformers.LogitsProcessorList()
        sampling: dict[str, Any] = {"do_sample": False}
        if not params.greedy:
            # transformers applies the processors passed in before its own temperature / top-k / top-p warpers,
            # so _RowSampler warps the scores itself, with those same warpers in transformers' order, and its own
            # are switched off (temperature 1, no top-k, top-p 1): the distribution is the one they would give.
            warpers = sampling_warpers(transformers, params)
            seeds = [
                sample_seed(params.seed, offset, sample) for offset in offsets for sample in range(params.n)
            ]
            processors.append(_RowSampler(torch, warpers, seeds))
            sampling = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
        watch = _LoopStop(torch, self.tokenizer, width, self._ends()) if params.stop_on_loop else None
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
                logits_processor=processors,
                stopping_criteria=transformers.StoppingCriteriaList([watch] if watch else []),
                **sampling,
            )
        new_tokens = output[:, width:]
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()  # without the left padding
        generations = [Generation() for _ in prompts]
        for row, tokens in enumerate(new_tokens.tolist()):
            loop_at = watch.stopped.get(row) if watch else None
            completion = self._completion(tokens, params, loop_at)
            completion.prompt_tokens = prompt_lengths[row // params.n]
            generations[row // params.n].completions.append(completion)
        return generations

    def _completion(
        self, tokens: list[int], params: SamplingParams, loop_at: int | None = None
    ) -> Completion:
        """One row's completion. `loop_at`: the number of tokens after which `_LoopStop` ended the row."""
        if loop_at is not None:
            # Stopped inside generation: the tokens after the stop are padding, whatever the pad token is.
            kept, end = tokens[:loop_at], None
        else:
            # The completion ends at the first EOS; rows that finished early are padded after it. Like llama.cpp,
            # count the tokens before EOS (and no padding).
            end = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
            pad = self.tokenizer.pad_token_id
            kept = tokens[:end] if end is not None else [t for t in tokens if t != pad]
        # One sequence of ids decodes to one string (the stubs' return type also allows a batch's list).
        decoded = cast(str, self.tokenizer.decode(kept, skip_special_tokens=True))
        text, stopped = cut_at_stop(decoded, params.stop)
        if loop_at is not None:
            # A stop string completed on the step the loop was found ends the text as it would have anyway.
            return Completion(text=text, tokens=len(kept), finish_reason="stop" if stopped else "loop")
        finished = stopped or end is not None or len(tokens) < params.max_new_tokens
        return Completion(text=text, tokens=len(kept), finish_reason="stop" if finished else "length")

    def _ends(self) -> set[int]:
        """Tokens after which a row has ended: EOS, and the padding generate() appends to a finished row."""
        pad = self.tokenizer.pad_token_id
        return self.eos_ids | ({pad} if pad is not None else set())

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return chat_prompt(self.tokenizer, messages, self.model_ref)

    def identity(self) -> dict[str, Any]:
        source, gguf_file = split_gguf(self.model_ref)
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


def sampling_warpers(transformers: Any, params: SamplingParams) -> Any:
    """Temperature, top-k and top-p as transformers' own sampling applies them, in its order."""
    warpers = transformers.LogitsProcessorList()
    warpers.append(transformers.TemperatureLogitsWarper(params.temperature))
    if params.top_k > 0:
        warpers.append(transformers.TopKLogitsWarper(params.top_k))
    if params.top_p < 1.0:
        warpers.append(transformers.TopPLogitsWarper(params.top_p))
    return warpers


class _RowSampler:
    """A transformers logits processor that samples each row with its own seeded `torch.Generator`.

    It warps the scores (temperature, top-k, top-p: `warpers`), draws each row's next token from their softmax
    with that row's generator, and returns scores that leave only that token possible (0 there, -inf elsewhere),
    so that generate()'s own sampling from the global RNG can only pick it. Every row draws once a step, finished
    rows too (their token is replaced by padding), so what a row samples never depends on the other rows.
    """

    def __init__(self, torch: Any, warpers: Any, seeds: list[int]) -> None:
        self.torch = torch
        self.warpers = warpers
        self.seeds = seeds
        self.generators: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        if len(self.seeds) != scores.shape[0]:
            raise RuntimeError(f"{scores.shape[0]} rows to sample but {len(self.seeds)} seeds")
        if not self.generators:  # on the device the scores are on
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        probs = torch.softmax(self.warpers(input_ids, scores).float(), dim=-1)
        rows = zip(probs, self.generators, strict=True)
        picked = torch.cat([torch.multinomial(row, 1, generator=generator) for row, generator in rows])
        only = torch.full_like(scores, float("-inf"))
        return only.scatter_(1, picked[:, None], 0.0)


class _LoopStop:
    """A transformers stopping criterion that ends rows stuck in a verbatim loop (`stuck_in_a_loop`).

    generate() calls it after every token with the prompts (left padded to `width`) and the tokens so far; every
    LOOP_CHECK_STRIDE new tokens it decodes each row that is still running and stops those that loop. A row
    that has ended (EOS, or the padding generate() appends after a row stopped on a stop string) is no longer
    tested, so a completion that ended by itself is never reported as stopped. `stopped` maps each stopped row
    to the number of tokens it had generated then; generate() pads the row after that.
    """

    def __init__(self, torch: Any, tokenizer: Any, width: int, ends: set[int]) -> None:
        self.torch = torch
        self.tokenizer = tokenizer
        self.width = width
        self.ends = ends
        self.tokens: list[list[int]] = []  # each row's new tokens, copied up to the last test
        self.ended: set[int] = set()
        self.stopped: dict[int, int] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        rows, generated = input_ids.shape[0], input_ids.shape[1] - self.width
        if generated > 0 and generated % LOOP_CHECK_STRIDE == 0:
            copied = len(self.tokens[0]) if self.tokens else 0
            fresh = input_ids[:, self.width + copied :].tolist()
            self.tokens = [[] for _ in range(rows)] if not self.tokens else self.tokens
            for row, (tokens, more) in enumerate(zip(self.tokens, fresh, strict=True)):
                tokens.extend(more)
                if row in self.stopped or row in self.ended:
                    continue
                if self.ends.intersection(more):
                    self.ended.add(row)
                elif stuck_in_a_loop(self.tokenizer.decode(tokens, skip_special_tokens=True)):
                    self.stopped[row] = generated
        done = self.torch.zeros(rows, dtype=self.torch.bool, device=input_ids.device)
        if self.stopped:
            done[list(self.stopped)] = True
        return done


# The logits of one forward pass (rows x tokens x vocabulary) are held at once: about 512 MiB in float32, that is
# 512 tokens of Gemma 3's 262k vocabulary (a longer text still runs, alone).
_SCORE_LOGITS_BUDGET = 2**27


def split_gguf(model: str) -> tuple[str, str | None]:
    """transformers loads a GGUF file as (its folder, gguf_file=its name)."""
    path = Path(model)
    return (str(path.parent), path.name) if path.suffix == ".gguf" else (model, None)


@contextlib.contextmanager
def reading_gguf_once() -> Iterator[None]:
    """Within this block, each GGUF file is parsed by gguf-py once, however often transformers opens it.

    transformers builds a new gguf-py `GGUFReader` for the tokenizer's config, the model's config and the weights,
    and the reader parses every metadata field into numpy views: about 25 s per parse here for Gemma 3's
    262k-token vocabulary, so one model load spent over a minute re-reading the same header. transformers has no
    hook to pass a reader in, so its lazy `from gguf import GGUFReader` is pointed at a cache for the duration.
    The readers (hundreds of MB of parsed fields) are dropped when the outermost block ends.
    """
    try:
        import gguf
    except ImportError:  # transformers says it needs gguf if a GGUF file is loaded
        gguf = None  # type: ignore[assignment]
    if gguf is None or isinstance(gguf.GGUFReader, _GGUFReaderCache):  # an inner block: the cache is in place
        yield
        return
    cache = _GGUFReaderCache(gguf.GGUFReader)
    gguf.GGUFReader = cache  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        gguf.GGUFReader = cache.reader_class  # type: ignore[misc]


class _GGUFReaderCache:
    """Stands in for gguf-py's `GGUFReader` class: one reader per file (path, size, mtime) read-only."""

    def __init__(self, reader_class: Any) -> None:
        self.reader_class = reader_class
        self.readers: dict[tuple[str, int, int], Any] = {}

    def __call__(self, path: str | os.PathLike[str], mode: str = "r") -> Any:
        if mode != "r":
            return self.reader_class(path, mode)
        stat = os.stat(path)
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
        if key not in self.readers:
            self.readers[key] = self.reader_class(path, mode)
        return self.readers[key]


# What transformers needs in a model directory: what the error calls each part -> its files' glob patterns
# (*.model: SentencePiece's tokenizer.model, spiece.model).
_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "*.model", "vocab.*", "*.tiktoken")
_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")
_MODEL_DIR_PARTS = {
    "no config.json": ("config.json",),
    "no tokenizer files (tokenizer.json, tokenizer.model, tokenizer_config.json or vocab files)": _TOKENIZER,
    "no weights (*.safetensors, pytorch_model*.bin or a .gguf)": _WEIGHTS,
}


def _load_error(model: str, source: str, gguf_file: str | None, error: Exception) -> MathforgeError:
    """The one-line error for a model transformers could not load. For a local directory, what it lacks:
    transformers' own message names only the first file it missed ("Couldn't instantiate the backend tokenizer")
    and the hub hint does not apply."""
    directory = Path(source)
    missing = _missing_parts(directory) if gguf_file is None and directory.is_dir() else []
    if missing:
        gguf = min(directory.glob("*.gguf"), default=None)
        hint = f"; to load its GGUF file, pass --model {gguf}" if gguf is not None else ""
        return MathforgeError(f"cannot load model directory {directory}: it has {', '.join(missing)}{hint}")
    hint = "" if directory.exists() else " (offline? pass a local directory or a .gguf file)"
    return MathforgeError(f"cannot load model '{model}' with transformers: {first_line(error, 300)}{hint}")


def _missing_parts(directory: Path) -> list[str]:
    """What `_MODEL_DIR_PARTS` names and `directory` lacks, in that order."""
    return [
        what
        for what, patterns in _MODEL_DIR_PARTS.items()
        if not any(path.is_file() for pattern in patterns for path in directory.glob(pattern))
    ]


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
