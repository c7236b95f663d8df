"""llama.cpp engine (llama-cpp-python): GGUF files on CPU or GPU, the default for laptops."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any

from mathforge.backends.base import Completion, Generation, SamplingParams, sample_seed
from mathforge.backends.identity import file_sha256
from mathforge.errors import ContextOverflow, MathforgeError


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = -1,
        **_: Any,
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise MathforgeError(
                "the llamacpp backend needs llama-cpp-python: pip install 'mathforge[llamacpp]'"
            ) from None
        _route_llama_logs_to_errors_only()
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise MathforgeError(f"model file not found: {self.model_path}")
        try:
            self.llm = Llama(
                model_path=str(self.model_path),
                n_ctx=n_ctx,
                # llama-cpp-python defaults to half the cores; a dedicated eval wants all of them.
                n_threads=n_threads or len(os.sched_getaffinity(0)),
                n_gpu_layers=n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as error:
            raise MathforgeError(f"cannot load GGUF model {self.model_path}: {error}") from None
        self.n_ctx = n_ctx

    def generate(
        self, prompts: list[str], params: SamplingParams, seed_offsets: list[int] | None = None
    ) -> list[Generation]:
        offsets = seed_offsets or [0] * len(prompts)
        return [
            self._generate_one(prompt, params, offset)
            for prompt, offset in zip(prompts, offsets, strict=True)
        ]

    def _generate_one(self, prompt: str, params: SamplingParams, offset: int) -> Generation:
        prompt_tokens = len(self.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
        budget = min(params.max_new_tokens, self.n_ctx - prompt_tokens)
        if budget <= 0:
            raise ContextOverflow(
                f"a prompt of {prompt_tokens} tokens does not fit the context window of {self.n_ctx}; "
                "raise --n-ctx or use fewer --shots"
            )
        generation = Generation()
        for sample in range(params.n):
            out = self.llm.create_completion(
                prompt,
                max_tokens=budget,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                # llama-cpp-python's defaults (min_p 0.05) would silently change the sampling distribution.
                min_p=0.0,
                repeat_penalty=1.0,
                seed=sample_seed(params.seed, offset, sample),
                stop=list(params.stop) or None,
            )
            choice = out["choices"][0]
            generation.completions.append(
                Completion(
                    text=choice["text"],
                    tokens=out["usage"]["completion_tokens"],
                    finish_reason=choice["finish_reason"] or "stop",
                )
            )
        return generation

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise MathforgeError(
                f"{self.model_path.name} has no chat template (a base model?); use --prompt few-shot or zero-shot"
            )
        bos, eos = self._token_text(self.llm.token_bos()), self._token_text(self.llm.token_eos())
        try:
            prompt = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)(
                messages=messages
            ).prompt
        except Exception as error:  # jinja2 errors and templates that raise on, e.g., a system message
            raise MathforgeError(
                f"{self.model_path.name}'s chat template rejected the messages: {error}"
            ) from None
        # llama.cpp adds BOS itself when tokenizing; a template that writes it too would double it.
        return prompt.removeprefix(bos) if bos else prompt

    def _token_text(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", "ignore") if token >= 0 else ""

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "path": str(self.model_path.resolve()),
            "sha256": file_sha256(self.model_path),
            "n_ctx": self.n_ctx,
        }

    def close(self) -> None:
        self.llm.close()


_GGML_LOG_ERROR, _GGML_LOG_CONT = 4, 5
_log_callback = None  # kept referenced: llama.cpp holds a raw pointer to it


def _route_llama_logs_to_errors_only() -> None:
    """llama.cpp prints informational lines and warnings even with verbose=False; keep its errors only (and
    their continuation lines), so the progress bar and one-line error messages stay readable."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    in_error = False

    @llama_cpp.llama_log_callback
    def errors_only(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        nonlocal in_error
        # ggml.h: DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line).
        in_error = level == _GGML_LOG_ERROR or (level == _GGML_LOG_CONT and in_error)
        if in_error:
            sys.stderr.write(text.decode("utf-8", "replace"))

    _log_callback = errors_only
    llama_cpp.llama_log_set(errors_only, ctypes.c_void_p(0))
