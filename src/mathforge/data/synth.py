"""Synthetic problems from seed problems with a teacher model (`mathforge synth`).

Request i of N (id `synth-00042` for i = 42) is a few-shot prompt of K seed problems drawn by a RNG seeded with
(--seed, i), rendered by a jinja2 template (the packaged `templates/synth.jinja`, or --template), with a topic
and a difficulty drawn the same way when --topic / --difficulty list some; its completion is sampled with
`sample_seed(--seed, i)`. A request is therefore the same in a whole, a resumed or an otherwise batched run.

Each completion is parsed into question, solution and answer (`parse_generation`): the reply's "Problem:",
"Solution:" and "Answer:" lines, the answer read by the project's extraction (`mathforge.grading`: "Answer:",
\\boxed{}, GSM8K's "####"), never guessed from a last number. A reply that does not parse goes to the rejects
file with its reason (`Drop.reason`: empty, truncated, no_question, no_solution, no_answer) and its raw text:
every request ends as exactly one row, in --out or in the rejects file.

With --samples S, each accepted question is sent again with the solve template (`templates/solve.jinja`) for S
completions (n=S: the openai engine makes S requests, each with its own seed), and the solutions with their
extracted answers are kept on the row as `samples`, for curation's self-consistency check.

Files beside --out (say `synth.jsonl`):

- `synth.rejects.jsonl`: the rejected requests;
- `synth.pending.jsonl` (with --samples): accepted questions that await their samples;
- `synth.run.json`: the run's fingerprint (teacher, seeds file content, templates, K, topics, sampling): a re-run
  with other settings into the same --out is refused, unless --fresh.

Resume: each finished request is appended to its file (`mathforge.io.append_jsonl`: flushed and fsynced) as soon
as it finishes, and a re-run sends only the requests without a row. An engine that serves requests concurrently
(the openai engine) gets each prompt as a call of its own, --concurrency at a time, kept the moment it finishes;
an in-process engine gets batches (its default batch size, or --batch-size). A kill loses at most the requests
in flight.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from mathforge.backends import (
    CUT_SHORT,
    Backend,
    Completion,
    SamplingParams,
    engine_class,
    load_backend,
    resolve_model,
)
from mathforge.backends.base import sample_seed
from mathforge.backends.options import UsesEngine
from mathforge.benchmarks.gold_rules import to_text
from mathforge.data.stages.base import Drop
from mathforge.errors import Interrupted, MathforgeError, read_text
from mathforge.generation import Finished, generate_as_finished
from mathforge.grading import asks_for_several, cut_invented_continuation, extract_answer
from mathforge.grading.extract import GUESSES
from mathforge.io import append_jsonl, read_jsonl, read_resumable, write_json_atomic
from mathforge.progress import ItemProgress
from mathforge.rundir import check_same_run

GENERATION_VARIABLES = "seeds (id, question, solution, answer), topic, difficulty, index"
SOLVE_VARIABLES = "question"


class SynthOptions(UsesEngine):
    """The options of `mathforge synth`; the teacher's engine options as `eval` takes them."""

    cli_names: ClassVar[dict[str, str]] = {"json_output": "json", "model": "teacher"}

    model: str | None = Field(
        None,
        description="The teacher: the server's model name with --backend openai [default: the one it serves], or a "
        "GGUF file, HF hub id or local directory [default: the packaged Gemma 3 270M]",
    )
    seeds: Path = Field(
        description="JSONL of seed problems: 'question' (or 'problem') and a 'solution' and/or 'answer' "
        "(GSM8K's train layout works); a seed's id is its 'id' field, else line-N"
    )
    n: int = Field(ge=1, description="Problems to request (ids synth-00000 ...)")
    out: Path = Field(
        description="Output JSONL of the accepted problems (re-running resumes it); rejects go to "
        "<stem>.rejects.jsonl beside it"
    )
    shots: int = Field(4, ge=1, description="Seed problems per request (drawn per request, seeded)")
    template: Path | None = Field(
        None,
        description=f"Your own jinja2 prompt template (variables: {GENERATION_VARIABLES}) [default: the packaged "
        "templates/synth.jinja]",
    )
    solve_template: Path | None = Field(
        None,
        description=f"Your own jinja2 template of the --samples requests (variables: {SOLVE_VARIABLES}) [default: "
        "the packaged templates/solve.jinja]",
    )
    topic: list[str] = Field(
        default_factory=list,
        description="A topic to ask for (repeatable; each request draws one)",
        json_schema_extra={"repeatable": True},
    )
    difficulty: list[str] = Field(
        default_factory=list,
        description="A difficulty to ask for (repeatable; each request draws one)",
        json_schema_extra={"repeatable": True},
    )
    chat: bool | None = Field(
        None,
        description="--chat: send the prompt as a chat message through the teacher's chat template; --no-chat: as "
        "raw text, with the base-model templates by default [default: --chat when the teacher has a chat template]",
    )
    samples: int = Field(
        0,
        ge=0,
        description="Independent solutions per accepted question, kept on the row (needs --temperature > 0)",
    )
    temperature: float = Field(0.8, ge=0.0, description="Sampling temperature (0 = greedy)")
    top_p: float = Field(
        0.95, gt=0.0, le=1.0, description="Nucleus sampling: keep the smallest set of this mass"
    )
    max_new_tokens: int = Field(1024, ge=1, description="Generation budget per completion")
    seed: int = Field(0, ge=0, description="Seed of the seed-problem draws and of sampling")
    stop: list[str] = Field(
        default_factory=list, description="Stop string (repeatable)", json_schema_extra={"repeatable": True}
    )
    stop_on_loop: bool = Field(
        True,
        description="End a completion that repeats itself verbatim (rejected as truncated) instead of paying for "
        "it up to the budget [hf, llamacpp, openai]",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        description="Prompts per engine call for in-process engines [default: hf 8, llamacpp 1, vllm 256]; the "
        "openai engine sends each request on its own, --concurrency at a time",
    )
    price_in: float | None = Field(
        None, ge=0.0, description="Price per million prompt tokens, for the cost estimate"
    )
    price_out: float | None = Field(
        None, ge=0.0, description="Price per million completion tokens, for the cost estimate"
    )
    fresh: bool = Field(
        False, description="Discard what an earlier run wrote to --out instead of resuming it"
    )
    json_output: bool = Field(False, description="Print the summary as one JSON line instead of the table")
    quiet: bool = Field(False, description="No progress bar")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.samples > 1 and self.temperature == 0.0:
            raise ValueError("--samples above 1 needs --temperature > 0 (greedy solutions are all the same)")
        if (self.price_in is None) != (self.price_out is None):
            raise ValueError("--price-in and --price-out go together (per million tokens)")
        return self


