"""Labels of `train sft`: IGNORE_INDEX (-100) exactly on the prompt's tokens and the token ids everywhere else, for
the plain, chat (including a template with a <think> block, and several assistant turns) and template formats;
the targets built from curate's and GSM8K's rows; the dry run's counts; one-line errors naming the row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathforge.errors import MathforgeError
from mathforge.train.examples import ExampleFields, build_target, read_examples, strip_calculator, to_example
from mathforge.train.formats import IGNORE_INDEX, FormatContext, build_format, tokenize
from mathforge.train.sft import SftOptions, check_trainable, dry_run_report, prepare

# A ChatML template that writes an assistant message's reasoning as a <think> block before its answer (as Qwen3's
# does), and opens the assistant turn in its generation prompt.
THINK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' and m.get('reasoning') %}<think>\n{{ m['reasoning'] }}\n</think>\n\n{% endif %}"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_llama: Path):
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tiny_llama)
    loaded.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    return loaded


def rows_file(tmp_path: Path, rows: list[dict], name: str = "rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


GSM8K_ROW = {
    "question": "Natalia sold 48 clips in April and half as many in May. How many clips did she sell?",
    "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\nAltogether 48+24 = <<48+24=72>>72 clips.\n#### 72",
}


def assert_prompt_masked(ids: list[int], labels: list[int], prompt_ids: list[int]) -> None:
    """The first len(prompt_ids) tokens are the prompt's, and exactly those are ignored."""
    cut = len(prompt_ids)
    assert ids[:cut] == prompt_ids
    assert labels[:cut] == [IGNORE_INDEX] * cut
    assert labels[cut:] == ids[cut:]
    assert len(labels) > cut


def test_plain_format_masks_exactly_the_prompt(tokenizer) -> None:
    example = to_example(GSM8K_ROW, "rows.jsonl:1", ExampleFields())
    rendered = build_format("plain", FormatContext(tokenizer)).render(example)
    prompt = rendered.text[: rendered.spans[0][0]]
    assert prompt.startswith("Solve the following problem step by step. Question: Natalia")
    assert prompt.endswith("\nSolution:")
    row = tokenize(tokenizer, rendered, None, example.where)
    assert_prompt_masked(row.input_ids, row.labels, tokenizer(prompt)["input_ids"])
    assert row.labels[-1] == tokenizer.eos_token_id  # EOS is trained: the model learns to stop
    trained = tokenizer.decode([t for t in row.labels if t != IGNORE_INDEX])
    assert (
        trained
        == " <think>\nIn May she sold 48/2 = 24 clips.\nAltogether 48+24 = 72 clips.\n</think>\nThe answer is 72.</s>"
    )


def test_chat_format_masks_exactly_the_prompt(tokenizer) -> None:
    example = to_example(GSM8K_ROW, "rows.jsonl:1", ExampleFields(target="as-is"))
    rendered = build_format("chat", FormatContext(tokenizer, system_prompt="Be brief.")).render(example)
    row = tokenize(tokenizer, rendered, None, example.where)
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": f"{example.question}\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
        },
    ]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert_prompt_masked(row.input_ids, row.labels, tokenizer(prompt, add_special_tokens=False)["input_ids"])
    # The chat template's end of turn (here the newline after the message) is trained: the model learns to stop.
    assert tokenizer.decode([t for t in row.labels if t != IGNORE_INDEX]).endswith("#### 72\n")


def test_chat_template_with_a_think_block(tokenizer) -> None:
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = THINK_TEMPLATE
    messages = [
        {"role": "user", "content": "What is 6 * 7?"},
        {"role": "assistant", "reasoning": "6 * 7 = 42", "content": "The answer is 42."},
    ]
    example = to_example({"messages": messages}, "rows.jsonl:3", ExampleFields())
    rendered = build_format("chat", FormatContext(tokenizer)).render(example)
    row = tokenize(tokenizer, rendered, None, example.where)
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert_prompt_masked(row.input_ids, row.labels, prompt_ids)
    trained = tokenizer.decode([t for t in row.labels if t != IGNORE_INDEX])
    assert trained == "<think>\n6 * 7 = 42\n</think>\n\nThe answer is 42.<|im_end|>\n"
    # <|im_end|> is one special token, trained.
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in [t for t in row.labels if t != IGNORE_INDEX]


