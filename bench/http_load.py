"""HTTP load on loopback: `POST /v1/events` throughput and client-side latency.

Starts `payguard.api.serve` (uvicorn, one worker) in a subprocess on 127.0.0.1 with a
throw-away data directory and sends generated contract-v1 events (logins, OTP checks,
card binds, payments for a few thousand users). Every answer is durable (the server
commits before it answers), so this measures the real path, API key check and rate limit
included (one `events:write` key, limit set above the load).

Closed loop (the default, and `make bench`): `n_events` over `concurrency` keep-alive
connections, each sending its next request when the previous one is answered; requests/s
with p50/p99 latency in milliseconds. At enough connections its rate is the saturation.

    .venv/bin/python bench/http_load.py [n_events] [concurrency]

Open loop (`--rate`): requests scheduled at a fixed rate whatever the server does, over a
pool of connections; latency is measured from each request's scheduled send time, so a
server that stalls is charged for every request that waited behind the stall (no
coordinated omission). p50/p99/p99.9 and the rate achieved.

    .venv/bin/python bench/http_load.py --rate 2000 --seconds 10

Side by side (`--compare BASE_SRC`): the same phases (warm-up, open loop at each of
`--rates`, then closed-loop saturation) on the server of another source tree (e.g.
`git archive <commit> src | tar -x -C /tmp/base`) and on this one, interleaved, `--reps`
times; medians are printed as JSON. `--base-no-uvloop` hides uvloop from the base server
(a tree whose lock file does not have it would run on asyncio's loop).

Event log side by side (`--logs`): the same phases on this tree's server with its SQLite
event log and with the Postgres one of scaled-out workers (`PAYGUARD_LOG_DSN`, 127.0.0.1
database `test`, a schema per run, dropped after), interleaved `--reps` times; medians.

    .venv/bin/python bench/http_load.py --logs --rates 1000,2000 --seconds 10 --reps 3

Bounded: at most MAX_EVENTS events and MAX_SECONDS of sending per phase; the server is
stopped at the end in every case.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from payguard.auth import Access
from payguard.sim.population import luhn_complete

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
MAX_EVENTS = 200_000
MAX_SECONDS = 120.0
START_TIMEOUT = 30.0
SATURATION_CEILING = 10_000
"""Requests a second the saturation phase has events for (more than one worker does)."""
T0_MS = 1_599_148_800_000  # 2020-09-04T00:00:00+08:00

_SERVER = """
import sys
from payguard.api import serve
from payguard.config import load_settings
serve(load_settings(), "127.0.0.1", int(sys.argv[1]))
"""


def generate_events(n: int, users: int = 3_000, seed: int = 7) -> list[bytes]:
    """A plausible stream: ~25% logins, 10% OTP checks, 5% card binds, 60% payments."""
    rng = random.Random(seed)
    categories = ["ecommerce", "food", "travel", "utilities", "game", "mobile_topup"]
    events: list[bytes] = []
    ts = T0_MS
    for i in range(n):
        ts += rng.randint(1, 40)
        u = rng.randrange(users)
        user = f"u_{u:06d}"
        device = f"dfp_{u:06d}_{rng.randrange(3) if rng.random() < 0.1 else 0}"
        pan = luhn_complete(f"622848{u:08d}{rng.randrange(3):04d}")
        roll = rng.random()
        body: dict[str, Any] = {
            "event_id": f"load-{i:08d}",
            "ts": ts,
            "user_id": user,
            "device_id": device,
            "ip": f"10.{u % 250}.{(u // 250) % 250}.{rng.randrange(1, 250)}",
            "channel": "app",
        }
        if roll < 0.25:
            body.update(type="login", method="password", success=rng.random() > 0.05)
        elif roll < 0.35:
            body.update(
                type="otp_verify",
                ref_event_id=f"otp-send-{i}",
                method="sms",
                success=rng.random() > 0.1,
            )
        elif roll < 0.40:
            body.update(
                type="card_bind",
                phone=f"+86138{u:08d}",
                card={"number": pan, "bank": "ICBC", "kind": "debit"},
            )
        else:
            body.update(
                type="payment",
                amount=f"{rng.randint(100, 300_000) / 100:.2f}",
                card={"number": pan},
                merchant={"id": f"m_{rng.randrange(500):04d}", "category": rng.choice(categories)},
            )
        events.append(json.dumps(body, separators=(",", ":")).encode())
    return events


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the client on uvloop when it is installed (a cheaper client leaves more of the
    machine to the server); the same client for every server compared."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not become ready")


async def _drive(
    port: int, requests: list[bytes], concurrency: int, deadline: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def connection() -> None:
        nonlocal next_index, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < len(requests) and time.monotonic() < deadline:
                request = requests[next_index]
                next_index += 1
                start = time.perf_counter()
                ok = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - start)
                errors += not ok
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, errors


def _key(data_dir: Path) -> str:
    """An `events:write` key in the server's key store, limited far above the load."""
    access = Access.open(data_dir, rate_per_s=1, burst=1)
    try:
        new = access.create_key(
            ["events:write"],
            name="bench http_load",
            actor="bench",
            now_ms=time.time_ns() // 1_000_000,
            rate_per_s=10_000_000,
            burst=10_000_000,
        )
    finally:
        access.close()
    return new.secret


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return sorted_values[index]


