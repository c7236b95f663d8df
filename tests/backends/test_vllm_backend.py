"""The vllm backend, without a GPU: vLLM's interface in front of a real tiny transformers model.

`StandInLLM` takes what `vllm.LLM` takes and decodes the way vLLM does (one request per prompt, n samples drawn
from the request's own seeded stream, stop strings left out of the text, the EOS token counted in `token_ids`),
with the tiny Llama of tests/tiny_models.py. `StandInSamplingParams` accepts only the field names of
`vllm.SamplingParams` copied below and applies vLLM's checks, so mathforge passing any other name fails here.

The names below were copied by hand from vLLM 0.33.0 (vllm/sampling_params.py, vllm/entrypoints/llm.py,
vllm/engine/arg_utils.py). No test compares them with vLLM itself: these tests run offline and without vLLM
(its wheel is about 400 MB), so what they check is that mathforge passes only names in these copies, with
values that vLLM's own checks accept. A name that another vLLM version renames or removes is not caught here:
on a GPU it fails on the first call that passes it, with vLLM's own TypeError.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cli_helpers import assert_one_line_error

from mathforge.backends import load_backend
from mathforge.backends.base import SamplingParams, sample_seed
from mathforge.backends.identity import directory_sha256
from mathforge.backends.vllm_engine import INSTALL_HINT, VLLMBackend
from mathforge.errors import MathforgeError
from mathforge.eval import EvalConfig, evaluate

# vllm.SamplingParams fields (vLLM 0.33.0), public ones.
VLLM_SAMPLING_FIELDS = {
    "n", "presence_penalty", "frequency_penalty", "repetition_penalty", "temperature", "watermarking", "top_p",
    "top_k", "min_p", "seed", "stop", "stop_token_ids", "ignore_eos", "max_tokens", "min_tokens", "logprobs",
    "prompt_logprobs", "prompt_logprob_token_ids", "prompt_logprob_start", "logprob_token_ids", "flat_logprobs",
    "detokenize", "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output",
    "output_kind", "stream_interval", "skip_clone", "structured_outputs", "logit_bias", "allowed_token_ids",
    "extra_args", "bad_words", "skip_reading_prefix_cache", "thinking_token_budget", "repetition_detection",
    "routed_experts_prompt_start", "trace_decode_token_ids",
}  # fmt: skip
# vllm.LLM.__init__ keywords (vLLM 0.33.0) that mathforge could use, and EngineArgs fields passed through **kwargs.
VLLM_LLM_ARGS = {
    "model", "runner", "convert", "tokenizer", "tokenizer_mode", "skip_tokenizer_init", "trust_remote_code",
    "tensor_parallel_size", "dtype", "quantization", "revision", "tokenizer_revision", "chat_template", "seed",
    "gpu_memory_utilization", "cpu_offload_gb", "enforce_eager", "hf_token", "hf_overrides",
    "max_model_len",  # an EngineArgs field
}  # fmt: skip
SAMPLING_EPS = 1e-5  # vLLM: a temperature below this is greedy


class StandInSamplingParams:
    """vllm.SamplingParams' constructor: keyword arguments only, real field names, vLLM's defaults and checks."""

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - VLLM_SAMPLING_FIELDS
        if unknown:
            raise TypeError(f"Unexpected keyword argument {sorted(unknown)[0]!r}")
        self.kwargs = kwargs
        self.n = kwargs.get("n", 1)
        self.temperature = kwargs.get("temperature", 1.0)
        self.top_p = kwargs.get("top_p", 1.0)
        self.top_k = kwargs.get("top_k", 0)
        self.max_tokens = kwargs.get("max_tokens", 16)
        self.stop = kwargs.get("stop") or []
        self.seed = kwargs.get("seed")
        self.include_stop_str_in_output = kwargs.get("include_stop_str_in_output", False)
        if not 0.0 <= self.temperature <= 2.0:
            raise StandInValidationError(f"temperature must be in [0, 2], got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise StandInValidationError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < -1:
            raise StandInValidationError(f"top_k must be 0 (disable), or at least 1, got {self.top_k}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise StandInValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if self.temperature < SAMPLING_EPS and self.n > 1:
            raise StandInValidationError("n must be 1 when using greedy sampling")


class StandInValidationError(Exception):
    """Like vllm.exceptions.VLLMValidationError: not a ValueError in recent versions."""


StandInValidationError.__module__ = "vllm.exceptions"


class StandInLLM:
    """vllm.LLM's offline interface around a tiny transformers model on the CPU."""

    include_stop_str = False  # True: return the stop string with the text, as include_stop_str_in_output does

    def __init__(self, model: str, **kwargs: Any) -> None:
        import torch
        import transformers

        unknown = set(kwargs) - VLLM_LLM_ARGS
        if unknown:
            raise TypeError(f"LLM got an unexpected keyword argument {sorted(unknown)[0]!r}")
        self.init_kwargs = {"model": model, **kwargs}
        self.torch = torch
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(model)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
        self.calls: list[tuple[list[str], list[StandInSamplingParams]]] = []
        self.shut_down = False
        self.llm_engine = SimpleNamespace(
            model_config=SimpleNamespace(dtype=torch.float32),
            engine_core=SimpleNamespace(shutdown=self._shutdown),
        )

    def _shutdown(self) -> None:
        self.shut_down = True

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def generate(
        self, prompts: list[str], sampling_params: Any = None, *, use_tqdm: bool = True
    ) -> list[SimpleNamespace]:
        if not isinstance(sampling_params, list):
            sampling_params = [sampling_params or StandInSamplingParams()] * len(prompts)
        assert len(sampling_params) == len(prompts)
        self.calls.append((list(prompts), list(sampling_params)))
        outputs = []
        for prompt, params in zip(prompts, sampling_params, strict=True):
            prompt_ids = self.tokenizer(prompt).input_ids  # vLLM adds special tokens to text prompts
            generator = self.torch.Generator()
            generator.manual_seed(params.seed if params.seed is not None else 12345)
            samples = [self._sample(prompt_ids, params, generator, index) for index in range(params.n)]
            outputs.append(SimpleNamespace(prompt=prompt, prompt_token_ids=prompt_ids, outputs=samples))
        return outputs

    def _sample(self, prompt_ids: list[int], params: Any, generator: Any, index: int) -> SimpleNamespace:
        torch = self.torch
        tokens: list[int] = []
        text, finish, stop_reason = "", "length", None
        while len(tokens) < params.max_tokens:
            with torch.inference_mode():
                logits = self.model(torch.tensor([prompt_ids + tokens])).logits[0, -1].float()
            token = self._pick(logits, params, generator)
            tokens.append(token)
            if token == self.tokenizer.eos_token_id:  # counted in token_ids, left out of the text
                finish = "stop"
                break
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            hits = [(text.find(stop), stop) for stop in params.stop if stop in text]
            if hits:
                at, stop_reason = min(hits)
                text = text[: at + len(stop_reason)] if self.include_stop_str else text[:at]
                finish = "stop"
                break
        return SimpleNamespace(
            index=index, text=text, token_ids=tokens, finish_reason=finish, stop_reason=stop_reason
        )

    def _pick(self, logits: Any, params: Any, generator: Any) -> int:
        torch = self.torch
        if params.temperature < SAMPLING_EPS:
            return int(logits.argmax())
        logits = logits / params.temperature
        if params.top_k > 0:
            cut = torch.topk(logits, params.top_k).values[-1]
            logits = logits.masked_fill(logits < cut, float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        if params.top_p < 1.0:
            ordered, order = probs.sort(descending=True)
            drop = ordered.cumsum(0) - ordered > params.top_p
            probs = probs.scatter(0, order, ordered.masked_fill(drop, 0.0))
        return int(torch.multinomial(probs, 1, generator=generator))


def _stand_in_module() -> types.ModuleType:
    module = types.ModuleType("vllm")
    engines: list[StandInLLM] = []

    def make_llm(model: str, **kwargs: Any) -> StandInLLM:
        engines.append(StandInLLM(model, **kwargs))
        return engines[-1]

    module.LLM = make_llm
    module.SamplingParams = StandInSamplingParams
    module.engines = engines
    return module


@pytest.fixture
def vllm_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = _stand_in_module()
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


@pytest.fixture
def backend(vllm_module: types.ModuleType, tiny_llama: Path) -> VLLMBackend:
    return VLLMBackend(str(tiny_llama))


PROMPTS = ["Question: 3 + 4 = ?\nAnswer:", "Question: 12 - 5 = ?\nAnswer:", "Question: 6 * 7 = ?\nAnswer:"]
SAMPLED = SamplingParams(max_new_tokens=6, temperature=1.0, n=3, seed=5, stop=("\nQuestion:",))


def _texts(generations: list) -> list[list[str]]:
    return [[c.text for c in g.completions] for g in generations]


def test_engine_arguments(vllm_module: types.ModuleType, tiny_llama: Path) -> None:
    # The runner passes vLLM's own options (VLLMOptions); another engine's option is refused before loading,
    # see tests/shared/test_config.py.
    VLLMBackend(
        str(tiny_llama),
        revision="abc123",
        dtype="bfloat16",
        n_ctx=2048,
        tensor_parallel_size=2,
        gpu_memory_utilization=0.5,
    )
    with pytest.raises(TypeError):
        VLLMBackend(str(tiny_llama), n_threads=4)  # type: ignore[call-arg]
    assert vllm_module.engines[0].init_kwargs == {
        "model": str(tiny_llama),
        "revision": "abc123",
        "tokenizer_revision": "abc123",
        "dtype": "bfloat16",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.5,
        "max_model_len": 2048,
        "seed": 0,
        "trust_remote_code": False,
    }
    with pytest.raises(
        MathforgeError, match=r"^invalid option --dtype: must be one of auto, float32, float16, bfloat16"
    ):
        load_backend("vllm", str(tiny_llama), dtype="fp8")  # the engine's options model checks it
    with pytest.raises(MathforgeError, match="not a GGUF file"):
        VLLMBackend(str(tiny_llama / "model.gguf"))


def test_one_request_per_prompt_in_one_call(backend: VLLMBackend) -> None:
    generations = backend.generate(PROMPTS, SAMPLED, seed_offsets=[4, 7, 9])
    engine = backend.llm
    assert len(engine.calls) == 1, "the whole batch goes to vLLM at once"
    prompts, requests = engine.calls[0]
    assert prompts == PROMPTS
    assert [r.kwargs for r in requests] == [
        {
            "n": 3,
            "temperature": 1.0,
            "top_p": 1.0,
            "top_k": -1,  # mathforge's 0 (no cut); vLLM before 0.8 refuses 0
            "max_tokens": 6,
            "stop": ["\nQuestion:"],
            "seed": sample_seed(5, offset, 0),
        }
        for offset in (4, 7, 9)
    ]
    assert [len(g.completions) for g in generations] == [3, 3, 3]
    assert all(0 < c.tokens <= 6 for g in generations for c in g.completions)
    # The n samples of a request differ (one seeded stream per request), and so do the prompts' streams.
    assert len({text for texts in _texts(generations) for text in texts}) > 3


def test_sampling_does_not_depend_on_batch_boundaries(backend: VLLMBackend) -> None:
    whole = _texts(backend.generate(PROMPTS, SAMPLED, seed_offsets=[0, 1, 2]))
    assert _texts(backend.generate(PROMPTS[1:2], SAMPLED, seed_offsets=[1])) == whole[1:2]
    assert _texts(backend.generate([PROMPTS[2], PROMPTS[0]], SAMPLED, seed_offsets=[2, 0])) == [
        whole[2],
        whole[0],
    ]
    other_seed = SamplingParams(max_new_tokens=6, temperature=1.0, n=3, seed=6, stop=("\nQuestion:",))
    assert _texts(backend.generate(PROMPTS, other_seed, seed_offsets=[0, 1, 2])) != whole


def test_greedy_and_top_k(backend: VLLMBackend) -> None:
    greedy = SamplingParams(max_new_tokens=5)
    first = _texts(backend.generate(PROMPTS, greedy, seed_offsets=[0, 1, 2]))
    request = backend.llm.calls[-1][1][0].kwargs
    assert request["n"] == 1 and request["temperature"] == 0.0 and request["top_k"] == -1
    assert _texts(backend.generate(PROMPTS[::-1], greedy)) == first[::-1]
    backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=2, temperature=0.7, top_k=5, top_p=0.9))
    request = backend.llm.calls[-1][1][0].kwargs
    assert (request["top_k"], request["top_p"], request["temperature"]) == (5, 0.9, 0.7)


