"""Trainer callbacks shared by every training kind: the JSONL log and mathforge's progress bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

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
