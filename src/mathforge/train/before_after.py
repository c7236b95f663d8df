"""`train --eval-bench`: the base model and the trained one evaluated by the harness on the same items, with the
same prompt (the eval format matching the training format) and engine, then compared with significance.

The trained model is evaluated as it ships: a LoRA adapter is merged first (`mathforge merge`, into
<run>/merged, with its own logit check), a full fine-tune is read from <run>/model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mathforge.train.formats import SFT_FORMATS
from mathforge.train.trainer import RunPaths


def evaluate_before_after(opts: Any, paths: RunPaths, base_ref: str, show_progress: bool) -> dict[str, Any]:
    """Evaluate into <run>/eval/before and <run>/eval/after; write and return the comparison."""
    from mathforge.eval import EvalConfig, evaluate
    from mathforge.train.compare import CompareOptions, compare_runs

    trained = _trained_model(opts, paths, show_progress)
    settings = _eval_settings(opts)
    before, after = paths.root / "eval" / "before", paths.root / "eval" / "after"
    for model, out in ((base_ref, before), (str(trained), after)):
        evaluate(EvalConfig.build(model=model, out=str(out), **settings), show_progress=show_progress)
    return compare_runs(before, after, CompareOptions.build(out=str(paths.root)))


def _eval_settings(opts: Any) -> dict[str, Any]:
    """The same engine, prompt, items and budget for both models."""
    prompt = opts.eval_prompt or SFT_FORMATS[opts.format].eval_prompt
    settings: dict[str, Any] = {
        "backend": "hf",
        "bench": opts.eval_benchmarks,
        "prompt": prompt,
        "max_new_tokens": opts.eval_max_new_tokens,
        "batch_size": opts.eval_batch_size,
        "dtype": "auto" if opts.dtype == "auto" else opts.dtype,
    }
    if opts.device:
        settings["device"] = opts.device
    if opts.eval_limit:
        settings["limit"] = opts.eval_limit
    if opts.eval_data_dir:
        settings["data_dir"] = opts.eval_data_dir
    if prompt == "custom" and opts.template:
        settings["prompt_template"] = opts.template
    if prompt == "chat" and opts.system_prompt:
        settings["system_prompt"] = opts.system_prompt
    return settings


def _trained_model(opts: Any, paths: RunPaths, show_progress: bool) -> Path:
    if not opts.uses_adapter:
        return paths.model
    from mathforge.train.merge import MergeOptions, merge_adapter

    merged = paths.root / "merged"
    merge_opts = MergeOptions.build(adapter=str(paths.adapter), out=str(merged), quiet=True)
    if opts.device:
        merge_opts = merge_opts.model_copy(update={"device": opts.device})
    merge_adapter(merge_opts, show_progress=show_progress)
    return merged
