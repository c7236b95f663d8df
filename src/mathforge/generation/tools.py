"""Tool-integrated generation: completions whose programs run in the sandbox (the kinds: `mathforge.tool_kinds`).

The loop follows math-evaluation-harness: ToRA generation stops where the model would write "```output"; when
a round ends with a closed code block and no \\boxed{}, the block runs in the sandbox and its output is
appended as an ```output block; after the last allowed round the note "Reach max function call limit." ends
the trajectory. With `state="session"` a trajectory's blocks share one Python process (later blocks see
earlier variables); `state="fresh"` runs each block alone, as the harness does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mathforge.backends import Backend, Generation, SamplingParams
from mathforge.backends.base import CUT_SHORT, sample_seed
from mathforge.errors import ContextOverflow
from mathforge.grading.trajectory import (
    OUTPUT_BLOCK,
    PAL_ANSWER,
    ROUND_LIMIT_NOTE,
    ends_with_program,
    last_program,
    pal_answer,
    pal_program,
    shown_output,
)
from mathforge.records import ExecutionRecord
from mathforge.sandbox import ExecResult, Limits, Sandbox, SandboxPool, Session
from mathforge.tool_kinds import TOOL_KINDS, ToolKind


@dataclass
class Trajectory:
    """One sample: the text the model wrote plus the outputs it was shown, and each execution's record."""

    text: str = ""
    tokens: int = 0
    finish_reason: str = "stop"
    executions: list[dict[str, Any]] = field(default_factory=list)
    answer: str | None = None  # PAL: the program's answer
    done: bool = False
    session: Session | None = None
    segment_start: int = 0  # where the text the model wrote since its last output block begins


def trajectories_of(generations: list[Generation]) -> list[list[Trajectory]]:
    """Each prompt's completions as trajectories (plain generation: their texts, nothing run)."""
    return [[Trajectory(c.text, c.tokens, c.finish_reason) for c in g.completions] for g in generations]


@dataclass(frozen=True)
class ToolSettings:
    kind: str  # a name in TOOL_KINDS
    rounds: int = 4
    state: str = "session"
    limits: Limits = field(default_factory=Limits)
    require_isolation: bool = False
    workers: int | None = None


class ToolUse:
    """Generates completions whose programs run in the sandbox; one instance serves a whole evaluation."""

    def __init__(self, settings: ToolSettings) -> None:
        self.settings = settings
        self.kind: ToolKind = TOOL_KINDS[settings.kind]
        self.sandbox = Sandbox(settings.limits, isolate=True if settings.require_isolation else None)
        _raise_open_file_limit()  # a ToRA batch keeps a session (a process and its pipes) per live trajectory
        self.pool = SandboxPool(self.sandbox, workers=settings.workers)

    def fingerprint(self) -> dict[str, Any]:
        """What changes the outputs a model is shown (so a run with other settings is another run)."""
        limits = self.settings.limits
        return {
            "kind": self.kind.name,
            "timeout": limits.timeout,
            "memory_mb": limits.memory_mb,
            "isolated": self.sandbox.isolated,  # an isolated run and an unisolated resume are not mixed
            **self.kind.fingerprint(self.settings.rounds, self.settings.state),
        }

    def generate(
        self, backend: Backend, prompts: list[str], params: SamplingParams, seed_offsets: list[int]
    ) -> list[list[Trajectory]]:
        """The n trajectories of each prompt."""
        trajectories = trajectories_of(backend.generate(prompts, params, seed_offsets=seed_offsets))
        self.kind.run(ToolRun(self, backend, prompts, params, seed_offsets, trajectories))
        return trajectories

    def close(self) -> None:
        self.pool.close()


