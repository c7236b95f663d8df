"""Token scoring of a JSONL file (`mathforge score`): how likely a model finds each row's text.

Each output row is the input row plus three fields (replacing fields of the same names):

- `tokens`: how many tokens were scored (`Backend.score` says which: every token of the text where the model
  uses BOS, all but the first where it does not);
- `nll`: their mean negative log-likelihood, in nats (null when no token was scored, e.g. an empty text);
- `ppl`: the perplexity, exp(nll).

The output is appended batch by batch (`append_jsonl`: flushed and fsynced), so a killed run loses at most the
batch in flight. Resuming matches rows by order: output row i is input row i (blank input lines do not count),
so a re-run skips as many input rows as the output holds, after checking that each of them carries the same
text as its input row; an output from another file or another --field is an error, never a silent mix. Which
model scored the earlier rows is not recorded: resume with the same model.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from mathforge.backends import Backend, load_backend, resolve_model
from mathforge.backends.base import TokenScores
from mathforge.backends.options import UsesEngine
from mathforge.errors import ContextOverflow, MathforgeError, first_line
from mathforge.io import append_jsonl, read_jsonl, read_resumable
from mathforge.progress import ItemProgress


class ScoreOptions(UsesEngine):
    """The options of `mathforge score` (the file is its argument); engine options as `eval` takes them."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json"}

    field: str = Field("text", description="The row field that holds the text")
    out: Path | None = Field(
        None, description="Output JSONL (re-running resumes it) [default: FILE's stem + .scored.jsonl beside it]"
    )
    batch_size: int | None = Field(
        None, ge=1, description="Texts per engine call [default: the engine's: hf 8, llamacpp 16, vllm 256, openai 8x concurrency]"
    )
    json_output: bool = Field(False, description="Print the summary as one JSON line instead of the table")
    quiet: bool = Field(False, description="No progress bar")



def score_file(
    path: str | Path,
    model: str | None = None,
    backend: str | None = None,
    field: str = "text",
    out: str | Path | None = None,
    batch_size: int | None = None,
    show_progress: bool = True,
    **engine_options: Any,
) -> dict[str, Any]:
    """Score the `field` text of every row of a JSONL file and write the rows with tokens, nll and ppl to
    `out` (default: `<stem>.scored.jsonl` beside the input); resumes an earlier run's `out`.

    Returns a summary over all rows of `out` (those of earlier runs included): rows, tokens, nll (per token,
    over the whole file), ppl (the corpus perplexity, exp(total nll / total tokens)), the seconds and tokens
    per second of this run's scoring, and the model's identity. `engine_options` go to the engine (n_ctx,
    dtype, device, base_url, ...), checked against it as the command's flags are.
    """
    options = ScoreOptions.build(
        model=model,
        backend=backend,
        field=field,
        out=out,
        batch_size=batch_size,
        quiet=not show_progress,
        **engine_options,
    )
    return score_texts(path, options)


def score_texts(path: str | Path, options: ScoreOptions) -> dict[str, Any]:
    """`score_file` with its options validated already (what the command calls)."""
    path, field, out = Path(path), options.field, options.out
    rows = _read_texts(path, field)
    out = Path(out) if out is not None else path.with_name(f"{path.stem}.scored.jsonl")
    if out.resolve() == path.resolve():
        raise MathforgeError(f"--out {out} is the input file; pass another --out")
    done = _earlier_rows(out, path, rows, field)
    resumed = len(done)
    name, reference = resolve_model(options.model, options.backend)
    engine = load_backend(name, reference, **options.engine_options)
    seconds, tokens_now = 0.0, 0
    try:
        size = options.batch_size if options.batch_size is not None else int(getattr(engine, "score_batch_size", 8))
        identity = engine.identity()
        if len(done) < len(rows):
            out.parent.mkdir(parents=True, exist_ok=True)
        with ItemProgress("score", total=len(rows), done=len(done), enabled=not options.quiet) as bar:
            for start in range(len(done), len(rows), size):
                batch = rows[start : start + size]
                started = time.perf_counter()
                try:
                    scores = score_rows(engine, batch, field, path)
                except RuntimeError as error:  # engine failures (llama_decode, CUDA, vLLM): one line
                    raise MathforgeError(
                        f"{name} engine failed on {path} lines {batch[0][0]}-{batch[-1][0]}: "
                        f"{first_line(error)}; rows before them are in {out}, re-run to resume"
                    ) from None
                seconds += time.perf_counter() - started
                scored = [
                    _scored_row(row, score.count, score.nll)
                    for (_, row), score in zip(batch, scores, strict=True)
                ]
                append_jsonl(out, scored)
                done.extend(scored)
                count = sum(score.count for score in scores)
                tokens_now += count
                bar.advance(len(batch), count)
    finally:
        engine.close()
    return _summary(path, out, field, done, resumed, identity, seconds, tokens_now)


