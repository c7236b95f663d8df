"""`mathforge merge`: a LoRA adapter written into its base model's weights, then checked.

The adapter is merged onto the base in 16 or 32 bits, as the base was released; never onto a 4-bit copy unless
`--from-4bit` asks for it (dequantising NF4 changes every weight, so the merged model would not be the released
base plus the adapter). The result is a plain transformers directory (safetensors, config, generation config,
tokenizer) that transformers, vLLM and `mathforge export` load.

Then the merge verifies itself on what it wrote: the saved directory is loaded back and run on a few texts
beside the unmerged base + adapter, and the largest logit difference goes into merge_report.json. The report is
the last file written and the directory is moved into place whole, so a killed merge never leaves a directory
that looks finished.
"""

from __future__ import annotations

import gc
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from mathforge.config import Options
from mathforge.errors import MathforgeError, first_line
from mathforge.io import write_json_atomic

REPORT = "merge_report.json"
BASE_RECORD = "mathforge_base.json"  # what `train` writes beside the adapter: models.base_identity
MERGE_DTYPES = ("auto", "bf16", "fp16", "fp32")
_TORCH_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
_SAVED_DTYPES = ("float32", "bfloat16", "float16")
# Merged and unmerged logits agree up to rounding, which grows with the model and the logits' scale, so the
# tolerance is a share of the adapter's effect (max |(base + adapter) - base|): a merge that dropped the adapter
# misses by about all of it. In fp32 rounding is ~1e-6 of the effect (tiny Llama: 8e-7 of 1.0; Gemma 3 270M:
# 9e-5 of 11), so a share of 1e-3 also catches a lost layer. In 16 bits the merged weight W + BA is rounded to
# 8 (bf16) or 11 (fp16) bits where the unmerged model adds B A x separately, and the difference is a noise floor
# that grows as the adapter's change shrinks (random LoRA in bf16: tiny Llama 1% of the effect, Gemma 3 270M
# 9%); the check there is that the merged model is clearly closer to base + adapter than the base is.
MIN_TOLERANCE = 1e-4
FP32_SHARE_OF_EFFECT = 1e-3
HALF_SHARE_OF_EFFECT = 0.5
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
# Texts the merged model is checked on: short, with numbers, operators and a <think> block, as the models
# trained here see them.
VERIFY_TEXTS = [
    "Question: Olivia bakes 6 batches of 2 cups each. How many cups? Solution: 6 * 2 = 12. The answer is 12.",
    "Solve for x: 3x + 5 = 20, so 3x = 15 and x = 5.",
    "<think>\n48 / 2 = 24\n24 + 48 = 72\n</think>\nThe answer is 72.",
]


