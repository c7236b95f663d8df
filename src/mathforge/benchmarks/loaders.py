"""Turn a benchmark declaration into `Item`s: from `--data-dir` files, the HF hub, or a built-in generator."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mathforge import io
from mathforge.benchmarks.gold_rules import GoldRuleError, derive_gold, to_text
from mathforge.benchmarks.spec import BenchmarkSpec, HubSource, Item, Split
from mathforge.errors import MathforgeError, first_line
from mathforge.hub import offline_unless_hub_reachable

# A row with where it came from, for error messages ("gsm8k/test.jsonl:17").
Located = tuple[str, Mapping[str, Any]]

# "A) x", "A. x" or "a ) x", at the start or after a space, comma, quote or bracket.
_OPTION_MARK = r"(?:^|(?<=[\s,'\"\[(])){upper}\s?[).]\s*|(?:^|(?<=[\s,'\"\[(])){lower}\s?\)\s*"


def load_items(
    spec: BenchmarkSpec, split: str = "test", data_dir: str | Path | None = None, seed: int = 0
) -> list[Item]:
    """All items of one split of `spec`, in file order."""
    source = _split(spec, split)
    items, seen = [], set()
    for index, (where, row) in enumerate(_rows(spec, source, split, data_dir, seed)):
        item = _to_item(spec, where, row, index)
        if item.id in seen:  # resume and regrade find rows by id
            raise MathforgeError(f"{where}: duplicate id '{item.id}' in field '{spec.id_field}'")
        seen.add(item.id)
        items.append(item)
    if not items:  # a run over nothing would report "acc 0.0" as if a model had been measured
        raise MathforgeError(
            f"{_where(spec, source, data_dir)}: no items in the {split} split of '{spec.name}'"
        )
    return items


def _where(spec: BenchmarkSpec, source: Split, data_dir: str | Path | None) -> str:
    """The file(s) a split is read from, for an error about their content."""
    if spec.generator:
        return spec.name
    if data_dir is not None and source.local is not None:
        return ", ".join(str(Path(data_dir) / source.local.folder / name) for name in source.local.files)
    return f"{source.hub.path} [{source.hub.split}]" if source.hub is not None else spec.name


def _split(spec: BenchmarkSpec, split: str) -> Split:
    source = spec.test if split == "test" else spec.train if split == "train" else None
    if source is None:
        raise MathforgeError(f"benchmark '{spec.name}' has no {split} split")
    return source


def _rows(
    spec: BenchmarkSpec, source: Split, split: str, data_dir: str | Path | None, seed: int
) -> Iterator[Located]:
    if spec.generator:
        yield from _generated_rows(spec, spec.generator, split, seed)
    elif data_dir is not None:
        if source.local is None:
            raise MathforgeError(f"benchmark '{spec.name}' has no local files for its {split} split")
        for name in source.local.files:
            yield from read_jsonl(Path(data_dir) / source.local.folder / name)
    elif source.hub is not None:
        yield from hub_rows(source.hub, spec.name)
    else:
        folder = source.local.folder if source.local else spec.name
        raise MathforgeError(
            f"benchmark '{spec.name}' has no HF hub source; pass --data-dir DIR holding {folder}/test.jsonl "
            "(the data/ layout of math-evaluation-harness)"
        )


def _generated_rows(spec: BenchmarkSpec, generator: str, split: str, seed: int) -> Iterator[Located]:
    from mathforge.benchmarks import arith

    generators = {"arith": arith.generate}
    for index, row in enumerate(generators[generator](spec.size or 100, seed=seed, split=split)):
        yield f"{spec.name}[{split}] row {index}", row


def read_jsonl(path: Path) -> Iterator[Located]:
    """Rows of a JSONL file, each located as `path:line`; blank lines are skipped, bad ones are errors."""
    if not path.is_file():
        raise MathforgeError(f"data file not found: {path}")
    for number, row in io.read_jsonl(path):
        yield f"{path}:{number}", row


def hub_rows(hub: HubSource, benchmark: str) -> Iterator[Located]:
    """Rows from `datasets.load_dataset`; several comma-separated config names are concatenated."""
    import datasets

    if not Path(hub.path).exists():
        offline_unless_hub_reachable()
    configs = hub.name.split(",") if hub.name else [None]
    for config in configs:
        try:
            dataset = datasets.load_dataset(hub.path, config, split=hub.split, revision=hub.revision)
        except Exception as error:  # datasets raises many types (ConnectionError, FileNotFoundError, ...)
            raise MathforgeError(
                f"cannot load {hub.path}{f' ({config})' if config else ''} split '{hub.split}' from the HF hub for "
                f"'{benchmark}': {first_line(error)}. Offline? Pass --data-dir DIR with local files "
                "(e.g. ../shared/data/benchmarks)"
            ) from None
        renames = {hub_name: local for local, hub_name in hub.fields.items()}
        for index, row in enumerate(dataset):
            yield f"{hub.path}[{hub.split}] row {index}", {renames.get(k, k): v for k, v in row.items()}


def format_question(spec: BenchmarkSpec, row: Mapping[str, Any]) -> str:
    """The question text of a row, by the declaration's template (KeyError: a field it names is missing)."""
    return _QUESTION_FORMATTER.vformat(spec.question_template, (), row).strip()


