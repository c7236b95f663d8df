"""Token scoring (`Backend.score`) in every engine.

hf: against a direct `model(input_ids).logits` forward pass of the tiny Llama, alone and in padded batches.
vllm: vLLM's token prompts and prompt log-probabilities in front of the same tiny model (no GPU here).
llamacpp: against llama-cpp-python's own logits_all path, and against hf on the packaged Gemma GGUF.
openai: llama-cpp-python's real server on loopback, and small servers that do not return prompt log-probabilities.
"""

from __future__ import annotations

import math
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import backends.test_openai_backend as openai_tests
import pytest
from backends.test_openai_backend import FakeServer, LlamaServer, _send
from backends.test_vllm_backend import StandInLLM, StandInSamplingParams

from mathforge.backends.base import SamplingParams, TokenScores, scoring_pairs, scoring_sequence
from mathforge.backends.hf import HFBackend
from mathforge.backends.openai_api import OpenAIBackend
from mathforge.backends.vllm_engine import VLLMBackend
from mathforge.errors import ContextOverflow, MathforgeError

# The real llama-cpp-python server of the openai backend's tests (a module fixture: this module starts its own).
llama_server = openai_tests.llama_server

TEXTS = [
    "Question: What is 3 + 4?\nAnswer: 3 + 4 = 7. The answer is 7.",
    "12 - 5 = 7",
    "Question: 6 * 7 = ?\nAnswer: 42",
    "x",
]


# -- engine-independent pieces ----------------------------------------------------------------------------------


def test_token_scores_statistics() -> None:
    scores = TokenScores([5, 6, 7], [-1.0, -2.0, -3.0])
    assert scores.count == 3 and scores.total_nll == 6.0 and scores.nll == 2.0
    assert scores.perplexity == pytest.approx(math.exp(2.0))
    empty = TokenScores([], [])
    assert empty.count == 0 and math.isnan(empty.nll) and math.isnan(empty.perplexity)


def test_scoring_sequence_bos_and_context_boundary() -> None:
    bos = 2
    assert scoring_sequence([10, 11], None, bos) == ([2, 10, 11], 1)  # BOS predicts the first token
    assert scoring_sequence([2, 10, 11], None, bos) == ([2, 10, 11], 1)  # a written BOS is not doubled
    assert scoring_sequence([10, 11], None, None) == ([10, 11], 1)  # no BOS: the first token is not scored
    assert scoring_sequence([], None, None) == ([], 1)
    # Context [10, 11] + continuation [12, 13]: only the continuation is scored.
    assert scoring_sequence([10, 11, 12, 13], [10, 11], bos) == ([2, 10, 11, 12, 13], 3)
    # The context's last token merges with the continuation ("12" + "3" -> "123"): it belongs to the continuation.
    assert scoring_sequence([10, 99, 13], [10, 11], bos) == ([2, 10, 99, 13], 2)
    assert scoring_sequence([10, 11], [10, 11], None) == ([10, 11], 2)  # empty continuation: nothing scored
    assert scoring_pairs(["a", "b"], ["c", ""]) == [("a", "c"), ("b", None)]
    with pytest.raises(ValueError, match="2 texts but 1 contexts"):
        scoring_pairs(["a", "b"], ["c"])


# -- hf ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf(tiny_llama: Path) -> Iterator[HFBackend]:
    backend = HFBackend(str(tiny_llama))
    yield backend
    backend.close()


def _direct(backend: HFBackend, ids: list[int]) -> list[float]:
    """log P(ids[i] | ids[:i]) for i >= 1 from one plain forward pass, no mathforge code involved."""
    import torch

    with torch.inference_mode():
        logits = backend.model(torch.tensor([ids])).logits[0]
    logprobs = logits.float().log_softmax(-1)
    return [float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))]


