"""Prompt formats: how an item becomes the text a model continues, and where generation must stop.

Formats are registered by name in `PROMPT_FORMATS`, one class each (`@register`); the tool-integrated formats
come from `mathforge.tool_kinds`, one per kind. Few-shot exemplars come from a prompt file in the layout
of math-evaluation-harness (`<prompt-dir>/cot/<name>.md`, exemplars separated by two blank lines) or are drawn
deterministically from the benchmark's train split.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from mathforge.benchmarks import BenchmarkSpec, Item, load_items
from mathforge.errors import MathforgeError, did_you_mean, read_text
from mathforge.tool_kinds import TOOL_KINDS, TOOL_STOPS, ToolKind

__all__ = [
    "PROMPT_FORMATS",
    "TOOL_STOPS",
    "PromptContext",
    "PromptFormat",
    "PromptConfig",
    "Prompter",
    "build_prompter",
    "question_with_choices",
]

# The JiuZhang-8B card's zero-shot prompt.
ZERO_SHOT = "Solve the following problem step by step. Question: {question}\nSolution:"
CHAT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
# A base model that has finished its answer goes on to invent the next exemplar: stop where it starts.
BASE_MODEL_STOPS = ("\nQuestion:", "\nProblem:")
# Where a prompt directory sits relative to a data directory in the shared layout
# (data/benchmarks beside data/prompts/math-evaluation-harness).
_SIBLING_PROMPT_DIR = Path("..") / "prompts" / "math-evaluation-harness"
DEFAULT_TRAIN_SHOTS = 4


@dataclass
class PromptConfig:
    format: str = "few-shot"
    shots: int | None = (
        None  # None: every exemplar of a prompt file, or DEFAULT_TRAIN_SHOTS from a train split
    )
    prompt_file: Path | None = None  # exemplars for few-shot
    prompt_dir: Path | None = None  # directory in math-evaluation-harness layout
    template_file: Path | None = None  # a jinja2 template of the user's own (custom, or chat's user message)
    system_prompt: str | None = None
    stop: tuple[str, ...] = ()  # extra stop strings
    seed: int = 0


@dataclass
class Prompter:
    """Renders items of one benchmark; `source` says where the exemplars came from (for metrics.json)."""

    render: Callable[[Item], str]
    stop: tuple[str, ...]
    source: dict[str, object] = field(default_factory=dict)
    tool: str | None = None  # "pal" or "tora": completions are programs to run


def question_with_choices(item: Item) -> str:
    """The question with its options, in the style of the math-evaluation-harness multiple-choice prompts."""
    if not item.choices:
        return item.question
    options = ", ".join(f"({chr(ord('A') + i)}) {text}" for i, text in enumerate(item.choices))
    return f"{item.question}\nWhat of the following is the right choice? Explain your answer.\n{options}"


ChatTemplate = Callable[[list[dict[str, str]]], str]


@dataclass(frozen=True)
class PromptContext:
    """What a prompt format builds from: the benchmark, the prompt options, the data and the engine's template."""

    spec: BenchmarkSpec
    config: PromptConfig
    data_dir: Path | None = None
    chat_template: ChatTemplate | None = None


