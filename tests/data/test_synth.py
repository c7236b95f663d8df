"""`mathforge synth` against a scripted OpenAI-compatible teacher on 127.0.0.1 (a real HTTP server, the real openai
engine): what it asks, how it parses the replies, what it keeps and rejects, how it resumes (a SIGKILLed run
included), and once with the packaged Gemma model in process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from backends.test_openai_backend import FakeServer, _send

from mathforge.backends.base import SamplingParams, sample_seed
from mathforge.data.stages.base import Drop
from mathforge.data.synth import (
    Problem,
    SynthFiles,
    SynthOptions,
    Template,
    parse_generation,
    plan_request,
    read_seeds,
    request_id,
    synthesize,
)
from mathforge.errors import MathforgeError
from mathforge.generation import generate_as_finished

SEEDS = [
    {
        "question": "Ann has 3 apples and buys 4 more. How many apples?",
        "answer": "3 + 4 = <<3+4=7>>7\n#### 7",
    },
    {"id": "m-1", "problem": "What is $2^5$?", "solution": "$2^5 = 32$, so the answer is $\\boxed{32}$."},
    {"question": "A box holds 6 eggs. How many in 3 boxes?", "solution": "6 * 3 = 18", "answer": 18},
    {"question": "Tom runs 5 km a day. How far in a week?", "answer": "5 * 7 = 35\n#### 35"},
    {"question": "Half of 50?", "answer": "50 / 2 = 25\n#### 25"},
]


def _write_seeds(path: Path, rows: list[dict[str, Any]] = SEEDS) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def generation_reply(index: int) -> tuple[str, str]:
    """The teacher's scripted reply (text, finish reason) to request `index`: three good, then one of each fault."""
    kind = index % 6
    if kind == 3:
        return f"Problem: P{index} has no end.\nSolution: We think about it for a while.", "stop"
    if kind == 4:
        return "I would rather not write a problem today.", "stop"
    if kind == 5:
        return f"Problem: P{index}?\nSolution: 1, 2, 3, 4, 5, 6, 7", "length"
    return (
        f"Sure!\n\nProblem: What is {index} + 1?\nSolution: {index} + 1 = {index + 1}.\nAnswer: {index + 1}",
        "stop",
    )


EXPECTED_REASON = {3: "no_answer", 4: "no_question", 5: "truncated"}


