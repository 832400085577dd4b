"""HTTP load on loopback: `POST /v1/events` throughput and client-side latency.

Starts `payguard.api.serve` (uvicorn, one worker) in a subprocess on 127.0.0.1 with a
throw-away data directory, sends `n_events` generated contract-v1 events (logins, OTP
checks, card binds, payments for a few thousand users) over `concurrency` keep-alive
HTTP/1.1 connections, and reports requests/s with p50/p99 latency in milliseconds. Every
answer is durable (the server commits before it answers), so this measures the real path,
API key check and rate limit included (one `events:write` key, limit set above the load).

    .venv/bin/python bench/http_load.py [n_events] [concurrency]

Bounded: at most MAX_EVENTS events and MAX_SECONDS of sending; the server is stopped at
the end in every case.
"""

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from payguard.auth import Access
from payguard.sim.population import luhn_complete

REPO = Path(__file__).resolve().parents[1]
MAX_EVENTS = 200_000
MAX_SECONDS = 120.0
START_TIMEOUT = 30.0
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
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
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


def run(n_events: int = 20_000, concurrency: int = 8) -> dict[str, float]:
    """Start a server, send `n_events` (≤ MAX_EVENTS, ≤ MAX_SECONDS), return the numbers."""
    n_events = max(1, min(n_events, MAX_EVENTS))
    concurrency = max(1, min(concurrency, 256))
    bodies = generate_events(n_events)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="payguard-load-") as tmp:
        authorization = b"Authorization: Bearer " + _key(Path(tmp) / "data").encode() + b"\r\n"
        requests = [
            b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + authorization
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
            for body in bodies
        ]
        env = dict(os.environ)
        env.update(
            PAYGUARD_DATA_DIR=str(Path(tmp) / "data"),
            PAYGUARD_RULESET=str(REPO / "rules" / "default.yaml"),
            PAYGUARD_TOKEN_KEY="bench-http-load-key-0123456789abcdef",
            PAYGUARD_LOG_LEVEL="WARNING",
        )
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", _SERVER, str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
            try:
                _wait_ready(f"http://127.0.0.1:{port}", proc)
                start = time.perf_counter()
                latencies, errors = asyncio.run(
                    _drive(port, requests, concurrency, time.monotonic() + MAX_SECONDS)
                )
                elapsed = time.perf_counter() - start
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    latencies.sort()
    return {
        "requests": float(len(latencies)),
        "errors": float(errors),
        "concurrency": float(concurrency),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50) * 1_000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1_000, 3),
    }


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(run(*args), indent=2))
