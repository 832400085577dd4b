"""Decisions/s of stateless workers on Redis beside the embedded engine, and what an
event costs Redis (the capacity model of docs/scale.md).

One simulated stream (the simulator, seed 7, ~18 events per customer over 10 days) is
decided, in one run and one after the other, by:

- the embedded engine (in-process feature state);
- one worker on the single Redis (127.0.0.1:6379) and one on the Redis Cluster
  (127.0.0.1:7000-7002);
- the same in batches (`Engine.prefetch` of the batch's state in one round trip, then
  `process_queued` of each event, the state writes sent once per batch as the HTTP
  path's group commit sends them; `PAYGUARD_BENCH_PREFETCH=0`: no prefetch, each
  event's writes ride on the next event's fetch), and two worker processes at once on
  each, the stream dealt out between them.

Every engine runs in process on an in-memory event log (no HTTP, no SQLite): the figures
isolate the state seam. The graph and chains are off in all of them (they are not in the
seam yet), with the default ruleset minus the rules that read them. Reported per setup:
events/s (wall), client CPU µs per event, Redis CPU µs per event (all nodes, from
`INFO cpu`), round trips and commands per event, bytes written per event (record
fields), bytes on the wire each way, Redis's own calls and µs per call by command
(`INFO commandstats` delta: on a Redis other clients share, theirs are in it too; commands
called for fewer than a tenth of the events are left out), and Redis memory per account
after the run (`INFO memory` delta over the accounts seen).

    .venv/bin/python -m bench.state_redis [N_EVENTS [DAYS [BATCH]]]   # 20,000, 10 days, 8
"""

import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from redis.cluster import RedisCluster

from bench.replay_speed import without_graph_chains
from payguard.config import load_settings
from payguard.engine import Engine
from payguard.engine.compile import compile_ruleset
from payguard.features import FeatureState, load_catalog
from payguard.sim import simulate
from payguard.sim.config import SimConfig
from payguard.state.redis import RedisClient, RedisState, connect

SINGLE = os.environ.get("PAYGUARD_BENCH_REDIS", "redis://127.0.0.1:6379/0")
CLUSTER = os.environ.get("PAYGUARD_BENCH_CLUSTER", "redis+cluster://127.0.0.1:7000")
PREFETCH = os.environ.get("PAYGUARD_BENCH_PREFETCH", "1") != "0"
"""Batches read their state in one round trip (`Engine.prefetch`); 0: event by event."""
RULESET = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"


def _engine(url: str | None, prefix: str) -> Engine:
    settings = load_settings(env={"PAYGUARD_GRAPH_CHAINS": "0"})
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    text = without_graph_chains(RULESET.read_text(encoding="utf-8"))
    ruleset = compile_ruleset(text, features, graph_chains=False)
    engine = Engine.in_memory(settings, features, ruleset)
    if url is None:
        return engine
    state = RedisState(features, connect(url), prefix=prefix)
    return Engine(
        features=features,
        ruleset=ruleset,
        recorder=engine.recorder,
        settings=settings,
        model=engine.model,
        state=state,
    )


def _decide_all(url: str | None, prefix: str, lines: list[bytes], batch: int) -> dict[str, float]:
    """Decide `lines` on a fresh engine: wall and CPU seconds, and the state's counters.
    `batch` 0: `Engine.process`, each event's state written before it returns; else
    `process_queued` and a flush every `batch` events, as the HTTP path's group commit
    decides a batch and sends its state writes before committing it."""
    engine = _engine(url, prefix)
    cpu, wall = time.process_time(), time.perf_counter()
    if batch:
        for start in range(0, len(lines), batch):
            events = [engine.decoder.decode(line) for line in lines[start : start + batch]]
            if PREFETCH:
                engine.prefetch(events)
            for event in events:
                engine.process_queued(event)
            engine.flush()
    else:
        for line in lines:
            engine.process(engine.decoder.decode(line))
    out = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    state = engine.state
    if isinstance(state, RedisState):
        out.update(
            round_trips=state.round_trips,
            commands=state.commands,
            bytes_written=state.bytes_written,
            conflicts=state.conflicts,
            sent=state.traffic[0],
            received=state.traffic[1],
        )
    return out


def _child(url: str, prefix: str, lines: list[bytes], batch: int, queue: Any) -> None:
    queue.put(_decide_all(url, prefix, lines, batch))


def _info(client: RedisClient, section: str) -> Any:
    """`INFO section` of every primary: a cluster client asks one node unless told (the
    figures before 2026-12-06 23:00 UTC counted one node of three for the cluster)."""
    if isinstance(client, RedisCluster):
        return client.info(section, target_nodes=RedisCluster.PRIMARIES)
    return client.info(section)


def _redis_cpu_s(client: RedisClient) -> float:
    """CPU seconds Redis has used (summed over the cluster's nodes)."""
    info: Any = _info(client, "cpu")
    nodes = info.values() if "used_cpu_user" not in info else [info]
    return sum(float(n["used_cpu_user"]) + float(n["used_cpu_sys"]) for n in nodes)


