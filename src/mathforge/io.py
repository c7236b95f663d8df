"""JSON and JSONL files as every mathforge command reads and writes them, crash-safe.

- `read_jsonl`: (line number, row) for each row; anything that is not a JSON object per line is a one-line
  `FILE:line` error.
- `read_resumable`: the rows of a file this process appends to (samples, caches); a torn last line (a kill in
  the middle of a write) is cut off the file instead of failing.
- `append_jsonl`: rows appended, flushed and fsynced, on a line of their own even after a torn line.
- `write_json_atomic`, `write_jsonl_atomic`: a temporary file beside the target, fsynced, then renamed over
  it, so a reader sees the old file or the new one, never half of one.
- `read_rows`, `RowWriter`: JSONL or Parquet tables streamed in and out with bounded memory (the data
  commands' inputs may hold millions of rows); the output appears under its name only when complete.

Everything in mathforge that touches JSON files goes through here, so that these guarantees hold for every
command (eval, regrade, judge caches, and the data and train halves).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mathforge.errors import MathforgeError


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each non-blank line of a JSONL file; one-line `path:line` errors otherwise."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise MathforgeError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise MathforgeError(f"{path}:{number}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise MathforgeError(f"{path}:{number}: malformed JSON line ({error.msg})") from None
            if not isinstance(row, dict):
                raise MathforgeError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            yield number, row


def read_resumable(path: str | Path, *, skip_bad: bool = False) -> list[dict[str, Any]]:
    """The whole rows of a file written by `append_jsonl`; a torn last line is removed from the file.

    Only the last line may be torn (appends are whole lines, fsynced); a bad line before it means the file was
    edited or is not ours, and is a `path:line` error rather than a silent cut of finished work.

    `skip_bad`: skip every line that is not a whole row and leave the file as it is. For caches that several
    processes may append to at once (cutting a "torn" line could cut another process's append in flight), and
    where a lost entry only costs its recomputation.
    """
    path = Path(path)
    if not path.exists():
        return []
    with path.open("rb") as handle:
        lines = handle.readlines()
    rows: list[dict[str, Any]] = []
    good_bytes = 0
    for number, line in enumerate(lines, start=1):
        row = _whole_row(line)
        if row is not None:
            rows.append(row)
            good_bytes += len(line)
        elif skip_bad:
            continue
        elif number < len(lines):
            raise MathforgeError(f"{path}:{number}: malformed JSON line in a file mathforge appends to")
    if not skip_bad and good_bytes < path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(good_bytes)
    return rows


def _whole_row(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def append_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows as JSON lines, flushed and fsynced; after a torn last line, start on a line of our own."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    if not data:
        return
    path = Path(path)
    with path.open("a+b") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                data = b"\n" + data
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write one JSON document (indented, UTF-8) atomically."""
    _write_atomic(Path(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write a whole JSONL file atomically."""
    _write_atomic(Path(path), "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file (UTF-8) atomically: readers see the old file or the whole new one."""
    _write_atomic(Path(path), text)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- streaming tables: JSONL or Parquet, one row at a time ------------------------------------------------

PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def read_rows(path: str | Path, batch_rows: int = 4096) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position, row) for each row of a JSONL or Parquet file, streamed: memory holds one batch, never the file.

    The position is the JSONL line number (what `FILE:line` errors and reports name) or the 1-based row number
    of a Parquet file.
    """
    if not is_parquet(path):
        yield from read_jsonl(path)
        return
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(str(path))
    except (OSError, ValueError) as error:  # pyarrow.ArrowInvalid is a ValueError
        raise MathforgeError(f"cannot read {path} as Parquet: {error}") from None
    number = 0
    with table:
        for batch in table.iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                number += 1
                yield number, row


class RowWriter:
    """Rows streamed to a JSONL or Parquet file that appears whole, under its name, only when closed.

    Rows go to a temporary file beside the target (JSONL line by line; Parquet a row group per `batch_rows`)
    and `close` renames it over the target, so readers never see half a file, and a killed run leaves the
    previous file (or none) in place. `abort` (or leaving a `with` block on an exception) discards it.
    """

    def __init__(self, path: str | Path, batch_rows: int = 4096) -> None:
        self.path = Path(path)
        self.count = 0
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._parquet = is_parquet(self.path)
        self._pending: list[dict[str, Any]] = []
        self._batch_rows = batch_rows
        self._writer: Any = None
        try:
            self._handle = None if self._parquet else self._tmp.open("w", encoding="utf-8")
        except OSError as error:
            raise MathforgeError(f"cannot write {self.path}: {error.strerror or error}") from None

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self._handle is not None:
            self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        self._pending.append(row)
        if len(self._pending) >= self._batch_rows:
            self._flush_parquet()

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._pending:
            return
        batch = pa.Table.from_pylist(self._pending)
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self._tmp), batch.schema)
        elif batch.schema != self._writer.schema:  # a later batch typed a column otherwise (null -> string)
            batch = batch.cast(self._writer.schema)
        self._writer.write_table(batch)
        self._pending = []

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        else:
            self._flush_parquet()
            if self._writer is None:  # no rows: an empty file with no columns
                import pyarrow as pa
                import pyarrow.parquet as pq

                pq.write_table(pa.table({}), str(self._tmp))
            else:
                self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
        elif self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
