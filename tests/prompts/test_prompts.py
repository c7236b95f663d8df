"""Prompt rendering: zero-shot, few-shot from prompt files and train splits, chat, custom templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BENCHMARK_DATA, PROMPTS

from mathforge.benchmarks import Item, get_spec
from mathforge.errors import MathforgeError
from mathforge.prompts import PromptConfig, build_prompter, question_with_choices

ITEM = Item(id="0", question="Tom has 3 apples and buys 5 more. How many apples does he have?", gold="8")


def test_zero_shot_is_the_jiuzhang_prompt() -> None:
    prompter = build_prompter(get_spec("gsm8k"), PromptConfig(format="zero-shot"))
    assert prompter.render(ITEM) == (
        "Solve the following problem step by step. Question: Tom has 3 apples and buys 5 more. "
        "How many apples does he have?\nSolution:"
    )
    assert "\nQuestion:" in prompter.stop


def test_few_shot_from_harness_prompt_file_gsm8k() -> None:
    prompter = build_prompter(get_spec("gsm8k"), PromptConfig(prompt_dir=PROMPTS))
    text = prompter.render(ITEM)
    exemplar_file = (PROMPTS / "cot" / "gsm8k.md").read_text().strip()
    assert text == exemplar_file + "\n\n\nQuestion: " + ITEM.question + "\nAnswer:"
    assert prompter.source["shots"] == 8


def test_few_shot_math_file_uses_problem_solution_headers() -> None:
    prompter = build_prompter(get_spec("math500"), PromptConfig(prompt_dir=PROMPTS, shots=2))
    text = prompter.render(ITEM)
    assert text.startswith("Problem:\nKevin Kangaroo")
    assert text.endswith("\n\n\nProblem:\n" + ITEM.question + "\nSolution:")
    assert text.count("Problem:") == 3


def test_prompt_dir_found_beside_data_dir() -> None:
    prompter = build_prompter(get_spec("gsm8k"), PromptConfig(), data_dir=BENCHMARK_DATA)
    assert prompter.source["prompt_file"].endswith("cot/gsm8k.md")


def test_few_shot_from_train_split_is_deterministic() -> None:
    spec = get_spec("arith")
    first = build_prompter(spec, PromptConfig(shots=3, seed=1)).render(ITEM)
    again = build_prompter(spec, PromptConfig(shots=3, seed=1)).render(ITEM)
    other = build_prompter(spec, PromptConfig(shots=3, seed=2)).render(ITEM)
    assert first == again != other
    assert first.count("Question: ") == 4 and first.count("####") == 3
    assert first.endswith("Question: " + ITEM.question + "\nAnswer:")


def test_few_shot_gsm8k_train_split_from_data_dir(tmp_path: Path) -> None:
    # A data dir with no prompt files beside it: exemplars come from gsm8k_openai/train.jsonl.
    (tmp_path / "gsm8k_openai").mkdir()
    (tmp_path / "gsm8k_openai" / "train.jsonl").symlink_to(BENCHMARK_DATA / "gsm8k_openai" / "train.jsonl")
    prompter = build_prompter(get_spec("gsm8k"), PromptConfig(shots=5), data_dir=tmp_path)
    assert prompter.source == {"format": "few-shot", "exemplars": "train split", "shots": 5, "seed": 0}
    text = prompter.render(ITEM)
    assert text.count("####") == 5 and text.count("<<") >= 5


def test_few_shot_without_exemplar_source_is_a_clear_error() -> None:
    with pytest.raises(MathforgeError, match="few-shot 'math500' needs exemplars: pass --prompt-dir"):
        build_prompter(get_spec("math500"), PromptConfig())


def test_multiple_choice_question_lists_options() -> None:
    item = Item(id="1", question="2+2?", gold="B", choices=["3", "4", "5"])
    assert question_with_choices(item) == (
        "2+2?\nWhat of the following is the right choice? Explain your answer.\n(A) 3, (B) 4, (C) 5"
    )


def test_chat_uses_backend_template_and_system_prompt() -> None:
    seen = []

    def template(messages: list[dict[str, str]]) -> str:
        seen.append(messages)
        return "|".join(m["role"] + ":" + m["content"] for m in messages)

    prompter = build_prompter(
        get_spec("gsm8k"), PromptConfig(format="chat", system_prompt="Be brief."), None, template
    )
    text = prompter.render(ITEM)
    assert seen[0][0] == {"role": "system", "content": "Be brief."}
    assert seen[0][1]["content"].startswith(ITEM.question) and "\\boxed{}" in seen[0][1]["content"]
    assert text.startswith("system:Be brief.|user:")


def test_custom_template_file(tmp_path: Path) -> None:
    template = tmp_path / "mine.jinja"
    template.write_text("Q: {{ question }}\nA (id {{ item.id }}):")
    prompter = build_prompter(
        get_spec("gsm8k"), PromptConfig(format="custom", template_file=template, stop=("\nQ:",))
    )
    assert prompter.render(ITEM) == f"Q: {ITEM.question}\nA (id 0):"
    assert prompter.stop == ("\nQ:",)


def test_custom_template_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jinja"
    broken.write_text("line one\n{{ question ")
    with pytest.raises(MathforgeError, match=r"broken.jinja:2: template syntax error"):
        build_prompter(get_spec("gsm8k"), PromptConfig(format="custom", template_file=broken))
    unknown = tmp_path / "unknown.jinja"
    unknown.write_text("{{ nope }}")
    prompter = build_prompter(get_spec("gsm8k"), PromptConfig(format="custom", template_file=unknown))
    with pytest.raises(MathforgeError, match="'nope' is undefined"):
        prompter.render(ITEM)


def test_unknown_format() -> None:
    with pytest.raises(MathforgeError, match="--prompt must be one of zero-shot, few-shot, chat, custom, pal, tora"):
        build_prompter(get_spec("gsm8k"), PromptConfig(format="cot"))


def test_tool_formats_need_their_exemplars() -> None:
    with pytest.raises(MathforgeError, match="--prompt tora needs its exemplars: pass --prompt-dir"):
        build_prompter(get_spec("gsm8k"), PromptConfig(format="tora"))