@dataclass
class ToolRun:
    """One batch of trajectories and the primitives a tool kind's `run` combines."""

    tools: ToolUse
    backend: Backend
    prompts: list[str]
    params: SamplingParams
    seed_offsets: list[int]
    trajectories: list[list[Trajectory]]

    def all(self) -> list[Trajectory]:
        return [t for group in self.trajectories for t in group]

    def run_programs(self) -> None:
        """PAL: run each completion's program once; its answer is what it returns or prints last."""
        sandbox = self.tools.sandbox

        def run(t: Trajectory) -> None:
            program = pal_program(t.text)
            result = sandbox.run(program, answer_expr=PAL_ANSWER)
            t.answer = pal_answer(result.status, result.answer, result.stdout)
            t.executions.append(ExecutionRecord(0, program, result).to_json())

        self.tools.pool.each(run, self.all())

    def run_rounds(self) -> None:
        """ToRA: run the closing code block of each live trajectory, show its output, generate on; repeat."""
        try:
            for round_ in range(self.tools.settings.rounds):
                self._run_round(round_)
                pending = [
                    (index, sample, t)
                    for index, group in enumerate(self.trajectories)
                    for sample, t in enumerate(group)
                    if not t.done
                ]
                if not pending:
                    break
                self._continue(pending, round_ + 1)
        finally:  # the last round's code, if any, ran; nothing more is generated
            for t in self.all():
                _finish(t)

    def _run_round(self, round_: int) -> None:
        """Run the code block that ends each live trajectory's latest segment, and append its output."""
        last_round = round_ == self.tools.settings.rounds - 1

        def step(t: Trajectory) -> None:
            segment = t.text[t.segment_start :]
            if t.done or t.finish_reason in CUT_SHORT or "boxed" in segment or not ends_with_program(segment):
                _finish(t)
                return
            program = last_program(segment) or ""
            result = self._execute(t, program)
            shown = shown_output(result.stdout, result.error, result.status)
            t.executions.append(ExecutionRecord(round_, program, result, shown).to_json())
            t.text = t.text.rstrip() + OUTPUT_BLOCK.format(output=shown)
            t.segment_start = len(t.text)
            if last_round:
                t.text += ROUND_LIMIT_NOTE
                _finish(t)

        self.tools.pool.each(step, self.all())

    def _execute(self, t: Trajectory, program: str) -> ExecResult:
        if self.tools.settings.state == "fresh":
            return self.tools.sandbox.run(program)
        if t.session is None:
            t.session = self.tools.sandbox.session()
        return t.session.run(program)

    def _continue(self, pending: list[tuple[int, int, Trajectory]], round_: int) -> None:
        """Generate the next segment of every pending trajectory (one sample each, seeded per sample and round)."""
        by_sample: dict[int, list[tuple[int, Trajectory]]] = {}
        for index, sample, t in pending:
            by_sample.setdefault(sample, []).append((index, t))
        for sample, group in by_sample.items():
            round_params = replace(self.params, n=1, seed=sample_seed(self.params.seed, round_, sample))
            texts = [self.prompts[index] + t.text for index, t in group]
            offsets = [self.seed_offsets[index] for index, _ in group]
            for (_, t), generation in zip(group, self._generate(texts, round_params, offsets), strict=True):
                if generation is None:  # the trajectory outgrew the context window
                    t.finish_reason = "length"
                    _finish(t)
                    continue
                completion = generation.completions[0]
                t.text += completion.text
                t.tokens += completion.tokens
                t.finish_reason = completion.finish_reason

    def _generate(
        self, texts: list[str], params: SamplingParams, offsets: list[int]
    ) -> list[Generation | None]:
        """One generation per text; None for a trajectory that no longer fits the context window."""
        try:
            return list(self.backend.generate(texts, params, seed_offsets=offsets))
        except ContextOverflow:
            pass
        results: list[Generation | None] = []  # one of them overflows: the others one by one
        for text, offset in zip(texts, offsets, strict=True):
            try:
                results.append(self.backend.generate([text], params, seed_offsets=[offset])[0])
            except ContextOverflow:
                results.append(None)
        return results


def _finish(t: Trajectory) -> None:
    """End a trajectory and give its session back at once (sessions hold a process and pipes each)."""
    t.done = True
    if t.session is not None:
        t.session.close()
        t.session = None


def _raise_open_file_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