def test_hf_equals_a_direct_forward_pass_exactly(hf: HFBackend) -> None:
    for text in TEXTS:
        # The tiny tokenizer adds no BOS: the text's tokens as they are, the first one unscored.
        ids = hf.tokenizer(text, add_special_tokens=False).input_ids
        [scores] = hf.score([text])
        assert scores.tokens == ids[1:]
        assert scores.logprobs == _direct(hf, ids)  # exactly: the same forward pass, float32 log_softmax


def test_hf_padded_batch_equals_unbatched(hf: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    alone = [hf.score([text])[0] for text in TEXTS]
    forward_passes = []
    run = hf._score_rows
    monkeypatch.setattr(hf, "_score_rows", lambda rows: forward_passes.append(rows) or run(rows))
    batched = hf.score(TEXTS + [""])
    [rows] = forward_passes  # one padded forward pass for texts of 1 to 20 tokens (the empty text needs none)
    assert len({len(ids) for ids, _ in rows}) == 3
    assert batched[-1] == TokenScores([], [])
    for one, many in zip(alone, batched, strict=False):
        assert one.tokens == many.tokens
        assert many.logprobs == pytest.approx(one.logprobs, abs=1e-5)


def test_hf_continuation_scores_only_its_tokens(hf: HFBackend) -> None:
    context, continuation = "Question: What is 3 + 4?\nAnswer:", " 3 + 4 = 7. The answer is 7."
    [whole] = hf.score([context + continuation])
    [scored] = hf.score([continuation], [context])
    joint = hf.tokenizer(context + continuation, add_special_tokens=False).input_ids
    own = hf.tokenizer(context, add_special_tokens=False).input_ids
    assert joint[: len(own)] == own  # no token straddles this boundary
    assert scored.tokens == joint[len(own) :] and scored.count == len(joint) - len(own)
    assert scored.logprobs == whole.logprobs[-scored.count :]
    # In a batch with contexts of their own, and a text without one.
    both = hf.score([continuation, continuation], [context, ""])
    assert both[0].logprobs == pytest.approx(scored.logprobs, abs=1e-5)
    assert both[1].logprobs == pytest.approx(hf.score([continuation])[0].logprobs, abs=1e-5)


def test_hf_bos_is_prepended_where_the_tokenizer_adds_it(tiny_llama: Path) -> None:
    from tokenizers import processors

    backend = HFBackend(str(tiny_llama))
    bos = backend.tokenizer.bos_token_id
    # Like Gemma's and Llama's tokenizers: encoding a text puts BOS in front.
    backend.tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    text = TEXTS[1]
    ids = backend.tokenizer(text, add_special_tokens=False).input_ids
    [scores] = backend.score([text])
    assert scores.tokens == ids  # every token of the text, the first predicted from BOS
    assert scores.logprobs == _direct(backend, [bos, *ids])
    [written] = backend.score(["<s>" + text])  # a BOS the text already has is not doubled
    assert written == scores


def test_hf_text_beyond_the_model_positions(hf: HFBackend) -> None:
    with pytest.raises(ContextOverflow, match=r"^a text of \d+ tokens exceeds the model's 4096 positions$"):
        hf.score(["1 + 2 = 3. " * 1500])


# -- vllm (stand-in engine, tiny model) --------------------------------------------------------------------------


class ScoringStandIn(StandInLLM):
    """vllm.LLM with token prompts ({"prompt_token_ids": [...]}) and prompt log-probabilities as vLLM returns
    them (vllm/v1/engine/logprobs.py): None for the first position, then {token id: Logprob} holding the top
    `prompt_logprobs` tokens and the prompt's own token."""

    def generate(
        self, prompts: list[Any], sampling_params: Any = None, *, use_tqdm: bool = True
    ) -> list[SimpleNamespace]:
        torch = self.torch
        self.calls.append((list(prompts), [sampling_params] * len(prompts)))
        top = sampling_params.kwargs.get("prompt_logprobs")
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]  # a text prompt fails here: scoring sends tokens
            entries = None
            if top is not None:
                with torch.inference_mode():
                    logprobs = self.model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
                entries = [None]
                for position in range(1, len(ids)):
                    row = logprobs[position - 1]
                    best = row.topk(top)
                    entry = {
                        int(token): SimpleNamespace(logprob=float(value), rank=rank + 1)
                        for rank, (value, token) in enumerate(zip(best.values, best.indices, strict=True))
                    }
                    own = ids[position]
                    entry.setdefault(own, SimpleNamespace(logprob=float(row[own]), rank=top + 1))
                    entries.append(entry)
            generated = SimpleNamespace(index=0, text="", token_ids=[0], finish_reason="length")
            outputs.append(
                SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=entries, outputs=[generated])
            )
        return outputs


