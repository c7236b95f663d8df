"""`curate` past one machine: the same stage classes on Ray Data (`pip install 'mathforge[ray]'`).

Ray Data does the distribution (reading, scheduling, blocks, spilling); mathforge adds no layer of its own. The
pipeline's leading stages that judge rows one by one (`Stage.parallel`: filters, verification,
decontamination) run as `map_batches` tasks across the cluster, each actor building its stage once (an index,
a sandbox). From the first stage that needs every row in input order (deduplication, a perplexity model), the
rows stream to the driver in order (`preserve_order`) and the rest of the pipeline runs there through the same
code as a local `curate`, which also writes OUT, the rejects file and the funnel.

Positions: Ray reads rows, not lines, so the rejects file and the funnel name a row's 1-based position in the
input (equal to its line in a JSONL file without blank lines).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mathforge.data.pipeline import (
    CurateOptions,
    Funnel,
    StageCount,
    StageSpec,
    _check_paths,
    curate_stages,
    rejection,
    run_batch,
    stage_specs,
)
from mathforge.data.stages import STAGES, StageContext
from mathforge.errors import MathforgeError
from mathforge.io import RowWriter, is_parquet, write_json_atomic

# A row's verdict while it travels through the Ray stages: None (kept so far) or its rejection, as JSON text
# (a struct column would need one schema for every stage's `info`).
VERDICT = "_mathforge_rejected"


class _RayStages:
    """A Ray Data callable class: the leading parallel stages, built and set up once per actor, run in order
    on each batch (one actor pool for all of them: no data moves between stages, and a pool per stage would
    need a CPU per stage)."""

    def __init__(self, specs: list[StageSpec], context: StageContext) -> None:
        self.stages = [spec.build(context) for spec in specs]
        for stage in self.stages:
            stage.setup()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows = batch.to_pylist()
        rejected: list[str | None] = [None] * len(rows)  # each row's rejection, as JSON text
        for index, stage in enumerate(self.stages):
            open_rows = [i for i, done in enumerate(rejected) if done is None]
            if not open_rows:
                break
            found = stage.check([rows[i] for i in open_rows], [0] * len(open_rows))
            for i, verdict in zip(open_rows, found, strict=True):
                if verdict is not None:
                    record = {"index": index, "rejected": rejection(stage.name, 0, verdict)}
                    rejected[i] = json.dumps(record, ensure_ascii=False)
        for row, done in zip(rows, rejected, strict=True):
            row[VERDICT] = done
        return pa.Table.from_pylist(rows)


def curate_on_ray(path: str | Path, opts: CurateOptions, concurrency: int | None = None) -> Funnel:
    """`curate` with the leading parallel stages as Ray Data tasks on `concurrency` actors (default: --workers);
    connects to the running Ray cluster (`RAY_ADDRESS`, or `ray.init` called before), or starts a local one."""
    try:
        import ray
    except ImportError:
        raise MathforgeError("Ray is not installed: pip install 'mathforge[ray]'") from None
    path = Path(path)
    specs = stage_specs(opts)
    _check_paths(path, opts)
    leading = 0
    while leading < len(specs) and STAGES[specs[leading].name].parallel:
        leading += 1
    context = StageContext(source=path, data_dir=opts.data_dir.resolve() if opts.data_dir else None)
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    dataset = ray.data.read_parquet(str(path)) if is_parquet(path) else ray.data.read_json(str(path))
    if leading:
        dataset = dataset.map_batches(
            _RayStages,
            fn_constructor_kwargs={"specs": specs[:leading], "context": context},
            batch_format="pyarrow",
            batch_size=opts.batch_rows,
            concurrency=concurrency or opts.workers,
        )
    funnel = Funnel(str(path), str(opts.out), str(opts.rejects_path()), [StageCount(s.name) for s in specs])
    with (
        curate_stages(specs[leading:], context) as rest,
        RowWriter(opts.out) as kept_out,
        RowWriter(opts.rejects_path()) as rejects_out,
    ):
        position = 0
        for batch in dataset.iter_batches(batch_size=opts.batch_rows, batch_format="pyarrow"):
            table: Any = batch
            rows = table.to_pylist()
            lines = list(range(position + 1, position + len(rows) + 1))
            position += len(rows)
            funnel.rows += len(rows)
            lines, rows = _ray_verdicts(lines, rows, funnel.stages[:leading], rejects_out)
            kept_out.write_all(run_batch(rest, funnel.stages[leading:], lines, rows, rejects_out))
    funnel.check()
    write_json_atomic(opts.funnel_path(), funnel.as_json())
    return funnel


def _ray_verdicts(
    lines: list[int], rows: list[dict[str, Any]], counts: list[StageCount], rejects: RowWriter
) -> tuple[list[int], list[dict[str, Any]]]:
    """Count and write what the Ray stages dropped (each row carries its verdict); the kept rows go on."""
    dropped_at = [len(counts)] * len(rows)
    verdicts: list[dict[str, Any] | None] = []
    for i, row in enumerate(rows):
        text = row.pop(VERDICT, None)
        found = json.loads(text) if text else None
        verdicts.append(found["rejected"] if found else None)
        if found is not None:
            dropped_at[i] = found["index"]
    for index, count in enumerate(counts):
        count.rows_in += sum(1 for at in dropped_at if at >= index)
        count.kept += sum(1 for at in dropped_at if at > index)
    kept_lines, kept_rows = [], []
    for line, row, verdict, at in zip(lines, rows, verdicts, dropped_at, strict=True):
        if verdict is None:
            kept_lines.append(line)
            kept_rows.append(row)
            continue
        verdict["line"] = line
        reasons = counts[at].reasons
        reasons[verdict["reason"]] = reasons.get(verdict["reason"], 0) + 1
        rejects.write({**row, "rejected": verdict})
    return kept_lines, kept_rows


__all__ = ["curate_on_ray"]