def test_stop_strings_and_finish_reasons(backend: VLLMBackend) -> None:
    budget = 12
    [free] = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=budget))
    whole = free.completions[0]
    # A random model rarely says EOS: then the budget ran out ("length"), and every token counts.
    assert (whole.finish_reason, whole.tokens) == ("length", budget) or whole.finish_reason == "stop"
    stop = whole.text[3:5]
    assert len(stop) == 2
    [stopped] = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=budget, stop=(stop,)))
    assert backend.llm.calls[-1][1][0].kwargs["stop"] == [stop]
    completion = stopped.completions[0]
    assert completion.text == whole.text[: whole.text.find(stop)]
    assert completion.finish_reason == "stop" and completion.tokens < budget


def test_stop_string_returned_by_the_engine_is_cut(backend: VLLMBackend) -> None:
    [free] = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=12))
    stop = free.completions[0].text[3:5]
    backend.llm.include_stop_str = True  # as with include_stop_str_in_output=True, or an engine that keeps it
    [stopped] = backend.generate(PROMPTS[:1], SamplingParams(max_new_tokens=12, stop=(stop,)))
    text = stopped.completions[0].text
    assert stop not in text and text == free.completions[0].text[: free.completions[0].text.find(stop)]


class _Relabelled:
    """Passes requests to a stand-in engine and rewrites what comes back, as other vLLM versions may report."""

    def __init__(self, engine: StandInLLM, finish_reason: str | None, end_with_eos: bool) -> None:
        self.engine, self.finish_reason, self.end_with_eos = engine, finish_reason, end_with_eos

    def get_tokenizer(self) -> Any:
        return self.engine.get_tokenizer()

    def generate(self, prompts: list[str], sampling_params: Any, *, use_tqdm: bool = True) -> list[Any]:
        outputs = self.engine.generate(prompts, sampling_params, use_tqdm=use_tqdm)
        for output in outputs:
            for choice in output.outputs:
                choice.finish_reason = self.finish_reason
                if self.end_with_eos:
                    choice.token_ids = [*choice.token_ids[:-1], self.engine.tokenizer.eos_token_id]
        return outputs


