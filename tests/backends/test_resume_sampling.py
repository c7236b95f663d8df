"""Sampling does not depend on batch boundaries, and hf stops loops inside generation.

A run resumed with --limit 2 then --limit 4 must sample what a fresh --limit 4 samples, on every engine that can
run here, at the engine's default batch size: hf (a tiny Llama, batches of 8: items 0-1 then 2-3 against 0-3 in
one batch), llamacpp (the packaged Gemma GGUF; sampled items start from an empty KV cache) and openai (a fake server that
answers with the seed it got).
The hf engine draws each (item, sample) row from its own seeded generator (`_RowSampler`), so its batches share
nothing but their padding; left padding only changes float rounding (about 1e-7 of a logit with the tiny model
in float32), which does not move a sample here.

The loop tests use a "successor" Llama built here: its attention and MLP outputs are zero, so the logits at a
position depend only on that position's token, and its weights map each chosen token to the next one. One
prompt leads into a cycle of three tokens (a verbatim loop), the other into a chain of distinct tokens that
never repeats.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from backends.test_openai_backend import FakeServer, _send, completion_json

from mathforge.backends.base import LOOP_CHECK_STRIDE, SamplingParams
from mathforge.backends.hf import HFBackend
from mathforge.backends.llamacpp import LlamaCppBackend
from mathforge.backends.vllm_engine import VLLMBackend
from mathforge.eval import EvalConfig, evaluate
from mathforge.grading.loops import stuck_in_a_loop

# -- resumed and whole runs sample the same -------------------------------------------------------------------


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def _resumed_and_whole(tmp_path: Path, **options: Any) -> tuple[list[dict], list[dict]]:
    """samples.jsonl of --limit 2 resumed with --limit 4, and of a fresh --limit 4: sampled, n=3."""

    def run(out: Path, limit: int) -> Path:
        config = EvalConfig.build(
            benchmarks=["arith"], limit=limit, n=3, temperature=1.0, seed=7, shots=1, out=out, **options
        )
        return evaluate(config, show_progress=False)[0].path

    first = run(tmp_path / "resumed", 2)
    before = (first / "samples.jsonl").read_text()
    resumed = run(tmp_path / "resumed", 4)
    whole = run(tmp_path / "whole", 4)
    assert resumed == first and resumed.name == whole.name  # the same run: resumed, not started afresh
    assert (resumed / "samples.jsonl").read_text().startswith(before)  # items 0 and 1 were kept
    resumed_rows, whole_rows = _rows(resumed), _rows(whole)
    assert [row["id"] for row in resumed_rows] == [row["id"] for row in whole_rows] and len(whole_rows) == 4
    assert all(len(row["completions"]) == 3 for row in whole_rows)
    return resumed_rows, whole_rows


def _assert_same_samples(resumed: list[dict], whole: list[dict]) -> None:
    for key in ("completions", "tokens", "finish_reasons"):
        assert [row.get(key) for row in resumed] == [row.get(key) for row in whole], key
    texts = [text for row in whole for text in row["completions"]]
    assert len(set(texts)) > 4, "sampled completions should differ (one seed per item and sample)"


def test_hf_resume_samples_what_a_whole_run_samples(tiny_llama: Path, tmp_path: Path) -> None:
    assert HFBackend.default_batch_size >= 4  # the default puts items 0-3 in one batch, and 0-1, 2-3 in two
    resumed, whole = _resumed_and_whole(tmp_path, model=str(tiny_llama), backend="hf", max_new_tokens=12)
    _assert_same_samples(resumed, whole)


@pytest.mark.slow
def test_llamacpp_resume_samples_what_a_whole_run_samples(gemma_gguf: Path, tmp_path: Path) -> None:
    resumed, whole = _resumed_and_whole(
        tmp_path, model=str(gemma_gguf), backend="llamacpp", max_new_tokens=6, n_ctx=1024
    )
    assert LlamaCppBackend.default_batch_size == 1
    _assert_same_samples(resumed, whole)


def test_openai_resume_samples_what_a_whole_run_samples(tmp_path: Path) -> None:
    # The server's answer is a function of the prompt and the seed the backend sent: equal completions mean the
    # same seed for each (item, sample), whatever the batch (the engine's default: 4 x concurrency).
    def answer(handler: BaseHTTPRequestHandler, n: int) -> None:
        body = fake.bodies[n]
        prompt = hashlib.sha256(body["prompt"].encode()).hexdigest()[:6]
        _send(handler, 200, completion_json(f"{prompt} seed {body['seed']}", "length", 5))

    with FakeServer(answer) as fake:
        resumed, whole = _resumed_and_whole(
            tmp_path, model="fake", backend="openai", base_url=fake.base_url, max_new_tokens=5
        )
    _assert_same_samples(resumed, whole)
    assert len(fake.bodies) == 2 * 4 * 3  # resumed: 2 + 2 items, whole: 4 items; 3 samples each


# -- the hf engine at the backend level -----------------------------------------------------------------------

PROMPTS = [
    "Question: 3 + 4 = ?\nAnswer:",
    "Q: 12?",
    "Question: what is 6 * 7 plus 100 minus 3 = ?\nAnswer:",
    "Hi",
]


@pytest.fixture(scope="module")
def hf_tiny(tiny_llama: Path) -> HFBackend:
    return HFBackend(str(tiny_llama), device="cpu")


def _texts(generations: list) -> list[list[str]]:
    return [[c.text for c in g.completions] for g in generations]


def test_hf_rows_sample_alike_in_any_batch(hf_tiny: HFBackend) -> None:
    # Prompts of different lengths: every batch below pads them differently.
    params = SamplingParams(max_new_tokens=16, temperature=1.0, n=3, seed=2)
    whole = _texts(hf_tiny.generate(PROMPTS, params, [0, 1, 2, 3]))
    halves = _texts(
        hf_tiny.generate(PROMPTS[:2], params, [0, 1]) + hf_tiny.generate(PROMPTS[2:], params, [2, 3])
    )
    alone = [_texts(hf_tiny.generate([prompt], params, [i]))[0] for i, prompt in enumerate(PROMPTS)]
    reordered = _texts(hf_tiny.generate(PROMPTS[::-1], params, [3, 2, 1, 0]))[::-1]
    assert whole == halves == alone == reordered
    assert all(len(set(samples)) == 3 for samples in whole), "the n samples of an item differ"
    # Another run seed samples otherwise; the same prompt at another position (offset) too.
    assert _texts(hf_tiny.generate(PROMPTS, SamplingParams(16, 1.0, n=3, seed=3), [0, 1, 2, 3])) != whole
    assert _texts(hf_tiny.generate(PROMPTS[:1], params, [5]))[0] != whole[0]


def test_hf_sampling_settings_still_warp(hf_tiny: HFBackend) -> None:
    # The row sampler applies temperature, top-k and top-p itself (transformers' own are switched off): settings
    # that leave one token possible give the greedy completion.
    greedy = _texts(hf_tiny.generate(PROMPTS, SamplingParams(max_new_tokens=10)))
    for params in (
        SamplingParams(max_new_tokens=10, temperature=1.0, top_k=1, n=2),
        SamplingParams(max_new_tokens=10, temperature=1.0, top_p=1e-6, n=2),
        SamplingParams(max_new_tokens=10, temperature=1e-4, n=2),
    ):
        assert _texts(hf_tiny.generate(PROMPTS, params, [0, 1, 2, 3])) == [[text, text] for [text] in greedy]


def test_hf_warps_as_transformers_sampling_does(hf_tiny: HFBackend) -> None:
    """The warpers the row sampler applies give the scores transformers' own sampling gives (its order of
    temperature, top-k and top-p included): generate() reports both its raw logits and its warped scores."""
    import transformers

    from mathforge.backends.hf import sampling_warpers

    batch = hf_tiny.tokenizer(PROMPTS[:1], return_tensors="pt")
    for temperature, top_k, top_p in ((0.7, 0, 0.9), (1.3, 5, 0.8), (0.5, 40, 1.0)):
        output = hf_tiny.model.generate(
            **batch,
            generation_config=hf_tiny.generation_config,
            max_new_tokens=1,
            do_sample=True,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            pad_token_id=hf_tiny.tokenizer.pad_token_id,
            return_dict_in_generate=True,
            output_scores=True,
            output_logits=True,
        )
        params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p)
        ours = sampling_warpers(transformers, params)(batch["input_ids"], output.logits[0].clone())
        theirs = output.scores[0]
        assert (ours == float("-inf")).equal(theirs == float("-inf")), (temperature, top_k, top_p)
        kept = theirs != float("-inf")
        assert int(kept.sum()) > 1  # more than one token left: the order of the warpers matters
        assert ours[kept].allclose(theirs[kept]), (temperature, top_k, top_p)


# -- hf stops loops inside generation -------------------------------------------------------------------------

LOOP_PROMPT, CHAIN_PROMPT = "Question: 3 + 4 = ?\nAnswer:", "Question: 3 + 4 = ?\nAnswer: 7"
BUDGET = 96


def _successor_model(tiny_llama: Path, directory: Path) -> list[int]:
    """A one-layer Llama with the tiny tokenizer whose next token is a function of the current one: the last
    token of LOOP_PROMPT leads into a cycle of three tokens, that of CHAIN_PROMPT into BUDGET + 8 distinct ones.
    Returns the cycle's tokens."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    loop_start, chain_start = (tokenizer(p).input_ids[-1] for p in (LOOP_PROMPT, CHAIN_PROMPT))
    assert loop_start != chain_start
    special = set(tokenizer.all_special_ids) | {loop_start, chain_start}
    # Printable tokens with a letter or digit.
    words = [
        token
        for token in range(len(tokenizer))
        if token not in special
        and (text := tokenizer.decode([token])).isprintable()
        and text.strip().isalnum()
    ]
    # A turn of 10 or 11 characters: it must repeat 9 or 10 times (96 characters) to count as a loop, that is
    # 27 or 30 tokens, between two checks (every LOOP_CHECK_STRIDE tokens), which one test needs.
    cycle = list(
        next(
            triple
            for triple in itertools.combinations(words, 3)
            if len(tokenizer.decode(list(triple))) in (10, 11)
        )
    )
    chain = [token for token in words if token not in cycle][: BUDGET + 8]
    assert len(chain) == BUDGET + 8
    following = {loop_start: cycle[0], cycle[0]: cycle[1], cycle[1]: cycle[2], cycle[2]: cycle[0]}
    following |= {chain_start: chain[0]} | dict(zip(chain, chain[1:], strict=False))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    assert len(following) <= config.hidden_size
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in (
            model.model.layers[0].self_attn.o_proj.weight,
            model.model.layers[0].mlp.down_proj.weight,
            model.model.embed_tokens.weight,
            model.lm_head.weight,
        ):
            parameter.zero_()
        # Token t gets its own hidden unit; the head turns that unit into a large logit for its successor.
        for unit, (token, successor) in enumerate(following.items()):
            model.model.embed_tokens.weight[token, unit] = 1.0
            model.lm_head.weight[successor, unit] = 5.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return cycle


