"""The training-kind registry: one entry per `mathforge train KIND` sub-command (sft now; continued pre-training
and Selective Language Modeling next). A kind names its options model (a `TrainOptions`) and its run function;
the CLI builds one sub-command per entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mathforge.config import Options


@dataclass(frozen=True)
class TrainingKind:
    name: str
    description: str
    options: Callable[[], type[Options]]  # imported when the CLI is built (a light pydantic model)
    run: Callable[[Any, bool], dict[str, Any]]  # (options, show_progress) -> summary


TRAINING_KINDS: dict[str, TrainingKind] = {}


def register(kind: TrainingKind) -> TrainingKind:
    TRAINING_KINDS[kind.name] = kind
    return kind


def _sft_options() -> type[Options]:
    from mathforge.train.sft import SftOptions

    return SftOptions


def _sft_run(opts: Any, show_progress: bool) -> dict[str, Any]:
    from mathforge.train.sft import train_sft

    return train_sft(opts, show_progress)


register(
    TrainingKind(
        "sft",
        "Supervised fine-tuning (LoRA, QLoRA or all weights) on question/solution or chat rows; --dry-run shows "
        "what would be trained; --resume continues exactly.",
        _sft_options,
        _sft_run,
    )
)
