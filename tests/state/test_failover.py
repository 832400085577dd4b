"""Failure under load (issue 17, "Done when"): `payguard serve --workers 2` on a private
3-node Redis Cluster (AOF, `appendfsync always`) and the Postgres log, a bounded load of
distinct payments from clients that retry an event_id until it is answered; one worker is
SIGKILLed mid-load, then one Redis node is SIGKILLed and started again from its AOF.

Afterwards: every answered event is in the log with the decision it was answered with;
every event_id is decided once (one row, and every answer of it the same); and every
account's velocity counts in Redis equal a brute-force replay of the events answered with
a normal decision (none lost, none counted twice). Events answered in degraded mode
(docs/scale.md) are in the log and not in the state, as declared.

An event in flight on the killed worker gets no answer; its client posts it again and
another worker answers it (docs/scale.md, "A worker killed mid-decision")."""

import shutil
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from failover_support import (
    Load,
    PrivateCluster,
    exactness,
    kill_worker,
    payments,
    serve,
    wait_for,
    writes_lost,
    writes_resent,
)
from state_support import feature_ruleset_text

from payguard.policy.degraded import REASON_CODE
from payguard.store.postgres import PostgresRecorder

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="no redis-server",
)

EVENTS = 600
USERS = 12


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    nodes = PrivateCluster(tmp_path / "cluster")
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


def test_kill_a_worker_and_restart_a_node_under_load(
    tmp_path: Path, cluster: PrivateCluster, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    log_dsn = f"{dsn} options='-c search_path={schema}'"
    ruleset_text = feature_ruleset_text()
    server = serve(tmp_path, cluster.url, log_dsn, ruleset_text)
    events = payments("f", EVENTS, USERS, int(time.time() * 1000) - 3_600_000)
    load = Load(server, events)
    try:
        load.start()
        wait_for("a quarter answered", lambda: load.count() >= EVENTS // 4, 120)
        killed, _ = kill_worker(server)
        wait_for("a new worker", lambda: len(server.ready()) >= 3, 180)
        wait_for("half answered", lambda: load.count() >= EVENTS // 2, 120)
        node = cluster.ports[1]
        cluster.kill_node(node)
        cluster.start_node(node)
        load.join()
        assert killed not in server.workers()
    finally:
        server.stop()
    print(_summary(server, load))  # what this run went through (pytest -s shows it)
    assert not load.refused, load.refused[:3]
    assert sorted(load.answered) == sorted(e["event_id"] for e in events)
    _assert_logged_once_as_answered(log_dsn, load.answered)
    _assert_counts_exact(cluster.url, ruleset_text, events, load.answered, server)


def _verdict(body: dict[str, Any]) -> tuple[Any, ...]:
    return body["action"], body["score"], [r["code"] for r in body["reasons"]]


def _assert_logged_once_as_answered(log_dsn: str, answered: dict[str, dict[str, Any]]) -> None:
    """One row per event_id (the unique index) holding the decision it was answered with."""
    recorder = PostgresRecorder(log_dsn)
    try:
        differ = []
        for event_id, body in answered.items():
            stored = recorder.lookup(event_id)
            assert stored is not None, f"{event_id} was answered but is not in the log"
            logged = _verdict(msgspec.to_builtins(stored.decision))
            if logged != _verdict(body):
                differ.append((event_id, logged, _verdict(body)))
        assert not differ, differ[:3]
    finally:
        recorder.close()


def _assert_counts_exact(
    url: str,
    ruleset_text: str,
    events: list[dict[str, Any]],
    answered: dict[str, Any],
    server: Any,
) -> None:
    """Every account's counts and sums in Redis (and its device's, IP's, merchant's,
    pairs'), read through the engine's own feature code, equal those of a memory state
    that filed every event answered normally: none lost, none counted twice — an event
    whose write went unanswered and was sent again too (the compare-and-set is once per
    event). Skipped: the entities of an event whose write is declared lost, or whose
    resend never landed (its worker was killed holding it)."""
    lost = writes_lost(server)
    sent, landed = writes_resent(server)
    found = exactness(url, ruleset_text, events, answered, lost | (sent - landed))
    assert found.compared > 0
    assert not found.wrong, (
        f"{len(found.wrong)} of {found.compared} values differ "
        f"({found.degraded} degraded, {len(sent)} resent): {found.wrong[:3]}"
    )


def _summary(server: Any, load: Load) -> str:
    said = [line for _, line in server.lines]
    causes = [
        r["text"]
        for body in load.answered.values()
        for r in body["reasons"]
        if r["code"] == REASON_CODE
    ]
    degraded = len(causes)
    return (
        f"answered {len(load.answered)}, retried {len(load.retried)}, degraded {degraded}, "
        f"recorded for a dead worker {sum('never committed' in x for x in said)}, "
        f"state writes lost {len(writes_lost(server))}, "
        f"sent again {len(writes_resent(server)[0])}; degraded causes: {sorted(set(causes))}"
    )