def test_every_assistant_turn_is_trained_and_no_user_turn(tokenizer) -> None:
    messages = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "The answer is 4."},
        {"role": "user", "content": "And 3 + 3?"},
        {"role": "assistant", "content": "The answer is 6."},
    ]
    example = to_example({"messages": messages}, "rows.jsonl:1", ExampleFields())
    rendered = build_format("chat", FormatContext(tokenizer)).render(example)
    pieces = rendered.prompt_and_completion()
    assert [text for text, trained in pieces if trained] == ["The answer is 4.\n", "The answer is 6.\n"]
    row = tokenize(tokenizer, rendered, None, example.where)
    trained = tokenizer.decode([t for t in row.labels if t != IGNORE_INDEX])
    assert trained == "The answer is 4.\nThe answer is 6.\n"
    assert "2 + 2" not in trained and "3 + 3" not in trained


def test_template_format_masks_exactly_the_prompt(tokenizer, tmp_path: Path) -> None:
    template = tmp_path / "prompt.jinja"
    template.write_text("Problem: {{ question }}\nWorked solution:\n", encoding="utf-8")
    example = to_example(GSM8K_ROW, "rows.jsonl:1", ExampleFields())
    rendered = build_format("template", FormatContext(tokenizer, template_file=template)).render(example)
    prompt = f"Problem: {example.question}\nWorked solution:\n"
    assert rendered.text.startswith(prompt + "<think>")  # no space after a prompt ending in whitespace
    row = tokenize(tokenizer, rendered, None, example.where)
    assert_prompt_masked(row.input_ids, row.labels, tokenizer(prompt)["input_ids"])


def test_targets_from_curate_and_gsm8k_rows() -> None:
    curated = {"question": "Q?", "solution": "3 * 4 = <<3*4=12>>12 apples.", "answer": "12"}
    assert (
        to_example(curated, "f:1", ExampleFields()).target
        == "<think>\n3 * 4 = 12 apples.\n</think>\nThe answer is 12."
    )
    kept = to_example(curated, "f:1", ExampleFields(strip_calculator=False, target="as-is")).target
    assert kept == "3 * 4 = <<3*4=12>>12 apples.\n#### 12"
    gsm8k = to_example(GSM8K_ROW, "f:2", ExampleFields())
    assert gsm8k.answer == "72" and gsm8k.target.endswith("</think>\nThe answer is 72.")
    assert strip_calculator("$<<12/60=0.2>>0.2 per minute") == "$0.2 per minute"
    assert build_target("steps", None, "card") == "<think>\nsteps\n</think>"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"solution": "1 + 1 = 2", "answer": "2"}, "rows.jsonl:1: no 'question' text"),
        ({"question": "Q?", "answer": "2"}, "rows.jsonl:1: no 'solution' text, and 'answer' is not a worked"),
        (
            {"messages": [{"role": "user", "content": "hi"}]},
            "rows.jsonl:1: 'messages' has no assistant message",
        ),
        ({"messages": [{"role": "bot", "content": "hi"}]}, "rows.jsonl:1: messages[0] has role 'bot'"),
    ],
)
def test_a_row_without_the_needed_fields_is_one_line(tmp_path: Path, row: dict, message: str) -> None:
    path = rows_file(tmp_path, [row])
    with pytest.raises(MathforgeError) as error:
        read_examples(path, ExampleFields())
    assert str(error.value).startswith(
        str(tmp_path / message.split(":")[0]) + ":1:" + message.split(":", 2)[2]
    )
    assert "\n" not in str(error.value)


def options(data: Path, model: Path, **extra) -> SftOptions:
    return SftOptions.build(data=str(data), model=str(model), **extra)