@pytest.fixture
def vllm_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("vllm")
    module.SamplingParams = StandInSamplingParams  # the real field names and checks
    monkeypatch.setitem(sys.modules, "vllm", module)


def test_vllm_prompt_logprobs_equal_hf(vllm_stand_in: None, tiny_llama: Path, hf: HFBackend) -> None:
    engine = ScoringStandIn(str(tiny_llama))
    backend = VLLMBackend(str(tiny_llama), engine=engine, n_ctx=64)
    contexts = ["", "Question: 12 - 5 = ?\nAnswer:", "", ""]
    scores = backend.score(TEXTS + [""], contexts + [""])
    # One generate call. Not sent: the empty text, and "x", whose one token has nothing to be predicted from.
    [(prompts, requests)] = engine.calls
    assert len(prompts) == 3 and all(set(prompt) == {"prompt_token_ids"} for prompt in prompts)
    assert requests[0].kwargs == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
    expected = hf.score(TEXTS + [""], contexts + [""])
    assert [s.tokens for s in scores] == [s.tokens for s in expected]
    for ours, theirs in zip(scores, expected, strict=True):
        assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-5)
    with pytest.raises(ContextOverflow, match=r"^a text of \d+ tokens does not fit --n-ctx 64 "):
        backend.score(["1 + 2 = 3. " * 40])


# -- llamacpp -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama(gemma_gguf: Path) -> Iterator[Any]:
    from mathforge.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(gemma_gguf, n_ctx=512)
    yield backend
    backend.close()


MATH_TEXTS = [
    "Janet sells 16 - 3 - 4 = 9 duck eggs a day. She makes 9 * 2 = $18 every day at the farmer's market.",
    "The sum of the angles of a triangle is 180 degrees, so the third angle is 180 - 50 - 60 = 70 degrees.",
    "If 3x + 5 = 20, then 3x = 15 and x = 5.",
    "Question: What is 12 + 7?\nAnswer: 12 + 7 = 19. The answer is 19.",
    "The area of a circle with radius 3 is 9 * pi, about 28.27 square units.",
    "A train travels 120 miles in 2 hours, so its average speed is 120 / 2 = 60 miles per hour.",
]


@pytest.mark.slow
def test_llamacpp_equals_llama_cpp_pythons_logits_all_path(llama: Any, gemma_gguf: Path) -> None:
    from llama_cpp import Llama

    # llama-cpp-python's own prompt log-probabilities: a context with logits_all, echo=True. It hides BOS and
    # reports the first text token as null, so the comparison starts at the second token. Its prompt-prefix reuse
    # is reset before each text (a reused prefix changes the batch shapes, and with them the rounding), and the
    # texts are shorter than one scoring chunk (64 tokens): then both sides decode the same batch.
    reference = Llama(model_path=str(gemma_gguf), n_ctx=512, logits_all=True, verbose=False)
    try:
        # The shortest text: llama-cpp-python's echo path sorts the 262k-entry vocabulary in Python for each
        # token (about 1 s a token here).
        for text in MATH_TEXTS[2:3]:
            reference.reset()
            answer = reference.create_completion(text, max_tokens=1, echo=True, logprobs=1, temperature=0.0)
            theirs = answer["choices"][0]["logprobs"]["token_logprobs"]
            prompt_tokens = answer["usage"]["prompt_tokens"]  # BOS included
            [ours] = llama.score([text])
            assert ours.count == prompt_tokens - 1  # every text token, the first one predicted from BOS
            assert ours.tokens == reference.tokenize(text.encode(), add_bos=False, special=True)
            # Measured: at most 7e-7 apart (the normaliser is summed in float64 here, in float32 there).
            assert ours.logprobs[1:] == pytest.approx([float(v) for v in theirs[1 : ours.count]], abs=1e-5)
    finally:
        reference.close()


