"""SFT formats: how an example becomes one text and the character spans of it that are trained.

Formats are registered by name in `SFT_FORMATS` (`--format NAME`), one class each. Each mirrors an `eval`
prompt format, so that the before/after evaluation prompts the model exactly as it was trained:

- `plain`: eval's `zero-shot` prompt ("Solve the following problem step by step. Question: ...\nSolution:"),
  then the target and the EOS token;
- `chat`: the tokenizer's chat template, the user message as eval's `chat` prompt writes it; every assistant
  turn is trained (rows with `messages` keep their own turns);
- `template`: a jinja2 file of the user's own that renders the prompt (the same file eval's `--prompt custom
  --prompt-template FILE` reads), then the target and the EOS token.

Labels come from the spans of the rendered text, never from searching for a response string in token ids (which
silently masks a whole sample when the response tokenizes differently in context): the text is tokenized once
with offsets, and a token is trained when it starts inside a trained span.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mathforge.errors import MathforgeError, first_line
from mathforge.train.examples import Example

IGNORE_INDEX = -100  # what the loss skips (torch's CrossEntropyLoss default)


@dataclass
class Rendered:
    """One example as text, with the character spans that are trained."""

    text: str
    spans: list[tuple[int, int]]
    # Whether the tokenizer adds its special tokens (BOS): a chat template writes its own.
    add_special_tokens: bool = True

    def prompt_and_completion(self) -> list[tuple[str, bool]]:
        """The text cut into (part, trained) pieces, in order (for showing an example)."""
        pieces, position = [], 0
        for start, end in self.spans:
            if start > position:
                pieces.append((self.text[position:start], False))
            pieces.append((self.text[start:end], True))
            position = end
        if position < len(self.text):
            pieces.append((self.text[position:], False))
        return pieces


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: bool
    where: str

    @property
    def trainable(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


@dataclass(frozen=True)
class FormatContext:
    tokenizer: Any
    template_file: Path | None = None
    system_prompt: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class SftFormat(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    eval_prompt: ClassVar[str]  # the eval prompt format that writes the same prompts

    def __init__(self, context: FormatContext) -> None:
        self.context = context

    @abstractmethod
    def render(self, example: Example) -> Rendered: ...

    def render_checked(self, example: Example) -> Rendered:
        """`render`, with a format's own failures on a row turned into one line naming it."""
        return self.render(example)


SFT_FORMATS: dict[str, type[SftFormat]] = {}


def register(cls: type[SftFormat]) -> type[SftFormat]:
    SFT_FORMATS[cls.name] = cls
    return cls


def build_format(name: str, context: FormatContext) -> SftFormat:
    return SFT_FORMATS[name](context)


def _prompt_then_target(prompt: str, example: Example, eos: str) -> Rendered:
    """The prompt, then the target and EOS as the trained part (after a space unless the prompt ends in one)."""
    if example.messages is not None:
        raise MathforgeError(f"{example.where}: a row with messages needs --format chat")
    separator = "" if not prompt or prompt[-1].isspace() else " "
    text = prompt + separator + example.target + eos
    return Rendered(text, [(len(prompt), len(text))])


@register
class Plain(SftFormat):
    name = "plain"
    description = "eval's zero-shot prompt (Question: ... Solution:), then the target and EOS"
    eval_prompt = "zero-shot"

    def render(self, example: Example) -> Rendered:
        from mathforge.prompts import ZERO_SHOT

        prompt = ZERO_SHOT.format(question=example.question)
        return _prompt_then_target(prompt, example, self.context.tokenizer.eos_token or "")