# --- seed problems ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One seed problem as the template shows it."""

    id: str
    question: str
    solution: str
    answer: str


def read_seeds(path: Path) -> list[Seed]:
    """The seed problems of a JSONL file; a row without a question, a solution or a final answer is a
    `FILE:line` error."""
    seeds: list[Seed] = []
    lines: dict[str, int] = {}
    for number, row in read_jsonl(path):
        seed = _seed(row, f"{path}:{number}", f"line-{number}")
        if seed.id in lines:
            raise MathforgeError(f"{path}:{number}: seed id '{seed.id}' repeats line {lines[seed.id]}")
        lines[seed.id] = number
        seeds.append(seed)
    if not seeds:
        raise MathforgeError(f"{path}: no seed problems")
    return seeds


def _seed(row: dict[str, Any], where: str, default_id: str) -> Seed:
    question = _text(row.get("question")) or _text(row.get("problem"))
    if not question:
        raise MathforgeError(f"{where}: no question (a 'question' or 'problem' field)")
    solution, answer = _worked_answer(row)
    if not solution:
        raise MathforgeError(
            f"{where}: no solution (a 'solution' field, or an 'answer' with the steps and a final '#### ...' "
            "line as in GSM8K)"
        )
    if not answer:
        raise MathforgeError(
            f"{where}: no final answer (an 'answer' field, or a solution that states it: \\boxed{{}}, '####', "
            "'Answer:')"
        )
    seed_id = _text(row.get("id")) or default_id
    return Seed(seed_id, question, solution, answer)