class MergeOptions(Options):
    """Options of `mathforge merge`."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json", "verify_texts": "verify_text"}
    choices: ClassVar = {"dtype": lambda: MERGE_DTYPES}

    adapter: str = Field(
        ..., description="The LoRA adapter directory, or a `train sft` run directory (its adapter/ is used)"
    )
    out: str = Field(
        ...,
        description="Directory to write the merged model to (new, empty, or an earlier merge's, which is replaced)",
    )
    base: str | None = Field(
        None,
        description="The base model: hub id, directory or .gguf (default: the one the adapter was trained on, "
        "from its mathforge_base.json, else its adapter_config.json)",
    )
    dtype: str = Field(
        "auto",
        description="bf16, fp16 or fp32; auto: the dtype the base was saved in when it is 16 or 32 bits, fp32 "
        "for a .gguf base (its dequantised weights are exact only in fp32), else bf16",
    )
    device: str | None = Field(None, description="cpu, cuda, cuda:1 ... (default: cuda if available)")
    from_4bit: bool = Field(
        False,
        description="Merge onto a 4-bit NF4 copy of the base, dequantised (CUDA + bitsandbytes): this changes "
        "the weights; only for an adapter meant for the quantised base",
    )
    verify_texts: list[str] = Field(
        default_factory=lambda: list(VERIFY_TEXTS),
        description="A text to compare merged and unmerged logits on (repeatable; default: three short math "
        "texts)",
        json_schema_extra={"repeatable": True},
    )
    json_output: bool = Field(
        False, description="Print the merge report as one JSON line instead of the table"
    )
    quiet: bool = Field(False, description="No progress output")


def merge_adapter(opts: MergeOptions, show_progress: bool = True) -> dict[str, Any]:
    """Merge the adapter into its base, save the result to `opts.out`, load it back and compare its logits with
    the unmerged base + adapter; return the merge report (also <out>/merge_report.json)."""
    from mathforge.train.trainer import library_versions, quiet_libraries

    quiet_libraries()  # transformers' loading bars off: the steps below are the progress shown
    started = time.perf_counter()
    say = _Steps(show_progress and not opts.quiet)
    plan = _plan(opts)
    out = Path(opts.out)
    _check_out(out, plan.adapter, plan.base_ref)
    with _scratch_directory(out) as scratch:
        say(
            f"loading {plan.base_ref} ({plan.dtype}{', from 4-bit' if plan.from_4bit else ''}) on {plan.device}"
        )
        unmerged = _merge_and_save(plan, scratch)
        say("loading the merged model back to verify it")
        merged_logits = _saved_logits(scratch, plan, unmerged.tokenizer)
        # Both models ran on the same token ids in the same dtype: peft's unmerged base + adapter before the
        # merge, the saved merged model after it. The difference is max |merged - unmerged| over every logit
        # of every position of every text.
        difference = max(_max_abs_diff(a, b) for a, b in zip(unmerged.logits, merged_logits, strict=True))
        tolerance = _tolerance(plan.dtype, unmerged.adapter_effect)
        report = {
            "out": str(out),
            "base": unmerged.base_identity,
            "base_weights": _base_weights(plan),
            "adapter": str(plan.adapter),
            "lora": _lora_summary(plan.lora),
            "dtype": plan.dtype,
            "device": plan.device,
            "verify_texts": plan.texts,
            "max_abs_logit_diff": difference,
            "adapter_effect": unmerged.adapter_effect,
            "tolerance": tolerance,
            "verified": difference <= tolerance,
            "warning": _warning(plan, difference, tolerance),
            "versions": library_versions(),
            "seconds": round(time.perf_counter() - started, 2),
        }
        write_json_atomic(scratch / REPORT, report)  # last: a directory without it is not a finished merge
        _move_into_place(scratch, out)
    say(f"merged into {out}; largest logit difference {difference:.3g} (tolerance {tolerance:.3g})")
    return report


def adapter_directory(path: Path) -> Path:
    """The adapter itself, or a run directory's `adapter/`."""
    for candidate in (path, path / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise MathforgeError(f"--adapter {path}: no adapter_config.json there (nor in {path / 'adapter'})")


@dataclass(frozen=True)
class _Plan:
    """What is merged onto what, resolved from the options and the adapter's records."""

    adapter: Path
    lora: dict[str, Any]  # adapter_config.json
    recorded: dict[str, Any]  # mathforge_base.json ({} for an adapter not trained by mathforge)
    base_ref: str
    revision: str | None
    dtype: str  # torch's name
    device: str
    from_4bit: bool
    texts: list[str]


def _plan(opts: MergeOptions) -> _Plan:
    from mathforge.train.models import default_device, resolve_base

    if not opts.verify_texts:
        raise MathforgeError("--verify-text: give at least one text to check the merged model on")
    adapter = adapter_directory(Path(opts.adapter))
    lora = _lora_config(adapter)
    recorded = _recorded_base(adapter)
    base_ref = resolve_base(opts.base or recorded.get("model") or _peft_base(adapter, lora))
    revision = None if opts.base else recorded.get("revision")  # the recorded revision of the recorded base
    return _Plan(
        adapter=adapter,
        lora=lora,
        recorded=recorded,
        base_ref=base_ref,
        revision=revision,
        dtype=_merge_dtype(opts.dtype, base_ref, revision),
        device=opts.device or default_device(),
        from_4bit=opts.from_4bit,
        texts=list(opts.verify_texts),
    )


# --- merging --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Unmerged:
    """What the merge is checked against, kept after the models are freed."""

    logits: list[Any]  # base + adapter, unmerged (peft's LoRA layers), per text
    adapter_effect: float  # max |(base + adapter) - base| over all logits: what the adapter changes
    base_identity: dict[str, Any]
    tokenizer: Any


def _merge_and_save(plan: _Plan, out: Path) -> _Unmerged:
    """Load base + adapter, keep their logits (and the base's alone), merge, save model and tokenizer to `out`.

    The models are freed before returning, so that loading the saved model back to check it needs no more
    memory than the merge did.
    """
    from mathforge.train.models import base_identity, load_tokenizer

    base = _load_base(plan)
    # Checked on the loaded model's config: reading a GGUF file's config alone costs as much as loading it.
    identity = base_identity(plan.base_ref, base, plan.revision)
    _check_same_base(plan, identity)
    combined = _with_adapter(base, plan)
    # The adapter's own tokenizer when training saved one (it is the one the adapter was trained with).
    if _has_tokenizer(plan.adapter):
        tokenizer = load_tokenizer(str(plan.adapter))
    else:
        tokenizer = load_tokenizer(plan.base_ref, plan.revision)
    reference = _logits(combined, tokenizer, plan.texts)
    with combined.disable_adapter():
        base_alone = _logits(combined, tokenizer, plan.texts)
    effect = max(_max_abs_diff(a, b) for a, b in zip(reference, base_alone, strict=True))
    merged = combined.merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    del base, combined, merged, base_alone
    _free_memory()
    return _Unmerged(reference, effect, identity, tokenizer)


def _load_base(plan: _Plan) -> Any:
    """The base in `dtype`; with `from_4bit`, quantised to NF4 on load and dequantised back to `dtype`, the
    weights a QLoRA adapter was trained against (not the released ones)."""
    from mathforge.train.models import load_model

    if not plan.from_4bit:
        return load_model(plan.base_ref, dtype=plan.dtype, device=plan.device, revision=plan.revision)
    import torch

    if not plan.device.startswith("cuda") or not torch.cuda.is_available():
        raise MathforgeError(
            f"--from-4bit needs a CUDA GPU (bitsandbytes 4-bit NF4), and the device is {plan.device}; "
            "leave it out to merge onto the 16-bit base (the default, and what the base was released as)"
        )
    quantised = load_model(
        plan.base_ref, dtype=plan.dtype, device=plan.device, revision=plan.revision, load_in_4bit=True
    )
    return quantised.dequantize(dtype=getattr(torch, plan.dtype))


def _with_adapter(base: Any, plan: _Plan) -> Any:
    """The base wrapped by peft with the adapter loaded (unmerged), every adapter weight in place, or one line
    naming the adapter and the base."""
    from peft import PeftModel

    try:
        with warnings.catch_warnings():
            # Its list of missing keys (a screenful); _check_weights_placed says the same in one line.
            warnings.filterwarnings("ignore", message="Found missing adapter keys")
            combined = PeftModel.from_pretrained(base, str(plan.adapter))
    except (RuntimeError, ValueError, KeyError) as error:
        raise MathforgeError(f"{_does_not_fit(plan)}: {_peft_error_line(error)}") from None
    _check_weights_placed(combined, plan)
    return combined.eval()


def _check_weights_placed(combined: Any, plan: _Plan) -> None:
    """Every saved adapter weight has its module in the base, and every module the adapter targets in the base
    has its saved weights. peft loads with strict=False: an adapter for a module the base lacks would be
    dropped silently, and a base with more layers would keep fresh (zero) LoRA weights there; either means
    another base than the one the adapter was trained on."""
    from peft import get_peft_model_state_dict
    from safetensors import safe_open

    weights = plan.adapter / "adapter_model.safetensors"
    if not weights.is_file():  # an older .bin adapter: peft's own loading errors are the check
        return
    with safe_open(str(weights), framework="pt") as handle:
        saved = set(handle.keys())
    placed = set(get_peft_model_state_dict(combined))
    problems = (
        (saved - placed, "saved adapter weights have no module in the base"),
        (placed - saved, "modules of the base that the adapter targets have no saved weights"),
    )
    for names, what in problems:
        if names:
            raise MathforgeError(f"{_does_not_fit(plan)}: {len(names)} {what} (e.g. {min(names)})")


def _does_not_fit(plan: _Plan) -> str:
    return f"--adapter {plan.adapter} does not fit --base {plan.base_ref}"


def _peft_error_line(error: BaseException) -> str:
    """The informative line of a peft loading error: torch's "Error(s) in loading state_dict" puts the size
    mismatch on a later line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "size mismatch" in line or "not found" in line:
            return line if len(line) <= 300 else line[:297] + "..."
    return first_line(error, 300)


def _logits(model: Any, tokenizer: Any, texts: list[str]) -> list[Any]:
    """Each text's logits over all positions (fp32, on the CPU), one text at a time: no padding, so the two
    models see exactly the same token ids and nothing but the weights can differ."""
    import torch

    device = next(model.parameters()).device
    found = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt")["input_ids"].to(device)
            found.append(model(input_ids=ids, use_cache=False).logits[0].float().cpu())
    return found


def _saved_logits(directory: Path, plan: _Plan, tokenizer: Any) -> list[Any]:
    """The logits of the model as saved, loaded back the way transformers users load it."""
    from mathforge.train.models import load_model

    model = load_model(str(directory), dtype=plan.dtype, device=plan.device)
    model.eval()
    logits = _logits(model, tokenizer, plan.texts)
    del model
    _free_memory()
    return logits


def _max_abs_diff(first: Any, second: Any) -> float:
    return float((first - second).abs().max())


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- which base, which dtype ----------------------------------------------------------------------------


def _lora_config(adapter: Path) -> dict[str, Any]:
    file = adapter / "adapter_config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MathforgeError(f"--adapter {adapter}: cannot read {file.name}: {first_line(error)}") from None
    kind = config.get("peft_type")
    if kind != "LORA":
        raise MathforgeError(f"--adapter {adapter} is a {kind} adapter; merge takes LoRA adapters")
    return dict(config)


def _recorded_base(adapter: Path) -> dict[str, Any]:
    file = adapter / BASE_RECORD
    if not file.exists():
        return {}
    try:
        return dict(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise MathforgeError(f"--adapter {adapter}: cannot read {BASE_RECORD}: {first_line(error)}") from None


def _peft_base(adapter: Path, lora: dict[str, Any]) -> str:
    base = lora.get("base_model_name_or_path")
    if not base:
        raise MathforgeError(f"--adapter {adapter}: it does not name its base model; pass --base")
    return str(base)


def _check_same_base(plan: _Plan, identity: dict[str, Any]) -> None:
    """The base's config digest against the one training recorded: two bases whose weights have the same
    shapes (peft would load the adapter onto either without a word) still differ here."""
    recorded = plan.recorded
    trained_on = recorded.get("config_sha256")
    if trained_on and trained_on != identity["config_sha256"]:
        raise MathforgeError(
            f"--adapter {plan.adapter} was trained on {recorded.get('model')} ({recorded.get('architecture')}, "
            f"config {trained_on[:12]}), not on --base {plan.base_ref} ({identity['architecture']}, config "
            f"{identity['config_sha256'][:12]}); pass the base it was trained on"
        )


def _merge_dtype(dtype: str, base_ref: str, revision: str | None) -> str:
    """--dtype, or for auto: the dtype the base was saved in when it is 16 or 32 bits; fp32 for a GGUF file
    (transformers dequantises it to fp32, and the 4-bit blocks' values are not all exact in 16 bits, so fp32
    keeps the weights the adapter was trained on); otherwise (a config that names no dtype) bf16."""
    if dtype != "auto":
        return _TORCH_NAMES[dtype]
    if base_ref.endswith(".gguf"):
        return "float32"
    saved = str(getattr(_base_config(base_ref, revision), "dtype", None) or "").removeprefix("torch.")
    return saved if saved in _SAVED_DTYPES else "bfloat16"


def _base_config(base_ref: str, revision: str | None) -> Any:
    import transformers

    from mathforge.hub import offline_unless_hub_reachable

    offline_unless_hub_reachable()  # a hub id without a network: the local cache, or at once None
    try:
        return transformers.AutoConfig.from_pretrained(
            base_ref, **({"revision": revision} if revision else {})
        )
    except (OSError, ValueError):
        return None  # base_identity read it a moment ago; without it, the default dtype


def _has_tokenizer(adapter: Path) -> bool:
    return any((adapter / name).is_file() for name in TOKENIZER_FILES)


def _lora_summary(lora: dict[str, Any]) -> dict[str, Any]:
    """The adapter's settings. Target modules by their last name: peft saves an `all-linear` adapter's targets
    as every module's full path (hundreds for an 8B model), which says no more here than `q_proj`."""
    targets = lora.get("target_modules")
    keys = ("r", "lora_alpha", "lora_dropout", "use_rslora", "use_dora", "modules_to_save")
    return {
        **{key: lora.get(key) for key in keys},
        "target_modules": (
            sorted({name.rsplit(".", 1)[-1] for name in targets}) if isinstance(targets, list) else targets
        ),
    }


def _base_weights(plan: _Plan) -> str:
    if plan.from_4bit:
        return "4-bit NF4 copy of the base, dequantised (--from-4bit)"
    if plan.base_ref.endswith(".gguf"):
        return "GGUF file, dequantised by transformers"
    return "as saved (16 or 32 bits)"


def _tolerance(dtype: str, adapter_effect: float) -> float:
    """How far merged logits may be from base + adapter: a share of what the adapter changes (a merge that lost
    the adapter, or one layer of it, misses by all of that layer's effect), never below 1e-4."""
    share = FP32_SHARE_OF_EFFECT if dtype == "float32" else HALF_SHARE_OF_EFFECT
    return max(MIN_TOLERANCE, share * adapter_effect)


def _warning(plan: _Plan, difference: float, tolerance: float) -> str | None:
    """What the user must know about the result, on one line (None: nothing)."""
    warnings = []
    if plan.from_4bit:
        warnings.append("merged onto the dequantised 4-bit base: its weights differ from the released base's")
    if plan.base_ref.endswith(".gguf"):
        warnings.append(
            "merged onto a dequantised quantised (GGUF) base: its weights differ from the original 16-bit model's"
        )
    if not difference <= tolerance:  # NaN included: a NaN logit is a broken merge
        why = (
            "the merge may be broken"
            if plan.dtype == "float32" or difference != difference
            else f"{plan.dtype} weights round away much of this adapter's change (--dtype fp32 keeps all of it)"
        )
        warnings.append(
            f"the merged model's logits differ from base + adapter by {difference:.3g}, above the tolerance "
            f"{tolerance:.3g}: {why}"
        )
    return "; ".join(warnings) or None


# --- the output directory -------------------------------------------------------------------------------


def _check_out(out: Path, adapter: Path, base_ref: str) -> None:
    """Never write into a directory that holds something else (an earlier merge's output is replaced)."""
    for what, path in (("--adapter", adapter), ("the base", Path(base_ref))):
        if out.resolve() == path.resolve():
            raise MathforgeError(f"--out {out} is {what}'s directory; choose another directory")
    if out.exists() and not out.is_dir():
        raise MathforgeError(f"--out {out} is a file; choose a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / REPORT).is_file():
        raise MathforgeError(f"--out {out} is not empty and holds no earlier merge; choose another directory")


@contextmanager
def _scratch_directory(out: Path) -> Iterator[Path]:
    """A fresh directory beside `out` that the merge is written to; removed unless moved into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _move_into_place(scratch: Path, out: Path) -> None:
    """Replace `out` (absent, empty, or an earlier merge) by the finished scratch directory."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{scratch.name.rsplit('-', 1)[-1]}")
        out.rename(old)
        scratch.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        scratch.rename(out)


class _Steps:
    """One line per step on stderr, on a terminal only (a merge has a few long steps, not items to count)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"merge: {message}", file=sys.stderr, flush=True)
