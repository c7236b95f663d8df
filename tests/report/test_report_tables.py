"""`mathforge report`: finding run dirs, building the model x benchmark table, markdown and CSV output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from mathforge.errors import MathforgeError
from mathforge.report import build_report, build_table, find_runs, render


def write_run(
    root: Path,
    rel: str,
    model: str,
    benchmark: str,
    acc: float,
    prompt: str = "zero-shot",
    finished_at: str = "2025-01-01T00:00:00+00:00",
    **extra: Any,
) -> Path:
    """A run dir like `mathforge eval` writes, with the metrics.json keys the report reads."""
    run_dir = root / rel
    run_dir.mkdir(parents=True)
    metrics = {
        "benchmark": benchmark,
        "model": model,
        "prompt": prompt,
        "n": 50,
        "acc": acc,
        "no_answer": 0.0,
        "samples_per_item": 1,
        "config": {"temperature": 0.0, "n": 1},
        "finished_at": finished_at,
        **extra,
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return run_dir


# --- find_runs --------------------------------------------------------------------------------------------


def test_find_runs_at_any_depth(tmp_path: Path) -> None:
    shallow = write_run(tmp_path, "a", "m1", "gsm8k", 10.0)
    deep = write_run(tmp_path, "x/y/z/w/b", "m2", "gsm8k", 20.0)
    write_run(tmp_path, "x/c", "m3", "gsm8k", 30.0)
    (tmp_path / "x" / "notes.txt").write_text("not a run")
    runs = find_runs([tmp_path])
    assert sorted(r["model"] for r in runs) == ["m1", "m2", "m3"]
    by_model = {r["model"]: r for r in runs}
    assert by_model["m1"]["path"] == shallow
    assert by_model["m2"]["path"] == deep
    assert by_model["m2"]["acc"] == 20.0


def test_find_runs_path_is_run_dir_and_overlap_counted_once(tmp_path: Path) -> None:
    run = write_run(tmp_path, "runs/m1/gsm8k", "m1", "gsm8k", 10.0)
    write_run(tmp_path, "runs/m2/gsm8k", "m2", "gsm8k", 20.0)
    assert [r["path"] for r in find_runs([run])] == [run]
    # runs/ and runs/m1/gsm8k overlap: the m1 run must appear once.
    runs = find_runs([tmp_path / "runs", run])
    assert sorted(r["model"] for r in runs) == ["m1", "m2"]


def test_find_runs_nonexistent_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(MathforgeError, match="no such directory: .*nope"):
        find_runs([missing])


def test_find_runs_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(MathforgeError, match=r"no run directories \(metrics.json\) under: .*empty"):
        find_runs([tmp_path / "empty"])


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"model": "m", ', "malformed metrics.json"),
        ("[1, 2]", "expected a JSON object"),
        ('{"benchmark": "gsm8k"}', "no 'model' name"),
    ],
)
def test_find_runs_malformed_json_names_the_file(tmp_path: Path, content: str, why: str) -> None:
    write_run(tmp_path, "good", "m1", "gsm8k", 10.0)
    bad = tmp_path / "deep" / "bad"
    bad.mkdir(parents=True)
    (bad / "metrics.json").write_text(content, encoding="utf-8")
    with pytest.raises(MathforgeError) as info:
        find_runs([tmp_path])
    message = str(info.value)
    assert message.startswith(f"{bad / 'metrics.json'}: malformed metrics.json (")
    assert why in message
    assert "\n" not in message


# --- build_table --------------------------------------------------------------------------------------------


def test_averages_and_missing_cells(tmp_path: Path) -> None:
    write_run(tmp_path, "m1/gsm8k", "m1", "gsm8k", 10.0)
    write_run(tmp_path, "m1/math500", "m1", "math500", 20.0)
    write_run(tmp_path, "m2/gsm8k", "m2", "gsm8k", 40.0)
    table = build_table(find_runs([tmp_path]))
    assert table.rows == ["m1", "m2"]
    assert [c.label for c in table.columns] == ["gsm8k", "math500"]
    assert table.average("m1") == (15.0, True)
    # m2 has no math500: its average is over gsm8k alone and is marked partial.
    assert table.average("m2") == (40.0, False)
    assert ("m2", "math500") not in table.cells
    assert any(
        note.startswith("* average over the columns present only: m2 (missing math500)")
        for note in table.notes
    )


def test_full_rows_have_no_partial_note(tmp_path: Path) -> None:
    write_run(tmp_path, "m1/gsm8k", "m1", "gsm8k", 10.0)
    write_run(tmp_path, "m2/gsm8k", "m2", "gsm8k", 40.0)
    table = build_table(find_runs([tmp_path]))
    assert table.notes == []
    assert "*" not in render(table)


def test_prompt_formats_become_separate_columns(tmp_path: Path) -> None:
    write_run(tmp_path, "m1/gsm8k_fs", "m1", "gsm8k", 12.0, prompt="few-shot")
    write_run(tmp_path, "m1/gsm8k_zs", "m1", "gsm8k", 8.0, prompt="zero-shot")
    write_run(tmp_path, "m1/math500", "m1", "math500", 4.0, prompt="zero-shot")
    table = build_table(find_runs([tmp_path]))
    # Only gsm8k has two formats, so only it gets the "(prompt)" suffix.
    assert [c.label for c in table.columns] == ["gsm8k (zero-shot)", "gsm8k (few-shot)", "math500"]
    assert table.cells["m1", "gsm8k (few-shot)"].value == 12.0
    assert table.cells["m1", "gsm8k (zero-shot)"].value == 8.0
    assert table.average("m1") == (8.0, True)


def test_best_of_prompts_picks_the_better_per_benchmark(tmp_path: Path) -> None:
    write_run(tmp_path, "m1/gsm8k_fs", "m1", "gsm8k", 12.0, prompt="few-shot")
    write_run(tmp_path, "m1/gsm8k_zs", "m1", "gsm8k", 8.0, prompt="zero-shot")
    write_run(tmp_path, "m1/math500_fs", "m1", "math500", 2.0, prompt="few-shot")
    write_run(tmp_path, "m1/math500_zs", "m1", "math500", 6.0, prompt="zero-shot")
    write_run(tmp_path, "m2/gsm8k_zs", "m2", "gsm8k", 30.0, prompt="zero-shot")
    table = build_table(find_runs([tmp_path]), best_of_prompts=True)
    assert [c.label for c in table.columns] == ["gsm8k", "math500"]
    assert table.cells["m1", "gsm8k"].value == 12.0
    assert table.cells["m1", "gsm8k"].prompt == "few-shot"
    assert table.cells["m1", "math500"].value == 6.0
    assert table.cells["m1", "math500"].prompt == "zero-shot"
    assert table.average("m1") == (9.0, True)
    assert table.prompt_choices == [
        "m1 / gsm8k: few-shot (12.0) over zero-shot (8.0)",
        "m2 / gsm8k: zero-shot (30.0), the only prompt run",
        "m1 / math500: zero-shot (6.0) over few-shot (2.0)",
    ]
    markdown = render(table)
    assert "Prompt used:\n- m1 / gsm8k: few-shot (12.0) over zero-shot (8.0)\n" in markdown
    rows = list(csv.reader(io.StringIO(render(table, "csv"))))
    assert rows[0] == ["model", "gsm8k", "gsm8k prompt", "math500", "math500 prompt", "Average"]
    assert rows[1] == ["m1", "12.0", "few-shot", "6.0", "zero-shot", "9.0"]
    assert rows[2] == ["m2", "30.0", "zero-shot", "", "", "30.0"]


def test_duplicates_keep_most_recent_and_say_so(tmp_path: Path) -> None:
    old = write_run(tmp_path, "a/m1/gsm8k", "m1", "gsm8k", 50.0, finished_at="2025-01-01T10:00:00+00:00")
    new = write_run(tmp_path, "b/m1/gsm8k", "m1", "gsm8k", 40.0, finished_at="2025-03-01T10:00:00+00:00")
    table = build_table(find_runs([tmp_path]))
    assert table.cells["m1", "gsm8k"].value == 40.0
    assert table.cells["m1", "gsm8k"].path == new
    assert table.notes == [
        f"2 runs of m1 / gsm8k with identical settings (zero-shot): kept the most recent, {new}; ignored {old}"
    ]
    assert "Notes:\n- 2 runs of m1 / gsm8k with identical settings (zero-shot)" in render(table)


def _fingerprint(**changes: Any) -> dict[str, Any]:
    """The fingerprint keys the report reads, as eval writes them, with `changes` on top."""
    sampling = {"max_new_tokens": 1024, "temperature": 0.0, "top_p": 1.0, "top_k": 0, "n": 1, "seed": 0}
    fingerprint: dict[str, Any] = {"sampling": sampling, "extractor": "auto"}
    for key, value in changes.items():
        if key in sampling:
            sampling[key] = value
        else:
            fingerprint[key] = value
    return fingerprint


def _items(count: int, first: int = 0) -> dict[str, Any]:
    from mathforge.records import items_digest

    return {"count": count, "sha256": items_digest([str(i) for i in range(first, first + count)])}


# Each kind of difference that changes the number, as (metrics.json keys of the other run, its column label).
_DIFFERENCES = {
    "prompt": ({"prompt": "few-shot"}, "few-shot"),
    "prompt text (--shots)": (
        {"fingerprint": _fingerprint(prompt={"sha256": "0f1e2d3c4b5a"})},
        "prompt 0f1e2d",
    ),
    "sampling": (
        {"fingerprint": _fingerprint(temperature=0.7, n=4), "samples_per_item": 4},
        "4 samples, T=0.7",
    ),
    "top_p": (
        {"fingerprint": _fingerprint(temperature=0.7, n=4, top_p=0.95)},
        "4 samples, T=0.7, top-p 0.95",
    ),
    "budget": ({"fingerprint": _fingerprint(max_new_tokens=512)}, "512 tokens"),
    "limit": ({"n": 3, "items": _items(3)}, "n=3"),
    "item set": ({"items": _items(2, first=5)}, "n=2, items "),
    "extractor": ({"fingerprint": _fingerprint(extractor="boxed")}, "boxed extractor"),
    "judge": ({"judge": {"model": "qwen-judge"}}, "judge qwen-judge"),
    "tool": ({"fingerprint": _fingerprint(tool={"kind": "tora", "rounds": 2})}, "tool kind tora, rounds 2"),
}


@pytest.mark.parametrize("difference", list(_DIFFERENCES))
def test_runs_with_other_settings_are_other_columns(tmp_path: Path, difference: str) -> None:
    """The newer run differs in one setting: it must not replace the older one, and the labels say how."""
    base = {"fingerprint": _fingerprint(), "items": _items(2), "n": 2}
    other, label = _DIFFERENCES[difference]
    first = write_run(tmp_path, "a", "m1", "gsm8k", 10.0, finished_at="2025-01-01T10:00:00+00:00", **base)
    second = write_run(
        tmp_path, "b", "m1", "gsm8k", 12.5, finished_at="2025-03-01T10:00:00+00:00", **{**base, **other}
    )
    table = build_table(find_runs([tmp_path]))
    assert len(table.columns) == 2, [c.label for c in table.columns]
    by_path = {cell.path: (column, cell.value) for (_, column), cell in table.cells.items()}
    assert by_path[first][1] == 10.0 and by_path[second][1] == 12.5
    assert label in by_path[second][0] and by_path[first][0] != by_path[second][0]
    assert not any("kept the most recent" in note for note in table.notes)
    assert (
        "Average is over every column: a benchmark with several columns counts once for each" in table.notes
    )


def test_older_runs_without_an_item_digest_never_share_a_label(tmp_path: Path) -> None:
    """Runs from before the item digest, without samples.jsonl: told apart by limit and shuffle seed."""
    write_run(tmp_path, "a", "m1", "gsm8k", 10.0, n=3, config={"limit": 3, "shuffle": True, "seed": 1})
    write_run(tmp_path, "b", "m1", "gsm8k", 20.0, n=3, config={"limit": 3, "shuffle": True, "seed": 2})
    table = build_table(find_runs([tmp_path]))
    labels = [column.label for column in table.columns]
    assert labels == ["gsm8k (n=3, limit 3, shuffle seed 1)", "gsm8k (n=3, limit 3, shuffle seed 2)"]
    assert sorted(cell.value for cell in table.cells.values()) == [10.0, 20.0]


def test_greedy_runs_differing_only_in_unused_top_p_are_one_setting(tmp_path: Path) -> None:
    write_run(tmp_path, "a", "m1", "gsm8k", 10.0, fingerprint=_fingerprint(top_p=0.9))
    write_run(
        tmp_path, "b", "m1", "gsm8k", 11.0, fingerprint=_fingerprint(), finished_at="2025-02-01T00:00:00"
    )
    table = build_table(find_runs([tmp_path]))
    assert [c.label for c in table.columns] == ["gsm8k"]
    assert table.cells["m1", "gsm8k"].value == 11.0


def test_best_of_prompts_compares_only_the_same_items(tmp_path: Path) -> None:
    write_run(tmp_path, "zs", "m1", "gsm8k", 33.3, prompt="zero-shot", n=3, items=_items(3))
    write_run(tmp_path, "fs", "m1", "gsm8k", 50.0, prompt="few-shot", n=2, items=_items(2))
    table = build_table(find_runs([tmp_path]), best_of_prompts=True)
    assert [c.label for c in table.columns] == ["gsm8k (n=2)", "gsm8k (n=3)"]
    assert table.cells["m1", "gsm8k (n=3)"].prompt == "zero-shot"
    assert table.cells["m1", "gsm8k (n=2)"].prompt == "few-shot"
    assert table.prompt_choices == []  # one prompt per item set: nothing was compared


def test_runs_over_no_items_are_left_out(tmp_path: Path) -> None:
    write_run(tmp_path, "full", "m1", "gsm8k", 40.0, finished_at="2025-01-01T00:00:00+00:00")
    empty = write_run(tmp_path, "empty", "m1", "gsm8k", 0.0, n=0, finished_at="2025-05-01T00:00:00+00:00")
    table = build_table(find_runs([tmp_path]))
    assert table.cells["m1", "gsm8k"].value == 40.0
    assert f"1 run(s) over no items (n 0) left out: {empty}" in table.notes


def test_other_metric_and_runs_without_it(tmp_path: Path) -> None:
    write_run(tmp_path, "m1/sampled", "m1", "gsm8k", 10.0, **{"pass@1": 10.0, "maj@4": 25.0})
    greedy = write_run(tmp_path, "m2/greedy", "m2", "gsm8k", 30.0)
    table = build_table(find_runs([tmp_path]), metric="maj@4")
    assert table.rows == ["m1"]
    assert table.cells["m1", "gsm8k"].value == 25.0
    assert f"1 run(s) without 'maj@4' left out: {greedy}" in table.notes
    with pytest.raises(MathforgeError, match="no run has the metric 'maj@8'; metrics found: .*maj@4"):
        build_table(find_runs([tmp_path]), metric="maj@8")


def test_benchmark_columns_follow_registry_then_unknown_alphabetically(tmp_path: Path) -> None:
    from mathforge.benchmarks import REGISTRY as registry

    assert list(registry).index("gsm8k") < list(registry).index("aime24")
    for bench in ("zz_custom", "aime24", "aa_custom", "gsm8k"):
        write_run(tmp_path, bench, "m1", bench, 1.0)
    table = build_table(find_runs([tmp_path]))
    assert [c.label for c in table.columns] == ["gsm8k", "aime24", "aa_custom", "zz_custom"]


# --- rendering ------------------------------------------------------------------------------------------------


def small_case(root: Path) -> Path:
    write_run(root, "runs/gemma3-270m/gsm8k__zero-shot", "gemma3-270m", "gsm8k", 12.0)
    write_run(root, "runs/gemma3-270m/math500__zero-shot", "gemma3-270m", "math500", 3.25)
    write_run(root, "runs/qwen-1.5b/gsm8k__zero-shot", "qwen-1.5b", "gsm8k", 70.0)
    return root / "runs"


def test_markdown_exact(tmp_path: Path) -> None:
    expected = (
        "| Model       | gsm8k | math500 | Average |\n"
        "| :---------- | ----: | ------: | ------: |\n"
        "| gemma3-270m |  12.0 |     3.2 |     7.6 |\n"
        "| qwen-1.5b   |  70.0 |       – |   70.0* |\n"
        "\n"
        "Notes:\n"
        "- * average over the columns present only: qwen-1.5b (missing math500)\n"
    )
    assert build_report([small_case(tmp_path)]) == expected


def test_csv_exact(tmp_path: Path) -> None:
    expected = "model,gsm8k,math500,Average\ngemma3-270m,12.0,3.2,7.6\nqwen-1.5b,70.0,,70.0\n"
    assert build_report([small_case(tmp_path)], fmt="csv") == expected


def test_csv_quotes_awkward_names(tmp_path: Path) -> None:
    write_run(tmp_path, "a", 'org/model, "v2"', "gsm8k", 1.0)
    rows = list(csv.reader(io.StringIO(build_report([tmp_path], fmt="csv"))))
    assert rows[1][0] == 'org/model, "v2"'


def test_markdown_escapes_pipes(tmp_path: Path) -> None:
    write_run(tmp_path, "a", "a|b", "gsm8k", 1.0)
    assert build_report([tmp_path]).splitlines()[2].startswith("| a\\|b ")


def test_unknown_format(tmp_path: Path) -> None:
    table = build_table(find_runs([small_case(tmp_path)]))
    with pytest.raises(MathforgeError, match="--format must be markdown or csv, got 'html'"):
        render(table, "html")
    with pytest.raises(MathforgeError, match="--format must be markdown or csv, got 'json'"):
        build_report([tmp_path / "does-not-matter"], fmt="json")