def score_rows(
    engine: Backend, batch: list[tuple[int, dict[str, Any]]], field: str, path: Path
) -> list[TokenScores]:
    """The scores of the `field` text of a batch of (line, row); a text too long for the engine is a `FILE:line`
    error. The engines check the lengths before computing anything, so the row is found cheaply by scoring the
    batch's rows one at a time. (`score` and curate's perplexity stage both score through here.)"""
    try:
        return engine.score([row[field] for _, row in batch])
    except ContextOverflow:
        pass
    scores = []
    for number, row in batch:
        try:
            scores.extend(engine.score([row[field]]))
        except ContextOverflow as error:
            raise ContextOverflow(f"{path}:{number}: {error}") from None
    return scores


def _read_texts(path: Path, field: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for every row, each checked to have a string `field` before any model is loaded."""
    rows = list(read_jsonl(path))
    for number, row in rows:
        if field not in row:
            raise MathforgeError(f"{path}:{number}: no field '{field}' (choose the text field with --field)")
        if not isinstance(row[field], str):
            raise MathforgeError(
                f"{path}:{number}: field '{field}' is {type(row[field]).__name__}, not a string"
            )
    if not rows:
        raise MathforgeError(f"{path}: no rows to score")
    return rows


def _earlier_rows(
    out: Path, path: Path, rows: list[tuple[int, dict[str, Any]]], field: str
) -> list[dict[str, Any]]:
    """The rows an earlier run wrote to `out`, checked to be the scoring of `rows`' first rows, in order."""
    done = read_resumable(out)
    if len(done) > len(rows):
        raise MathforgeError(
            f"{out} has {len(done)} rows but {path} only {len(rows)}: it is not this file's scoring; "
            "delete it or pass another --out"
        )
    for index, (row, (number, source)) in enumerate(zip(done, rows, strict=False)):
        if row.get(field) != source[field] or not {"tokens", "nll", "ppl"} <= row.keys():
            raise MathforgeError(
                f"{out}:{index + 1}: not the scoring of {path}:{number} (another file or --field?); "
                "delete it or pass another --out"
            )
    return done


def _scored_row(row: dict[str, Any], count: int, nll: float) -> dict[str, Any]:
    # NaN (no token scored) is written as null: JSON has no NaN.
    scored = count > 0
    return {**row, "tokens": count, "nll": nll if scored else None, "ppl": math.exp(nll) if scored else None}


def _summary(
    path: Path,
    out: Path,
    field: str,
    rows: list[dict[str, Any]],
    resumed: int,
    identity: dict[str, Any],
    seconds: float,
    tokens_now: int,
) -> dict[str, Any]:
    tokens = sum(row["tokens"] for row in rows)
    # Each row's total is its mean times its count: the same whether it was scored now or by an earlier run.
    total_nll = math.fsum(row["nll"] * row["tokens"] for row in rows if row["tokens"])
    nll = total_nll / tokens if tokens else None
    return {
        "file": str(path),
        "out": str(out),
        "field": field,
        "rows": len(rows),
        "scored_now": len(rows) - resumed,
        "resumed": resumed,
        "tokens": tokens,
        "nll": nll,
        "ppl": math.exp(nll) if nll is not None else None,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens_now / seconds, 2) if seconds > 0 else None,
        "model": identity,
    }
