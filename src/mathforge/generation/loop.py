"""The generation loop: many prompts through one engine, batch by batch, seeded, resumable, with a progress bar.

The caller (eval today; synth next) keeps what a batch produced before the next batch starts, so a run killed
at any moment loses at most the batch in flight; on a re-run it passes only the jobs not yet done. Sampling is
seeded per job by its `position` in the whole list (not in the batch), so a resumed or re-batched run samples
what a whole run would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from mathforge.backends import Backend, SamplingParams
from mathforge.errors import MathforgeError, first_line
from mathforge.generation.tools import ToolUse, Trajectory, trajectories_of
from mathforge.progress import ItemProgress


@dataclass(frozen=True)
class Job:
    """One prompt to complete: `id` names it in errors, `position` seeds its samples."""

    id: str
    prompt: str
    position: int


@dataclass
class Batch:
    """A finished batch: each job's n trajectories, and the engine's wall time per job."""

    jobs: list[Job]
    trajectories: list[list[Trajectory]]
    seconds_each: float


def generate(
    backend: Backend,
    jobs: Sequence[Job],
    params: SamplingParams,
    *,
    batch_size: int,
    tool: ToolUse | None = None,
    label: str = "generate",
    total: int | None = None,
    show_progress: bool = True,
) -> Iterator[Batch]:
    """Yield each batch of `jobs` as it finishes; the bar counts `total` items (those done before included).

    The bar advances when the caller asks for the next batch, that is once it has kept this one.
    """
    total = len(jobs) if total is None else total
    with ItemProgress(label, total=total, done=total - len(jobs), enabled=show_progress) as progress:
        for start in range(0, len(jobs), batch_size):
            batch = _complete(backend, list(jobs[start : start + batch_size]), params, tool)
            yield batch
            tokens = sum(t.tokens for group in batch.trajectories for t in group)
            progress.advance(len(batch.jobs), tokens)


def _complete(backend: Backend, jobs: list[Job], params: SamplingParams, tool: ToolUse | None) -> Batch:
    prompts = [job.prompt for job in jobs]
    offsets = [job.position for job in jobs]
    started = time.perf_counter()
    try:
        if tool is not None:
            trajectories = tool.generate(backend, prompts, params, offsets)
        else:
            trajectories = trajectories_of(backend.generate(prompts, params, seed_offsets=offsets))
    except MathforgeError:
        raise
    except (RuntimeError, ValueError, IndexError, MemoryError) as error:  # engine failures, CUDA OOM included
        raise MathforgeError(
            f"{backend.name} failed while generating items {jobs[0].id}..{jobs[-1].id}: {first_line(error)}; "
            "finished items are saved, re-run the same command to resume (a smaller --batch-size or "
            "--max-new-tokens may help)"
        ) from None
    return Batch(jobs, trajectories, (time.perf_counter() - started) / len(jobs))
