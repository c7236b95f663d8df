"""The shared JSONL and JSON files: FILE:line errors, torn last lines cut, fsynced appends, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathforge.errors import MathforgeError, first_line
from mathforge.io import append_jsonl, read_jsonl, read_resumable, write_json_atomic, write_jsonl_atomic


def test_read_jsonl_numbers_rows_and_names_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (3, {"a": 2})]
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(MathforgeError, match=r"rows.jsonl:2: expected a JSON object, got list"):
        list(read_jsonl(path))
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(MathforgeError, match=r"rows.jsonl:2: malformed JSON line"):
        list(read_jsonl(path))
    path.write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(MathforgeError, match=r"rows.jsonl:1: not UTF-8 text"):
        list(read_jsonl(path))
    with pytest.raises(MathforgeError, match=r"cannot read .*absent.jsonl"):
        list(read_jsonl(tmp_path / "absent.jsonl"))


def test_a_torn_last_line_is_cut_and_the_next_append_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    append_jsonl(path, [{"id": "1"}, {"id": "2"}])
    with path.open("ab") as handle:
        handle.write(b'{"id": "3", "text": "tor')  # a kill in the middle of a write
    assert [row["id"] for row in read_resumable(path)] == ["1", "2"]
    assert path.read_bytes() == b'{"id": "1"}\n{"id": "2"}\n'  # cut off the file
    append_jsonl(path, [{"id": "3"}])
    assert [row["id"] for row in read_resumable(path)] == ["1", "2", "3"]
    assert read_resumable(tmp_path / "none.jsonl") == []


def test_a_bad_line_before_the_last_is_an_error_not_a_cut(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text('{"id": "1"}\n{"id": \n{"id": "3"}\n')
    with pytest.raises(MathforgeError, match=r"samples.jsonl:2: malformed JSON line"):
        read_resumable(path)
    assert path.read_text().count("\n") == 3  # nothing finished was cut


def test_skip_bad_leaves_a_shared_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_text('{"k": 1}\n{"k": \n{"k": 3}\n{"k": 4')
    before = path.read_bytes()
    assert read_resumable(path, skip_bad=True) == [{"k": 1}, {"k": 3}]
    assert path.read_bytes() == before  # another process may be appending the last line right now
    append_jsonl(path, [{"k": 5}])  # starts on a line of its own
    assert read_resumable(path, skip_bad=True)[-1] == {"k": 5}


def test_atomic_writes_replace_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"acc": 1.0, "name": "é"})
    write_json_atomic(target, {"acc": 2.0})
    assert json.loads(target.read_text()) == {"acc": 2.0}
    rows = tmp_path / "rows.jsonl"
    write_jsonl_atomic(rows, [{"a": 1}, {"a": "中"}])
    assert [row for _, row in read_jsonl(rows)] == [{"a": 1}, {"a": "中"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "rows.jsonl"]  # no temporary left


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB"), "CUDA out of memory."),
        (ValueError("\n\n  real reason  \nmore"), "real reason"),
        (KeyError(), "KeyError"),
        (RuntimeError("x" * 300), "x" * 197 + "..."),
    ],
)
def test_first_line(error: BaseException, expected: str) -> None:
    assert first_line(error) == expected
