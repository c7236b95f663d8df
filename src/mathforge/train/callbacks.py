"""Trainer callbacks shared by every training kind: the JSONL log, mathforge's progress bar, and the token counts
that a resumed run continues."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from mathforge.io import append_jsonl
from mathforge.progress import ItemProgress

# What log.jsonl keeps of a log entry (transformers' names; tokens_per_second and trainable_tokens are added by
# train.trainer.Counting), besides step and epoch.
_LOGGED = {
    "loss": "loss",
    "learning_rate": "lr",
    "grad_norm": "grad_norm",
    "tokens_per_second": "tokens_per_second",
    "trainable_tokens": "trainable_tokens",
    "num_tokens": "tokens",
    "mean_token_accuracy": "token_accuracy",
    "train_loss": "train_loss",
    "train_runtime": "train_runtime",
}


class TokenCounts(TrainerCallback, ExportableState):
    """The running totals of tokens seen (TRL's count, padding excluded) and trained (labels not -100), summed
    over every process. transformers writes `state()` into each checkpoint's trainer_state.json, so a resumed
    run continues both totals where the checkpoint left them (TRL's own count would start again at 0)."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.trained = 0

    def state(self) -> dict[str, Any]:
        return {"args": {}, "attributes": {"trained": self.trained, "seen": self.seen}}

    @property
    def seen(self) -> int:
        return int(getattr(self.trainer, "_total_train_tokens", 0))

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        saved = saved_token_counts(state)
        self.trained = saved["trained"]
        # A checkpoint written without this callback has no entry for it, and transformers' next save looks the
        # entry up by name: give it one.
        state.stateful_callbacks.setdefault(type(self).__name__, self.state())
        if hasattr(self.trainer, "_total_train_tokens"):
            self.trainer._total_train_tokens = saved["seen"]


def saved_token_counts(state: Any) -> dict[str, int]:
    """The totals a checkpoint's state holds (zeros for a fresh run, or a checkpoint written before they were)."""
    saved = (state.stateful_callbacks or {}).get(TokenCounts.__name__) or {}
    if isinstance(saved, list):  # transformers keeps a list when several callbacks share the name
        saved = saved[-1]
    attributes = saved.get("attributes") or {}
    return {"trained": int(attributes.get("trained", 0)), "seen": int(attributes.get("seen", 0))}


class JsonlLog(TrainerCallback):
    """Appends one JSON object per logging step to log.jsonl (flushed and fsynced: a kill loses nothing logged)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        row: dict[str, Any] = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        row.update({name: logs[key] for key, name in _LOGGED.items() if key in logs})
        row["time"] = time.time()
        append_jsonl(self.path, [row])


class Progress(TrainerCallback):
    """The shared progress bar over optimiser steps, with tokens/s (on a terminal only)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: ItemProgress | None = None
        self._tokens = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._tokens = float(saved_token_counts(state)["seen"])  # resumed: the bar counts on from there
        if state.is_world_process_zero:
            self._bar = ItemProgress("train", state.max_steps, state.global_step, self.enabled).__enter__()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.advance(1)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        # TRL's running count of the tokens seen (padding excluded) drives the bar's tokens/s.
        if self._bar is not None and logs and "num_tokens" in logs:
            seen = float(logs["num_tokens"])
            self._bar.advance(0, int(max(0.0, seen - self._tokens)))
            self._tokens = seen

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
