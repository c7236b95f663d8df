"""Packing keeps samples apart: a packed row (TRL's padding-free collator: position ids restarting per sample, no
attention mask) gives each sample the logits it has alone; where a model would mix them, packing is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathforge.errors import MathforgeError
from mathforge.train.packing import check_packing


def test_a_packed_row_gives_each_sample_its_own_logits(tiny_llama: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    texts = ["Olivia bakes 6 batches of 2 cups.", "He drives 55 * 5 = 275 miles.", "12 apples"]
    samples = [tokenizer(text)["input_ids"] for text in texts]
    collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
    batch = collator([{"input_ids": ids} for ids in samples])
    assert batch["input_ids"].shape == (1, sum(map(len, samples))) and "attention_mask" not in batch
    with torch.no_grad():
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits[0]
        start = 0
        for ids in samples:
            alone = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
            assert torch.allclose(packed[start : start + len(ids)], alone, atol=1e-5)
            start += len(ids)
    assert check_packing(model) < 1e-4


def test_packing_is_refused_where_samples_would_attend_to_each_other(tiny_llama: Path) -> None:
    from transformers import LlamaForCausalLM

    class IgnoresPositions(LlamaForCausalLM):
        """A model whose attention cannot see sample boundaries: it drops the position ids packing relies on."""

        def forward(self, *args, position_ids=None, **kwargs):  # type: ignore[no-untyped-def]
            return super().forward(*args, **kwargs)

    model = IgnoresPositions.from_pretrained(tiny_llama)
    with pytest.raises(MathforgeError) as error:
        check_packing(model)
    message = str(error.value)
    assert message.startswith("--packing: with attention implementation 'sdpa', IgnoresPositions lets packed")
    assert "use --attn-implementation flash_attention_2" in message and "\n" not in message
