"""Training: supervised fine-tuning (LoRA, QLoRA, full), merging adapters, GGUF export, before/after comparison.

Public surface (each heavy library is imported inside the functions that need it):

- `SftOptions`, `train_sft` (`mathforge train sft`): TRL's SFTTrainer over the shared pieces in `options`
  (one options model for every training kind), `models` (loading), `trainer` (run directory, arguments, logs,
  resume, saving) and `formats` (rendering with trained spans);
- `MergeOptions`, `merge_adapter` (`mathforge merge`);
- `ExportOptions`, `export_gguf` (`mathforge export`);
- `CompareOptions`, `compare_runs` (`mathforge compare`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CompareOptions",
    "ExportOptions",
    "MergeOptions",
    "SftOptions",
    "compare_runs",
    "export_gguf",
    "merge_adapter",
    "train_sft",
]

_HOMES = {
    "SftOptions": "sft",
    "train_sft": "sft",
    "MergeOptions": "merge",
    "merge_adapter": "merge",
    "ExportOptions": "export",
    "export_gguf": "export",
    "CompareOptions": "compare",
    "compare_runs": "compare",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"mathforge.train.{_HOMES[name]}"), name)
