"""The same simulated stream through the embedded engine and through two workers on Redis
Cluster: identical actions, scores and reasons for every event (issue 17, "Done when").

Sequentially, the events alternate between two workers (two engines, each with its own
`RedisState` and its own scratch feature state, on one Cluster); the event log and the
outcome book they share stand for the Postgres log of a scaled-out deployment. Sent
concurrently (every event to both workers at once, from two threads), each event_id is
decided exactly once and every account's velocity counts equal the embedded engine's:
no update is lost, none is counted twice.

The stream's size is `PAYGUARD_DIFF_EVENTS` (default 4,000, a minute or two on a shared
2-core machine; docs/scale.md records a run of the issue's 50,000).
"""

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from state_support import clean_client, cluster_url, engine, feature_ruleset_text, redis_state

from payguard.decision import Decision
from payguard.engine import Engine
from payguard.events import OUTCOME_TYPES, Event
from payguard.outcomes import OutcomeBook
from payguard.policy.degraded import REASON_CODE as DEGRADED
from payguard.sim import simulate
from payguard.sim.config import SimConfig
from payguard.store import MemoryRecorder

EVENTS = int(os.environ.get("PAYGUARD_DIFF_EVENTS", "4000"))


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The first EVENTS lines of a simulation sized to hold them (attacks included)."""
    out = tmp_path_factory.mktemp("diff")
    cfg = SimConfig(users=max(60, EVENTS // 18), days=10, seed=17)
    simulate(cfg, out / "events.jsonl", out / "labels.jsonl")
    lines = Path(out / "events.jsonl").read_bytes().splitlines()[:EVENTS]
    assert len(lines) == EVENTS, f"the simulation gave {len(lines)} events, wanted {EVENTS}"
    return lines


@pytest.fixture(scope="module")
def ruleset_text() -> str:
    return feature_ruleset_text()


@pytest.fixture(scope="module")
def embedded(stream: list[bytes], ruleset_text: str) -> tuple[Engine, list[Decision]]:
    """The embedded engine's decisions of the stream, in order."""
    decider = engine(ruleset_text)
    return decider, [decider.process(decider.decoder.decode(line))[0] for line in stream]


@pytest.fixture
def prefix() -> Iterator[str]:
    url = cluster_url()
    name = f"d{uuid.uuid4().hex[:10]}"
    yield name
    clean_client(url, name).close()


def _workers(ruleset_text: str, prefix: str, shared_log: bool) -> list[Engine]:
    """Two engines on one Redis Cluster state (and, if `shared_log`, one event log and
    outcome book, as a scaled-out deployment's Postgres log)."""
    url = cluster_url()
    recorder = MemoryRecorder() if shared_log else None
    outcomes = OutcomeBook() if shared_log else None
    return [
        engine(ruleset_text, state=redis_state(url, prefix), recorder=recorder, outcomes=outcomes)
        for _ in range(2)
    ]


def _verdict(decision: Decision) -> tuple[Any, ...]:
    return (
        decision.action,
        decision.score,
        [(r.code, r.rule, r.text) for r in decision.reasons],
    )


def _decide(worker: Engine, lines: list[bytes], batch: int) -> list[tuple[Decision, bool]]:
    """`lines` decided by `worker`: one by one (`process`), or in batches read in one
    round trip each (`prefetch`, `process_queued`, `flush`: the group commit's way)."""
    if not batch:
        return [worker.process(worker.decoder.decode(line)) for line in lines]
    out = []
    for start in range(0, len(lines), batch):
        events = [worker.decoder.decode(line) for line in lines[start : start + batch]]
        worker.prefetch(events)
        out += [worker.process_queued(event) for event in events]
        worker.flush()
    return out