def _worked_answer(row: dict[str, Any]) -> tuple[str, str]:
    """(solution, final answer) of a seed row: MATH's solution with its \\boxed{} (and maybe an answer field),
    or GSM8K's answer field, which is the solution ending in "#### 72"."""
    solution, answer = _text(row.get("solution")), _text(row.get("answer"))
    if solution:
        return solution, answer or stated_answer(solution) or ""
    stated = stated_answer(answer)
    if stated is None:  # an answer alone, without the steps
        return "", answer
    return (answer.rsplit("####", 1)[0].rstrip() if "####" in answer else answer), stated


def _text(value: Any) -> str:
    return "" if value is None else to_text(value)


def stated_answer(text: str, question: str = "") -> str | None:
    """The final answer `text` states ("Answer: 72", \\boxed{}, "#### 72", "the answer is"), by the project's
    extraction; None when it states none: a teacher's answer is never guessed from its last number."""
    extraction = extract_answer(text, several=asks_for_several(question))
    return extraction.answer if extraction.rule not in GUESSES else None


# --- the request plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What request `index` asks the teacher for."""

    index: int
    seeds: tuple[Seed, ...]
    topic: str | None = None
    difficulty: str | None = None

    @property
    def id(self) -> str:
        return request_id(self.index)


def request_id(index: int) -> str:
    return f"synth-{index:05d}"


def request_index(row_id: str) -> int:
    """The request number of a row id (`request_id`'s inverse)."""
    return int(row_id.rpartition("-")[2])


def plan_request(index: int, seeds: Sequence[Seed], opts: SynthOptions) -> Request:
    """Request `index`'s seeds, topic and difficulty, drawn by a RNG seeded with (--seed, index) alone, so that
    every run (whole, resumed, batched otherwise) draws the same for it."""
    rng = random.Random(sample_seed(opts.seed, index))
    chosen = tuple(rng.sample(list(seeds), opts.shots))
    topic = rng.choice(opts.topic) if opts.topic else None
    difficulty = rng.choice(opts.difficulty) if opts.difficulty else None
    return Request(index, chosen, topic, difficulty)


# --- templates --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A jinja2 template and its source text (which the run's fingerprint hashes)."""

    name: str  # the file, for errors
    source: str
    variables: str  # what it may use, for errors
    compiled: Any

    @classmethod
    def load(cls, path: Path | None, packaged: str, variables: str) -> Template:
        """The template at `path`, or the packaged one of that name (`templates/` beside this module)."""
        import jinja2

        if path is None:
            name, source = (
                packaged,
                (resources.files("mathforge.data") / "templates" / packaged).read_text("utf-8"),
            )
        else:
            name, source = str(path), read_text(path, "--template")
        environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        try:
            compiled = environment.from_string(source)
        except jinja2.TemplateSyntaxError as error:
            raise MathforgeError(f"{name}:{error.lineno}: template syntax error: {error.message}") from None
        return cls(name, source, variables, compiled)

    def render(self, **values: Any) -> str:
        import jinja2

        try:
            return str(self.compiled.render(**values)).strip()
        except jinja2.UndefinedError as error:
            raise MathforgeError(f"{self.name}: {error.message} (available: {self.variables})") from None

    @property
    def sha256(self) -> str:
        return _sha256(self.source)


def render_request(template: Template, request: Request) -> str:
    """The text of request `request` (before any chat template)."""
    return template.render(
        seeds=request.seeds, topic=request.topic, difficulty=request.difficulty, index=request.index
    )


# --- parsing a generation ---------------------------------------------------------------------------------

# A layout line: "Problem:", "**Question 1:**", "## Solution:", "Final Answer:" at the start of a line.
_LABEL = r"^[ \t>*#_]*+(?:{names})[ \t*_]*+(?:\d++[ \t*_]*+)?[:：]"
_QUESTION_LABEL = re.compile(_LABEL.format(names=r"(?:new[ \t]++)?(?:problem|question)"), re.I | re.M)
_SOLUTION_LABEL = re.compile(_LABEL.format(names=r"solution"), re.I | re.M)
_ANSWER_LABEL = re.compile(_LABEL.format(names=r"(?:final[ \t]++)?answer"), re.I | re.M)
_LABEL_TRIM = " \t\r\n*_"


@dataclass(frozen=True)
class Problem:
    question: str
    solution: str
    answer: str


