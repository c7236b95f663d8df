"""The configuration of an evaluation: one pydantic model shared by the CLI and the Python API."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from mathforge.backends.options import UsesEngine, nest_saved_engine_keys
from mathforge.grading.options import GradingOptions
from mathforge.prompts import PROMPT_FORMATS

DEFAULT_OUT = Path("runs")
_PROMPTS_HELP = ", ".join(PROMPT_FORMATS)
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\\\": "\\"}
_ESCAPE = re.compile(r"\\[ntr\\]")


class EvalConfig(UsesEngine, GradingOptions):
    """Every option of `mathforge eval`, declared once: the flags, the config-file keys and the Python API.

    The engine's own options (`--n-ctx`, `--dtype`, `--base-url`, ...) are declared by each engine beside its
    code (`mathforge.backends`); given here as keys, they are checked against the chosen engine and kept in
    `engine_options`.
    """

    cli_names: ClassVar[dict[str, str]] = {"benchmarks": "bench"}
    internal: ClassVar[tuple[str, ...]] = ("engine_options", "judge_engine_options")
    repeats_runs: ClassVar[bool] = True
    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {
        **UsesEngine.choices,
        **GradingOptions.choices,
        "prompt": lambda: PROMPT_FORMATS,  # read when checked: formats registered later count too
        "judge_backend": UsesEngine.choices["backend"],
        "tool_state": lambda: ("session", "fresh"),
    }

    benchmarks: list[str] = Field(
        default_factory=lambda: ["arith"],
        min_length=1,
        description="Comma-separated benchmark names (see `mathforge benchmarks`) [default: arith]",
    )
    data_dir: Path | None = Field(
        None,
        description="Benchmark files in the math-evaluation-harness data/ layout; without it data comes from "
        "the HF hub",
    )
    out: Path = Field(DEFAULT_OUT, description="Where run directories go")
    # Prompting
    prompt: str | None = Field(None, description=f"{_PROMPTS_HELP} [default: per benchmark]")
    shots: int | None = Field(
        None, ge=0, description="Few-shot exemplars to use [default: all of a prompt file, 4 from a train split]"
    )
    prompt_file: Path | None = Field(
        None, description="Few-shot exemplar file (blocks separated by two blank lines)"
    )
    prompt_dir: Path | None = Field(
        None, description="Prompt directory in math-evaluation-harness layout (cot/<name>.md)"
    )
    prompt_template: Path | None = Field(
        None,
        description="Your own jinja2 prompt template (variables: question, choices, question_with_choices, item)",
    )
    system_prompt: str | None = Field(None, description="System message for --prompt chat")
    stop: list[str] = Field(
        default_factory=list, description="Extra stop string (repeatable)", json_schema_extra={"repeatable": True}
    )
    # Grading: an LLM "compare model" for the verdicts the rules leave uncertain (see mathforge.eval.judge)
    judge: str | None = Field(
        None,
        description="Compare model that decides the answers the grading rules leave uncertain: GGUF file, "
        "gemma3-270m, HF hub id or local directory (its verdicts are cached under --out/judge-cache)",
    )
    judge_backend: str | None = Field(
        None, description="Engine for --judge, as --backend [default: from the judge model]"
    )
    # Decoding
    max_new_tokens: int | None = Field(
        None, ge=1, description="Generation budget per completion [default: per benchmark, 1024; arith 256]"
    )
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling: keep the smallest set of this mass")
    top_k: int = Field(0, ge=0, description="0 = no top-k cut")
    n: int = Field(1, ge=1, description="Samples per item (needs --temperature > 0)")
    seed: int = Field(0, ge=0, description="Seed for sampling, --shuffle, arith and train exemplars")
    stop_on_loop: bool = Field(
        True,
        description="End a completion that repeats itself verbatim (finish reason 'loop', graded as cut off at "
        "the budget, so no verdict changes); --no-stop-on-loop decodes every completion to its end [hf, "
        "llamacpp, openai; vllm decodes to the end]",
    )
    k: list[int] | None = Field(
        None, description="k values for maj@k and pass@k, comma-separated [default: powers of 2 up to n]"
    )
    # Item selection
    limit: int | None = Field(None, ge=1, description="Evaluate the first N items")
    shuffle: bool = Field(False, description="Pick --limit items at random (seeded) instead of the first ones")
    # Engine (the engine's own options: see engine_options)
    batch_size: int | None = Field(
        None, ge=1, description="Prompts per engine call [default: hf 8, llamacpp 1, vllm 256, openai 4x concurrency]"
    )
    # Tool-integrated reasoning (--prompt pal / tora): model-written code runs in mathforge.sandbox
    exec_timeout: float = Field(10.0, gt=0.0, description="pal/tora: wall seconds per program run in the sandbox")
    exec_memory_mb: int = Field(2048, ge=64, description="pal/tora: memory limit per program (MiB)")
    tool_rounds: int = Field(4, ge=1, le=32, description="tora: code executions per answer at most")
    tool_state: str = Field(
        "session",
        description="tora: session (variables persist across a trajectory's code blocks) or fresh (each block "
        "alone, as math-evaluation-harness runs them)",
    )
    exec_workers: int | None = Field(
        None, ge=1, description="pal/tora: programs run at once [default: CPU count]"
    )
    require_isolation: bool = Field(
        False, description="pal/tora: fail rather than run model-written code without bubblewrap"
    )
    # Run directory
    fresh: bool = Field(False, description="Discard a previous run in the same directory instead of resuming it")
    # Engine options given for the judge's engine when it is another one (--judge org/j --device cuda).
    judge_engine_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("k", mode="before")
    @classmethod
    def _integers(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return [int(part) for part in value.split(",") if part.strip()]
            except ValueError:
                raise ValueError(f"expected comma-separated integers, got '{value}'") from None
        return value

    @field_validator("judge")
    @classmethod
    def _judge_named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("expected a model (GGUF file, gemma3-270m, hub id or directory), got ''")
        return value

    @field_validator("stop")
    @classmethod
    def _decoded_stops(cls, stops: list[str]) -> list[str]:
        # Shells cannot pass a newline easily: "\n" on the command line means a newline. Only these escapes are
        # decoded, so that non-ASCII stops (Chinese benchmarks) pass through untouched.
        decoded = [_ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], stop) for stop in stops]
        if any(stop == "" for stop in decoded):
            raise ValueError("an empty stop string would stop every completion at once")
        return decoded

    @field_validator("k")
    @classmethod
    def _positive_ks(cls, ks: list[int] | None) -> list[int] | None:
        if ks is not None and any(k < 1 for k in ks):
            raise ValueError("every k must be >= 1")
        return ks

    @model_validator(mode="after")
    def _sampling_consistent(self) -> EvalConfig:
        if self.n > 1 and self.temperature == 0.0:
            raise ValueError("n > 1 needs sampling: set --temperature above 0")
        if self.k and max(self.k) > self.n:
            raise ValueError(f"k={max(self.k)} exceeds --n {self.n}")
        if self.prompt == "custom" and self.prompt_template is None:
            raise ValueError("--prompt custom needs --prompt-template FILE")
        if self.judge_backend is not None and self.judge is None:
            raise ValueError("--judge-backend needs --judge MODEL")
        return self

    @classmethod
    def prepare_saved(cls, values: dict[str, Any]) -> None:
        """Repeating a run resumes it: its saved `fresh` is not repeated (it would discard the run). Runs saved
        before engine options were kept apart hold every engine's options at the top level: they are read as
        saved options, which the chosen engine takes where it has them (not checked like given ones)."""
        values.pop("fresh", None)
        if "engine_options" not in values:
            nest_saved_engine_keys(values)


