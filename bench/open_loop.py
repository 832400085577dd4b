"""Open-loop HTTP load on warm state: the latency a client sees at a fixed offered rate.

`payguard serve` (one worker) starts on a copy of a warm data directory (bench.warm_state:
20,000 customers × 30 or 90 days of history) and a client in another process (pinned to
the other core when the machine has two) sends distinct events at a fixed rate: request
i is due at t0 + i / rate whatever happened to the ones before (open loop). Latency is
measured from that **scheduled** time, so a server stall counts for every request that
fell due during it, not just the one that was waiting (no coordinated omission).

The events are the history's last customers doing what they last did (payments, logins,
binds, transfers; no feedback events), with new ids and times from the warm state's
watermark on, one event time millisecond apart per 1/rate of wall time. The warm history
ends a month after today's date, so the server accepts event times up to ten years ahead
(`PAYGUARD_MAX_FUTURE_MS`); every answer is still the durable one (committed first).

Per rate: achieved rate (answers / time to the last answer), p50 / p99 / p99.9 (ms), the
longest pause (the longest gap between consecutive answers while at least one request
was due and unanswered), errors, and what was left unanswered when the drain time ran
out. The rates run one after another on the same server; `/metrics` is read at the end
(the collector's longest pause where the tree reports it).

    python -m bench.open_loop [--days 90] [--rates 500,1000,2000,4000] [--seconds 15]
        [--compare PATH/TO/OTHER/src]    # today's main beside this tree, interleaved
"""

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.warm_state import CURRENT, History, Tree

RATES = (500, 1_000, 2_000, 4_000)
SECONDS = 15.0
"""Sending time per rate by default (the issue's runs were 60 s: `--seconds 60`)."""
MAX_SECONDS = 120.0
CONNECTIONS = 64
DRAIN_S = 30.0
START_TIMEOUT_S = 1_800.0
"""A tree that cannot use the cached snapshot replays 1.9 M events first."""
FUTURE_MS = 10 * 365 * 86_400_000
TEMPLATE_TYPES = {"payment", "login", "card_bind", "transfer", "otp_send", "withdraw"}


# -- the events ---------------------------------------------------------------------------


def templates(history: History, wanted: int = 50_000) -> list[dict[str, Any]]:
    """The history's last `wanted` operations that reference no other event."""
    size = history.events.stat().st_size
    found: list[dict[str, Any]] = []
    with history.events.open("rb") as fh:
        fh.seek(max(0, size - wanted * 600))
        fh.readline()
        for line in fh:
            body = json.loads(line)
            if body["type"] in TEMPLATE_TYPES and "ref_event_id" not in body:
                found.append(body)
    return found[-wanted:]


def requests(
    history: History, rate: int, n: int, start_ms: int, tag: str, authorization: bytes
) -> list[bytes]:
    """`n` POST /v1/events requests, one event-time step of 1/rate s apart from
    `start_ms`, with ids `<tag>-<i>` (distinct from the history and other runs)."""
    rng = random.Random(zlib.crc32(tag.encode()))
    pool = templates(history)
    step = 1_000 / rate
    out: list[bytes] = []
    for i in range(n):
        body = dict(rng.choice(pool), event_id=f"{tag}-{i:07d}", ts=start_ms + int(i * step))
        out.append(post_event(body, authorization))
    return out


def post_event(body: dict[str, Any], authorization: bytes) -> bytes:
    """One raw `POST /v1/events` request (keep-alive) carrying `body` as compact JSON."""
    data = json.dumps(body, separators=(",", ":")).encode()
    return (
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + authorization
        + b"Content-Length: "
        + str(len(data)).encode()
        + b"\r\n\r\n"
        + data
    )


# -- the client (its own process) ---------------------------------------------------------


async def _drive(port: int, reqs: list[bytes], rate: float) -> dict[str, list[float]]:
    """Send request i at t0 + i/rate on whichever connection is free; record when each
    was due, when it was answered, and its status."""
    loop = asyncio.get_running_loop()
    n = len(reqs)
    due = [0.0] * n
    done = [float("nan")] * n
    status = [0.0] * n
    queue: asyncio.Queue[int | None] = asyncio.Queue()
    t0 = loop.time() + 0.5

    async def schedule() -> None:
        for i in range(n):
            due[i] = t0 + i / rate
            delay = due[i] - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(i)
        for _ in range(CONNECTIONS):
            queue.put_nowait(None)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (i := await queue.get()) is not None:
                writer.write(reqs[i])
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head)[1])  # type: ignore[index]
                await reader.readexactly(length)
                done[i] = loop.time()
                status[i] = float(head[9:12])
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    scheduler = asyncio.create_task(schedule())
    await scheduler
    with contextlib.suppress(TimeoutError):  # what is left is reported unanswered
        await asyncio.wait_for(asyncio.gather(*workers), timeout=DRAIN_S)
    return {"due": due, "done": done, "status": status}


