"""Packing without attention across samples, or a refusal that says what to use instead.

Packed rows carry position ids that restart at 0 for each sample and no attention mask (TRL's padding-free
collator). Whether the model then keeps the samples apart depends on its attention implementation: flash
attention reads the boundaries from the position ids; transformers' sdpa and eager paths build a block-diagonal
mask from them only for models built on its masking utilities. Rather than trust a list, `check_packing` runs the
model once on two short samples, alone and packed, and compares the logits.
"""

from __future__ import annotations

from typing import Any

from mathforge.errors import MathforgeError

# Largest logit difference still counted as "the same" (fp32 on CPU gives ~1e-6; bf16 rounding ~1e-2).
_TOLERANCE = {"float32": 1e-3, "bfloat16": 0.1, "float16": 0.05}


def packed_logits_difference(model: Any, first: list[int], second: list[int]) -> float:
    """The largest |logit| difference between each sample run alone and the two packed into one row."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        alone = [
            model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits[0].float()
            for ids in (first, second)
        ]
        packed_ids = torch.tensor([first + second], device=device)
        positions = torch.tensor([list(range(len(first))) + list(range(len(second)))], device=device)
        # As in training: no cache (transformers reads packed position ids only then) and no attention mask.
        packed = model(input_ids=packed_ids, position_ids=positions, use_cache=False).logits[0].float()
    return float(
        max(
            (packed[: len(first)] - alone[0]).abs().max(),
            (packed[len(first) :] - alone[1]).abs().max(),
        )
    )


def check_packing(model: Any) -> float:
    """Refuse packing (one line, naming what to use) where packed samples would attend to each other."""
    import torch

    vocab = model.config.get_text_config().vocab_size
    generator = torch.Generator().manual_seed(0)
    first = torch.randint(3, vocab, (7,), generator=generator).tolist()
    second = torch.randint(3, vocab, (5,), generator=generator).tolist()
    was_training = model.training
    model.eval()
    try:
        difference = packed_logits_difference(model, first, second)
    finally:
        model.train(was_training)
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    if difference > _TOLERANCE.get(dtype, 0.1):
        implementation = getattr(model.config, "_attn_implementation", None) or "default"
        raise MathforgeError(
            f"--packing: with attention implementation '{implementation}', {type(model).__name__} lets packed "
            f"samples attend to each other (logits differ by {difference:.3g}); use --attn-implementation "
            "flash_attention_2 (CUDA, pip install flash-attn), or drop --packing"
        )
    return difference