@pytest.mark.slow
def test_llamacpp_continuation_and_generation_after_scoring(llama: Any) -> None:
    context, continuation = "Question: What is 12 + 7?\nAnswer: 12 + 7 =", " 19. The answer is 19."
    params = SamplingParams(max_new_tokens=12)
    before = llama.generate([context], params)
    [whole] = llama.score([context + continuation])
    [scored] = llama.score([continuation], [context])
    assert 0 < scored.count < whole.count and scored.tokens == whole.tokens[-scored.count :]
    assert scored.logprobs == pytest.approx(whole.logprobs[-scored.count :], abs=1e-4)
    # Scoring left no state behind that generation would reuse.
    assert llama.generate([context], params) == before


@pytest.mark.slow
def test_llamacpp_text_longer_than_the_context(llama: Any) -> None:
    with pytest.raises(
        ContextOverflow,
        match=r"^a text of \d{3,} tokens does not fit the context window of 512; raise --n-ctx$",
    ):
        llama.score(["1 + 2 = 3. " * 200])


@pytest.fixture(scope="module")
def gemma_hf(gemma_model_dir: Path) -> Iterator[HFBackend]:
    # The GGUF's weights as transformers dequantizes them, in float32.
    backend = HFBackend(str(gemma_model_dir))
    yield backend
    backend.close()


# Measured on this project's 2-core x86_64 development machine (llama-cpp-python 0.3.36, transformers 5.24,
# torch 2.13 CPU), relative difference |ppl_llamacpp - ppl_hf| / ppl_hf on MATH_TEXTS: per text 2.09%, 3.19%,
# 0.62%, 0.49%, 6.68%, 1.94% (llama.cpp always the higher); over the six texts together 2.39% (7.795 vs 7.613).
# Both engines run the same Q4_K_M weights (transformers dequantizes them exactly); llama.cpp quantizes the
# activations to 8 bits for its quantized matrix products and keeps the KV cache in f16, hf computes in float32.
PER_TEXT_TOLERANCE = 0.08
CORPUS_TOLERANCE = 0.03


@pytest.mark.slow
def test_hf_and_llamacpp_perplexities_agree_on_gemma(llama: Any, gemma_hf: HFBackend) -> None:
    ours, theirs = llama.score(MATH_TEXTS), gemma_hf.score(MATH_TEXTS)
    for text, cpp, hf_scores in zip(MATH_TEXTS, ours, theirs, strict=True):
        assert cpp.tokens == hf_scores.tokens, text  # the same tokens, BOS first in both
        assert cpp.count > 10
        relative = abs(cpp.perplexity - hf_scores.perplexity) / hf_scores.perplexity
        assert relative < PER_TEXT_TOLERANCE, (text, cpp.perplexity, hf_scores.perplexity)
    tokens = sum(s.count for s in ours)
    cpp_ppl = math.exp(sum(s.total_nll for s in ours) / tokens)
    hf_ppl = math.exp(sum(s.total_nll for s in theirs) / tokens)
    assert abs(cpp_ppl - hf_ppl) / hf_ppl < CORPUS_TOLERANCE, (cpp_ppl, hf_ppl)