@dataclass
class Teacher:
    """A FakeServer answer: requests are told apart by their seed (request i of synth's plan is sampled with
    sample_seed(seed, i); sample s of its solutions with sample_seed(sample_seed(seed, -1), i, s)). Generation
    requests get `generation_reply(i)`, solve requests a solution with the answer i + 1 (i + 2 for sample 1, so
    that samples disagree). Streamed requests (stop_on_loop) get the reply as server-sent events. Usage: one
    prompt token per word of the prompt, one completion token per word of the reply.

    `finished` records each request the server answered whole: (kind, request, sample, epoch, prompt).
    """

    seed: int = 0
    latency: float = 0.0
    epoch: int = 0
    finished: list[tuple[str, int, int, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fake: FakeServer = field(init=False)

    def __post_init__(self) -> None:
        solve_seed = sample_seed(self.seed, -1)
        self.requests = {sample_seed(self.seed, i): ("generate", i, 0) for i in range(400)}
        self.requests |= {
            sample_seed(solve_seed, i, s): ("solve", i, s) for i in range(400) for s in range(4)
        }

    def serve(self) -> FakeServer:
        self.fake = FakeServer(self)
        return self.fake

    def __call__(self, handler: BaseHTTPRequestHandler, n: int) -> None:
        body = self.fake.bodies[n]
        prompt = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
        kind, index, sample = self.requests[body["seed"]]
        time.sleep(self.latency)
        if kind == "generate":
            text, finish = generation_reply(index)
        else:
            text, finish = (
                f"Adding up gives {index + 1 + sample % 2}.\nAnswer: {index + 1 + sample % 2}",
                "stop",
            )
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        chat = "messages" in body
        if body.get("stream"):
            _send_events(handler, text, finish, usage, chat)
        else:
            _send(handler, 200, _answer(text, finish, usage, chat))
        with self.lock:
            self.finished.append((kind, index, sample, self.epoch, prompt))

    def prompts(self, kind: str = "generate") -> dict[int, str]:
        return {index: prompt for k, index, _, _, prompt in self.finished if k == kind}


def _answer(text: str, finish: str, usage: dict[str, int], chat: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    choice |= (
        {"message": {"role": "assistant", "content": text}} if chat else {"text": text, "logprobs": None}
    )
    return {
        "id": "x",
        "object": "chat.completion" if chat else "text_completion",
        "choices": [choice],
        "usage": usage,
    }


def _send_events(
    handler: BaseHTTPRequestHandler, text: str, finish: str, usage: dict[str, int], chat: bool
) -> None:
    def choice(piece: str, reason: str | None) -> dict[str, Any]:
        delta = {"delta": {"content": piece}} if chat else {"text": piece, "logprobs": None}
        return {"choices": [{"index": 0, "finish_reason": reason, **delta}]}

    events = [choice(text, None), choice("", finish), {"choices": [], "usage": usage}]
    data = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    encoded = data.encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Content-Length", str(len(encoded)))
    handler.end_headers()
    handler.wfile.write(encoded)


def _options(fake: FakeServer, seeds: Path, out: Path, **values: Any) -> SynthOptions:
    settings = {"backend": "openai", "base_url": fake.base_url, "teacher": "fake", "shots": 2, "quiet": True}
    return SynthOptions.build(seeds=seeds, out=out, **(settings | values))


def _rows(path: Path) -> list[dict[str, Any]]:
    """The whole rows of a JSONL file (a torn last line, as a kill can leave it, is not one)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


# --- seeds, plan, template, parsing ------------------------------------------------------------------------


def test_seed_layouts(tmp_path: Path) -> None:
    seeds = read_seeds(_write_seeds(tmp_path / "seeds.jsonl"))
    assert [seed.id for seed in seeds] == ["line-1", "m-1", "line-3", "line-4", "line-5"]
    # GSM8K: the answer field is the solution, its "####" line the final answer.
    assert (seeds[0].solution, seeds[0].answer) == ("3 + 4 = <<3+4=7>>7", "7")
    # MATH: the solution's \boxed{}; a JSON number answer as text.
    assert (seeds[1].question, seeds[1].answer) == ("What is $2^5$?", "32")
    assert (seeds[2].solution, seeds[2].answer) == ("6 * 3 = 18", "18")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"answer": "1 + 1 = 2\\n#### 2"}', r"seeds.jsonl:2: no question"),
        ('{"question": "What is 1 + 1?", "answer": "2"}', r"seeds.jsonl:2: no solution"),
        (
            '{"question": "What is 1 + 1?", "solution": "We add one and one."}',
            r"seeds.jsonl:2: no final answer",
        ),
        ('{"question": "What is 1 + 1?", "answer": "1 + 1 = 2\\n#### 2', r"seeds.jsonl:2: malformed JSON"),
        (
            '{"id": "a", "question": "Q", "answer": "x\\n#### 2"}',
            r"seeds.jsonl:2: seed id 'a' repeats line 1",
        ),
    ],
)
def test_bad_seed_rows_are_file_line_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "seeds.jsonl"
    path.write_text('{"id": "a", "question": "Q", "answer": "x\\n#### 1"}\n' + line + "\n")
    with pytest.raises(MathforgeError, match=message) as error:
        read_seeds(path)
    assert "\n" not in str(error.value)


def test_the_plan_is_seeded_per_request(tmp_path: Path) -> None:
    seeds = read_seeds(_write_seeds(tmp_path / "seeds.jsonl"))
    opts = SynthOptions.build(
        seeds=tmp_path / "seeds.jsonl", out=tmp_path / "o.jsonl", n=50, shots=3, topic=["algebra", "geometry"]
    )
    plans = [plan_request(index, seeds, opts) for index in range(50)]
    assert plans == [plan_request(index, seeds, opts) for index in range(50)]
    assert all(len({seed.id for seed in plan.seeds}) == 3 for plan in plans)
    assert len({tuple(seed.id for seed in plan.seeds) for plan in plans}) > 20  # drawn per request
    assert {plan.topic for plan in plans} == {"algebra", "geometry"} and {
        plan.difficulty for plan in plans
    } == {None}
    other = opts.model_copy(update={"seed": 1})
    assert [plan_request(index, seeds, other) for index in range(50)] != plans


@pytest.mark.parametrize(
    ("text", "finish", "expected"),
    [
        (
            "Problem: A train goes 3 km.\nHow far?\nSolution: It goes 3 km.\nAnswer: 3\n\nProblem: Another one?",
            "stop",
            Problem("A train goes 3 km.\nHow far?", "It goes 3 km.", "3"),
        ),
        (
            "Here is one.\n\n**Problem:** Find $x$ if $x + 2 = 7$.\n\n**Solution:** $x = 7 - 2 = \\boxed{5}$",
            "stop",
            Problem("Find $x$ if $x + 2 = 7$.", "$x = 7 - 2 = \\boxed{5}$", "5"),
        ),
        # A template that ends in "Problem:" (base models): the reply starts with the question.
        (
            "Sam has 4 pens and loses 1.\nSolution: 4 - 1 = 3\n#### 3",
            "stop",
            Problem("Sam has 4 pens and loses 1.", "4 - 1 = 3\n#### 3", "3"),
        ),
        ("  \n", "stop", "empty"),
        ("Problem: x?\nSolution: 1\nAnswer: 1", "length", "truncated"),
        ("Problem: x?\nSolution: 1, 1, 1, 1", "loop", "truncated"),
        ("I cannot write one.", "stop", "no_question"),
        ("Problem:\nSolution: 2\nAnswer: 2", "stop", "no_question"),
        ("Problem: What is 1 + 1?\nAnswer: 2", "stop", "no_solution"),
        ("Problem: What is 1 + 1?\nSolution:\nAnswer: 2", "stop", "no_solution"),
        # The last number is a guess, not a stated answer.
        ("Problem: What is 1 + 1?\nSolution: one and one make 2", "stop", "no_answer"),
    ],
)
def test_parse_generation(text: str, finish: str, expected: Problem | str) -> None:
    parsed = parse_generation(text, finish)
    if isinstance(expected, Problem):
        assert parsed == expected
    else:
        assert isinstance(parsed, Drop) and parsed.reason == expected and parsed.detail


# --- runs against the scripted teacher ---------------------------------------------------------------------


@pytest.mark.parametrize("stop_on_loop", [True, False], ids=["streamed", "plain"])
def test_rows_rejects_and_summary(tmp_path: Path, stop_on_loop: bool) -> None:
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    teacher = Teacher()
    with teacher.serve() as fake:
        summary = synthesize(
            _options(
                fake,
                seeds,
                tmp_path / "synth.jsonl",
                n=12,
                stop_on_loop=stop_on_loop,
                price_in=2,
                price_out=8,
            )
        )
    rows, rejects = _rows(tmp_path / "synth.jsonl"), _rows(tmp_path / "synth.rejects.jsonl")
    assert sorted(row["id"] for row in rows) == [request_id(i) for i in range(12) if i % 6 < 3]
    for row in rows:
        index = int(row["id"][-5:])
        assert (row["question"], row["solution"], row["answer"]) == (
            f"What is {index} + 1?",
            f"{index} + 1 = {index + 1}.",
            str(index + 1),
        )
        assert (
            len(row["seeds"]) == 2
            and row["teacher"]["model"] == "fake"
            and row["teacher"]["backend"] == "openai"
        )
        assert row["sampling"]["temperature"] == 0.8 and row["sampling"]["seed"] == 0
        assert len(row["prompt_sha256"]) == 64 and row["finish_reason"] == "stop"
    assert {row["id"]: row["reason"] for row in rejects} == {
        request_id(i): EXPECTED_REASON[i % 6] for i in range(12) if i % 6 >= 3
    }
    assert all(row["text"] == generation_reply(int(row["id"][-5:]))[0] for row in rejects)
    # Usage as the server counted it, per row and in all.
    prompt_tokens = sum(len(prompt.split()) for *_, prompt in teacher.finished)
    completion_tokens = sum(len(generation_reply(i)[0].split()) for i in range(12))
    assert sum(row["usage"]["prompt_tokens"] for row in rows + rejects) == prompt_tokens
    assert summary | {"seconds": 0, "teacher": None} == {
        "requested": 12,
        "accepted": 6,
        "rejected": 6,
        "reasons": {"no_answer": 2, "no_question": 2, "truncated": 2},
        "resumed": 0,
        "sent": 12,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_prompt_tokens": prompt_tokens,
        "total_completion_tokens": completion_tokens,
        "cost": round((2 * prompt_tokens + 8 * completion_tokens) / 1e6, 6),
        "total_cost": round((2 * prompt_tokens + 8 * completion_tokens) / 1e6, 6),
        "seconds": 0,
        "out": str(tmp_path / "synth.jsonl"),
        "rejects": str(tmp_path / "synth.rejects.jsonl"),
        "teacher": None,
    }
    assert all(body["path"].endswith("/chat/completions") for body in fake.bodies)  # --chat, the default
    assert len(fake.bodies) == 12 and all(body.get("stream", False) is stop_on_loop for body in fake.bodies)


def test_prompts_are_reproducible_whatever_the_concurrency(tmp_path: Path) -> None:
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    runs = []
    for name, concurrency, seed in (("a", 1, 0), ("b", 5, 0), ("c", 5, 1)):
        teacher = Teacher(seed=seed)
        with teacher.serve() as fake:
            synthesize(
                _options(fake, seeds, tmp_path / f"{name}.jsonl", n=10, concurrency=concurrency, seed=seed)
            )
        rows = _rows(tmp_path / f"{name}.jsonl") + _rows(tmp_path / f"{name}.rejects.jsonl")
        runs.append((teacher.prompts(), {row["id"]: row["prompt_sha256"] for row in rows}))
    (first, first_hashes), (again, again_hashes), (other, _) = runs
    assert len(first) == 10 and first == again and first_hashes == again_hashes
    assert other != first  # another --seed draws other seed problems
    for index, prompt in first.items():  # the few-shot seeds the row names are the ones the prompt shows
        row_seeds = {
            row["id"]: row["seeds"]
            for row in _rows(tmp_path / "a.jsonl") + _rows(tmp_path / "a.rejects.jsonl")
        }
        shown = [seed for seed in SEEDS if (seed.get("question") or seed.get("problem")) in prompt]
        assert len(shown) == len(row_seeds[request_id(index)]) == 2


def test_samples_are_independent_solutions(tmp_path: Path) -> None:
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    teacher = Teacher()
    with teacher.serve() as fake:
        summary = synthesize(_options(fake, seeds, tmp_path / "synth.jsonl", n=6, samples=3, concurrency=4))
    rows = sorted(_rows(tmp_path / "synth.jsonl"), key=lambda row: row["id"])
    assert [row["id"] for row in rows] == [request_id(i) for i in range(3)]
    for index, row in enumerate(rows):
        assert [sample["answer"] for sample in row["samples"]] == [
            str(index + 1),
            str(index + 2),
            str(index + 1),
        ]
        assert all(sample["solution"].startswith("Adding up") for sample in row["samples"])
        assert row["usage"]["requests"] == 4
    solves = Counter((index, sample) for kind, index, sample, *_ in teacher.finished if kind == "solve")
    assert solves == Counter({(i, s): 1 for i in range(3) for s in range(3)})  # S requests, own seeds
    assert all(
        "Solve the following" in prompt and f"What is {index} + 1?" in prompt
        for kind, index, _, _, prompt in teacher.finished
        if kind == "solve"
    )
    assert summary["sent"] == 6 + 9 and summary["accepted"] == 3 and summary["rejected"] == 3
    assert not (tmp_path / "synth.pending.jsonl").exists()


def test_own_template_and_raw_prompts(tmp_path: Path) -> None:
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    template = tmp_path / "mine.jinja"
    template.write_text(
        "{% for s in seeds %}[{{ s.id }}] {{ s.question }} => {{ s.answer }}\n{% endfor %}"
        "#{{ index }} {{ topic }}/{{ difficulty }}\nProblem:"
    )
    solve_template = tmp_path / "solve.jinja"
    solve_template.write_text("Q: {{ question }}\nA:")
    teacher = Teacher()
    with teacher.serve() as fake:
        opts = _options(
            fake,
            seeds,
            tmp_path / "synth.jsonl",
            n=3,
            template=template,
            chat=False,
            topic=["dice"],
            difficulty=["hard"],
            samples=1,
            solve_template=solve_template,
        )
        synthesize(opts)
    plan = plan_request(1, read_seeds(seeds), opts)
    expected = (
        "".join(f"[{s.id}] {s.question} => {s.answer}\n" for s in plan.seeds) + "#1 dice/hard\nProblem:"
    )
    assert teacher.prompts()[1] == expected
    assert all(body["path"].endswith("/v1/completions") for body in fake.bodies)  # --no-chat: raw text
    rows = _rows(tmp_path / "synth.jsonl")
    assert {row["topic"] for row in rows} == {"dice"} and {row["difficulty"] for row in rows} == {"hard"}
    assert teacher.prompts("solve") == {i: f"Q: What is {i} + 1?\nA:" for i in range(3) if i % 6 < 3}
    assert [len(row["samples"]) for row in rows] == [1, 1, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ seeds[0].question }} {{ level }}", r"mine.jinja: 'level' is undefined \(available: seeds"),
        ("line one\n{% for s in seeds %}", r"mine.jinja:2: template syntax error"),
    ],
)
def test_template_mistakes_fail_before_the_teacher_loads(tmp_path: Path, text: str, message: str) -> None:
    template = tmp_path / "mine.jinja"
    template.write_text(text)
    opts = SynthOptions.build(
        seeds=_write_seeds(tmp_path / "seeds.jsonl"), out=tmp_path / "o.jsonl", n=2, template=template,
        backend="openai", base_url="http://127.0.0.1:9/v1",  # nothing listens: the error must come first
    )  # fmt: skip
    with pytest.raises(MathforgeError, match=message):
        synthesize(opts)
    assert Template.load(None, "synth.jinja", "").render(seeds=[], topic=None, difficulty=None, index=0)


def test_resume_extends_and_never_resends(tmp_path: Path) -> None:
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    out = tmp_path / "synth.jsonl"
    teacher = Teacher()
    with teacher.serve() as fake:
        first = synthesize(_options(fake, seeds, out, n=5))
        again = synthesize(_options(fake, seeds, out, n=5))
        more = synthesize(_options(fake, seeds, out, n=9))
    assert (first["sent"], again["sent"], more["sent"]) == (5, 0, 4)
    assert (again["resumed"], more["resumed"]) == (5, 5)
    assert (
        more["accepted"] + more["rejected"] == 9
        and more["total_prompt_tokens"] > first["total_prompt_tokens"]
    )
    assert sorted(index for _, index, *_ in teacher.finished) == list(range(9))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"temperature": 0.5}, "temperature"),
        ({"shots": 3}, "shots"),
        ({"topic": ["dice"]}, "topic"),
        ({"teacher": "other"}, "teacher"),
        ({"samples": 2}, "samples"),
        ({"seeds_file": "changed"}, "seeds"),
    ],
)
def test_other_settings_into_the_same_out_are_refused(
    tmp_path: Path, change: dict[str, Any], key: str
) -> None:
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    out = tmp_path / "synth.jsonl"
    with Teacher().serve() as fake:
        synthesize(_options(fake, seeds, out, n=2))
        before = out.read_text()
        if change.pop("seeds_file", None):
            _write_seeds(seeds, [*SEEDS, {"question": "One more?", "answer": "1\n#### 1"}])
        with pytest.raises(
            MathforgeError, match=rf"synth.jsonl holds a different synth run \({key}: .*--fresh"
        ) as error:
            synthesize(_options(fake, seeds, out, n=2, **change))
        assert "\n" not in str(error.value) and out.read_text() == before
        summary = synthesize(_options(fake, seeds, out, n=2, fresh=True, **change))
    assert summary["resumed"] == 0 and summary["sent"] >= 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"shots": 9}, r"has 5 seed problems, fewer than --shots 9"),
        ({"samples": 2, "temperature": 0}, r"--samples above 1 needs --temperature > 0"),
        ({"price_in": 1.0}, r"--price-in and --price-out go together"),
        ({"samples": -1}, r"invalid option --samples"),
        ({"n": 0}, r"invalid option --n"),
    ],
)
def test_option_errors(tmp_path: Path, values: dict[str, Any], message: str) -> None:
    settings = {"seeds": _write_seeds(tmp_path / "seeds.jsonl"), "out": tmp_path / "o.jsonl", "n": 2}
    with pytest.raises(MathforgeError, match=message):
        synthesize(SynthOptions.build(**(settings | values)))


def test_an_out_that_is_not_a_synth_run_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "synth.jsonl"
    out.write_text('{"id": "mine"}\n')
    with Teacher().serve() as fake, pytest.raises(MathforgeError, match=r"synth.run.json is not beside it"):
        synthesize(_options(fake, _write_seeds(tmp_path / "seeds.jsonl"), out, n=2))
    assert out.read_text() == '{"id": "mine"}\n'


def test_no_thread_runs_ahead_of_what_the_caller_has_kept() -> None:
    # A thread takes its next request only once its last result is kept (the caller asked for the next group):
    # however slow the caller is to write, at most one finished result per thread is ever unkept.
    teacher = Teacher(latency=0.01)
    with teacher.serve() as fake:
        engine = fake.backend(concurrency=4)
        params = SamplingParams(temperature=0.8, seed=0)
        groups = generate_as_finished(
            engine, list(range(40)), lambda i: f"prompt {i}", params, workers=4, batch_size=1
        )
        first = next(groups)
        time.sleep(0.3)  # a slow write of the first group: 30 latencies
        with teacher.lock:
            answered = len(teacher.finished)
        rest = [done for group in groups for done in group]
        engine.close()
    assert answered <= 4 and first
    assert sorted(done.index for done in first + rest) == list(range(40))


# --- a run killed with SIGKILL, then re-run ----------------------------------------------------------------

RUN = (
    "import json, sys\n"
    "from mathforge.data.synth import SynthOptions, synthesize\n"
    "print(json.dumps(synthesize(SynthOptions.build(**json.loads(sys.argv[1])), show_progress=False)))\n"
)


@pytest.mark.parametrize(
    ("stop", "samples"),
    [(signal.SIGKILL, 0), (signal.SIGKILL, 2), (signal.SIGINT, 0)],
    ids=["sigkill", "sigkill-samples", "ctrl-c"],
)
def test_a_killed_run_resumes_and_sends_no_finished_request_again(
    tmp_path: Path, stop: int, samples: int
) -> None:
    n, concurrency = 100, 4
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    files = SynthFiles(tmp_path / "synth.jsonl")
    teacher = Teacher(latency=0.04)
    with teacher.serve() as fake:
        options = {
            "seeds": str(seeds), "out": str(files.out), "n": n, "samples": samples, "shots": 2,
            "backend": "openai", "base_url": fake.base_url, "teacher": "fake", "concurrency": concurrency,
        }  # fmt: skip
        command = [sys.executable, "-c", RUN, json.dumps(options)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(_rows(files.out)) < 10:  # with samples: the solve phase is under way
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no 10 rows in time"
            time.sleep(0.005)
        # Not right after a write: a run that kept requests batch by batch (not each as it finishes) would then
        # have little finished and unkept to lose, and the check below on what is sent again would not see it.
        time.sleep(0.1)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=30)
        if stop == signal.SIGINT:  # Ctrl-C: the rows kept so far are safe, and it says how far it got
            assert re.search(
                rb"Interrupted: interrupted: \d+ of 100 requests done .*re-run the same command", stderr
            )
        with teacher.lock:
            teacher.epoch = 1
        kept = {
            "generate": {
                row["id"] for path in (files.out, files.rejects, files.pending) for row in _rows(path)
            },
            "solve": {row["id"] for row in _rows(files.out) if "samples" in row},
            "rows": {row["id"] for path in (files.out, files.rejects) for row in _rows(path)},
        }
        assert len(kept["rows"]) < n, "the kill came after the end"
        finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "resuming:" in finished.stderr
    summary = json.loads(finished.stdout.strip().splitlines()[-1])

    ids = [row["id"] for row in _rows(files.out) + _rows(files.rejects)]
    assert sorted(ids) == [request_id(i) for i in range(n)], "every id exactly once in out + rejects"
    assert not files.pending.exists()
    before = Counter((kind, i, s) for kind, i, s, epoch, _ in teacher.finished if epoch == 0)
    after = Counter((kind, i, s) for kind, i, s, epoch, _ in teacher.finished if epoch == 1)
    assert max(before.values()) == 1 and max(after.values()) == 1
    # Nothing kept before the kill was asked again; what was asked again was in flight at the kill.
    assert not any(request_id(i) in kept[kind] for kind, i, _ in after)
    resent = {(kind, i) for kind, i, _ in before.keys() & after.keys()}
    assert len(resent) <= concurrency
    assert summary["sent"] == sum(after.values())
    assert summary["accepted"] + summary["rejected"] == n and summary["resumed"] == len(kept["rows"])


# --- any engine is the teacher: the packaged model in process ---------------------------------------------


@pytest.mark.slow
def test_the_packaged_model_as_teacher(gemma_gguf: Path, tmp_path: Path) -> None:
    seeds = _write_seeds(tmp_path / "seeds.jsonl")
    settings = {"seeds": seeds, "out": tmp_path / "synth.jsonl", "n": 3, "shots": 2, "quiet": True}
    with pytest.raises(MathforgeError, match=r"has no chat template \(a base model\?\): pass --no-chat"):
        synthesize(SynthOptions.build(**settings, chat=True))  # asked for, and not there
    assert not (tmp_path / "synth.run.json").exists()
    # By default a base teacher gets the base templates as raw text, and stops at the blank line after a problem.
    summary = synthesize(SynthOptions.build(**settings, max_new_tokens=48, n_ctx=2048))
    run = json.loads((tmp_path / "synth.run.json").read_text())["fingerprint"]
    assert run["chat"] is False and run["stop"] == ["\n\n"]
    assert run["template"] == Template.load(None, "synth_base.jinja", "").sha256
    rows = _rows(tmp_path / "synth.jsonl") + _rows(tmp_path / "synth.rejects.jsonl")
    assert sorted(row["id"] for row in rows) == [request_id(i) for i in range(3)]
    assert summary["accepted"] + summary["rejected"] == 3 and summary["sent"] == 3
    assert all(row["teacher"]["backend"] == "llamacpp" for row in rows)
    assert all(row["usage"]["prompt_tokens"] > 50 and row["usage"]["completion_tokens"] > 0 for row in rows)
    assert summary["prompt_tokens"] == sum(row["usage"]["prompt_tokens"] for row in rows)
