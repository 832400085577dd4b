"""What one worker can reach on this machine: the HTTP floor and the engine floor (issue 16).

Issue 16 asks one `payguard serve` worker for 4,000 requests/s with durable commits on the
20,000-customer × 90-day warm state: at most 250 µs of CPU per request on its core, all
in. This measures the two parts that no change to the request path can remove:

- **HTTP floor**: a do-nothing ASGI app (reads the body, answers a fixed decision-sized
  JSON body) under the same uvicorn set-up as `payguard serve` (`uvicorn_limits`: the
  deadline httptools protocol, uvloop), pinned to the first core, driven by
  bench.open_loop's client on the other core at fixed offered rates. Per rate: the
  open-loop figures and the server's CPU µs per request (/proc, all threads).
- **Engine floor**: the open loop's events decoded and decided in process on a copy of the
  warm state (`Engine.open(serving=True)`, as the server starts), `process_queued` per
  event and a flush every 10 events — no HTTP, no key check, no threads. CPU µs per
  event for each block of 10,000 events (the first blocks thaw the records they touch).

    python -m bench.worker_floor [--days 90] [--events 60000] [--rates 1000,4000,8000]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.open_loop import (
    FUTURE_MS,
    Options,
    _free_port,
    _pin_first_core,
    _post,
    load_run,
    requests,
)
from bench.warm_state import CURRENT, History, Tree

BLOCK = 10_000
FLUSH_EVERY = 10
DECISION = (
    b'{"event_id":"load-0000001","action":"allow","score":0,"reasons":[],'
    b'"ruleset":"2027.1.4+2c2c9add","latency_us":212,"state":"decided"}'
)


# -- the HTTP floor -----------------------------------------------------------------------


async def _do_nothing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body, answer DECISION: the cost of HTTP alone."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(DECISION))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": DECISION, "more_body": False})


def _serve_do_nothing(port: int) -> None:
    """`python -m bench.worker_floor app PORT`: the app under payguard's uvicorn options."""
    import uvicorn

    from payguard.api.server import uvicorn_limits
    from payguard.config import load_settings

    limits = uvicorn_limits(load_settings())
    uvicorn.run(_do_nothing, host="127.0.0.1", port=port, log_level="warning", **limits)


class _FloorServer:
    """What bench.open_loop.load_run needs of a server: port, options, authorization."""

    options = Options(pin=True)
    authorization = b""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker_floor", "app", str(self.port)],
            cwd=Path(__file__).resolve().parents[1],
            preexec_fn=_pin_first_core,
        )

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process, all threads."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_floor(history: History, rates: list[int], seconds: float) -> dict[str, Any]:
    server = _FloorServer()
    start_ms = int(history.info()["watermark_ms"]) + 1_000
    probe = requests(history, 1, 1, start_ms, "floor-probe", b"")[0]
    try:
        deadline = time.monotonic() + 60
        while _post(server.port, probe) != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the do-nothing app did not answer")
            time.sleep(0.05)
        out: dict[str, Any] = {}
        for rate in rates:
            before = server.cpu_s()
            clock = start_ms + rate * 1_000
            figures = load_run(server, history, rate, seconds, f"floor-{rate}", clock)  # type: ignore[arg-type]
            figures["cpu_us_per_request"] = round(
                (server.cpu_s() - before) / max(1.0, figures["answered"]) * 1e6, 1
            )
            out[str(rate)] = figures
            print(f"  http floor @ {rate}/s: {figures}", flush=True)
        return out
    finally:
        server.proc.terminate()
        server.proc.wait()


# -- the engine floor ---------------------------------------------------------------------