def client_main(args: list[str]) -> None:
    """`python -m bench.open_loop client PORT RATE REQUESTS_FILE RESULT_FILE [pin]`."""
    port, rate, source, target = int(args[0]), float(args[1]), Path(args[2]), Path(args[3])
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1 and args[4:5] == ["pin"]:
        os.sched_setaffinity(0, {cores[-1]})
    reqs = json.loads(source.read_text())
    result = asyncio.run(_drive(port, [r.encode("latin-1") for r in reqs], rate))
    target.write_text(json.dumps(result))


# -- figures ------------------------------------------------------------------------------


def summarize(result: dict[str, list[float]], rate: float) -> dict[str, float]:
    """Percentiles from the scheduled time, achieved rate, longest pause (module doc)."""
    due, done, status = result["due"], result["done"], result["status"]
    answered = [(d, a) for d, a in zip(due, done, strict=True) if a == a]
    latencies = sorted(a - d for d, a in answered)
    n = len(due)
    if not answered:
        return {"offered": rate, "answered": 0.0, "unanswered": float(n)}
    t0 = due[0]
    answers = sorted(a for _, a in answered)
    pause = 0.0
    for k in range(len(answers) - 1):
        falls_due = bisect.bisect_right(due, answers[k])
        if falls_due > k + 1:  # someone due and not yet answered during this gap
            pause = max(pause, answers[k + 1] - answers[k])
    return {
        "offered": rate,
        "achieved": round(len(answers) / (answers[-1] - t0), 1),
        "p50_ms": round(_pct(latencies, 0.50) * 1e3, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1e3, 2),
        "p999_ms": round(_pct(latencies, 0.999) * 1e3, 2),
        "max_ms": round(latencies[-1] * 1e3, 2),
        "longest_pause_ms": round(pause * 1e3, 1),
        "answered": float(len(answers)),
        "errors": float(sum(1 for s in status if s and s != 200)),
        "unanswered": float(n - len(answers)),
    }


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


# -- the server ---------------------------------------------------------------------------


class Server:
    """`payguard serve` of one tree on one data directory (`pin`: to the first core)."""

    def __init__(self, tree: Tree, data_dir: Path, options: "Options") -> None:
        self.tree, self.data_dir, self.options = tree, data_dir, options
        self.port = _free_port()
        secret = tree.cli(data_dir, "keys", "create", "--scope=events:write").stdout
        self.authorization = b"Authorization: Bearer " + secret.strip().splitlines()[-1].encode()
        self.authorization += b"\r\n"
        self.log = (data_dir.parent / "server.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, probe: bytes) -> float:
        """Start; return seconds from spawn to the first decision (`probe` answered 200)."""
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "payguard.cli", "serve", f"--port={self.port}"],
            env=self.tree.env(
                self.data_dir,
                PAYGUARD_MAX_FUTURE_MS=str(FUTURE_MS),
                PAYGUARD_SYNCHRONOUS=self.options.synchronous,
            ),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
            preexec_fn=_pin_first_core if self.options.pin else None,
        )
        while time.perf_counter() - started < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                log = (self.data_dir.parent / "server.log").read_text(errors="replace")
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{log[-2000:]}")
            if _post(self.port, probe) == 200:
                return time.perf_counter() - started
            time.sleep(0.05)
        raise RuntimeError("server did not answer")

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            text = r.read().decode()
        found = re.findall(
            r"^(payguard_(?:gc|stall)_\w+|process_resident_memory_bytes) (\S+)$", text, re.M
        )
        return {name: float(value) for name, value in found}

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (flush + snapshot) or SIGKILL (a crash: no final snapshot)."""
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@dataclass(frozen=True)
class Options:
    synchronous: str = "FULL"
    """The event log's `synchronous` (FULL: an fsync per commit, the default)."""
    pin: bool = False
    """Server on the first core, client on the last: only meaningful on an idle machine
    (on a shared one it keeps either from the less busy core)."""


