"""What every training kind shares around its Trainer: the run directory, the model with its adapter, the
transformers arguments (optimiser, schedule, checkpoints), the logs and the progress bar, resume, and saving.

A kind (`train/sft.py`) prepares its dataset and picks its TRL trainer class; `run_training` does the rest. The
training step itself is TRL's and transformers' (no hand-written loop): `Counting` only adds the token counts
that mathforge logs (tokens/s and trainable tokens) to the trainer's own logs.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathforge.errors import Interrupted, MathforgeError
from mathforge.io import append_jsonl, read_resumable, write_json_atomic
from mathforge.rundir import check_same_run
from mathforge.train.options import TrainOptions

LIBRARIES = ("mathforge", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes")


@dataclass
class RunPaths:
    """The layout of a training run directory."""

    root: Path

    @property
    def run(self) -> Path:  # what the run is: resolved options, data hash, base model, library versions
        return self.root / "run.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def log(self) -> Path:  # one JSON object per logging step
        return self.root / "log.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def adapter(self) -> Path:  # the LoRA adapter (lora, qlora)
        return self.root / "adapter"

    @property
    def model(self) -> Path:  # the whole model (full fine-tuning)
        return self.root / "model"

    @property
    def summary(self) -> Path:
        return self.root / "train_summary.json"

    @property
    def result(self) -> Path:
        """What the run produced: the adapter or the model."""
        return self.adapter if self.adapter.exists() else self.model


def library_versions() -> dict[str, str | None]:
    import importlib.metadata

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_digest(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def start_run(paths: RunPaths, opts: TrainOptions, fingerprint: dict[str, Any]) -> Path | None:
    """Create or check the run directory; the checkpoint to resume from (None: start from the beginning).

    `fingerprint` is what must match for `--resume` to continue the same run (options that change the result,
    the data's hash, the base model). Under `accelerate launch` every process checks, and only the main one
    writes.
    """
    from accelerate import PartialState

    state = PartialState()
    checkpoint = None if opts.fresh else last_checkpoint(paths)
    if opts.resume:
        if checkpoint is None:
            raise MathforgeError(f"--resume: {paths.root} has no checkpoint to resume from")
        check_same_run(paths.run, fingerprint, f"--resume: {paths.root} holds a different run")
    elif opts.fresh and paths.root.exists() and any(paths.root.iterdir()) and not paths.run.exists():
        raise MathforgeError(f"--fresh: {paths.root} is not a mathforge training run; choose another --out")
    elif not opts.fresh and paths.root.exists() and any(paths.root.iterdir()):
        what = "checkpoints" if checkpoint is not None else "files"
        raise MathforgeError(
            f"{paths.root} already holds a run ({what}); --resume to continue it, --fresh to start again, "
            "or another --out"
        )
    state.wait_for_everyone()  # every process has checked before the main one changes anything
    if state.is_main_process:
        if opts.fresh and paths.root.exists():
            shutil.rmtree(paths.root)
        paths.root.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"fingerprint": fingerprint, "versions": library_versions()}
        if opts.resume and checkpoint is not None:
            _cut_log(paths.log, _checkpoint_step(checkpoint))
            # The versions the run started with stay; each resume adds the versions it continued with.
            if paths.run.exists():  # a run directory without run.json (check_same_run lets it resume)
                record = json.loads(paths.run.read_text(encoding="utf-8"))
            resumes = record.setdefault("resumes", [])
            resumes.append({"from": checkpoint.name, "versions": library_versions(), "time": time.time()})
        write_json_atomic(paths.run, record)
    state.wait_for_everyone()
    return checkpoint if opts.resume else None


def last_checkpoint(paths: RunPaths) -> Path | None:
    """The newest complete checkpoint. transformers writes trainer_state.json last, so a checkpoint without it
    was cut short (a kill while saving) and is passed over: resume starts from the one before."""
    if not paths.checkpoints.is_dir():
        return None
    found = [
        path
        for path in paths.checkpoints.glob("checkpoint-*")
        if path.is_dir() and path.name.removeprefix("checkpoint-").isdigit()
    ]
    complete = [path for path in found if _readable_state(path / "trainer_state.json")]
    return max(complete, key=_checkpoint_step, default=None)


def _readable_state(file: Path) -> bool:
    """trainer_state.json is written last and not atomically: present and whole means the checkpoint is."""
    try:
        json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[1])


def _cut_log(log: Path, step: int) -> None:
    """Drop the log lines past the checkpoint a resumed run starts from: they are logged again."""
    if log.exists():
        kept = [row for row in read_resumable(log) if row.get("step", 0) <= step]
        from mathforge.io import write_jsonl_atomic

        write_jsonl_atomic(log, kept)


def load_for_training(opts: TrainOptions, ref: str) -> tuple[Any, dict[str, Any]]:
    """(model, base identity) of the base `ref`, loaded as the method needs: 4-bit for QLoRA."""
    from accelerate import PartialState

    from mathforge.train.models import base_identity, default_device, load_model

    if opts.optimizer.endswith("8bit") or opts.method == "qlora":
        _require_cuda(opts)
    state = PartialState()  # under `accelerate launch`: this process's own GPU
    _check_device_option(opts.device, state.num_processes)
    device = opts.device or (str(state.device) if state.num_processes > 1 else default_device())
    model = load_model(
        ref,
        dtype=opts.dtype,
        device=device,
        revision=opts.revision,
        load_in_4bit=opts.method == "qlora",
        attn_implementation=opts.attn_implementation,
    )
    return model, base_identity(ref, model, opts.revision)


def _check_device_option(device: str | None, processes: int) -> None:
    """transformers' Trainer puts the model on accelerate's device: each process's own GPU under `accelerate
    launch`, and cuda:0 for a single process. A --device that says otherwise would be silently moved."""
    if device is None:
        return
    if processes > 1:
        raise MathforgeError(
            f"--device {device}: under accelerate launch each process trains on its own GPU; leave --device out"
        )
    if device.startswith("cuda:") and device != "cuda:0":
        raise MathforgeError(
            f"--device {device}: one training process trains on the first visible GPU; choose it with "
            f"CUDA_VISIBLE_DEVICES={device.split(':', 1)[1]} (and --device cuda)"
        )


def _require_cuda(opts: TrainOptions) -> None:
    from mathforge.train.models import qlora_config

    device = opts.device or _cuda_or_cpu()
    if opts.method == "qlora":
        qlora_config(device)  # raises the one-line error off CUDA
    elif not device.startswith("cuda"):
        raise MathforgeError(
            f"--optimizer {opts.optimizer} needs a CUDA GPU (bitsandbytes); use adamw_torch on this machine"
        )


def _cuda_or_cpu() -> str:
    from mathforge.train.models import default_device

    return default_device()


def lora_config(opts: TrainOptions) -> Any:
    """peft's LoRA settings for --method lora/qlora (None for full fine-tuning)."""
    if not opts.uses_adapter:
        return None
    from peft import LoraConfig

    targets: str | list[str] = "all-linear" if opts.target_modules == ["all-linear"] else opts.target_modules
    return LoraConfig(
        r=opts.lora_r,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def trainer_arguments(opts: TrainOptions, paths: RunPaths, model: Any) -> dict[str, Any]:
    """The transformers TrainingArguments every kind shares (a kind's config class adds its own)."""
    import torch

    device = str(next(model.parameters()).device)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    on_gpu = device.startswith("cuda")
    return {
        "output_dir": str(paths.checkpoints),
        "num_train_epochs": opts.epochs,
        "max_steps": opts.max_steps or -1,
        "learning_rate": opts.learning_rate,
        "lr_scheduler_type": opts.lr_scheduler,
        "warmup_steps": opts.warmup_steps,
        "weight_decay": opts.weight_decay,
        "optim": opts.optimizer,
        "max_grad_norm": opts.max_grad_norm,
        "per_device_train_batch_size": opts.per_device_batch_size,
        "gradient_accumulation_steps": opts.gradient_accumulation_steps,
        _checkpointing_name(): opts.gradient_checkpointing,  # TRL's default is on; mathforge's is off (faster)
        "seed": opts.seed,
        "data_seed": opts.seed,
        "logging_steps": opts.logging_steps,
        "save_steps": opts.save_steps,
        "save_total_limit": opts.save_total_limit,
        "save_strategy": "steps",
        "report_to": "none",  # TensorBoard is added as a callback writing to <out>/tensorboard
        "disable_tqdm": True,  # mathforge's own bar (ProgressCallback)
        "use_cpu": not on_gpu,
        "bf16": on_gpu and dtype == torch.bfloat16 and opts.method != "qlora",
        "fp16": on_gpu and dtype == torch.float16,
        "dataloader_num_workers": 0,
    }


def _checkpointing_name() -> str:
    """transformers 5 renamed gradient_checkpointing to activation_checkpointing (the old name warns)."""
    import dataclasses

    from transformers import TrainingArguments

    names = {field.name for field in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


class Counting:
    """Mixed into a TRL trainer class: counts the trained (label) tokens of every batch on every process, and adds
    tokens/s and the trained-token total to each log entry (TensorBoard and log.jsonl then show them). The totals
    live in a `TokenCounts` callback, saved in each checkpoint, so `--resume` continues them."""

    _mf_last: tuple[float, float] | None = None  # (time, TRL's num_tokens) at the previous log

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from mathforge.train.callbacks import TokenCounts

        super().__init__(*args, **kwargs)
        self._mf_counts = TokenCounts(self)
        self.add_callback(self._mf_counts)  # type: ignore[attr-defined]

    def compute_loss(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        labels = inputs.get("labels")
        if labels is not None and model.training:
            # Position 0 of each row predicts nothing: what the loss counts is labels[1:] that are not ignored.
            # Summed over processes (every process runs this: a collective). A plain sum, not gather_for_metrics,
            # which trims by the epoch's leftover sample count and so would drop other processes' counts.
            local = (labels[..., 1:] != -100).sum()
            self._mf_counts.trained += int(self.accelerator.reduce(local, reduction="sum").item())  # type: ignore[attr-defined]
        return super().compute_loss(model, inputs, *args, **kwargs)  # type: ignore[misc]

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        metrics = getattr(self, "_metrics", {}).get("train", {})
        tokens = float((metrics.get("num_tokens") or [0])[-1])
        now = time.perf_counter()
        if "loss" in logs:
            if self._mf_last is not None and now > self._mf_last[0]:
                logs["tokens_per_second"] = (tokens - self._mf_last[1]) / (now - self._mf_last[0])
            logs["trainable_tokens"] = float(self._mf_counts.trained)
            self._mf_last = (now, tokens)
        super().log(logs, start_time)  # type: ignore[misc]


def counting(trainer_class: type) -> type:
    """`trainer_class` with `Counting` mixed in."""
    return type(f"Mathforge{trainer_class.__name__}", (Counting, trainer_class), {})


def callbacks(paths: RunPaths, opts: TrainOptions, resumed_from: Path | None = None) -> list[Any]:
    from accelerate import PartialState

    from mathforge.train.callbacks import JsonlLog, Progress

    found: list[Any] = [JsonlLog(paths.log), Progress(enabled=not opts.quiet)]
    # The main process only: every SummaryWriter opens an events file, and a resumed one's purge marker in
    # another process's file would hide the main process's events logged again after the checkpoint.
    if opts.tensorboard and PartialState().is_main_process:
        from transformers.integrations import TensorBoardCallback

        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MathforgeError(
                "--tensorboard needs the tensorboard package: pip install tensorboard"
            ) from None
        # Resumed: TensorBoard hides the events logged past the checkpoint (they are logged again), as log.jsonl
        # drops its lines past it.
        purge_step = _checkpoint_step(resumed_from) + 1 if resumed_from is not None else None
        writer = SummaryWriter(log_dir=str(paths.tensorboard), purge_step=purge_step)
        found.append(TensorBoardCallback(tb_writer=writer))
    return found


def quiet_libraries() -> None:
    """transformers' and datasets' own bars and log printing off: mathforge shows one bar, and stdout stays for
    the summary (--json's line is the last)."""
    import warnings

    import datasets
    import transformers

    # Raised inside TRL and peft on every run, about their calls, not the user's options.
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
    # peft, saving an adapter whose base is a .gguf file's folder (no config.json to compare the vocabulary
    # with): mathforge never resizes the vocabulary, so there is nothing for the user to act on.
    warnings.filterwarnings("ignore", message=r"Could not find a config file in .*", category=UserWarning)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def train(trainer: Any, checkpoint: Path | None) -> Any:
    """trainer.train, resumed from `checkpoint` (optimiser, scheduler, RNG states and data position: exact)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout; log.jsonl keeps them
    try:
        return trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt as stop:
        raise _interrupted(trainer, stop) from None
    except (ValueError, RuntimeError) as error:
        from mathforge.errors import first_line

        message = first_line(error, 300)
        if "out of memory" in message.lower():
            message += " (lower --batch-size, raise --grad-accum, or --gradient-checkpointing)"
        raise MathforgeError(f"training failed: {message}") from error


def _interrupted(trainer: Any, stop: KeyboardInterrupt) -> Interrupted:
    """Ctrl-C or SIGTERM: say where the run stopped and what --resume continues from (status 130 / 143)."""
    paths = RunPaths(Path(trainer.args.output_dir).parent)
    checkpoint = last_checkpoint(paths)
    kept = (
        f"--resume continues from {checkpoint.name}"
        if checkpoint is not None
        else "no checkpoint was saved yet (--save-steps), so --resume has nothing to continue from"
    )
    return Interrupted(
        f"training stopped at step {trainer.state.global_step}; {kept} (same command, add --resume)",
        getattr(stop, "signal_number", 2),
    )


def save_result(
    trainer: Any, opts: TrainOptions, paths: RunPaths, tokenizer: Any, identity: dict[str, Any]
) -> Path:
    """The adapter (with the base it was trained on, for `merge`'s check) or the whole model, with the tokenizer."""
    target = paths.adapter if opts.uses_adapter else paths.model
    partial = target.with_name(target.name + ".partial")
    main = trainer.args.should_save  # the main process (FSDP and DeepSpeed gather the weights in save_model)
    if main and partial.exists():
        shutil.rmtree(partial)
    trainer.accelerator.wait_for_everyone()  # sharded saves (FSDP) write from every process
    trainer.save_model(str(partial))
    if not main:
        return target
    tokenizer.save_pretrained(str(partial))
    write_json_atomic(partial / "mathforge_base.json", identity)
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)  # a killed save never leaves a directory that looks complete
    return target


def write_summary(paths: RunPaths, summary: dict[str, Any]) -> None:
    write_json_atomic(paths.summary, summary)


def log_rows(paths: RunPaths) -> list[dict[str, Any]]:
    return read_resumable(paths.log) if paths.log.exists() else []


def append_log(paths: RunPaths, row: dict[str, Any]) -> None:
    append_jsonl(paths.log, [row])


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