def _commandstats(client: RedisClient) -> dict[str, tuple[int, int]]:
    """Calls and µs by command (summed over the cluster's nodes), from `INFO commandstats`."""
    info: Any = _info(client, "commandstats")
    nodes = info.values() if not any(k.startswith("cmdstat_") for k in info) else [info]
    out: dict[str, tuple[int, int]] = {}
    for node in nodes:
        for name, stat in node.items():
            if name.startswith("cmdstat_"):
                calls, usec = out.get(name[8:], (0, 0))
                out[name[8:]] = (calls + int(stat["calls"]), usec + int(stat["usec"]))
    return out


def _redis_memory(client: RedisClient) -> int:
    info: Any = _info(client, "memory")
    nodes = info.values() if "used_memory" not in info else [info]
    return sum(int(n["used_memory"]) for n in nodes)


def _clean(client: RedisClient, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):  # the cluster client splits a DEL by slot
        client.delete(*keys[start : start + 1000])


def _measured(
    name: str, url: str | None, lines: list[bytes], workers: int, batch: int = 0
) -> dict[str, Any]:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    client = connect(url) if url is not None else None
    redis_cpu = _redis_cpu_s(client) if client is not None else 0.0
    memory = _redis_memory(client) if client is not None else 0
    stats = _commandstats(client) if client is not None else {}
    began = time.perf_counter()
    if workers == 1:
        parts = [_decide_all(url, prefix, lines, batch)]
    else:
        assert url is not None
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_child, args=(url, prefix, lines[w::workers], batch, queue))
            for w in range(workers)
        ]
        for proc in procs:
            proc.start()
        parts = [queue.get() for _ in procs]
        for proc in procs:
            proc.join()
    wall = time.perf_counter() - began if workers > 1 else parts[0]["wall_s"]
    n = len(lines)
    row: dict[str, Any] = {
        "setup": name,
        "events_per_s": round(n / wall),
        "client_cpu_us_per_event": round(sum(p["cpu_s"] for p in parts) / n * 1e6),
    }
    if client is not None:
        row["redis_cpu_us_per_event"] = round((_redis_cpu_s(client) - redis_cpu) / n * 1e6)
        row["round_trips_per_event"] = round(sum(p["round_trips"] for p in parts) / n, 2)
        row["commands_per_event"] = round(sum(p["commands"] for p in parts) / n, 1)
        row["bytes_written_per_event"] = round(sum(p["bytes_written"] for p in parts) / n)
        row["bytes_sent_per_event"] = round(sum(p["sent"] for p in parts) / n)
        row["bytes_received_per_event"] = round(sum(p["received"] for p in parts) / n)
        row["cas_retries"] = sum(p["conflicts"] for p in parts)
        after = _commandstats(client)
        row["redis_ops_per_event"] = {  # calls per event and Redis µs per call, by command
            name: (
                round((calls - stats.get(name, (0, 0))[0]) / n, 2),
                round(
                    (usec - stats.get(name, (0, 0))[1])
                    / max(1, calls - stats.get(name, (0, 0))[0]),
                    2,
                ),
            )
            for name, (calls, usec) in after.items()
            if calls - stats.get(name, (0, 0))[0] >= n // 10
        }
        users = sum(1 for _ in client.scan_iter(match=f"{prefix}:{{user:*}}", count=1000))
        keys = sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=1000))
        guards = sum(1 for _ in client.scan_iter(match=f"{prefix}:*}}:e", count=1000))
        row["keys"] = keys - guards  # the entity hashes and globals
        row["guard_keys"] = guards  # the recent writers' event ids (CAS), GUARD_MS each
        row["accounts"] = users
        row["redis_bytes_per_account"] = round((_redis_memory(client) - memory) / max(users, 1))
        _clean(client, prefix)
        client.close()
    return row


def run(n_events: int = 20_000, days: int = 10, batch: int = 8) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.jsonl"
        users = max(60, n_events * 10 // (18 * days))
        simulate(SimConfig(users=users, days=days, seed=7), events, Path(tmp) / "l")
        lines = events.read_bytes().splitlines()[:n_events]
    b = f"batches of {batch}"
    rows = [
        _measured("embedded (in-process state)", None, lines, 1),
        _measured("1 worker, single Redis", SINGLE, lines, 1),
        _measured(f"1 worker, single Redis, {b}", SINGLE, lines, 1, batch),
        _measured("1 worker, Redis Cluster (3 primaries)", CLUSTER, lines, 1),
        _measured(f"1 worker, Redis Cluster, {b}", CLUSTER, lines, 1, batch),
        _measured(f"2 workers, single Redis, {b}", SINGLE, lines, 2, batch),
        _measured(f"2 workers, Redis Cluster, {b}", CLUSTER, lines, 2, batch),
    ]
    return {"events": len(lines), "rows": rows, "loadavg": os.getloadavg()}


if __name__ == "__main__":
    result = run(*(int(a) for a in sys.argv[1:4]))
    print(f"{result['events']} events, load average {result['loadavg']}")
    for row in result["rows"]:
        print(row)
