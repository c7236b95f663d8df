"""`train sft` for real on a tiny model: a few LoRA steps lower the loss, the run directory records what was run,
resume continues the same loss curve, full fine-tuning saves a model, and the one-line refusals (QLoRA or 8-bit
AdamW without CUDA, a different run in --out, a changed option on --resume)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mathforge.errors import MathforgeError
from mathforge.train.sft import SftOptions, train_sft


@pytest.fixture(scope="module")
def arith_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mathforge.benchmarks.arith import generate

    path = tmp_path_factory.mktemp("data") / "arith.jsonl"
    path.write_text(
        "".join(json.dumps(row) + "\n" for row in generate(16, seed=0, split="train")), encoding="utf-8"
    )
    return path


def run(data: Path, model: Path, out: Path, **extra) -> dict:
    settings = {
        "data": str(data),
        "model": str(model),
        "out": str(out),
        "max_length": 256,
        "max_steps": 6,
        "save_steps": 3,
        "lr": 5e-3,
        "warmup_steps": 0,
        "batch_size": 4,
        "quiet": True,
        **extra,
    }
    return train_sft(SftOptions.build(**settings), show_progress=False)


def log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def dataset_loss(model_dir: Path, data: Path, adapter: Path | None = None) -> float:
    """The mean loss over the training rows (labels as train sft builds them), of the base or base + adapter."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mathforge.train.sft import prepare

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    prepared = prepare(SftOptions.build(data=str(data), model=str(model_dir), max_length=256), tokenizer)
    losses = []
    with torch.no_grad():
        for row in prepared.rows:
            output = model(input_ids=torch.tensor([row.input_ids]), labels=torch.tensor([row.labels]))
            losses.append(float(output.loss))
    return sum(losses) / len(losses)