def _to_item(spec: BenchmarkSpec, where: str, row: Mapping[str, Any], index: int) -> Item:
    try:
        question = format_question(spec, row)
    except KeyError as error:
        raise _missing(where, error.args[0], spec) from None
    if spec.answer_field not in row:
        raise _missing(where, spec.answer_field, spec)
    try:
        gold = derive_gold(row[spec.answer_field], row, spec.gold_rules)
    except GoldRuleError as error:
        raise MathforgeError(f"{where}: field '{spec.answer_field}': {error}") from None
    return Item(
        id=to_text(row[spec.id_field]) if spec.id_field and spec.id_field in row else str(index),
        question=question,
        gold=gold,
        choices=row_choices(spec, where, row),
        solution=(
            to_text(row[spec.solution_field])
            if spec.solution_field is not None and spec.solution_field in row
            else None
        ),
        subsets={
            name: to_text(row[field]) for name, field in spec.subsets.items() if row.get(field) is not None
        },
    )


class _QuestionFormatter(string.Formatter):
    """`str.format` plus one conversion, `!p`: end the field with a full stop unless it ends a sentence already.

    SVAMP splits a problem into a body that may lack its final period and a question; math-evaluation-harness
    joins them as "body. question", and so does the declaration "{Body!p} {Question}".
    """

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion == "p":
            text = str(value).rstrip()
            return text if text.endswith((".", "?", "!")) else text + "."
        return super().convert_field(value, conversion)


_QUESTION_FORMATTER = _QuestionFormatter()


def _missing(where: str, field: str, spec: BenchmarkSpec) -> MathforgeError:
    return MathforgeError(f"{where}: missing field '{field}' (benchmark '{spec.name}' needs it)")


def row_choices(spec: BenchmarkSpec, where: str, row: Mapping[str, Any]) -> list[str] | None:
    """The option texts of a multiple-choice row (None: a free-answer row, or a benchmark without choices)."""
    if not spec.choices_field:
        return None
    if spec.choices_field not in row:
        raise _missing(where, spec.choices_field, spec)
    raw = row[spec.choices_field]
    if raw is None:  # a free-answer row in a mixed benchmark (tabmwp)
        return None
    if spec.choices_format == "list":
        return [str(choice) for choice in raw]
    if spec.choices_format == "list_lettered":
        return [re.sub(_mark(index), "", str(choice), count=1).strip() for index, choice in enumerate(raw)]
    if spec.choices_format == "dict":
        return [str(raw[key]) for key in sorted(raw)]
    texts = split_lettered_options(str(raw))
    if not texts:
        raise MathforgeError(f"{where}: field '{spec.choices_field}': no 'A) ...' options found")
    return texts


def _mark(index: int) -> str:
    letter = chr(ord("A") + index)
    return _OPTION_MARK.format(upper=letter, lower=letter.lower())


def split_lettered_options(text: str) -> list[str]:
    """Option texts of "A) x B) y", "A. x B. y" or "['a ) x', 'b ) y']", in letter order.

    Markers are looked for in sequence (B after A, C after B, ...) so that a letter inside an option's text,
    such as "f(a)" or "U.S.", is not taken for a marker.
    """
    starts: list[tuple[int, int]] = []  # (marker start, text start)
    position = 0
    while (found := re.compile(_mark(len(starts))).search(text, position)) is not None:
        starts.append((found.start(), found.end()))
        position = found.end()
    ends = [start for start, _ in starts[1:]] + [len(text)]
    return [
        text[body:end].strip().strip(",'\"[]").strip() for (_, body), end in zip(starts, ends, strict=True)
    ]