# -- openai ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_openai_echo_logprobs_from_llama_cpp_pythons_server(llama_server: LlamaServer, llama: Any) -> None:
    served = OpenAIBackend(llama_server.model, base_url=llama_server.base_url, concurrency=2)
    try:
        # Short texts, one from the start and one continuation: the server's echo path sorts the whole vocabulary
        # in Python for each token of the prompt, context included (0.8 s a token here).
        context, continuation = "12 + 7 =", " 19. The answer is 19."
        texts = ["If 3x + 5 = 20, then x = 5.", continuation]
        scores = served.score(texts, ["", context])
    finally:
        served.close()
    local = llama.score(texts, ["", context])
    # The server reuses the KV cache of the prompt prefix it shares with its previous request (BOS at least), so
    # it decodes other batch shapes than the in-process engine, and llama.cpp's kernels round with the shape:
    # measured up to 0.08 nats on one token, 0.004 on a text's mean. A misaligned score is off by nats.
    ours, theirs = scores[0], local[0]
    # The server hides BOS and reports the first text token as null: one token fewer than in-process.
    assert ours.count == theirs.count - 1
    assert all(isinstance(token, str) for token in ours.tokens)
    assert ours.logprobs == pytest.approx(theirs.logprobs[1:], abs=0.15)
    assert ours.nll == pytest.approx(-sum(theirs.logprobs[1:]) / ours.count, abs=0.01)
    # A continuation is not at the start: the same tokens as in-process.
    assert scores[1].count == local[1].count
    assert scores[1].logprobs == pytest.approx(local[1].logprobs, abs=0.15)


def _echo_answer(prompt: str, tokens: list[str], values: list[float | None], generated: int = 1) -> dict:
    """A vLLM-style echo: BOS shown with a null log-probability, then the prompt's tokens, then the generated."""
    return {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "text": prompt + "!",
                "finish_reason": "length",
                "logprobs": {
                    "tokens": tokens,
                    "token_logprobs": values,
                    "text_offset": list(range(len(tokens))),
                    "top_logprobs": None,
                },
            }
        ],
        "usage": {"prompt_tokens": len(tokens) - generated, "completion_tokens": generated},
    }


def test_openai_echo_parsing_and_context_boundary() -> None:
    answers = {
        "ab": (["<bos>", "a", "b", "!"], [None, -1.0, -2.0, -0.5]),
        "a": (["<bos>", "a", "!"], [None, -1.0, -0.5]),
        "": (["<bos>", "!"], [None, -0.5]),
    }

    def answer(handler: Any, n: int) -> None:
        prompt = fake.bodies[n]["prompt"]
        _send(handler, 200, _echo_answer(prompt, *answers[prompt]))

    with FakeServer(answer) as fake:
        backend = fake.backend()
        scores = backend.score(["ab", "b", ""], ["", "a", ""])
        backend.close()
    assert scores == [TokenScores(["a", "b"], [-1.0, -2.0]), TokenScores(["b"], [-2.0]), TokenScores([], [])]
    body = fake.bodies[0]
    assert (body["echo"], body["logprobs"], body["max_tokens"], body["temperature"]) == (True, 1, 1, 0.0)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {"error": {"message": "echo is not supported with logprobs"}},
            r"does not return prompt log-probabilities \(completions with echo and logprobs answered 400: "
            r"echo is not supported with logprobs\)$",
        ),
        (
            200,
            {"choices": [{"text": "x", "logprobs": None}], "usage": {"completion_tokens": 1}},
            r"does not return prompt log-probabilities \(no token_logprobs in its answer to echo and logprobs\)$",
        ),
        (  # echo ignored: only the generated token comes back
            200,
            _echo_answer("", ["!"], [-0.5]),
            r"does not return prompt log-probabilities \(its answer to echo and logprobs has none for the prompt\)$",
        ),
        (  # echoed, but without the prompt's log-probabilities
            200,
            _echo_answer("", ["<bos>", "a", "b", "!"], [None, None, None, -0.5]),
            r"does not return prompt log-probabilities \(its answer to echo and logprobs has none for the prompt\)$",
        ),
    ],
)
def test_openai_server_without_prompt_logprobs_is_one_line(status: int, body: dict, expected: str) -> None:
    with FakeServer(lambda handler, n: _send(handler, status, body)) as fake:
        backend = fake.backend(max_retries=0)
        with pytest.raises(MathforgeError) as raised:
            backend.score(["ab"])
        backend.close()
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"openai backend: {fake.base_url} ")
    assert re.search(expected, message), message
