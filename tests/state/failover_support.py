"""What the failover test and bench (bench/failover.py) share: a private 3-node Redis
Cluster (AOF with `appendfsync always`) whose nodes may be killed and started again, a
`payguard serve --workers 2` on it with the Postgres log, and a load client that retries
one event_id until it is answered (docs/scale.md, "Failure behaviour").

Everything here is started by the caller and stopped by it: the shared cluster on
7000-7002 is never touched."""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
NODE_TIMEOUT_MS = 5_000
"""The CI cluster's: a node back within it is never marked failed by its peers."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cluster_port() -> int:
    """A free port whose cluster bus port (+10,000) is free too (both under 65,536)."""
    while True:
        port = random.randrange(20_000, 45_000)
        try:
            for p in (port, port + 10_000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60) -> float:
    """Poll `check` until true; the seconds it took (fails with `what` after `timeout_s`)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not within {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic() - started


class PrivateCluster:
    """Three redis-server cluster nodes of the caller's own, on free loopback ports, each
    with its AOF synced on every write (`appendfsync always`) under `workdir/<port>`."""

    def __init__(self, workdir: Path, nodes: int = 3) -> None:
        self.workdir = workdir
        self.ports = [cluster_port() for _ in range(nodes)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        create = ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0"]
        subprocess.run(
            [*create, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()

    def start_node(self, port: int) -> None:
        """Start (or start again, from its AOF and nodes.conf) the node on `port`."""
        data = self.workdir / str(port)
        data.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        command += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
        command += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        command += ["--dir", str(data), "--logfile", str(data / "redis.log")]
        proc = self.procs[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL)

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis node {port} exited: see {data / 'redis.log'}")
            return _answers(port)

        wait_for(f"redis node {port}", up, 30)

    def kill_node(self, port: int) -> None:
        """SIGKILL: no shutdown save; what it acknowledged is in its AOF."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait()

    def node_ok(self, port: int) -> bool:
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return "cluster_state:ok" in done.stdout

    def wait_ok(self) -> None:
        wait_for("cluster ok", lambda: all(self.node_ok(p) for p in self.ports), 60)

    def stop(self) -> None:
        for port in list(self.procs):
            self.kill_node(port)


@dataclass
class Server:
    """`payguard serve --workers N --state <cluster>`: the supervisor, its admin key and
    every line it and its workers wrote on stderr (drained on a thread)."""

    proc: subprocess.Popen[str]
    port: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    key: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The live worker processes (uvicorn spawns them; its resource tracker is not one)."""
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        found = []
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.append(int(child))
        return found

    def ready(self) -> list[float]:
        """When each worker (restarted ones too) logged that its engine is built."""
        return [t for t, line in list(self.lines) if "deciding on state" in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(
    tmp_path: Path, state_url: str, log_dsn: str, ruleset_text: str, workers: int = 2
) -> Server:
    """Start the workers and wait until each has started and one answers /healthz."""
    ruleset = tmp_path / "rules.yaml"
    ruleset.write_text(ruleset_text, encoding="utf-8")
    env = {
        **os.environ,
        "PAYGUARD_DEV": "1",
        "PAYGUARD_DATA_DIR": str(tmp_path / "data"),
        "PAYGUARD_RULESET": str(ruleset),
        "PAYGUARD_LOG_DSN": log_dsn,
        "PYTHONPATH": str(ROOT / "src"),
    }
    port = free_port()
    command = [sys.executable, "-m", "payguard.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--state", state_url]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    server = Server(proc, port)
    found = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            server.lines.append((time.monotonic(), line))
            if not server.key and (hit := re.search(r"Bearer (\S+)", line)):
                server.key = hit.group(1)
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not found.wait(120):
            raise TimeoutError("the server printed no development key")
        wait_for("workers deciding", lambda: len(server.ready()) >= workers, 180)
        wait_for("/healthz", lambda: _healthy(server.base), 60)
    except BaseException:
        server.stop()
        raise
    return server


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def payments(prefix: str, n: int, users: int, start_ms: int) -> list[dict[str, Any]]:
    """`n` distinct payments over `users` accounts, 100 ms apart (60 s of event time for
    600: far within the 10-minute lateness whatever order they arrive in)."""
    events = []
    for i in range(n):
        u = i % users
        events.append(
            {
                "event_id": f"{prefix}-{i:05d}",
                "type": "payment",
                "ts": start_ms + i * 100,
                "user_id": f"{prefix}-u{u}",
                "device_id": f"{prefix}-d{u}",
                "ip": f"10.0.{u}.{1 + i % 7}",
                "channel": "app",
                "amount": f"{10 + (i * 37) % 900}.{i % 100:02d}",
                "merchant": {"id": f"{prefix}-m{i % 5}", "category": "ecommerce"},
            }
        )
    return events


@dataclass
class Load:
    """A bounded load: every event posted by one of `clients` threads, retried (the same
    event_id, the same body) on a connection error or a 5xx until answered."""

    server: Server
    events: list[dict[str, Any]]
    clients: int = 4
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)
    answered_at: dict[str, float] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)
    deadline_s: float = 120

    def start(self) -> None:
        for k in range(self.clients):
            thread = threading.Thread(target=self._client, args=(k,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(self.deadline_s)

    def count(self) -> int:
        with self.lock:
            return len(self.answered)

    def _client(self, k: int) -> None:
        headers = {"Authorization": f"Bearer {self.server.key}"}
        stop = time.monotonic() + self.deadline_s
        with httpx.Client(base_url=self.server.base, headers=headers, timeout=10) as http:
            for body in self.events[k :: self.clients]:
                tries = 0
                while time.monotonic() < stop:
                    tries += 1
                    try:
                        answer = http.post("/v1/events", json=body)
                    except httpx.TransportError:
                        time.sleep(0.02)
                        continue
                    if answer.status_code >= 500:
                        time.sleep(0.02)
                        continue
                    with self.lock:
                        if answer.status_code == 200:
                            self.answered[body["event_id"]] = answer.json()
                            self.answered_at[body["event_id"]] = time.monotonic()
                        else:
                            self.refused.append((body["event_id"], answer.status_code, answer.text))
                        if tries > 1:
                            self.retried[body["event_id"]] = tries - 1
                    break


def kill_worker(server: Server) -> tuple[int, float]:
    """SIGKILL one worker (mid-load: requests in flight on it); (its pid, when)."""
    pid = server.workers()[0]
    os.kill(pid, signal.SIGKILL)
    return pid, time.monotonic()


def writes_lost(server: Server) -> set[str]:
    """The events a worker logged as decided with their state write given up (the node
    stayed away longer than the resend window): `payguard_state_writes_lost_total`."""
    said = [line for _, line in list(server.lines) if "state write failed" in line]
    return {m.group(1) for line in said if (m := re.search(r"event (\S+) decided", line))}


def writes_resent(server: Server) -> tuple[set[str], set[str]]:
    """(events whose state writes went unanswered and were kept to be sent again, those of
    them whose resend landed), from the workers' log lines (payguard.state.redis)."""
    sent, landed = set(), set()
    for _, line in list(server.lines):
        if (m := re.search(r"event (\S+): state writes unanswered", line)) is not None:
            sent.add(m.group(1))
        elif (m := re.search(r"event (\S+): state writes sent again, landed", line)) is not None:
            landed.add(m.group(1))
    return sent, landed


@dataclass
class Exactness:
    """Every account's (and device's, IP's, merchant's, pair's) counts and sums in Redis
    against a brute-force memory state that filed every event answered normally."""

    compared: int
    """Feature values compared (count and sum features of every kind, per probe)."""
    wrong: list[tuple[str, str, Any, Any]]
    """(probe, feature, brute force, Redis) of every value that differs."""
    skipped: int
    """Values not compared: their entity was touched by an event whose write is declared
    lost, or was kept to be resent by a worker that never sent it (killed)."""
    degraded: int
    """Events answered in degraded mode (not in the state, as declared)."""


def exactness(
    url: str,
    ruleset_text: str,
    events: list[dict[str, Any]],
    answered: dict[str, Any],
    unsure: set[str],
) -> Exactness:
    """Probe each account with its last payment (a new id, after every event): its user,
    device, IP, network, merchant and pairs' count and sum features, read from Redis
    through the engine's own feature code, against the brute force. `unsure`: events whose
    state write is declared lost (their entities are skipped)."""
    import json

    from state_support import engine, redis_state, settings

    from payguard.features import FeatureState, load_catalog
    from payguard.policy.degraded import REASON_CODE
    from payguard.state.redis import connect

    config = settings()
    brute = FeatureState(load_catalog(config.features), config.utc_offset)
    shared = redis_state(url, "pg", connect(url))
    decoder = engine(ruleset_text).decoder

    def decode(body: dict[str, Any]) -> Any:
        return decoder.decode(json.dumps(body).encode())

    spoilt: set[tuple[str, str]] = set()
    last: dict[str, dict[str, Any]] = {}
    degraded = 0
    for body in sorted(events, key=lambda e: e["ts"]):
        event = decode(body)
        last[body["user_id"]] = body
        decision = answered.get(body["event_id"])
        if body["event_id"] in unsure or decision is None:  # never answered: unknown too
            spoilt |= shared._entity_hids(event)
        if decision is None:
            continue
        if any(r["code"] == REASON_CODE for r in decision["reasons"]):
            degraded += 1
            continue
        brute.update(event, None, decision["action"] in ("review", "block"))
    names = [n for n, f in brute.layout.items() if f.how in ("count", "sum") and f.stream >= 0]
    plan = brute.plan(names)
    end = max(e["ts"] for e in events) + 1
    result = Exactness(0, [], 0, degraded)
    for user, body in sorted(last.items()):
        probe = decode({**body, "event_id": f"probe-{user}", "ts": end})
        keys = dict(shared._entity_hids(probe))
        want, got = brute.snapshot(probe, plan), shared.snapshot(probe, plan)
        for name in names:
            by = brute.streams[brute.layout[name].stream].by
            if (by, keys.get(by)) in spoilt:
                result.skipped += 1
                continue
            result.compared += 1
            if want[name] != got[name]:
                result.wrong.append((user, name, want[name], got[name]))
    shared.close()
    return result