def parse_generation(text: str, finish_reason: str = "stop") -> Problem | Drop:
    """The question, solution and answer of a teacher's reply, or why it has none.

    The question follows the first "Problem:" (or "Question:") line, or starts the reply when there is none (a
    template that ends in "Problem:"); the solution follows the next "Solution:" line, up to an "Answer:" line or
    an invented next problem; the answer is the one the reply states (see `stated_answer`). A reply cut short
    (token budget, loop) is rejected whatever it holds: its end is not the teacher's.
    """
    if not text.strip():
        return Drop("empty", "the teacher's reply is empty")
    if finish_reason in CUT_SHORT:
        return Drop("truncated", f"the reply was cut short (finish reason {finish_reason})")
    opening = _QUESTION_LABEL.search(text)
    start = opening.end() if opening else 0
    solution_label = _SOLUTION_LABEL.search(text, start)
    if solution_label is None:
        if opening is None:
            return Drop("no_question", "no 'Problem:' or 'Solution:' line")
        return Drop("no_solution", "no 'Solution:' line after the problem")
    question = text[start : solution_label.start()].strip(_LABEL_TRIM)
    if not question:
        return Drop("no_question", "nothing between 'Problem:' and 'Solution:'")
    rest = cut_invented_continuation(text[solution_label.end() :])
    answer_label = _ANSWER_LABEL.search(rest)
    solution = (rest[: answer_label.start()] if answer_label else rest).strip(_LABEL_TRIM)
    if not solution:
        return Drop("no_solution", "the 'Solution:' is empty")
    answer = stated_answer(rest, question)
    if answer is None:
        return Drop("no_answer", "no stated final answer ('Answer:', \\boxed{}, '####')")
    return Problem(question, solution, answer)


# --- running the engine -----------------------------------------------------------------------------------