@pytest.mark.parametrize("batch", [0, 8])
def test_two_workers_in_sequence_decide_as_the_embedded_engine(
    stream: list[bytes],
    embedded: tuple[Engine, list[Decision]],
    ruleset_text: str,
    prefix: str,
    batch: int,
) -> None:
    """Event by event, the workers alternating; or in batches of 8, alternating batches."""
    workers = _workers(ruleset_text, prefix, shared_log=True)
    _, expected = embedded
    differ = []
    size = batch or 1
    for i in range(0, len(stream), size):
        worker = workers[(i // size) % 2]
        for j, (decision, repeat) in enumerate(_decide(worker, stream[i : i + size], batch)):
            assert not repeat
            if _verdict(decision) != _verdict(expected[i + j]):
                differ.append((decision.event_id, _verdict(expected[i + j]), _verdict(decision)))
    assert not differ, f"{len(differ)} of {len(stream)} decisions differ, first: {differ[:3]}"
    assert len({d.action for d in expected} - {"allow"}) >= 2  # not a stream of allows


@pytest.mark.parametrize("batch", [0, 8])
def test_two_workers_at_once_decide_each_event_once_and_count_exactly(
    stream: list[bytes],
    embedded: tuple[Engine, list[Decision]],
    ruleset_text: str,
    prefix: str,
    batch: int,
) -> None:
    """Every event sent to both workers at once, one by one or in batches of 8 (each
    worker's batch claims its ids with its read: a worker meeting an id the other holds
    publishes what its batch decided before it waits, so neither waits for the other)."""
    workers = _workers(ruleset_text, prefix, shared_log=False)
    lines = [line for line in stream if _type(workers[0], line) not in OUTCOME_TYPES]
    decided: list[list[str]] = [[], []]
    repeats: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def send_all(w: int) -> None:
        worker = workers[w]
        try:
            for decision, repeat in _decide(worker, lines, batch):
                assert all(r.code != DEGRADED for r in decision.reasons), decision
                (repeats if repeat else decided)[w].append(decision.event_id)
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)
            raise

    threads = [threading.Thread(target=send_all, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    once = decided[0] + decided[1]
    assert len(once) == len(set(once)) == len(lines)  # each decided by exactly one worker
    assert sorted(repeats[0] + repeats[1]) == sorted(once)  # the other answered it as a repeat
    _assert_counts_match(embedded[0], workers[0], lines)


def _type(worker: Engine, line: bytes) -> str:
    return worker.decoder.decode(line).type


VELOCITY_HOWS = frozenset({"count", "sum", "distinct"})


def _assert_counts_match(embedded: Engine, worker: Engine, lines: list[bytes]) -> None:
    """Every account's counts, sums and distinct counts over streams that do not depend on
    the decisions (no `settled`/`stopped` filter), as of just after the last event: the
    embedded engine's (which saw outcomes too: so only streams no outcome feeds) equal
    the Redis workers'."""
    features = embedded.features
    names = [name for name, f in features.layout.items() if _velocity(features, f)]
    assert names
    plan = features.plan(names)
    events = [embedded.decoder.decode(line) for line in lines]
    end = max(e.ts for e in events) + 1
    users = sorted({e.user_id for e in events if e.user_id is not None})
    wrong = []
    for user in users:
        probe = Event(event_id=f"probe-{user}", type="login", ts=end, user_id=user)
        want = embedded.state.snapshot(probe, plan)
        got = worker.state.snapshot(probe, plan)
        if want != got:
            wrong.append((user, {k: (v, got[k]) for k, v in want.items() if got[k] != v}))
    assert not wrong, f"{len(wrong)} of {len(users)} accounts differ, first: {wrong[:3]}"


def _velocity(features: Any, feature: Any) -> bool:
    """A by-account count, sum or distinct over a stream no decision or outcome feeds."""
    if feature.how not in VELOCITY_HOWS or feature.stream < 0:
        return False
    stream = features.streams[feature.stream]
    flt = stream.filter
    return (
        stream.by == "user"
        and not (flt.settled or flt.stopped)
        and not set(flt.types) & (OUTCOME_TYPES | {"*"})
        and flt.source != "referenced"
    )