@register
class Template(SftFormat):
    name = "template"
    description = (
        "your jinja2 prompt template (--template, as eval's --prompt-template), then the target and EOS"
    )
    eval_prompt = "custom"

    def __init__(self, context: FormatContext) -> None:
        super().__init__(context)
        if context.template_file is None:
            raise MathforgeError("--format template needs --template FILE (a jinja2 template of the prompt)")
        from mathforge.prompts import template_renderer

        self._render_prompt = template_renderer(context.template_file, option="--template")

    def render(self, example: Example) -> Rendered:
        from mathforge.benchmarks import Item

        item = Item(id=example.where, question=example.question, gold=example.answer or "")
        prompt = self._render_prompt(item)
        return _prompt_then_target(prompt, example, self.context.tokenizer.eos_token or "")


@register
class Chat(SftFormat):
    name = "chat"
    description = "the tokenizer's chat template; every assistant turn is trained"
    eval_prompt = "chat"

    def __init__(self, context: FormatContext) -> None:
        super().__init__(context)
        if not getattr(context.tokenizer, "chat_template", None):
            raise MathforgeError(
                "--format chat: the tokenizer has no chat template (use --format plain or template)"
            )

    def render(self, example: Example) -> Rendered:
        messages = example.messages if example.messages is not None else self._messages(example)
        return chat_spans(self._apply, messages, example.where)

    def _messages(self, example: Example) -> list[dict[str, str]]:
        from mathforge.prompts import CHAT_INSTRUCTION

        system = self.context.system_prompt
        head = [{"role": "system", "content": system}] if system else []
        user = f"{example.question}\n{CHAT_INSTRUCTION}"
        return [*head, {"role": "user", "content": user}, {"role": "assistant", "content": example.target}]

    def _apply(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        text = self.context.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return str(text)

    def render_checked(self, example: Example) -> Rendered:
        try:
            return self.render(example)
        except MathforgeError:
            raise
        except (
            Exception
        ) as error:  # the template's own raise_exception ("roles must alternate"), jinja errors
            raise MathforgeError(
                f"{example.where}: the chat template fails on this row: {first_line(error)}"
            ) from None


def chat_spans(
    apply: Callable[[list[dict[str, str]], bool], str], messages: list[dict[str, str]], where: str
) -> Rendered:
    """The conversation rendered by the chat template, with each assistant turn's span: from where the template's
    generation prompt ends (the conversation before it, rendered with add_generation_prompt) to where the
    conversation including that turn ends, so the turn's end-of-turn marker is trained and the model learns to
    stop. A template that renders an earlier turn differently once later turns follow (some drop earlier <think>
    blocks) cannot be split this way: that is an error naming the row."""
    full = apply(messages, False)
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = apply(messages[:index], True)
        upto = apply(messages[: index + 1], False)
        if not upto.startswith(prompt) or not full.startswith(upto):
            raise MathforgeError(
                f"{where}: the chat template renders assistant turn {index} differently with what follows it "
                "(it rewrites earlier turns); train on one exchange per row"
            )
        spans.append((len(prompt), len(upto)))
    return Rendered(full, spans, add_special_tokens=False)


def tokenize(tokenizer: Any, rendered: Rendered, max_length: int | None, where: str) -> Tokenized:
    """Token ids and labels: a token is trained when it starts inside a trained span, otherwise its label is
    IGNORE_INDEX; cut to `max_length` tokens (keeping the start)."""
    encoding = tokenizer(
        rendered.text, add_special_tokens=rendered.add_special_tokens, return_offsets_mapping=True
    )
    ids = list(encoding["input_ids"])
    labels = [
        token
        if end > start and _inside(_first_visible(rendered.text, start, end), rendered.spans)
        else IGNORE_INDEX
        for token, (start, end) in zip(ids, encoding["offset_mapping"], strict=True)
    ]
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, labels = ids[:max_length], labels[:max_length]
    return Tokenized(ids, labels, truncated, where)


def _first_visible(text: str, start: int, end: int) -> int:
    """Where a token's own text begins: byte-level BPE folds the space before a word into it ("ĠThe"), so a
    target that starts right after a prompt ending in a space begins with a token whose offset is that space."""
    while start < end - 1 and text[start].isspace():
        start += 1
    return start


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)