def test_lora_steps_lower_the_loss_and_the_run_is_recorded(
    tiny_llama: Path, arith_rows: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    summary = run(arith_rows, tiny_llama, out, max_steps=12, save_steps=12)
    assert summary["steps"] == 12
    before = dataset_loss(tiny_llama, arith_rows)
    after = dataset_loss(tiny_llama, arith_rows, out / "adapter")
    assert after < before - 0.1, (before, after)
    # The adapter knows its base (merge checks it), and the run directory what was run.
    base = json.loads((out / "adapter" / "mathforge_base.json").read_text())
    assert base["model"] == str(tiny_llama) and base["architecture"] == "LlamaForCausalLM"
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["fingerprint"]["option learning_rate"] == 5e-3
    assert len(recorded["fingerprint"]["data_sha256"]) == 64
    assert recorded["fingerprint"]["base"] == base
    assert recorded["versions"]["trl"] and recorded["versions"]["peft"] and recorded["versions"]["torch"]
    rows = [row for row in log(out) if "loss" in row]
    assert [row["step"] for row in rows] == list(range(1, 13))
    assert all({"lr", "grad_norm", "trainable_tokens", "tokens"} <= set(row) for row in rows)
    assert all(row["tokens_per_second"] > 0 for row in rows[1:])
    # The trained-token total is the labels' count: the trained tokens of 12 steps of 4 rows out of 16.
    assert rows[-1]["trainable_tokens"] == pytest.approx(3 * summary["trainable_tokens"] - 3 * 16, rel=0.2)
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert summary["final_loss"] == rows[-1]["loss"]


def test_resume_continues_the_same_loss_curve(tiny_llama: Path, arith_rows: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    run(arith_rows, tiny_llama, whole)
    # A run stopped after its checkpoint at step 3: what the kill would leave (no later checkpoint, no result).
    stopped = tmp_path / "stopped"
    shutil.copytree(whole, stopped)
    shutil.rmtree(stopped / "checkpoints" / "checkpoint-6")
    shutil.rmtree(stopped / "adapter")
    (stopped / "train_summary.json").unlink()
    # A kill while checkpoint-6 was being written leaves it without trainer_state.json (written last).
    partial = stopped / "checkpoints" / "checkpoint-6"
    shutil.copytree(whole / "checkpoints" / "checkpoint-6", partial)
    (partial / "trainer_state.json").unlink()
    summary = run(arith_rows, tiny_llama, stopped, resume=True)
    assert summary["resumed_from"].endswith("checkpoint-3")
    whole_losses = [row["loss"] for row in log(whole) if "loss" in row]
    resumed_losses = [row["loss"] for row in log(stopped) if "loss" in row]
    assert [row["step"] for row in log(stopped) if "loss" in row] == [1, 2, 3, 4, 5, 6]
    assert resumed_losses == pytest.approx(whole_losses, abs=1e-5)
    # The token totals go on from the checkpoint's, not from 0 (they are saved in trainer_state.json).
    for key in ("trainable_tokens", "tokens"):
        assert [row[key] for row in log(stopped) if "loss" in row] == [
            row[key] for row in log(whole) if "loss" in row
        ]
    # TensorBoard shows each step once: the events past the checkpoint, logged again, replace the old ones.
    resumed_events, whole_events = _tensorboard_losses(stopped), _tensorboard_losses(whole)
    assert [step for step, _ in resumed_events] == [step for step, _ in whole_events] == [1, 2, 3, 4, 5, 6]
    assert [loss for _, loss in resumed_events] == pytest.approx([loss for _, loss in whole_events], abs=1e-5)
    # run.json keeps the versions the run started with and records the resume.
    record, original = (json.loads((root / "run.json").read_text()) for root in (stopped, whole))
    assert record["versions"] == original["versions"] and record["fingerprint"] == original["fingerprint"]
    assert [entry["from"] for entry in record["resumes"]] == ["checkpoint-3"]


def test_resume_from_a_checkpoint_without_saved_token_totals(
    tiny_llama: Path, arith_rows: Path, tmp_path: Path
) -> None:
    """A checkpoint written before the totals were saved (or by another tool) resumes, and its totals start at
    0 rather than failing at the next checkpoint."""
    out = tmp_path / "run"
    run(arith_rows, tiny_llama, out)
    for finished in ("checkpoints/checkpoint-6", "adapter"):
        shutil.rmtree(out / finished)
    state_file = out / "checkpoints" / "checkpoint-3" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["stateful_callbacks"]["TokenCounts"]
    state_file.write_text(json.dumps(state))
    (out / "run.json").unlink()  # a run directory without its record resumes too (and gets one)
    # --device says where the run goes on, not what it trains: it may differ on resume.
    summary = run(arith_rows, tiny_llama, out, resume=True, device="cpu")
    assert summary["steps"] == 6
    rows = [row for row in log(out) if "loss" in row]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[3]["trainable_tokens"] < rows[2]["trainable_tokens"]  # started again at 0 after step 3
    saved = json.loads((out / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert saved["stateful_callbacks"]["TokenCounts"]["attributes"]["trained"] == rows[5]["trainable_tokens"]
    assert json.loads((out / "run.json").read_text())["fingerprint"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"system_prompt": "Be brief."},
            "--system-prompt is read by --format chat and --eval-prompt chat only",
        ),
        ({"template": "prompt.j2"}, "--template is read by --format template and --eval-prompt custom only"),
    ],
)
def test_options_no_format_reads_are_refused(arith_rows: Path, options: dict, message: str) -> None:
    with pytest.raises(MathforgeError, match=message):
        SftOptions.build(data=str(arith_rows), **options)
    # The before/after evaluation's prompt reads them too.
    eval_prompt = "chat" if "system_prompt" in options else "custom"
    assert SftOptions.build(data=str(arith_rows), eval_prompt=eval_prompt, **options)


def _tensorboard_losses(run_dir: Path) -> list[tuple[int, float]]:
    """(step, loss) as TensorBoard reads the run's events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    return [(event.step, event.value) for event in events.Scalars("train/loss")]


def test_resume_refuses_a_changed_option_and_a_start_over_an_old_run(
    tiny_llama: Path, arith_rows: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    run(arith_rows, tiny_llama, out, max_steps=3)
    with pytest.raises(
        MathforgeError, match=r"holds a different run \(option learning_rate: 0.005 there, 0.001 now\)"
    ):
        run(arith_rows, tiny_llama, out, max_steps=3, resume=True, lr=1e-3)
    with pytest.raises(MathforgeError, match="already holds a run .*--resume to continue it, --fresh"):
        run(arith_rows, tiny_llama, out, max_steps=3)
    with pytest.raises(MathforgeError, match="has no checkpoint to resume from"):
        run(arith_rows, tiny_llama, tmp_path / "empty", resume=True)
    assert run(arith_rows, tiny_llama, out, max_steps=3, fresh=True)["steps"] == 3
    # --fresh never deletes a directory that is not a training run.
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    with pytest.raises(MathforgeError, match="--fresh: .* is not a mathforge training run"):
        run(arith_rows, tiny_llama, project, max_steps=3, fresh=True)
    assert (project / "notes.txt").read_text() == "mine"


def test_full_fine_tuning_saves_the_model(tiny_llama: Path, arith_rows: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "full"
    summary = run(arith_rows, tiny_llama, out, method="full", max_steps=2, lr=1e-3)
    assert summary["result"] == str(out / "model")
    assert AutoModelForCausalLM.from_pretrained(out / "model").num_parameters() > 0
    assert (out / "model" / "tokenizer.json").exists() and not (out / "adapter").exists()


def test_packed_training_runs(tiny_llama: Path, arith_rows: Path, tmp_path: Path) -> None:
    summary = run(arith_rows, tiny_llama, tmp_path / "packed", packing=True, max_length=512, max_steps=2)
    assert summary["steps"] == 2 and summary["final_loss"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"method": "qlora"}, "--method qlora needs a CUDA GPU"),
        ({"optimizer": "adamw_8bit"}, "--optimizer adamw_8bit needs a CUDA GPU"),
    ],
)
def test_cuda_only_settings_are_refused_on_cpu(
    tiny_llama: Path, arith_rows: Path, tmp_path: Path, extra: dict, message: str
) -> None:
    with pytest.raises(MathforgeError, match=message):
        run(arith_rows, tiny_llama, tmp_path / "run", device="cpu", **extra)
    assert not (tmp_path / "run").exists()
