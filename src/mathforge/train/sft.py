"""Supervised fine-tuning: `mathforge train sft`.

Read `train_sft` top to bottom: rows -> examples -> rendered texts with trained spans -> token ids and labels
(checked: every example keeps a trained token) -> [--dry-run stops here with the counts] -> the run directory ->
the model with its LoRA / QLoRA adapter -> TRL's SFTTrainer (packing through its padding-free collator) -> the
adapter or model -> [--eval-bench: the base and the result evaluated on the same items, with significance].
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from mathforge.errors import MathforgeError
from mathforge.train.examples import TARGETS, Example, ExampleFields, read_examples
from mathforge.train.formats import SFT_FORMATS, FormatContext, Rendered, Tokenized, build_format, tokenize
from mathforge.train.options import TrainOptions
from mathforge.train.trainer import RunPaths


class SftOptions(TrainOptions):
    """Options of `mathforge train sft`."""

    choices: ClassVar[dict[str, Callable[[], Iterable[Any]]]] = {
        **TrainOptions.choices,
        "format": lambda: SFT_FORMATS,
        "target": lambda: TARGETS,
    }

    data: str = Field(
        ..., description="training rows: JSONL or Parquet (question/solution/answer, or messages)"
    )
    format: str = Field("plain", description=f"{', '.join(SFT_FORMATS)} (see docs/train.md)")
    template: str | None = Field(None, description="--format template: jinja2 file rendering the prompt")
    system_prompt: str | None = Field(None, description="--format chat: a system message for every row")
    target: str = Field(
        "card",
        description="card: '<think> steps </think>' then 'The answer is X.'; as-is: the solution as written",
    )
    strip_calculator: bool = Field(True, description="remove GSM8K calculator annotations <<24*3=72>>")
    question_field: str = Field("question", description="field holding the problem")
    solution_field: str = Field("solution", description="field holding the worked solution")
    answer_field: str = Field(
        "answer", description="field holding the final answer (or GSM8K's '... #### X')"
    )
    messages_field: str = Field("messages", description="field holding chat messages (role, content)")
    max_length: int = Field(
        1024, ge=8, description="tokens per example; longer ones are cut (keeping the start)"
    )
    packing: bool = Field(False, description="pack examples into rows of --max-length, samples kept apart")
    dry_run: bool = Field(False, description="render and count everything, train nothing")

    @model_validator(mode="after")
    def _format_options_used(self) -> SftOptions:
        # An option that neither the training format nor --eval-bench's prompt reads would be silently ignored.
        if self.system_prompt is not None and "chat" not in (self.format, self.eval_prompt):
            raise ValueError(
                "--system-prompt is read by --format chat and --eval-prompt chat only "
                f"(this is --format {self.format})"
            )
        if self.template is not None and self.format != "template" and self.eval_prompt != "custom":
            raise ValueError(
                "--template is read by --format template and --eval-prompt custom only "
                f"(this is --format {self.format})"
            )
        return self

    def example_fields(self) -> ExampleFields:
        return ExampleFields(
            question=self.question_field,
            solution=self.solution_field,
            answer=self.answer_field,
            messages=self.messages_field,
            target=self.target,
            strip_calculator=self.strip_calculator,
        )


# Options that do not change what is trained (so `--resume` may change them).
_NOT_FINGERPRINTED = (
    "out",
    "resume",
    "fresh",
    "quiet",
    "json_output",
    "dry_run",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "tensorboard",
    "eval_benchmarks",
    "eval_limit",
    "eval_prompt",
    "eval_max_new_tokens",
    "eval_batch_size",
    "eval_data_dir",
    "device",  # where it runs, not what is trained: a run started on one GPU may resume on another
)


@dataclass
class Prepared:
    """The tokenized training set and what was rendered."""

    examples: list[Example]
    rendered: list[Rendered]
    rows: list[Tokenized]

    def fully_masked(self) -> list[Tokenized]:
        return [row for row in self.rows if row.trainable == 0]

    def counts(self) -> dict[str, Any]:
        trainable = [row.trainable for row in self.rows]
        return {
            "examples": len(self.rows),
            "tokens": sum(len(row.input_ids) for row in self.rows),
            "trainable_tokens": sum(trainable),
            "trainable_per_example": _distribution(trainable),
            "tokens_per_example": _distribution([len(row.input_ids) for row in self.rows]),
            "truncated": sum(row.truncated for row in self.rows),
            "fully_masked": len(self.fully_masked()),
        }


def prepare(opts: SftOptions, tokenizer: Any) -> Prepared:
    """Every row rendered in the chosen format and tokenized with its labels."""
    examples = read_examples(opts.data, opts.example_fields())
    template = Path(opts.template) if opts.template else None
    style = build_format(opts.format, FormatContext(tokenizer, template, opts.system_prompt))
    if not getattr(tokenizer, "is_fast", False):
        raise MathforgeError(
            f"{type(tokenizer).__name__} is a slow tokenizer: mathforge masks labels by token offsets, which "
            "only fast (tokenizers-backed) tokenizers give"
        )
    rendered = [style.render_checked(example) for example in examples]
    rows = [
        tokenize(tokenizer, text, opts.max_length, ex.where)
        for text, ex in zip(rendered, examples, strict=True)
    ]
    return Prepared(examples, rendered, rows)


def check_trainable(prepared: Prepared, opts: SftOptions) -> None:
    """A sample with nothing to learn is an error naming it, never a silent zero loss."""
    empty = prepared.fully_masked()
    if empty:
        first = empty[0]
        cause = (
            f"its prompt fills --max-length {opts.max_length}"
            if first.truncated
            else "the format leaves no token of the target (check --format / --template)"
        )
        more = f" ({len(empty) - 1} more such rows; --dry-run lists the counts)" if len(empty) > 1 else ""
        raise MathforgeError(f"{first.where}: no trainable token: {cause}{more}")


def dry_run_report(prepared: Prepared, opts: SftOptions, tokenizer: Any) -> dict[str, Any]:
    """The counts of --dry-run, and the first example with its trained part marked."""
    first = prepared.rendered[0]
    tokenized = prepared.rows[0]
    return {
        "dry_run": True,
        "kind": "sft",
        "data": opts.data,
        "format": opts.format,
        "max_length": opts.max_length,
        **prepared.counts(),
        "fully_masked_rows": [row.where for row in prepared.fully_masked()[:20]],
        "example": {
            "where": tokenized.where,
            "pieces": [[text, trained] for text, trained in first.prompt_and_completion()],
            "tokens": len(tokenized.input_ids),
            "truncated": tokenized.truncated,
            "trainable_tokens": tokenized.trainable,
            "trained_text": tokenizer.decode([t for t in tokenized.labels if t != -100]),
        },
    }


def train_sft(opts: SftOptions, show_progress: bool = True) -> dict[str, Any]:
    """Fine-tune; return the summary (with the dry run's counts, or the before/after comparison when asked)."""
    from mathforge.train import trainer as shared
    from mathforge.train.models import load_tokenizer, resolve_base

    shared.quiet_libraries()
    base_ref = resolve_base(opts.model)
    tokenizer = load_tokenizer(base_ref, opts.revision)
    prepared = prepare(opts, tokenizer)
    if opts.dry_run:
        return dry_run_report(prepared, opts, tokenizer)
    check_trainable(prepared, opts)
    paths = RunPaths(Path(opts.out or default_out(opts)))
    fingerprint = {
        "kind": "sft",
        # One key per option, so that a changed option on --resume is named in the error.
        **{
            f"option {name}": value
            for name, value in opts.model_dump(mode="json", exclude=set(_NOT_FINGERPRINTED)).items()
        },
        "data_sha256": shared.file_digest(opts.data),
    }
    model, identity = shared.load_for_training(opts, base_ref)
    fingerprint["base"] = identity
    checkpoint = shared.start_run(paths, opts, fingerprint)
    if opts.packing:
        from mathforge.train.packing import check_packing

        check_packing(model)
    trainer = _sft_trainer(opts, paths, model, tokenizer, prepared, checkpoint)
    started = time.perf_counter()
    output = shared.train(trainer, checkpoint)
    result = shared.save_result(trainer, opts, paths, tokenizer, identity)
    summary = {
        "kind": "sft",
        "out": str(paths.root),
        "result": str(result),
        "base": identity,
        "steps": trainer.state.global_step,
        "epochs": round(trainer.state.epoch or 0.0, 4),
        "train_loss": output.training_loss,
        "seconds": round(time.perf_counter() - started, 2),
        **{key: value for key, value in prepared.counts().items() if key in ("examples", "trainable_tokens")},
        "resumed_from": str(checkpoint) if checkpoint else None,
    }
    summary["final_loss"] = next((r["loss"] for r in reversed(shared.log_rows(paths)) if "loss" in r), None)
    if not trainer.args.should_save:  # another process of `accelerate launch`: the main one reports
        return {**summary, "main_process": False}
    if opts.eval_benchmarks:
        from mathforge.train.before_after import evaluate_before_after

        summary["comparison"] = evaluate_before_after(opts, paths, base_ref, show_progress)
    shared.write_summary(paths, summary)
    return summary


def _sft_trainer(
    opts: SftOptions, paths: RunPaths, model: Any, tokenizer: Any, prepared: Prepared, checkpoint: Path | None
) -> Any:
    import datasets
    from trl import SFTConfig, SFTTrainer

    from mathforge.train import trainer as shared

    dataset = datasets.Dataset.from_dict(
        {
            "input_ids": [row.input_ids for row in prepared.rows],
            "labels": [row.labels for row in prepared.rows],
        }
    )
    config = SFTConfig(
        **shared.trainer_arguments(opts, paths, model),
        max_length=opts.max_length,
        packing=opts.packing,
        packing_strategy="bfd",  # best-fit decreasing, samples kept whole and apart (padding-free position ids)
        dataset_num_proc=None,
    )
    return shared.counting(SFTTrainer)(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=shared.lora_config(opts),
        callbacks=shared.callbacks(paths, opts, resumed_from=checkpoint),
    )


def default_out(opts: SftOptions) -> str:
    from mathforge.naming import model_name, slug

    return str(
        Path("runs")
        / "train"
        / f"sft-{slug(model_name(opts.model or 'gemma3-270m'))}-{slug(Path(opts.data).stem)}"
    )


def _distribution(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def quantile(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "min": ordered[0],
        "p10": quantile(0.1),
        "median": quantile(0.5),
        "p90": quantile(0.9),
        "max": ordered[-1],
        "mean": round(statistics.fmean(values), 2),
    }
