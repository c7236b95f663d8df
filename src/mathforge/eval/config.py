"""The configuration of an evaluation: one pydantic model shared by the CLI and the Python API."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mathforge.errors import MathforgeError

DEFAULT_OUT = Path("runs")
# Config fields whose CLI option has another name, so errors name what the user typed.
_CLI_NAMES = {"benchmarks": "--bench", "n_threads": "--threads"}
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\\\": "\\"}
_ESCAPE = re.compile(r"\\[ntr\\]")


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None, description="GGUF file, hub id or local directory; None: the packaged model"
    )
    backend: str | None = Field(
        None, description="llamacpp, hf, vllm or openai; None: llamacpp for GGUF files, else hf"
    )
    benchmarks: list[str] = Field(default_factory=lambda: ["arith"], min_length=1)
    data_dir: Path | None = None
    out: Path = DEFAULT_OUT
    # Prompting
    prompt: str | None = Field(
        None, description="zero-shot, few-shot, chat or custom; None: the benchmark's default"
    )
    shots: int | None = Field(None, ge=0)
    prompt_file: Path | None = None
    prompt_dir: Path | None = None
    prompt_template: Path | None = None
    system_prompt: str | None = None
    stop: list[str] = Field(default_factory=list)
    extractor: str | None = None
    # Grading: an LLM "compare model" for the verdicts the rules leave uncertain (see mathforge.eval.judge)
    judge: str | None = Field(
        None, description="GGUF file, packaged alias, hub id or local directory; None: rules only"
    )
    judge_backend: str | None = Field(
        None, description="llamacpp or hf for the judge; None: chosen from its model"
    )
    rel_tol: float = Field(0.0, ge=0.0, lt=1.0, description="relative tolerance for numbers; 0: exact")
    grade_timeout: float | None = Field(
        None, gt=0.0, description="seconds per symbolic comparison; None: the grader's default (5 s)"
    )
    # Decoding
    max_new_tokens: int | None = Field(None, ge=1, description="None: the benchmark's default budget")
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    n: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)
    k: list[int] | None = Field(None, description="k values for maj@k and pass@k; None: powers of 2 up to n")
    # Item selection
    limit: int | None = Field(None, ge=1)
    shuffle: bool = False
    # Engine
    batch_size: int | None = Field(None, ge=1)
    dtype: str = "auto"
    device: str | None = None
    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(None, ge=1)
    revision: str | None = None
    # OpenAI-compatible servers (--backend openai)
    base_url: str | None = Field(None, description="the server's /v1 address; None: $OPENAI_BASE_URL")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    concurrency: int = Field(8, ge=1, le=1024, description="requests in flight at once")
    max_retries: int = Field(5, ge=0, description="retries on 429, 5xx, timeouts and dropped connections")
    request_timeout: float = Field(600.0, gt=0.0, description="seconds per request")
    # vLLM
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    # Tool-integrated reasoning (--prompt pal / tora): model-written code runs in mathforge.sandbox
    exec_timeout: float = Field(10.0, gt=0.0, description="wall seconds per program execution")
    exec_memory_mb: int = Field(2048, ge=64, description="address-space limit per program")
    tool_rounds: int = Field(4, ge=1, le=32, description="tora: code executions per trajectory at most")
    tool_state: str = Field(
        "session",
        description="tora: 'session' keeps variables across a trajectory's blocks, 'fresh' does not",
    )
    exec_workers: int | None = Field(None, ge=1, description="programs run at once; None: CPU count")
    require_isolation: bool = Field(False, description="fail instead of running code without bubblewrap")
    # Run directory
    fresh: bool = False

    @field_validator("prompt", "extractor")
    @classmethod
    def _known_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        from mathforge.grading import EXTRACTORS
        from mathforge.prompts import PROMPT_FORMATS

        known = {"prompt": PROMPT_FORMATS, "extractor": EXTRACTORS}[info.field_name]
        if value is not None and value not in known:
            raise ValueError(f"must be one of {', '.join(known)}, got '{value}'")
        return value

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        from mathforge.backends import BACKENDS

        if value is not None and value not in BACKENDS:
            raise ValueError(f"must be one of {', '.join(BACKENDS)}, got '{value}'")
        return value

    @field_validator("tool_state")
    @classmethod
    def _known_state(cls, value: str) -> str:
        if value not in ("session", "fresh"):
            raise ValueError(f"must be session or fresh, got '{value}'")
        return value

    @field_validator("judge")
    @classmethod
    def _judge_named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("expected a model (GGUF file, gemma3-270m, hub id or directory), got ''")
        return value

    @field_validator("judge_backend")
    @classmethod
    def _judge_engine(cls, value: str | None) -> str | None:
        from mathforge.backends import BACKENDS

        if value is not None and value not in BACKENDS:
            raise ValueError(f"must be one of {', '.join(BACKENDS)}, got '{value}'")
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
        if self.base_url is not None and self.backend != "openai":
            raise ValueError("--base-url needs --backend openai")
        return self

    @classmethod
    def build(cls, **values: object) -> EvalConfig:
        """Validate, turning pydantic's report into the one-line error the CLI prints."""
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors()[0]
            field = next((str(part) for part in first["loc"] if isinstance(part, str)), None)
            message = first["msg"].removeprefix("Value error, ")
            if field is None:  # a rule across options: its message names them
                raise MathforgeError(f"invalid options: {message}") from None
            option = _CLI_NAMES.get(field, "--" + field.replace("_", "-"))
            raise MathforgeError(f"invalid option {option}: {message}") from None
