"""Registries, not if-chains: every prompt format, tool kind, regrade reader and engine is listed by the CLI
help, ordered by `report` and named in the docs; and a new prompt format or reader is one declaration."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from mathforge.backends import BACKENDS
from mathforge.benchmarks import Item, get_spec
from mathforge.data.stages import STAGES
from mathforge.eval.formats import READERS, Reader, SourceRow
from mathforge.eval.formats import register as register_reader
from mathforge.eval.regrade import regrade_file
from mathforge.prompts import (
    PROMPT_FORMATS,
    PromptConfig,
    PromptContext,
    Prompter,
    PromptFormat,
    build_prompter,
)
from mathforge.prompts import register as register_format
from mathforge.report.tables import _prompt_key
from mathforge.tool_kinds import TOOL_KINDS
from mathforge.train.formats import SFT_FORMATS
from mathforge.train.kinds import TRAINING_KINDS

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _help(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mathforge.cli", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())


REGISTRIES: dict[str, tuple[Sequence[str], tuple[str, str]]] = {
    "prompt formats": (list(PROMPT_FORMATS), ("eval", "--prompt")),
    "engines": (list(BACKENDS), ("eval", "--backend")),
    "tool kinds": (list(TOOL_KINDS), ("regrade", "--tool")),
    "regrade readers": (list(READERS), ("regrade", "--format")),
    "curate stages": (list(STAGES), ("curate", "--stages")),
    "sft formats": (list(SFT_FORMATS), ("train sft", "--format")),
    "training kinds": (list(TRAINING_KINDS), ("train", "Train models:")),
}


@pytest.mark.parametrize("registry", list(REGISTRIES))
def test_every_entry_is_in_the_help_and_the_docs(registry: str) -> None:
    names, (command, option) = REGISTRIES[registry]
    assert names
    text = _help(*command.split())
    line = text[text.index(option) :][:400]  # the option's own help text
    for name in names:
        assert name in line, f"{command} {option} help does not list {name}"
        assert f"`{name}`" in ARCHITECTURE, f"docs/architecture.md does not list the {registry[:-1]} {name}"


def test_tool_kinds_are_prompt_formats_too() -> None:
    assert set(TOOL_KINDS) <= set(PROMPT_FORMATS)


def test_report_orders_prompts_as_the_registry() -> None:
    shuffled = [*reversed(PROMPT_FORMATS), "zz-unknown", "aa-unknown"]
    assert sorted(shuffled, key=_prompt_key) == [*PROMPT_FORMATS, "aa-unknown", "zz-unknown"]


# --- one declaration each: a toy prompt format and a toy reader, declared in this file only


@pytest.fixture
def toy_format() -> Iterator[str]:
    @register_format
    class Shouting(PromptFormat):
        name = "shouting"
        description = "the question in capitals, then ANSWER:"

        def build(self, context: PromptContext) -> Prompter:
            return Prompter(lambda item: f"{item.question.upper()}\nANSWER:", ("\n",), {"format": self.name})

    yield Shouting.name
    del PROMPT_FORMATS[Shouting.name]


def test_a_new_prompt_format_is_one_declaration(toy_format: str, tmp_path: Path) -> None:
    from mathforge.eval import EvalConfig

    prompter = build_prompter(get_spec("arith"), PromptConfig(format=toy_format))
    assert prompter.render(Item("1", "what is 2+2?", "4")) == "WHAT IS 2+2?\nANSWER:"
    assert EvalConfig.build(prompt=toy_format).prompt == toy_format  # --prompt accepts it
    assert sorted(["few-shot", toy_format, "zero-shot"], key=_prompt_key) == ["zero-shot", "few-shot", toy_format]


@pytest.fixture
def toy_reader() -> Iterator[str]:
    @register_reader
    class Notebook(Reader):
        """A made-up harness: {"problem_id", "problem", "outputs", "reference"}."""

        name = "notebook"
        required = ("problem_id", "problem", "outputs")
        gold_field = "reference"

        def detect(self, path: Path, row: Mapping[str, Any]) -> bool:
            return "problem_id" in row and "outputs" in row

        def read(
            self, raw: Mapping[str, Any], number: int, where: str, spec: Any, need_gold: bool
        ) -> SourceRow:
            return SourceRow(number, str(raw["problem_id"]), raw["problem"], raw.get("reference"), raw["outputs"])

    yield Notebook.name
    del READERS[Notebook.name]


def test_a_new_reader_is_one_declaration(toy_reader: str, tmp_path: Path) -> None:
    rows = [
        {"problem_id": 7, "problem": "2+2?", "outputs": ["so \\boxed{4}", "maybe 5"], "reference": "4"},
        {"problem_id": 8, "problem": "3*3?", "outputs": ["The answer is 6."], "reference": "9"},
    ]
    path = tmp_path / "notebook.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = regrade_file(path, "gsm8k")  # found by --format auto
    assert result.format == toy_reader
    assert [row["correct"] for row in result.rows] == [[True, False], [False]]
    assert [row["preds"] for row in result.rows] == [["4", "5"], ["6"]]