class PromptFormat(ABC):
    """How items of a benchmark become prompts: `--prompt NAME`."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def build(self, context: PromptContext) -> Prompter: ...


PROMPT_FORMATS: dict[str, PromptFormat] = {}


def register(cls: type[PromptFormat]) -> type[PromptFormat]:
    PROMPT_FORMATS[cls.name] = cls()
    return cls


def build_prompter(
    spec: BenchmarkSpec,
    config: PromptConfig,
    data_dir: Path | None = None,
    chat_template: ChatTemplate | None = None,
) -> Prompter:
    if config.format not in PROMPT_FORMATS:
        known, hint = ", ".join(PROMPT_FORMATS), did_you_mean(config.format, PROMPT_FORMATS)
        raise MathforgeError(f"--prompt must be one of {known}, got '{config.format}'{hint}")
    return PROMPT_FORMATS[config.format].build(PromptContext(spec, config, data_dir, chat_template))


@register
class ZeroShot(PromptFormat):
    name = "zero-shot"
    description = "the JiuZhang-8B card's instruction, no exemplars"

    def build(self, context: PromptContext) -> Prompter:
        return Prompter(
            lambda item: ZERO_SHOT.format(question=question_with_choices(item)),
            BASE_MODEL_STOPS + context.config.stop,
            {"format": self.name},
        )


@register
class FewShot(PromptFormat):
    name = "few-shot"
    description = "exemplars from the published prompt file, else drawn from the train split"

    def build(self, context: PromptContext) -> Prompter:
        return _few_shot(context.spec, context.config, context.data_dir)


@register
class Chat(PromptFormat):
    name = "chat"
    description = "the model's chat template, with a step-by-step \\boxed{} instruction"

    def build(self, context: PromptContext) -> Prompter:
        return _chat(context.config, context.chat_template)


@register
class Custom(PromptFormat):
    name = "custom"
    description = "your own jinja2 template (--prompt-template)"

    def build(self, context: PromptContext) -> Prompter:
        template = context.config.template_file
        if template is None:
            raise MathforgeError("--prompt custom needs --prompt-template FILE")
        return Prompter(
            template_renderer(template),
            context.config.stop,
            {"format": self.name, "template": str(template)},
        )


class ToolPrompt(PromptFormat):
    """A tool kind's prompt: math-evaluation-harness's exemplars for it, then its query."""

    def __init__(self, kind: ToolKind) -> None:
        self.kind = kind
        self.name = kind.name  # type: ignore[misc]  # an instance per kind, named after it
        self.description = f"tool-integrated: {kind.description}"  # type: ignore[misc]

    def build(self, context: PromptContext) -> Prompter:
        return _tool(self.kind, context.spec, context.config, context.data_dir)


for _kind in TOOL_KINDS.values():
    PROMPT_FORMATS[_kind.name] = ToolPrompt(_kind)


def _chat(config: PromptConfig, chat_template: ChatTemplate | None) -> Prompter:
    if chat_template is None:
        raise MathforgeError("--prompt chat needs a backend with a chat template")
    user_message = (
        template_renderer(config.template_file)
        if config.template_file
        else lambda item: f"{question_with_choices(item)}\n{CHAT_INSTRUCTION}"
    )

    def render(item: Item) -> str:
        system = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
        return chat_template([*system, {"role": "user", "content": user_message(item)}])

    return Prompter(render, config.stop, {"format": "chat", "system_prompt": config.system_prompt})


def template_renderer(path: Path, option: str = "--prompt-template") -> Callable[[Item], str]:
    """A jinja2 prompt template as a renderer of items; `option` names the flag in errors (eval's
    --prompt-template, training's --template)."""
    import jinja2

    try:
        template = jinja2.Environment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        ).from_string(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise MathforgeError(f"{option}: cannot read {path}: {error.strerror}") from None
    except jinja2.TemplateSyntaxError as error:
        raise MathforgeError(f"{path}:{error.lineno}: template syntax error: {error.message}") from None

    def render(item: Item) -> str:
        try:
            return template.render(
                question=item.question,
                choices=item.choices or [],
                question_with_choices=question_with_choices(item),
                item=item,
            )
        except jinja2.UndefinedError as error:
            raise MathforgeError(
                f"{path}: {error.message} (available: question, choices, question_with_choices, item)"
            ) from None

    return render


def _few_shot(spec: BenchmarkSpec, config: PromptConfig, data_dir: Path | None) -> Prompter:
    prompt_file = _find_prompt_file(spec, config, data_dir)
    if prompt_file is not None:
        exemplars = _read_exemplars(prompt_file)
        # The file's own exemplar header decides the query's: "Problem:\n...\nSolution:" or "Question: ...\nAnswer:".
        query = (
            "Problem:\n{question}\nSolution:"
            if exemplars[0].startswith("Problem:")
            else "Question: {question}\nAnswer:"
        )
        if config.shots is not None:
            exemplars = exemplars[: config.shots]
        source = {"format": "few-shot", "prompt_file": str(prompt_file), "shots": len(exemplars)}
    else:
        exemplars = _train_exemplars(spec, config, data_dir)
        query = "Question: {question}\nAnswer:"
        source = {
            "format": "few-shot",
            "exemplars": "train split",
            "shots": len(exemplars),
            "seed": config.seed,
        }
    prefix = "\n\n\n".join(exemplars) + "\n\n\n" if exemplars else ""
    return Prompter(
        lambda item: prefix + query.format(question=question_with_choices(item)),
        BASE_MODEL_STOPS + config.stop,
        source,
    )


def _tool(kind: ToolKind, spec: BenchmarkSpec, config: PromptConfig, data_dir: Path | None) -> Prompter:
    """PAL or ToRA with math-evaluation-harness's exemplars: the file, stripped, then a blank line, then the query."""
    path = _find_prompt_file(spec, config, data_dir, kind=config.format)
    if path is None:
        raise MathforgeError(
            f"--prompt {config.format} needs its exemplars: pass --prompt-dir DIR (math-evaluation-harness layout, "
            f"with {config.format}/gsm8k.md and {config.format}/math.md) or --prompt-file FILE"
        )
    demo = read_text(path, "prompt file").strip()
    if config.shots is not None:
        blocks = demo.split("\n\n---\n\n")
        header = 0 if "Question:" in blocks[0] else 1  # tora/math.md opens with guidelines, pal files don't
        demo = "\n\n---\n\n".join(blocks[: header + config.shots])
    return Prompter(
        lambda item: f"{demo}\n\n" + kind.query.format(question=question_with_choices(item)),
        kind.stops + config.stop,
        {"format": kind.name, "prompt_file": str(path)},
        tool=kind.name,
    )


def _find_prompt_file(
    spec: BenchmarkSpec, config: PromptConfig, data_dir: Path | None, kind: str = "cot"
) -> Path | None:
    if config.prompt_file is not None:
        if not Path(config.prompt_file).is_file():
            raise MathforgeError(f"--prompt-file not found: {config.prompt_file}")
        return Path(config.prompt_file)
    prompt_dir = config.prompt_dir
    if prompt_dir is None and data_dir is not None and (Path(data_dir) / _SIBLING_PROMPT_DIR).is_dir():
        prompt_dir = Path(data_dir) / _SIBLING_PROMPT_DIR
    if prompt_dir is None or (spec.prompt_file is None and kind == "cot"):
        return None
    candidate = Path(prompt_dir) / kind / f"{spec.prompt_file or spec.name}.md"
    if kind != "cot" and not candidate.is_file():
        # Tool prompts exist for gsm8k and math only; the harness uses them for their kin (svamp, MATH-500...).
        kin = "gsm8k" if spec.answer_type in ("number", "text") else "math"
        candidate = Path(prompt_dir) / kind / f"{kin}.md"
    if not candidate.is_file():
        if config.prompt_dir is not None:
            raise MathforgeError(f"--prompt-dir: no prompt file {candidate}")
        return None
    return candidate


def _read_exemplars(path: Path) -> list[str]:
    text = read_text(path, "prompt file").strip()
    exemplars = [block.strip() for block in text.split("\n\n\n") if block.strip()]
    if not exemplars:
        raise MathforgeError(f"{path}: no exemplars (expected blocks separated by two blank lines)")
    return exemplars


def _train_exemplars(spec: BenchmarkSpec, config: PromptConfig, data_dir: Path | None) -> list[str]:
    if spec.train is None:
        raise MathforgeError(
            f"few-shot '{spec.name}' needs exemplars: pass --prompt-dir DIR (math-evaluation-harness layout) or "
            "--prompt-file FILE, or use --prompt zero-shot"
        )
    train = [item for item in load_items(spec, "train", data_dir) if item.solution]
    shots = DEFAULT_TRAIN_SHOTS if config.shots is None else config.shots
    chosen = random.Random(config.seed).sample(train, min(shots, len(train)))
    return [f"Question: {question_with_choices(item)}\nAnswer: {item.solution}" for item in chosen]