def test_dry_run_counts(tiny_llama: Path, tokenizer, tmp_path: Path) -> None:
    from mathforge.benchmarks.arith import generate

    rows = generate(12, seed=3, split="train")
    data = rows_file(tmp_path, rows)
    opts = options(data, tiny_llama, max_length=120, dry_run=True)
    prepared = prepare(opts, tokenizer)
    report = dry_run_report(prepared, opts, tokenizer)
    # Counted independently: the prompt and the whole text tokenized apart.
    fmt = build_format("plain", FormatContext(tokenizer))
    whole, trained, truncated, empty = 0, [], 0, 0
    for row in rows:
        rendered = fmt.render(to_example(row, "x", ExampleFields()))
        prompt_len = len(tokenizer(rendered.text[: rendered.spans[0][0]])["input_ids"])
        length = len(tokenizer(rendered.text)["input_ids"])
        kept = min(length, 120)
        whole += kept
        trained.append(max(0, kept - prompt_len))
        truncated += length > 120
        empty += kept <= prompt_len
    assert report["examples"] == 12
    assert report["tokens"] == whole
    assert report["trainable_tokens"] == sum(trained)
    assert report["truncated"] == truncated > 0
    assert report["fully_masked"] == empty > 0
    assert report["trainable_per_example"]["max"] == max(trained)
    assert report["trainable_per_example"]["min"] == min(trained) == 0
    assert len(report["fully_masked_rows"]) == empty
    first = report["example"]
    assert "".join(text for text, _ in first["pieces"]).startswith("Solve the following")
    # The first row is cut at 120 tokens: what is trained is the start of its target.
    assert first["truncated"] and first["trained_text"]
    assert "".join(text for text, trained in first["pieces"] if trained).startswith(first["trained_text"])
    # Training refuses what the dry run only counts: the first fully masked row, named.
    with pytest.raises(
        MathforgeError, match=rf"{data}:\d+: no trainable token: its prompt fills --max-length 120"
    ):
        check_trainable(prepared, opts)


def test_a_template_that_leaves_no_trainable_token(tiny_llama: Path, tokenizer, tmp_path: Path) -> None:
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    # A template that drops assistant messages: nothing of the target is ever rendered.
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    data = rows_file(tmp_path, [GSM8K_ROW])
    opts = options(data, tiny_llama, format="chat")
    with pytest.raises(MathforgeError, match=rf"^{data}:1: ") as error:
        check_trainable(prepare(opts, tokenizer), opts)
    assert "\n" not in str(error.value)


def test_unknown_format_and_template_without_file(tiny_llama: Path, tmp_path: Path) -> None:
    data = rows_file(tmp_path, [GSM8K_ROW])
    with pytest.raises(MathforgeError, match="invalid option --format: must be one of plain, template, chat"):
        options(data, tiny_llama, format="alpaca")
    with pytest.raises(MathforgeError, match="--format template needs --template FILE"):
        build_format("template", FormatContext(None))


def test_a_prompt_ending_in_a_space_still_trains_the_first_target_token(tokenizer, tmp_path: Path) -> None:
    # Byte-level BPE folds that space into the target's first word ("ĠThe"): its offset starts in the prompt.
    template = tmp_path / "prompt.jinja"
    template.write_text("Q: {{ question }}\nAnswer: ", encoding="utf-8")
    example = to_example(
        {"question": "Q?", "solution": "The answer is 5."}, "f:1", ExampleFields(target="as-is")
    )
    rendered = build_format("template", FormatContext(tokenizer, template_file=template)).render(example)
    row = tokenize(tokenizer, rendered, None, example.where)
    trained = tokenizer.decode([t for t in row.labels if t != IGNORE_INDEX])
    assert trained.strip() == "The answer is 5.</s>"


def test_a_chat_template_that_raises_names_the_row(tiny_llama: Path, tokenizer, tmp_path: Path) -> None:
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if loop.index0 % 2 == 0 and m['role'] != 'user' %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{{ m['content'] }}\n{% endfor %}"
    )
    messages = [{"role": "assistant", "content": "hi"}, {"role": "assistant", "content": "The answer is 4."}]
    data = rows_file(tmp_path, [{"messages": messages}])
    with pytest.raises(MathforgeError) as error:
        prepare(options(data, tiny_llama, format="chat"), tokenizer)
    assert str(error.value) == (
        f"{data}:1: the chat template fails on this row: Conversation roles must alternate user/assistant"
    )