@pytest.fixture(scope="module")
def successor(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[HFBackend, str]:
    """The successor model's backend, and the text of one turn of its cycle."""
    directory = tmp_path_factory.mktemp("successor")
    cycle = _successor_model(tiny_llama, directory)
    backend = HFBackend(str(directory), device="cpu")
    return backend, backend.tokenizer.decode(cycle)


@pytest.mark.parametrize("sampled", [False, True], ids=["greedy", "sampled-n2"])
def test_hf_stops_a_looping_row_inside_generation(successor: tuple[HFBackend, str], sampled: bool) -> None:
    backend, _ = successor
    settings: dict[str, Any] = {"temperature": 1.0, "n": 2} if sampled else {}
    prompts = [LOOP_PROMPT, CHAIN_PROMPT]
    loops, chains = backend.generate(prompts, SamplingParams(BUDGET, **settings), [0, 1])
    stopped = backend.generate(prompts, SamplingParams(BUDGET, **settings, stop_on_loop=True), [0, 1])
    # Without stop_on_loop both rows decode to the full budget; the first is one verbatim loop.
    for completion in loops.completions + chains.completions:
        assert (completion.finish_reason, completion.tokens) == ("length", BUDGET)
    assert stuck_in_a_loop(loops.completions[0].text) and not stuck_in_a_loop(chains.completions[0].text)
    # With it, the looping rows end inside generation, far before the budget, at the first check that flags
    # them: their text is the free text's first `tokens` tokens, and a check LOOP_CHECK_STRIDE earlier did not.
    for free_loop, loop in zip(loops.completions, stopped[0].completions, strict=True):
        assert loop.finish_reason == "loop"
        assert loop.tokens % LOOP_CHECK_STRIDE == 0 and loop.tokens <= BUDGET // 2
        [[prefix]] = _texts(backend.generate([LOOP_PROMPT], SamplingParams(loop.tokens)))
        [[earlier]] = _texts(backend.generate([LOOP_PROMPT], SamplingParams(loop.tokens - LOOP_CHECK_STRIDE)))
        assert loop.text == prefix and free_loop.text.startswith(prefix)
        assert stuck_in_a_loop(prefix) and not stuck_in_a_loop(earlier)
    # The other rows of the same batch run on to the budget, as without the option.
    assert stopped[1].completions == chains.completions


def test_hf_a_row_that_ended_by_itself_is_never_stopped(successor: tuple[HFBackend, str]) -> None:
    # The looping row ends on a stop string that completes when its text first counts as a loop, between two
    # checks; the chain row keeps the batch running past the next check, which must leave the ended row alone.
    backend, turn = successor
    repeats = next(r for r in range(1, BUDGET) if stuck_in_a_loop(turn * r))
    assert (3 * repeats) % LOOP_CHECK_STRIDE and 3 * repeats < BUDGET // 2  # between two checks
    params = SamplingParams(BUDGET, stop=(turn * repeats,), stop_on_loop=True)
    ended, chain = backend.generate([LOOP_PROMPT, CHAIN_PROMPT], params, [0, 1])
    assert ended.completions[0].finish_reason == "stop"
    assert ended.completions[0].tokens == 3 * repeats  # the tokens it generated, none of the padding after
    assert ended.completions[0].text == ""  # cut at the stop string, which starts the completion
    assert chain.completions[0].finish_reason == "length"


def test_which_engines_stop_loops() -> None:
    assert HFBackend.stops_loops and LlamaCppBackend.stops_loops
    assert not VLLMBackend.stops_loops  # no per-request stopping callback in vLLM's v1 engine
