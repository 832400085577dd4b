"""Recovery times of `payguard serve --workers 2` on a Redis Cluster under load (issue 17):
a worker SIGKILLed, then a Redis node SIGKILLed and started again from its AOF.

The same set-up as tests/state/test_failover.py (tests/state/failover_support.py): a
private 3-node cluster with `appendfsync always`, the Postgres log in a schema of its own,
4 client threads posting distinct payments and retrying an event_id on a connection error
or a 5xx. Measured, from the client's side and from the workers' log lines:

- worker: from the kill to the supervisor's new worker built (its "deciding on state"
  line), to that worker's first decision (its `payguard_decisions_total` in the shared
  metrics directory, with probes on fresh connections), and from the kill to the answer
  of the last request that was in flight on the killed worker (the client retried it on
  the other worker: the longest wait a client saw);
- Redis node: how long the node was away (kill to answering again), and from its start to
  the last degraded answer (after which every decision is normal again), with the number
  of degraded answers and the longest answer gap;
- exactness: every entity's count and sum features in Redis (accounts, devices, IPs,
  merchants, pairs) against a brute force of the events answered normally — values that
  differ are events lost or counted twice — and the state writes that went unanswered
  and were sent again (each compare-and-set is once per event: docs/scale.md).

    .venv/bin/python -m bench failover          # PAYGUARD_BENCH_FAILOVER_EVENTS=3000
"""

import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "state"))

from failover_support import (  # type: ignore[import-not-found]  # noqa: E402
    Load,
    PrivateCluster,
    Server,
    exactness,
    kill_worker,
    payments,
    serve,
    wait_for,
    writes_lost,
    writes_resent,
)

from payguard.policy.degraded import REASON_CODE  # noqa: E402

PG_DSN = os.environ.get("PAYGUARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test")
EVENTS = int(os.environ.get("PAYGUARD_BENCH_FAILOVER_EVENTS", "3000"))


def _ruleset_text() -> str:
    from state_support import feature_ruleset_text  # type: ignore[import-not-found]

    text: str = feature_ruleset_text()
    return text


def run() -> dict[str, Any]:
    import psycopg

    schema = f"bench_failover_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return _measure(Path(tmp), f"{PG_DSN} options='-c search_path={schema}'")
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _measure(tmp: Path, log_dsn: str) -> dict[str, Any]:
    cluster = PrivateCluster(tmp / "cluster")
    cluster.start()
    try:
        server = serve(tmp, cluster.url, log_dsn, _ruleset_text())
        events = payments("b", EVENTS, 50, int(time.time() * 1000) - 3_600_000)
        load = Load(server, events, deadline_s=600)
        try:
            started = time.monotonic()
            load.start()
            wait_for("a quarter answered", lambda: load.count() >= EVENTS // 4, 300)
            in_flight = set(_unanswered_now(load, events))
            before = set(server.workers())
            _, killed_at = kill_worker(server)
            wait_for("a new worker", lambda: len(server.ready()) >= 3, 300)
            new_worker_s = server.ready()[2] - killed_at
            (new,) = set(server.workers()) - before
            first_answer_s = _first_answer(server, tmp, new) - killed_at
            wait_for("half answered", lambda: load.count() >= EVENTS // 2, 300)
            node = cluster.ports[1]
            node_killed = time.monotonic()
            cluster.kill_node(node)
            cluster.start_node(node)
            node_started = time.monotonic()
            load.join()
            elapsed = time.monotonic() - started
        finally:
            server.stop()
        exact = _exactness(server, cluster.url, events, load)
    finally:
        cluster.stop()
    figures = _figures(load, in_flight, killed_at, node_killed, node_started, elapsed)
    return {
        "worker kill -> new worker built (s)": new_worker_s,
        "worker kill -> new worker's first decision (s)": first_answer_s,
        **figures,
        **exact,
    }


def _exactness(
    server: Server, url: str, events: list[dict[str, Any]], load: Load
) -> dict[str, Any]:
    """Answered events missing from the log's answers, and every entity's counts and sums
    in Redis against a brute force of the events answered normally (failover_support)."""
    lost = writes_lost(server)
    sent, landed = writes_resent(server)
    found = exactness(url, _ruleset_text(), events, load.answered, lost | (sent - landed))
    if found.wrong:
        print("first differences:", found.wrong[:3], file=sys.stderr)
    causes = Counter(
        r["text"].rpartition("unreachable: ")[2]
        for body in load.answered.values()
        for r in body["reasons"]
        if r["code"] == REASON_CODE
    )
    print("degraded answers by cause:", dict(causes), file=sys.stderr)
    return {
        "events not answered": len(events) - len(load.answered),
        "state writes declared lost": len(lost),
        "state writes unanswered, sent again": len(sent),
        "state writes sent again, landed": len(landed),
        "count and sum values compared": found.compared,
        "count and sum values skipped (an entity of a lost write)": found.skipped,
        "values that differ (lost or double-counted)": len(found.wrong),
    }


def _first_answer(server: Server, tmp: Path, pid: int) -> float:
    """When worker `pid` first answered a decision. The load's clients keep their
    connections alive, all on the surviving worker by now, so a new worker gets none of
    them: probe payments on fresh connections (one each) until the kernel hands one to it."""
    headers = {"Authorization": f"Bearer {server.key}", "Connection": "close"}
    probes = payments("probe", 1_000, 5, int(time.time() * 1000) - 600_000)
    for body in probes:
        answer = httpx.post(f"{server.base}/v1/events", json=body, headers=headers, timeout=30)
        if answer.status_code == 200 and _decided(tmp, pid) > 0:
            return time.monotonic()
    raise RuntimeError(f"worker {pid} answered none of {len(probes)} probes")


def _decided(tmp: Path, pid: int) -> float:
    """Decisions a worker made so far, from its file in the shared metrics directory
    (`payguard_decisions_total`, prometheus_client's multiprocess values)."""
    from prometheus_client.mmap_dict import MmapedDict

    path = tmp / "data" / "metrics" / f"counter_{pid}.db"
    if not path.exists():
        return 0
    values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
    decided: float = sum(v for key, v, *_ in values if '"payguard_decisions_total"' in key)
    return decided


def _unanswered_now(load: Load, events: list[dict[str, Any]]) -> list[str]:
    with load.lock:
        return [e["event_id"] for e in events if e["event_id"] not in load.answered]


def _figures(
    load: Load,
    in_flight: set[str],
    killed_at: float,
    node_killed: float,
    node_started: float,
    elapsed: float,
) -> dict[str, Any]:
    retried_after_kill = [
        load.answered_at[i] - killed_at
        for i in load.retried
        if i in in_flight and load.answered_at[i] < node_killed
    ]
    degraded = [
        load.answered_at[i]
        for i, body in load.answered.items()
        if any(r["code"] == REASON_CODE for r in body["reasons"])
    ]
    times = sorted(load.answered_at.values())
    gaps = [b - a for a, b in pairwise(times) if a >= node_killed - 1]
    return {
        "events answered": len(load.answered),
        "decisions/s over the run (both failures included)": len(load.answered) / elapsed,
        "worker kill -> last in-flight request answered (s)": max(retried_after_kill, default=0),
        "requests retried after the worker kill": len(retried_after_kill),
        "redis node away: kill -> answering again (s)": node_started - node_killed,
        "degraded answers": len(degraded),
        "node start -> last degraded answer (s)": max(
            (t - node_started for t in degraded), default=0
        ),
        "longest answer gap around the node restart (s)": max(gaps, default=0),
        "load average (1 min) at the end": os.getloadavg()[0],
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