@pytest.mark.parametrize(
    ("finish_reason", "end_with_eos", "expected", "tokens"),
    [
        ("length", False, "length", 4),
        ("stop", True, "stop", 3),
        ("abort", False, "stop", 4),
        (None, False, "stop", 4),
    ],
)
def test_finish_reason_mapping_and_eos_count(
    vllm_module: types.ModuleType,
    tiny_llama: Path,
    finish_reason: str | None,
    end_with_eos: bool,
    expected: str,
    tokens: int,
) -> None:
    engine = _Relabelled(StandInLLM(str(tiny_llama)), finish_reason, end_with_eos)
    [generation] = VLLMBackend(str(tiny_llama), engine=engine).generate(
        PROMPTS[:1], SamplingParams(max_new_tokens=4)
    )
    assert (generation.completions[0].finish_reason, generation.completions[0].tokens) == (expected, tokens)


def test_vllm_errors(backend: VLLMBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    # Recent vLLM refuses a temperature above 2 with its own error class, which is not a ValueError.
    with pytest.raises(MathforgeError, match=r"^vLLM rejected the sampling settings: temperature must be in"):
        backend.generate(PROMPTS[:1], SamplingParams(temperature=2.5))

    def fail(*args: Any, **kwargs: Any) -> None:
        raise StandInValidationError(
            "The decoder prompt (length 5000) is longer than the maximum model length\nx"
        )

    monkeypatch.setattr(backend.llm, "generate", fail)
    # A RuntimeError, which the runner reports in one line with how to resume.
    with pytest.raises(RuntimeError, match=r"^The decoder prompt \(length 5000\) is longer than [^\n]*$"):
        backend.generate(PROMPTS[:1], SamplingParams())


def test_chat_template(backend: VLLMBackend) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}]
    assert (
        backend.apply_chat_template(messages) == "<s><|system|>\nBe brief.\n<|user|>\n1+1?\n<|assistant|>\n"
    )
    backend.tokenizer.chat_template = "{{ raise_exception('no system role') }}"
    with pytest.raises(MathforgeError, match="chat template rejected the messages: no system role"):
        backend.apply_chat_template(messages)
    backend.tokenizer.chat_template = None
    with pytest.raises(
        MathforgeError, match=r"has no chat template \(a base model\?\); use --prompt few-shot"
    ):
        backend.apply_chat_template(messages)