def _decide_in_process(n: int, users: int, days: int) -> None:
    """`python -m bench.worker_floor engine N USERS DAYS` (in the tree's environment, on a
    scratch copy of the warm state): one JSON line of CPU µs per event per block."""
    from payguard.config import load_settings
    from payguard.engine import Engine

    bodies = open_loop_bodies(History(users, days), n, "floor-engine")
    engine = Engine.open(load_settings(), serving=True)
    engine.prepare()
    decode, clock = engine.decoder.decode, time.process_time
    blocks: list[dict[str, float]] = []
    spent = {"decode": 0.0, "decide_and_file": 0.0, "commit": 0.0}
    for i, body in enumerate(bodies):
        a = clock()
        event = decode(body)
        b = clock()
        engine.process_queued(event)
        c = clock()
        if i % FLUSH_EVERY == FLUSH_EVERY - 1:
            engine.flush()
        d = clock()
        spent["decode"] += b - a
        spent["decide_and_file"] += c - b
        spent["commit"] += d - c
        if i % BLOCK == BLOCK - 1:
            block = {k: round(v / BLOCK * 1e6, 1) for k, v in spent.items()}
            block["total"] = round(sum(block.values()), 1)
            blocks.append(block)
            spent = dict.fromkeys(spent, 0.0)
    engine.close()
    print(json.dumps(blocks))


def open_loop_bodies(history: History, n: int, tag: str) -> list[bytes]:
    """The JSON bodies of `n` of bench.open_loop's requests at 1,000/s of event time from
    the warm state's watermark on, ids `<tag>-<i>`: events to decide in process."""
    start_ms = int(history.info()["watermark_ms"]) + 1_000
    raw = requests(history, 1_000, n, start_ms, tag, b"")
    return [request.split(b"\r\n\r\n", 1)[1] for request in raw]


def run_on_warm_copy(
    history: History, tree: Tree, args: list[str], *, capture: bool = False, **env: str
) -> str:
    """`python -m ARGS` of `tree` (with this repository's `bench`) on a scratch copy of the
    warm state, pinned to the first core, `env` added; its stdout if `capture`."""
    data_dir, tmp = history.scratch_copy(tree)
    try:
        environ = tree.env(data_dir, PAYGUARD_MAX_FUTURE_MS=str(FUTURE_MS), **env)
        environ["PYTHONPATH"] = f"{tree.src}{os.pathsep}{Path(__file__).resolve().parents[1]}"
        done = subprocess.run(
            [sys.executable, "-m", *args],
            env=environ,
            capture_output=capture,
            text=True,
            check=True,
            preexec_fn=_pin_first_core,
        )
        return done.stdout or ""
    finally:
        tmp.cleanup()


def engine_floor(history: History, events: int) -> dict[str, Any]:
    args = ["bench.worker_floor", "engine", str(events), str(history.users), str(history.days)]
    stdout = run_on_warm_copy(history, CURRENT, args, capture=True)
    blocks = json.loads(stdout.strip().splitlines()[-1])
    totals = [block["total"] for block in blocks]
    out = {
        "blocks_us_per_event": blocks,
        "median_block_us": statistics.median(totals),
        "best_block_us": min(totals),
    }
    print(f"  engine floor: {out}", flush=True)
    return out


def table(users: int = 20_000, days: int = 90) -> dict[str, float]:
    """`make bench`: both floors on the 20k × 90-day warm state, flattened for the table."""
    history = History(users, days)
    history.build()
    flat: dict[str, float] = {}
    for rate, figures in http_floor(history, [1_000, 4_000], 10.0).items():
        flat[f"http floor @ {rate}/s achieved"] = figures["achieved"]
        flat[f"http floor @ {rate}/s cpu µs/request"] = figures["cpu_us_per_request"]
    engine = engine_floor(history, 60_000)
    flat["engine floor µs/event, median block"] = engine["median_block_us"]
    flat["engine floor µs/event, best block"] = engine["best_block_us"]
    return flat


def main() -> None:
    if sys.argv[1:2] == ["app"]:
        _serve_do_nothing(int(sys.argv[2]))
        return
    if sys.argv[1:2] == ["engine"]:
        _decide_in_process(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rates", default="1000,4000,8000")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    history = History(args.users, args.days)
    history.build()
    rates = [int(r) for r in args.rates.split(",")]
    result = {
        "http_floor": http_floor(history, rates, args.seconds),
        "engine_floor": engine_floor(history, args.events),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