# --- the run's files --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthFiles:
    """--out and the files beside it (see the module's docstring)."""

    out: Path

    @property
    def rejects(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.rejects.jsonl")

    @property
    def pending(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.pending.jsonl")

    @property
    def run(self) -> Path:
        return self.out.with_name(f"{self.out.stem}.run.json")

    def all(self) -> tuple[Path, ...]:
        return (self.out, self.rejects, self.pending, self.run)

    def start(self, fingerprint: dict[str, Any], fresh: bool) -> None:
        """Check that what is there is this run's (or discard it with `fresh`), then record the fingerprint."""
        if fresh:
            for path in self.all():
                path.unlink(missing_ok=True)
        if self.run.exists():
            check_same_run(self.run, fingerprint, f"{self.out} holds a different synth run")
        else:
            for path in (self.out, self.rejects, self.pending):
                if path.exists() and path.stat().st_size:
                    raise MathforgeError(
                        f"{path} exists but {self.run.name} is not beside it (not a synth run's); use another "
                        "--out, or --fresh to replace it"
                    )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run, {"fingerprint": fingerprint})

    def rows(self, path: Path) -> dict[str, dict[str, Any]]:
        """A file's rows by id; a torn last line (a kill mid-write) is cut off."""
        rows: dict[str, dict[str, Any]] = {}
        for number, row in enumerate(read_resumable(path), start=1):
            if "id" not in row:
                raise MathforgeError(f"{path}:{number}: a row without an id (not written by synth)")
            rows[str(row["id"])] = row
        return rows


# --- the run ----------------------------------------------------------------------------------------------


def synthesize(opts: SynthOptions, show_progress: bool = True) -> dict[str, Any]:
    """Run `mathforge synth`: N requests to the teacher, the accepted problems in --out, the rest in the rejects
    file, resuming what an earlier run into the same --out finished. Returns the summary (see `_Synth.summary`)."""
    seeds = read_seeds(opts.seeds)  # bad input fails before a model loads
    if len(seeds) < opts.shots:
        raise MathforgeError(f"{opts.seeds} has {len(seeds)} seed problems, fewer than --shots {opts.shots}")
    if opts.out.resolve() == opts.seeds.resolve():
        raise MathforgeError(f"--out {opts.out} is the seeds file; pass another --out")
    _templates(opts, seeds)  # a template's mistakes, before a model loads
    engine_name, reference = resolve_model(opts.model, opts.backend)
    engine = load_backend(engine_name, reference, **opts.engine_options)
    try:
        opts = _for_teacher(opts, engine)
        generation, solve = _templates(opts, seeds)
        synth = _Synth(opts, engine, seeds, generation, solve)
        try:
            synth.run(show_progress and not opts.quiet)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM as the CLI raises it: the rows kept are safe
            signal_number = getattr(stop, "signal_number", signal.SIGINT)
            word = "terminated" if signal_number == signal.SIGTERM else "interrupted"
            raise Interrupted(
                f"{word}: {synth.finished()} of {opts.n} requests done ({opts.out}); re-run the same command "
                "to resume",
                signal_number,
            ) from None
        return synth.summary()
    finally:
        engine.close()


def _templates(opts: SynthOptions, seeds: list[Seed]) -> tuple[Template, Template]:
    """The generation and solve templates (--template and --solve-template, else the packaged ones for a chat or
    a base teacher), each rendered once so that a mistake in one is found now."""
    base = "_base" if opts.chat is False else ""
    generation = Template.load(opts.template, f"synth{base}.jinja", GENERATION_VARIABLES)
    solve = Template.load(opts.solve_template, f"solve{base}.jinja", SOLVE_VARIABLES)
    render_request(generation, plan_request(0, seeds, opts))
    solve.render(question=seeds[0].question)
    return generation, solve


def _for_teacher(opts: SynthOptions, engine: Backend) -> SynthOptions:
    """`opts` with --chat decided: on when the teacher has a chat template (unless --no-chat), else the raw text
    of the base templates, which then stop at the blank line that ends a problem (unless --stop is given)."""
    if opts.chat is None:
        try:
            engine.apply_chat_template([{"role": "user", "content": "1 + 1?"}])
            chat = True
        except MathforgeError as error:
            if "no chat template" not in str(error):
                raise
            chat = False
        opts = opts.model_copy(update={"chat": chat})
    if opts.chat is False and opts.template is None and not opts.stop:
        opts = opts.model_copy(update={"stop": ["\n\n"]})
    return opts


class _Synth:
    """One invocation: what it sent and read, and the rows of the run's files."""

    def __init__(
        self, opts: SynthOptions, engine: Backend, seeds: list[Seed], generation: Template, solve: Template
    ) -> None:
        self.opts, self.engine, self.seeds = opts, engine, seeds
        self.generation, self.solve = generation, solve
        self.identity = engine.identity()
        self.files = SynthFiles(opts.out)
        stops_loops = opts.stop_on_loop and getattr(engine, "stops_loops", False)
        self.params = SamplingParams(
            max_new_tokens=opts.max_new_tokens,
            temperature=opts.temperature,
            top_p=opts.top_p,
            seed=opts.seed,
            stop=tuple(opts.stop),
            stop_on_loop=stops_loops,
        )
        # The solutions get a seed stream of their own, not the one that wrote the problems.
        self.solve_params = SamplingParams(
            max_new_tokens=opts.max_new_tokens,
            temperature=opts.temperature,
            top_p=opts.top_p,
            n=max(opts.samples, 1),
            seed=sample_seed(opts.seed, -1),
            stop=tuple(opts.stop),
            stop_on_loop=stops_loops,
        )
        self.concurrency: int | None = getattr(engine, "concurrency", None)
        self.batch_size = opts.batch_size or int(getattr(engine, "default_batch_size", 1))
        self.accepted: dict[str, dict[str, Any]] = {}
        self.rejected: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.sent = self.prompt_tokens = self.completion_tokens = 0
        self.resumed = 0
        self.seconds = 0.0

    # -- what the run is -------------------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """What must match for rows to be reused: the number of requests does not count (more extend a run)."""
        opts = self.opts
        teacher = {key: value for key, value in self.identity.items() if key != "path"}
        if getattr(engine_class(self.identity["backend"]), "batch_changes_outputs", False):
            teacher["batch_size"] = self.batch_size
        return {
            "teacher": teacher,
            "seeds": hashlib.sha256(opts.seeds.read_bytes()).hexdigest(),
            "template": self.generation.sha256,
            "chat": opts.chat,
            "shots": opts.shots,
            "topic": opts.topic,
            "difficulty": opts.difficulty,
            **self.sampling(),  # key by key, so that a refusal names the setting that changed
            **({"solve_template": self.solve.sha256} if opts.samples else {}),
        }

    def sampling(self) -> dict[str, Any]:
        opts = self.opts
        return {
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "max_new_tokens": opts.max_new_tokens,
            "seed": opts.seed,
            "stop": opts.stop,
            "samples": opts.samples,
        }

    def prompt(self, text: str) -> str:
        """What the teacher is sent for a rendered template: the text, or (--chat) its chat prompt."""
        if not self.opts.chat:
            return text
        try:
            return self.engine.apply_chat_template([{"role": "user", "content": text}])
        except MathforgeError as error:
            if "no chat template" not in str(error):
                raise
            # The engine's own hint names eval's prompt formats; synth's way out is another.
            raise MathforgeError(
                f"the teacher ({self.identity.get('model')}) has no chat template (a base model?): pass --no-chat "
                "to send the template's text as it is"
            ) from None

    # -- running ---------------------------------------------------------------------------------------------

    def run(self, show_progress: bool) -> None:
        self.prompt(
            render_request(self.generation, plan_request(0, self.seeds, self.opts))
        )  # a chat template?
        self.files.start(self.fingerprint(), self.opts.fresh)
        self.files.out.touch()  # the output exists even when every request is rejected
        self.accepted = self.files.rows(self.files.out)
        self.rejected = self.files.rows(self.files.rejects)
        self.pending = {
            key: row for key, row in self.files.rows(self.files.pending).items() if key not in self.accepted
        }
        self.resumed = self.finished()
        if self.resumed or self.pending:
            print(
                f"resuming: {self.resumed} of {self.opts.n} requests done ({self.opts.out})", file=sys.stderr
            )
        started = time.perf_counter()
        try:
            self._generate(show_progress)
            if self.opts.samples:
                self._solve(show_progress)
        finally:
            self.seconds += time.perf_counter() - started

    def finished(self) -> int:
        ids = {request_id(index) for index in range(self.opts.n)}
        return len(ids & (self.accepted.keys() | self.rejected.keys()))

    def _generate(self, show_progress: bool) -> None:
        started = self.accepted.keys() | self.rejected.keys() | self.pending.keys()
        todo = [index for index in range(self.opts.n) if request_id(index) not in started]

        def prompt_of(index: int) -> str:
            return self.prompt(render_request(self.generation, plan_request(index, self.seeds, self.opts)))

        groups = generate_as_finished(
            self.engine, todo, prompt_of, self.params, workers=self.concurrency, batch_size=self.batch_size
        )
        # Closed on the way out, even by Ctrl-C: the requests not yet sent are not sent while the error unwinds.
        with (
            contextlib.closing(groups),
            ItemProgress(
                "synth", total=self.opts.n, done=self.opts.n - len(todo), enabled=show_progress
            ) as bar,
        ):
            for group in groups:
                rows = [
                    self._generated(plan_request(done.index, self.seeds, self.opts), done) for done in group
                ]
                good = [row for row in rows if "reason" not in row]
                target = self.files.pending if self.opts.samples else self.files.out
                append_jsonl(target, good)
                append_jsonl(self.files.rejects, [row for row in rows if "reason" in row])
                (self.pending if self.opts.samples else self.accepted).update(
                    (row["id"], row) for row in good
                )
                self.rejected.update((row["id"], row) for row in rows if "reason" in row)
                bar.advance(len(group), sum(c.tokens for done in group for c in done.completions))

    def _solve(self, show_progress: bool) -> None:
        # Keyed by request number, which also seeds the solutions' sampling.
        questions = {request_index(key): row for key, row in self.pending.items()}

        def prompt_of(index: int) -> str:
            return self.prompt(self.solve.render(question=questions[index]["question"]))

        # About --concurrency requests in flight: each call asks for S completions.
        workers = max(1, self.concurrency // self.opts.samples) if self.concurrency else None
        groups = generate_as_finished(
            self.engine,
            sorted(questions),
            prompt_of,
            self.solve_params,
            workers=workers,
            batch_size=max(1, self.batch_size // self.opts.samples),
        )
        with (
            contextlib.closing(groups),
            ItemProgress("solve", total=len(questions), enabled=show_progress) as bar,
        ):
            for group in groups:
                rows = [self._solved(questions[done.index], done) for done in group]
                append_jsonl(self.files.out, rows)
                self.accepted.update((row["id"], row) for row in rows)
                bar.advance(len(group), sum(c.tokens for done in group for c in done.completions))
        self.files.pending.unlink(missing_ok=True)  # every question in it now has its row in --out
        self.pending = {}

    # -- rows ------------------------------------------------------------------------------------------------

    def _count(self, completions: list[Completion]) -> dict[str, int]:
        usage = {
            "requests": len(completions),
            "prompt_tokens": sum(c.prompt_tokens for c in completions),
            "completion_tokens": sum(c.tokens for c in completions),
        }
        self.sent += usage["requests"]
        self.prompt_tokens += usage["prompt_tokens"]
        self.completion_tokens += usage["completion_tokens"]
        return usage

    def _generated(self, request: Request, done: Finished) -> dict[str, Any]:
        """The row of a finished generation request: a problem, or a reject with its reason and raw text."""
        [completion] = done.completions
        parsed = parse_generation(completion.text, completion.finish_reason)
        if isinstance(parsed, Drop):
            head: dict[str, Any] = {"reason": parsed.reason, "detail": parsed.detail, "text": completion.text}
        else:
            head = {"question": parsed.question, "solution": parsed.solution, "answer": parsed.answer}
        return {
            "id": request.id,
            **head,
            "seeds": [seed.id for seed in request.seeds],
            **({"topic": request.topic} if request.topic else {}),
            **({"difficulty": request.difficulty} if request.difficulty else {}),
            "teacher": self.identity,
            "sampling": self.sampling(),
            "prompt_sha256": _sha256(done.prompt),
            "finish_reason": completion.finish_reason,
            "usage": self._count(done.completions),
        }

    def _solved(self, row: dict[str, Any], done: Finished) -> dict[str, Any]:
        """A pending problem with its samples: each solution and the answer the project's extraction reads."""
        samples = [
            {
                "solution": c.text,
                "answer": extract_answer(
                    c.text, truncated=c.finish_reason in CUT_SHORT, several=asks_for_several(row["question"])
                ).answer,
                "finish_reason": c.finish_reason,
            }
            for c in done.completions
        ]
        usage = self._count(done.completions)
        problem = {key: row[key] for key in ("id", "question", "solution", "answer")}
        rest = {key: value for key, value in row.items() if key not in problem}
        total = {key: rest["usage"][key] + usage[key] for key in usage}
        return {
            **problem,
            "samples": samples,
            **rest,
            "samples_prompt_sha256": _sha256(done.prompt),
            "usage": total,
        }

    # -- the summary ------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What `--json` prints: the run's counts over all its rows, and what this invocation sent and read.

        requested, accepted, rejected (and `reasons`, per reject reason), resumed (requests an earlier run had
        finished), sent (requests this invocation sent), prompt_tokens and completion_tokens (this invocation's),
        total_prompt_tokens and total_completion_tokens (every row's, earlier runs' included), seconds, out,
        rejects, teacher; with the prices, cost and total_cost (in the prices' currency).
        """
        ids = {request_id(index) for index in range(self.opts.n)}
        accepted = [row for key, row in self.accepted.items() if key in ids]
        rejected = [row for key, row in self.rejected.items() if key in ids]
        reasons: dict[str, int] = {}
        for row in rejected:
            reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
        rows = accepted + rejected
        total_in = sum(row["usage"]["prompt_tokens"] for row in rows)
        total_out = sum(row["usage"]["completion_tokens"] for row in rows)
        summary: dict[str, Any] = {
            "requested": self.opts.n,
            "accepted": len(accepted),
            "rejected": len(rejected),
            "reasons": dict(sorted(reasons.items())),
            "resumed": self.resumed,
            "sent": self.sent,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_prompt_tokens": total_in,
            "total_completion_tokens": total_out,
            "seconds": round(self.seconds, 3),
            "out": str(self.files.out),
            "rejects": str(self.files.rejects),
            "teacher": self.identity,
        }
        if self.opts.price_in is not None and self.opts.price_out is not None:
            summary["cost"] = self._cost(self.prompt_tokens, self.completion_tokens)
            summary["total_cost"] = self._cost(total_in, total_out)
        return summary

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        price_in, price_out = self.opts.price_in or 0.0, self.opts.price_out or 0.0
        return round((prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000, 6)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