def test_a_bos_written_by_the_template_is_not_doubled(
    vllm_module: types.ModuleType, tiny_llama: Path
) -> None:
    from tokenizers import processors

    engine = StandInLLM(str(tiny_llama))
    tokenizer = engine.tokenizer
    bos = tokenizer.bos_token_id
    # Like Llama 3's tokenizer: encoding a text puts BOS in front, and the chat template writes BOS too.
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    backend = VLLMBackend(str(tiny_llama), engine=engine)
    prompt = backend.apply_chat_template([{"role": "user", "content": "1+1?"}])
    assert prompt.startswith("<s>")
    backend.generate([prompt], SamplingParams(max_new_tokens=2))
    [sent] = engine.calls[-1][0]
    assert sent == prompt.removeprefix("<s>")
    assert tokenizer(sent).input_ids[:2] == [
        bos,
        *tokenizer("<|user|>", add_special_tokens=False).input_ids[:1],
    ]

    # Without a tokenizer that adds BOS (the tiny model's own), prompts go as they are.
    plain = VLLMBackend(str(tiny_llama), engine=StandInLLM(str(tiny_llama)))
    plain.generate([prompt], SamplingParams(max_new_tokens=2))
    assert plain.llm.calls[-1][0] == [prompt]


def test_identity(
    vllm_module: types.ModuleType, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = VLLMBackend(str(tiny_llama))
    assert local.identity() == {
        "backend": "vllm",
        "model": str(tiny_llama),
        "dtype": "torch.float32",  # the dtype vLLM chose, written as the hf engine writes it
        "tensor_parallel_size": 1,
        "path": str(tiny_llama.resolve()),
        "sha256": directory_sha256(tiny_llama),
    }
    # A hub id: the commit vLLM downloaded, found in the hub cache (or the --revision asked for).
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "models--org--tiny-math" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--org--tiny-math" / "refs").mkdir()
    (tmp_path / "models--org--tiny-math" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    hub = VLLMBackend("org/tiny-math", engine=StandInLLM(str(tiny_llama)), tensor_parallel_size=2)
    assert hub.identity() == {
        "backend": "vllm",
        "model": "org/tiny-math",
        "dtype": "torch.float32",
        "tensor_parallel_size": 2,
        "revision": commit,
    }
    uncached = VLLMBackend("org/other", engine=StandInLLM(str(tiny_llama)), revision="v1.0")
    assert uncached.identity()["revision"] == "v1.0"


def test_close_releases_the_engine(backend: VLLMBackend) -> None:
    engine = backend.llm
    backend.close()
    assert engine.shut_down and not hasattr(backend, "llm")
    backend.close()  # twice is harmless


def test_without_vllm_one_line_error(monkeypatch: pytest.MonkeyPatch, tiny_llama: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(MathforgeError) as raised:
        VLLMBackend(str(tiny_llama))
    assert str(raised.value) == "the vllm backend needs vLLM and a GPU: pip install 'mathforge[vllm]'"
    assert str(raised.value) == INSTALL_HINT


@pytest.mark.parametrize(
    ("error", "pattern"),
    [
        (
            RuntimeError("No CUDA GPUs are available\n(traceback details)"),
            r"^cannot start vLLM for '.*': No CUDA GPUs are available \(a CUDA GPU is needed; on CPU use",
        ),
        (
            ValueError(
                "User-specified max_model_len (4096) is greater than the derived max_model_len (2048)."
            ),
            r"^cannot start vLLM .*max_model_len \(4096\).*\(lower --n-ctx \(now 4096\)\)$",
        ),
    ],
)
def test_engine_start_failure_is_one_line(
    vllm_module: types.ModuleType, tiny_llama: Path, error: Exception, pattern: str
) -> None:
    def fail(**kwargs: Any) -> None:
        raise error

    vllm_module.LLM = fail
    with pytest.raises(MathforgeError, match=pattern) as raised:
        VLLMBackend(str(tiny_llama))
    assert "\n" not in str(raised.value)


def test_cli_without_vllm(tiny_llama: Path, tmp_path: Path) -> None:
    # A `vllm` that cannot be imported, even where the real one is installed.
    (tmp_path / "shadow" / "vllm").mkdir(parents=True)
    (tmp_path / "shadow" / "vllm" / "__init__.py").write_text("raise ImportError('No module named vllm')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "mathforge.cli", "eval", "--backend", "vllm", "--model", str(tiny_llama)]
        + ["--limit", "1", "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert_one_line_error(result, re.escape(INSTALL_HINT) + "$")


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_evaluate_end_to_end_same_records_as_hf(
    vllm_module: types.ModuleType, tiny_llama: Path, tmp_path: Path
) -> None:
    config = dict(model=str(tiny_llama), benchmarks=["arith"], limit=3, max_new_tokens=8)
    vllm_run = evaluate(EvalConfig(**config, backend="vllm", out=tmp_path / "vllm"), show_progress=False)[0]
    hf_run = evaluate(EvalConfig(**config, backend="hf", out=tmp_path / "hf"), show_progress=False)[0]
    [engine] = vllm_module.engines
    assert len(engine.calls) == 1 and len(engine.calls[0][0]) == 3  # one batch: vLLM gets up to 256 prompts
    assert engine.shut_down  # the runner closed the backend
    vllm_rows, hf_rows = _rows(vllm_run.path), _rows(hf_run.path)
    assert len(vllm_rows) == len(hf_rows) == 3
    assert [list(row) for row in vllm_rows] == [list(row) for row in hf_rows]
    # The same weights decoded greedily: the same prompts and the same completions as transformers.
    for key in ("id", "prompt", "completions", "preds", "tokens", "finish_reasons"):
        assert [row[key] for row in vllm_rows] == [row[key] for row in hf_rows], key
    vllm_metrics = json.loads((vllm_run.path / "metrics.json").read_text())
    hf_metrics = json.loads((hf_run.path / "metrics.json").read_text())
    assert set(vllm_metrics) == set(hf_metrics)
    assert vllm_metrics["model_identity"]["backend"] == "vllm"
    assert vllm_metrics["model_identity"]["sha256"] == hf_metrics["model_identity"]["sha256"]

    sampled = EvalConfig(**config, backend="vllm", n=2, temperature=1.0, seed=3, out=tmp_path / "sampled")
    rows = _rows(evaluate(sampled, show_progress=False)[0].path)
    assert [list(row) for row in rows] == [list(row) for row in hf_rows]
    assert all(len(row["completions"]) == len(row["tokens"]) == 2 for row in rows)
    assert [r.kwargs["seed"] for r in vllm_module.engines[-1].calls[0][1]] == [
        sample_seed(3, i) for i in range(3)
    ]