def _http_requests(bodies: list[bytes], secret: str) -> list[bytes]:
    authorization = b"Authorization: Bearer " + secret.encode() + b"\r\n"
    return [
        b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + authorization
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
        for body in bodies
    ]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bool:
    """Send one request and read its answer; whether it was a 200."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return head.startswith(b"HTTP/1.1 200")


async def _open_loop(
    port: int, requests: list[bytes], rate: float, connections: int
) -> tuple[list[float], int, float]:
    """Send `requests` at `rate` a second over a pool of `connections`; latencies from
    each request's scheduled time, errors, and the seconds the sending took."""
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    pool = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    for conn in pool:
        idle.put_nowait(conn)
    latencies: list[float] = []
    errors = 0

    async def send(request: bytes, scheduled: float) -> None:
        nonlocal errors
        conn = await idle.get()  # waiting for a free connection counts as latency
        try:
            if not await _exchange(*conn, request):
                errors += 1
        finally:
            idle.put_nowait(conn)
        latencies.append(loop.time() - scheduled)

    tasks = []
    start = loop.time() + 0.05
    for i, request in enumerate(requests):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(request, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    for _, writer in pool:
        writer.close()
    return latencies, errors, elapsed


def _summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "requests": float(len(latencies)),
        "errors": float(errors),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50) * 1_000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1_000, 3),
        "p99.9_ms": round(_percentile(latencies, 0.999) * 1_000, 3),
    }


@contextmanager
def _server(src: Path, env_extra: dict[str, str] | None = None) -> Iterator[tuple[int, str, int]]:
    """A `payguard serve` of the tree `src` on a fresh data directory: (port, API key,
    process id)."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="payguard-load-") as tmp:
        secret = _key(Path(tmp) / "data")
        env = dict(os.environ)
        env.update(
            PYTHONPATH=str(src),
            PAYGUARD_DATA_DIR=str(Path(tmp) / "data"),
            PAYGUARD_RULESET=str(REPO / "rules" / "default.yaml"),
            PAYGUARD_TOKEN_KEY="bench-http-load-key-0123456789abcdef",
            PAYGUARD_LOG_LEVEL="WARNING",
        )
        env.update(env_extra or {})
        with (Path(tmp) / "server.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", _SERVER, str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
            try:
                _wait_ready(f"http://127.0.0.1:{port}", proc)
                yield port, secret, proc.pid
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def run(n_events: int = 20_000, concurrency: int = 8) -> dict[str, float]:
    """Start a server, send `n_events` closed-loop (≤ MAX_EVENTS, ≤ MAX_SECONDS)."""
    n_events = max(1, min(n_events, MAX_EVENTS))
    concurrency = max(1, min(concurrency, 256))
    with _server(REPO / "src") as (port, secret, _):
        requests = _http_requests(generate_events(n_events), secret)
        start = time.perf_counter()
        latencies, errors = _run(
            _drive(port, requests, concurrency, time.monotonic() + MAX_SECONDS)
        )
        elapsed = time.perf_counter() - start
    return {"concurrency": float(concurrency), **_summary(latencies, errors, elapsed)}


def phases(
    src: Path,
    rates: list[int],
    seconds: float,
    saturation_connections: int,
    env_extra: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """One server: 5,000 events of warm-up (closed loop), open loop at each rate for
    `seconds`, then closed-loop saturation for `seconds`; each phase's figures."""
    counts = [5_000, *(int(r * seconds) for r in rates), int(SATURATION_CEILING * seconds)]
    bodies = generate_events(sum(counts))
    results: dict[str, dict[str, float]] = {}
    with _server(src, env_extra) as (port, secret, pid):
        requests = _http_requests(bodies, secret)
        offset = 0

        def take(n: int) -> list[bytes]:
            nonlocal offset
            chunk, offset = requests[offset : offset + n], offset + n
            return chunk

        _run(_drive(port, take(counts[0]), 8, time.monotonic() + MAX_SECONDS))
        for rate, count in zip(rates, counts[1:-1], strict=True):
            lat, errors, elapsed = _run(_open_loop(port, take(count), rate, 64))
            results[f"open {rate}/s"] = _summary(lat, errors, elapsed)
        start, cpu = time.perf_counter(), _cpu_seconds(pid)
        lat, errors = _run(
            _drive(
                port,
                take(len(requests) - offset),
                saturation_connections,
                time.monotonic() + seconds,
            )
        )
        results["saturation"] = _summary(lat, errors, time.perf_counter() - start)
        cpu_us = (_cpu_seconds(pid) - cpu) * 1e6 / max(1, len(lat))
        results["saturation"]["server_cpu_us_per_request"] = round(cpu_us, 1)
        grouped = _group_commits(port)
        if grouped is not None:
            results["group commit"] = grouped
    return results