def _pin_first_core() -> None:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[0]})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(port: int, request: bytes) -> int:
    """Send one raw request; its status (0 if the server does not answer yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request)
            head = sock.recv(65_536)
            return int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else 0
    except OSError:
        return 0


def load_run(
    server: Server,
    history: History,
    rate: int,
    seconds: float,
    tag: str,
    start_ms: int,
    keep: Path | None = None,
) -> dict[str, float]:
    """One rate against a running server, from a client process on the other core;
    `keep`: where to copy the raw due / answer times (`_drive`'s result, monotonic)."""
    n = int(rate * min(seconds, MAX_SECONDS))
    reqs = requests(history, rate, n, start_ms, tag, server.authorization)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "requests.json", Path(tmp) / "result.json"
        source.write_text(json.dumps([r.decode("latin-1") for r in reqs]))
        subprocess.run(
            [sys.executable, "-m", "bench.open_loop", "client", str(server.port), str(rate)]
            + [str(source), str(target)]
            + (["pin"] if server.options.pin else []),
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        if keep is not None:
            keep.write_bytes(target.read_bytes())
        return summarize(json.loads(target.read_text()), rate)


def run_tree(
    tree: Tree, history: History, rates: tuple[int, ...], seconds: float, options: Options
) -> dict[str, Any]:
    """Start a server of `tree` on a copy of the warm state, run every rate, then kill it
    (-9) and start it again from its last snapshot + the tail the load added."""
    data_dir, tmp = history.scratch_copy(tree)
    try:
        server = Server(tree, data_dir, options)
        start_ms = int(history.info()["watermark_ms"]) + 1_000
        probe = requests(history, 1, 1, start_ms, f"probe-{tree.label}", server.authorization)
        out: dict[str, Any] = {"startup_snapshot_s": round(server.start(probe[0]), 2)}
        clock = start_ms + 1_000
        for rate in rates:
            tag = f"load-{tree.label}-{rate}"
            out[str(rate)] = load_run(server, history, rate, seconds, tag, clock)
            clock += int(seconds * 1_000) + 1_000
            print(f"  {tree.label} @ {rate}/s: {out[str(rate)]}", flush=True)
        out["metrics"] = server.metrics()
        server.stop(kill=True)
        probe = requests(history, 1, 1, clock, f"probe2-{tree.label}", server.authorization)
        out["startup_snapshot_tail_s"] = round(server.start(probe[0]), 2)
        server.stop()
        return out
    finally:
        tmp.cleanup()


def run(
    days: int = 90,
    users: int = 20_000,
    rates: tuple[int, ...] = RATES,
    seconds: float = SECONDS,
    compare: Path | None = None,
    reps: int = 1,
    options: Options = Options(),
) -> dict[str, Any]:
    """Every rate on this tree (and on `compare`'s, alternating, `reps` times each);
    per tree and rate the median over reps of each figure."""
    history = History(users, days)
    history.build()
    trees = [Tree("base", compare)] if compare is not None else []
    trees.append(CURRENT)
    runs: dict[str, list[dict[str, Any]]] = {t.label: [] for t in trees}
    for _ in range(reps):
        for tree in trees:
            runs[tree.label].append(run_tree(tree, history, rates, seconds, options))
    return {label: _medians(results) for label, results in runs.items()}


def table() -> dict[str, float]:
    """`make bench`: this tree on 20k × 90 days at every rate, flattened for the table."""
    flat: dict[str, float] = {}
    for label, figures in run().items():
        for key, value in figures.items():
            if isinstance(value, dict):
                flat.update({f"{label} {key} {k}": v for k, v in value.items()})
            else:
                flat[f"{label} {key}"] = value
    return flat


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    first = results[0]
    out: dict[str, Any] = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = _medians([r[key] for r in results])
        else:
            out[key] = statistics.median(r[key] for r in results)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--compare", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--pin", action="store_true", help=Options.__doc__)
    args = parser.parse_args()
    rates = tuple(int(r) for r in args.rates.split(","))
    print(
        json.dumps(
            run(
                args.days,
                args.users,
                rates,
                args.seconds,
                args.compare,
                args.reps,
                Options(args.synchronous, args.pin),
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(sys.argv[2:])
    else:
        main()
