"""`mathforge synth` against a fixed-latency OpenAI-compatible teacher: the same run at --concurrency 1 and 8.

    .venv/bin/python benchmarks/synth_concurrency.py [--requests 200] [--latency 0.05] [--rounds 2] [--samples 0]

The teacher is a small server on 127.0.0.1 (ThreadingHTTPServer: many requests at once, like a batching server
far from saturation) that answers every chat completion after `--latency` seconds with a well-formed problem
("Problem: / Solution: / Answer:"), streamed when asked (synth streams by default, to stop loops). Each run
is a whole `synthesize` call: seed sampling, templates, parsing, fsynced appends, the summary. Ideal:
concurrency 1 takes requests x latency, concurrency 8 an eighth of that.

Rounds alternate concurrency 1 / 8 so that machine drift hits both; the best round of each is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mathforge.data.synth import SynthOptions, synthesize

SEEDS = [
    {
        "question": f"Ann has {i} apples and buys {i + 2} more. How many apples?",
        "answer": f"{i} + {i + 2} = {2 * i + 2}\n#### {2 * i + 2}",
    }
    for i in range(1, 9)
]
REPLY = "Problem: Tom has 3 pens and buys 4 more. How many pens?\nSolution: 3 + 4 = 7.\nAnswer: 7"


def fixed_latency_teacher(latency: float) -> ThreadingHTTPServer:
    """A chat-completions server on 127.0.0.1 that answers each request after `latency` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms Nagle / delayed-ACK stall between headers and body

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # /v1/models
            self._send("application/json", json.dumps({"object": "list", "data": [{"id": "teacher"}]}))

        def do_POST(self) -> None:  # /v1/chat/completions
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency)
            usage = {"prompt_tokens": 300, "completion_tokens": 30}
            if not body.get("stream"):
                message = {"role": "assistant", "content": REPLY}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                self._send("application/json", json.dumps({"choices": [choice], "usage": usage}))
                return
            events = [
                {"choices": [{"index": 0, "delta": {"content": REPLY}, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {"choices": [], "usage": usage},
            ]
            stream = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
            self._send("text/event-stream", stream)

        def _send(self, kind: str, text: str) -> None:
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.request_queue_size = 64
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def timed(base_url: str, folder: Path, concurrency: int, requests: int, samples: int) -> dict[str, Any]:
    out = folder / f"c{concurrency}-{time.monotonic_ns()}.jsonl"
    options = SynthOptions.build(
        seeds=folder / "seeds.jsonl",
        out=out,
        n=requests,
        samples=samples,
        backend="openai",
        base_url=base_url,
        concurrency=concurrency,
        quiet=True,
    )
    started = time.perf_counter()
    summary = synthesize(options, show_progress=False)
    seconds = time.perf_counter() - started
    assert summary["accepted"] == requests and summary["rejected"] == 0, summary
    return {
        "seconds": round(seconds, 3),
        "requests_sent": summary["sent"],
        "requests_per_second": round(summary["sent"] / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=0)
    args = parser.parse_args()

    server = fixed_latency_teacher(args.latency)
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    runs: dict[int, list[dict[str, Any]]] = {1: [], 8: []}
    with tempfile.TemporaryDirectory(prefix="mf-synth-bench-") as folder:
        (Path(folder) / "seeds.jsonl").write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
        for _ in range(args.rounds):
            for concurrency in runs:
                runs[concurrency].append(
                    timed(base_url, Path(folder), concurrency, args.requests, args.samples)
                )
    server.shutdown()
    server.server_close()

    best = {concurrency: min(rounds, key=lambda run: run["seconds"]) for concurrency, rounds in runs.items()}
    sent = best[1]["requests_sent"]
    print(
        json.dumps(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                "problems": args.requests,
                "samples": args.samples,
                "latency_seconds": args.latency,
                "ideal_seconds_at_1": round(sent * args.latency, 2),
                **{f"concurrency_{c}": run for c, run in best.items()},
                "all_rounds_seconds": {
                    f"concurrency_{c}": [r["seconds"] for r in rs] for c, rs in runs.items()
                },
                "speedup_8_over_1": round(best[1]["seconds"] / best[8]["seconds"], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