def _cpu_seconds(pid: int) -> float:
    """CPU time the server process used so far, all threads (Linux /proc): per request,
    what a whole core would cost, however busy the machine is."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_commits(port: int) -> dict[str, float] | None:
    """Commits and events per commit from the server's /metrics (None: a server without
    group commit)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("payguard_group_commits_total", "payguard_group_committed_events_total"):
            found[name] = float(value)
    commits = found.get("payguard_group_commits_total")
    if not commits:
        return None
    events = found["payguard_group_committed_events_total"]
    return {"commits": commits, "events_per_commit": round(events / commits, 2)}


def compare(
    base_src: Path, reps: int, rates: list[int], seconds: float, *, base_no_uvloop: bool
) -> dict[str, Any]:
    """`phases` on the base tree and on this one, interleaved `reps` times; medians."""
    hide = Path(tempfile.mkdtemp(prefix="payguard-no-uvloop-"))
    (hide / "uvloop").mkdir()
    (hide / "uvloop" / "__init__.py").write_text('raise ImportError("hidden by the bench")\n')
    base_path = f"{hide}{os.pathsep}{base_src}" if base_no_uvloop else str(base_src)
    variants = {
        "base": (Path(base_path), {}),
        "this tree, h11": (REPO / "src", {"PAYGUARD_HTTP": "h11"}),
        "this tree": (REPO / "src", {}),
    }
    runs: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in variants}
    for rep in range(reps):
        for name, (src, extra) in variants.items():
            print(f"rep {rep + 1}/{reps}: {name}", file=sys.stderr, flush=True)
            runs[name].append(phases(src, rates, seconds, 64, extra))
    medians: dict[str, Any] = {}
    for name, results in runs.items():
        medians[name] = {
            phase: {
                metric: statistics.median(r[phase][metric] for r in results)
                for metric in results[0][phase]
            }
            for phase in results[0]
        }
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "reps": reps,
        "medians": medians,
    }


def logs(reps: int, rates: list[int], seconds: float) -> dict[str, Any]:
    """`phases` on this tree with the SQLite log and with the Postgres log, interleaved
    `reps` times; medians (a fresh Postgres schema per run, dropped after)."""
    import uuid

    import psycopg

    dsn = "host=127.0.0.1 port=5432 dbname=test"
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"sqlite log": [], "postgres log": []}
    for rep in range(reps):
        for name in runs:
            print(f"rep {rep + 1}/{reps}: {name}", file=sys.stderr, flush=True)
            if name == "sqlite log":
                runs[name].append(phases(REPO / "src", rates, seconds, 64))
                continue
            schema = f"http_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}"')
            try:
                extra = {"PAYGUARD_LOG_DSN": f"{dsn} options='-c search_path={schema}'"}
                runs[name].append(phases(REPO / "src", rates, seconds, 64, extra))
            finally:
                with psycopg.connect(dsn, autocommit=True) as admin:
                    admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    medians = {
        name: {
            phase: {
                metric: statistics.median(r[phase][metric] for r in results)
                for metric in results[0][phase]
            }
            for phase in results[0]
        }
        for name, results in runs.items()
    }
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "reps": reps,
        "medians": medians,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n_events", type=int, nargs="?", default=20_000)
    parser.add_argument("concurrency", type=int, nargs="?", default=8)
    parser.add_argument("--rate", type=int, help="open loop: requests a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--compare", type=Path, metavar="BASE_SRC")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rates", default="1000,2000")
    parser.add_argument("--base-no-uvloop", action="store_true")
    parser.add_argument("--logs", action="store_true", help="SQLite log against Postgres log")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]
    if args.logs:
        found = logs(args.reps, rates, args.seconds)
    elif args.compare is not None:
        found = compare(
            args.compare, args.reps, rates, args.seconds, base_no_uvloop=args.base_no_uvloop
        )
    elif args.rate is not None:
        found = phases(REPO / "src", [args.rate], args.seconds, 64)
    else:
        found = run(args.n_events, args.concurrency)
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
