"""One contract for every state backend: memory, Redis and Redis Cluster.

Modelled on Litestar's store tests: the same test body runs over each backend, built by
one fixture; Redis and the Cluster are real servers on loopback (support.redis_url,
support.cluster_url: skipped only when nothing answers and the CI variable is unset).

The core of the contract is the brute-force twin of tests/features/test_point_in_time.py:
random streams (every aggregate, pairs, carrier signals reaching accounts through phone
links, feedback, payee views, out-of-order arrival within the lateness, watched history)
are applied through the backend, and before every event the backend's snapshot must equal
the brute-force recomputation over the raw log. Then point in time, late events, claims,
and, for backends shared by workers, concurrent writers to one entity.
"""

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_support import clean_client, cluster_url, redis_url
from test_point_in_time import (
    SMALL_CATALOG,
    WATCH_CATALOG,
    _declined,
    backfilled_streams,
    streams,
)

from payguard.decision import Decision
from payguard.events import Event
from payguard.features import Catalog, FeatureState, load_catalog
from payguard.features.reference import ReferenceFeatures
from payguard.state import MemoryState, StateBackend, StateUnavailable, wire
from payguard.state import redis as redis_state
from payguard.state.redis import RedisState, connect

Factory = Callable[[Catalog], StateBackend]
BACKENDS = ["memory", "redis", "cluster"]


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Builds fresh, empty backends of one kind (each Redis one under its own prefix,
    deleted afterwards)."""
    made: list[tuple[str, str]] = []
    url = ""
    if request.param == "redis":
        url = redis_url()
    elif request.param == "cluster":
        url = cluster_url()

    def factory(catalog: Catalog) -> StateBackend:
        features = FeatureState(catalog)
        if not url:
            return MemoryState(features)
        prefix = f"t{uuid.uuid4().hex[:12]}"
        made.append((url, prefix))
        return RedisState(features, connect(url), prefix=prefix)

    yield factory
    for used_url, prefix in made:
        clean_client(used_url, prefix).close()


def _run(backend: StateBackend, stream: list[tuple[Event, bool]]) -> None:
    """Before every event the backend answers what the brute-force twin recomputes."""
    _run_batches(backend, stream, None)


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_snapshots_match_brute_force(backend_name: str, data: st.DataObject) -> None:
    stream = data.draw(streams())
    backend, cleanup = _standalone(backend_name, SMALL_CATALOG)
    try:
        _run(backend, stream)
    finally:
        cleanup()


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_watched_history_matches_brute_force(backend_name: str, data: st.DataObject) -> None:
    stream = data.draw(backfilled_streams())
    backend, cleanup = _standalone(backend_name, WATCH_CATALOG)
    try:
        _run(backend, stream)
    finally:
        cleanup()


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_default_catalog_matches_brute_force(backend_name: str, data: st.DataObject) -> None:
    stream = data.draw(streams(max_events=25))
    backend, cleanup = _standalone(backend_name, load_catalog())
    try:
        _run(backend, stream)
    finally:
        cleanup()


def _standalone(name: str, catalog: Catalog) -> tuple[StateBackend, Callable[[], None]]:
    """A backend outside the fixture (hypothesis runs many examples per test call)."""
    features = FeatureState(catalog)
    if name == "memory":
        return MemoryState(features), lambda: None
    url = redis_url() if name == "redis" else cluster_url()
    prefix = f"t{uuid.uuid4().hex[:12]}"
    backend = RedisState(features, connect(url), prefix=prefix)
    return backend, lambda: clean_client(url, prefix).close()


def _pay(n: int, ts: int, user: str = "u1", amount: int = 1_000) -> Event:
    return Event(event_id=f"e{n}", type="payment", ts=ts, user_id=user, amount=amount)


COUNT = "count_money_out_by_user_1h"
COUNT_CATALOG = load_catalog()


def _count_plan(backend: StateBackend) -> Any:
    return backend.features.plan([COUNT])


def _count(backend: StateBackend, event: Event) -> int:
    """How many earlier payments of the event's user the 1-hour window counts."""
    count: int = backend.snapshot(event, _count_plan(backend))[COUNT]
    return count


def test_an_event_never_sees_itself(make: Factory) -> None:
    backend = make(COUNT_CATALOG)
    first = _pay(1, 1_000_000_000)
    assert _count(backend, first) == 0
    backend.apply(first, None, False)
    second = _pay(2, 1_000_000_000)  # same time: sees the first (arrived before), not itself
    assert _count(backend, second) == 1
    backend.apply(second, None, False)
    assert _count(backend, _pay(3, 1_000_000_000)) == 2
    assert backend.watermark() == 1_000_000_000


def test_a_late_event_within_the_lateness_lands_where_it_belongs(make: Factory) -> None:
    backend = make(COUNT_CATALOG)
    t = 2_000_000_000
    for n, ts in enumerate([t, t + 60_000, t - 120_000]):  # the third is 2 minutes late
        probe = _pay(100 + n, ts)
        backend.snapshot(probe, _count_plan(backend))
        backend.apply(_pay(n, ts), None, False)
    # as of t - 60 s only the late one (t - 120 s) is in the past
    assert _count(backend, _pay(200, t - 60_000)) == 1
    assert _count(backend, _pay(201, t + 60_000)) == 3


def test_entities_do_not_mix(make: Factory) -> None:
    backend = make(COUNT_CATALOG)
    backend.apply(_pay(1, 5_000_000_000, user="a"), None, False)
    backend.apply(_pay(2, 5_000_000_000, user="a"), None, False)
    backend.apply(_pay(3, 5_000_000_000, user="b"), None, False)
    assert _count(backend, _pay(4, 5_000_000_001, user="a")) == 2
    assert _count(backend, _pay(5, 5_000_000_001, user="b")) == 1
    assert _count(backend, _pay(6, 5_000_000_001, user="c")) == 0


def _peer(backend: StateBackend) -> StateBackend:
    """Another worker on the same state (itself, for an unshared backend)."""
    if isinstance(backend, RedisState):
        features = FeatureState(backend.features.catalog)
        return RedisState(features, backend.client, prefix=backend.prefix)
    return backend


def _decision(event_id: str, action: str = "allow") -> Decision:
    return Decision(
        event_id=event_id, action=action, score=0, reasons=[], ruleset="t", model=None,
        latency_us=0,
    )  # fmt: skip


def test_a_claim_is_granted_once_and_answers_the_first_decision(make: Factory) -> None:
    backend = make(COUNT_CATALOG)
    event = _pay(1, 6_000_000_000)
    assert backend.claim(event, b"h1") is None
    backend.settle(event.event_id, b"h1", _decision("e1", "review"))
    backend.apply(event, None, False)  # a shared backend publishes the decision with it
    backend.flush()  # (its writes wait for this worker's next round trip, or this)
    other = _peer(backend)  # another worker
    claimed = other.claim(event, b"h1")
    assert claimed is not None
    assert claimed.payload_hash == b"h1"
    assert claimed.decision.action == "review"


def test_a_released_claim_can_be_claimed_again(make: Factory) -> None:
    backend = make(COUNT_CATALOG)
    event = _pay(1, 6_000_000_000)
    assert backend.claim(event, b"h") is None
    backend.release(event.event_id)
    assert backend.claim(event, b"h") is None


def test_concurrent_writers_lose_no_update(make: Factory) -> None:
    """Workers applying payments of one account at once: every one is counted."""
    first = make(COUNT_CATALOG)
    if not first.shared:
        pytest.skip("an unshared backend has one writer")
    workers = [first, *(_peer(first) for _ in range(3))]
    t = 7_000_000_000
    per_worker = 25

    def work(w: int, backend: StateBackend) -> None:
        for i in range(per_worker):
            event = _pay(w * 1000 + i, t + i, user="hot")
            backend.snapshot(event, _count_plan(backend))
            backend.apply(event, None, False)
        backend.flush()

    threads = [threading.Thread(target=work, args=(w, b)) for w, b in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count(first, _pay(99_999, t + 1_000, user="hot")) == per_worker * len(workers)


def test_a_lost_race_is_filed_again_on_the_fresh_state(make: Factory) -> None:
    """Worker A reads an entity, worker B writes it, then A writes: A's compare-and-set
    fails, A files its event into B's version, and both payments count."""
    a = make(COUNT_CATALOG)
    if not a.shared:
        pytest.skip("an unshared backend has one writer")
    b = _peer(a)
    t = 9_000_000_000
    first, second = _pay(1, t, user="r"), _pay(2, t + 1, user="r")
    assert _count(a, first) == 0  # A has read the account
    b.snapshot(second, _count_plan(b))
    b.apply(second, None, False)
    b.flush()  # B wrote it in between
    a.apply(first, None, False)
    a.flush()
    assert isinstance(a, RedisState)
    assert a.conflicts >= 1
    assert _count(b, _pay(3, t + 2, user="r")) == 2


def test_redis_keys_are_one_slot_per_entity_and_expire(make: Factory) -> None:
    backend = make(COUNT_CATALOG)
    if not isinstance(backend, RedisState):
        pytest.skip("memory state has no keys")
    backend.apply(_pay(1, 8_000_000_000, user="u42"), None, False)
    backend.flush()
    key = backend.key(("user", "u42"))
    assert key == f"{backend.prefix}:{{user:u42}}"
    ttl = backend.client.pttl(key)
    assert 0 < ttl <= backend.ttl_ms


def test_a_deferred_write_that_lost_its_race_is_filed_again_before_the_next_read(
    make: Factory,
) -> None:
    """A's write waits for A's next round trip; B writes the account meanwhile. The next
    event's fetch carries A's write, which fails its compare-and-set: A files its event
    into B's version again and reads the account afresh, so the next event counts both."""
    a = make(COUNT_CATALOG)
    if not a.shared:
        pytest.skip("an unshared backend has one writer")
    b = _peer(a)
    t = 10_000_000_000
    first, second = _pay(1, t, user="d"), _pay(2, t + 1, user="d")
    assert _count(a, first) == 0
    a.apply(first, None, False)  # deferred
    assert _count(b, second) == 0  # not sent yet: B does not see it
    b.apply(second, None, False)
    b.flush()
    assert isinstance(a, RedisState)
    assert _count(a, _pay(3, t + 2, user="d")) == 2  # A's write retried, then read again
    assert a.conflicts >= 1
    a.flush()
    assert _count(b, _pay(4, t + 3, user="d")) == 2


class _Faults:
    """A fault hook in the wire (`_Link`): the next round trip's replies are read (the
    writes landed) and then lost, or its commands are never sent."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.drop_replies = self.drop_sends = 0
        replies, send = wire._Link.replies, wire._Link.send

        def lossy_replies(link: wire._Link, n: int) -> list[Any]:
            out = replies(link, n)
            if self.drop_replies and n:
                self.drop_replies -= 1
                raise ConnectionError("connection reset (reply lost, injected)")
            return out

        def lossy_send(link: wire._Link, commands: Any) -> None:
            if self.drop_sends:
                self.drop_sends -= 1
                raise ConnectionError("connection reset (nothing sent, injected)")
            send(link, commands)

        monkeypatch.setattr(wire._Link, "replies", lossy_replies)
        monkeypatch.setattr(wire._Link, "send", lossy_send)


def _shared(make: Factory) -> RedisState:
    backend = make(COUNT_CATALOG)
    if not isinstance(backend, RedisState):
        pytest.skip("an unshared backend has no wire to lose")
    return backend


def _landed_reply_lost(a: RedisState, faults: _Faults, event: Event) -> None:
    """`event` filed and flushed by `a`; the write lands and its reply is lost."""
    assert _count(a, event) == 0
    a.apply(event, None, False)
    faults.drop_replies = 1
    with pytest.raises(StateUnavailable):
        a.flush()


def test_a_write_whose_reply_was_lost_is_sent_again_and_counted_once(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compare-and-set lands, its reply is lost (a reset, a node failing over): the
    worker sends it again with its next round trip, which finds it applied (`CAS` answers
    2), not a lost race to file again. Before, such a resend counted the event twice."""
    a = _shared(make)
    faults = _Faults(monkeypatch)
    t = 11_000_000_000
    _landed_reply_lost(a, faults, _pay(1, t, user="l"))
    assert _count(a, _pay(2, t + 1, user="l")) == 1  # this fetch carried the resend
    assert a.resent_applied >= 1
    assert a.conflicts == 0
    assert not a.lost
    assert _count(_peer(a), _pay(3, t + 2, user="l")) == 1


def test_a_lost_reply_then_another_writer_still_counts_each_event_once(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's write lands and its reply is lost; B writes the account after it; A's resend
    meets a newer version, but its event id is among the entity's recent writers: applied,
    not a lost race (the last writer alone would not tell)."""
    a = _shared(make)
    b = _peer(a)
    faults = _Faults(monkeypatch)
    t = 12_000_000_000
    second = _pay(2, t + 1, user="m")
    _landed_reply_lost(a, faults, _pay(1, t, user="m"))
    assert _count(b, second) == 1
    b.apply(second, None, False)
    b.flush()
    a.flush()  # the resend
    assert isinstance(b, RedisState)
    assert a.resent_applied >= 1
    assert not a.lost
    assert _count(b, _pay(3, t + 2, user="m")) == 2


def test_a_write_never_sent_is_sent_with_the_next_round_trip(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing reached Redis (connection refused, a node away): the writes are kept and
    the next round trip lands them, instead of the event being lost to the state."""
    a = _shared(make)
    faults = _Faults(monkeypatch)
    t = 13_000_000_000
    first = _pay(1, t, user="n")
    assert _count(a, first) == 0
    a.apply(first, None, False)
    faults.drop_sends = 1
    with pytest.raises(StateUnavailable):
        a.flush()
    assert _count(_peer(a), _pay(2, t + 1, user="n")) == 0  # not there yet
    a.flush()
    assert a.resent_applied == 0
    assert not a.lost
    assert _count(_peer(a), _pay(3, t + 2, user="n")) == 1


def test_the_same_write_sent_twice_changes_the_state_once(make: Factory) -> None:
    """The commands of one event's writes sent a second time as they are (redis-py's own
    retry of a command whose reply was lost does this): every `CAS` answers 2."""
    a = _shared(make)
    t = 14_000_000_000
    first = _pay(1, t, user="o")
    assert _count(a, first) == 0
    a.apply(first, None, False)
    deferred = a._deferred
    assert deferred is not None
    cas = [c for c in deferred.commands if c[0] == "EVALSHA"]
    a.flush()
    assert [a.client.execute_command(*c) for c in cas] == [2] * len(cas)
    assert _count(a, _pay(2, t + 1, user="o")) == 1


def test_writes_failing_longer_than_the_resend_window_are_lost(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker does not carry an event's writes forever: past `RESEND_MS` since the
    first failure the event is declared lost (decided, recorded, absent from the state)."""
    a = _shared(make)
    faults = _Faults(monkeypatch)
    first = _pay(1, 15_000_000_000, user="p")
    a.snapshot(first, _count_plan(a))
    a.apply(first, None, False)
    faults.drop_sends = 1
    with pytest.raises(StateUnavailable):
        a.flush()
    assert a._deferred is not None and a._deferred.failed_at is not None
    a._deferred.failed_at -= redis_state.RESEND_MS / 1000
    faults.drop_sends = 1
    with pytest.raises(StateUnavailable):
        a.flush()
    assert [event_id for event_id, _ in a.lost] == ["e1"]
    a.flush()  # nothing left to send


def test_an_entity_forgets_its_writers_after_the_guard_window(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ids of the events that wrote an entity stay `GUARD_MS` (trimmed at every
    `TRIM_EVERY`th write), and the set expires that long after the last write: a busy
    entity's set holds about a minute of writes, an idle one's leaves."""
    a = _shared(make)
    clock = [1_000_000_000_000]
    monkeypatch.setattr(redis_state, "_now_ms", lambda: clock[0])
    t = 17_000_000_000
    for n in range(redis_state.TRIM_EVERY + 1):
        event = _pay(n, t + n, user="q")
        a.snapshot(event, _count_plan(a))
        a.apply(event, None, False)
        a.flush()
        if n == 0:
            clock[0] += 2 * redis_state.GUARD_MS
    key = a.guard_key(("user", "q"))
    kept = {member.decode() for member in a.client.zrange(key, 0, -1)}
    assert kept == {f"e{n}" for n in range(1, redis_state.TRIM_EVERY + 1)}
    assert 0 < a.client.pttl(key) <= redis_state.GUARD_MS


# -- batches: a batch's state read in one round trip (`RedisState.prefetch`) -------------
# The brute-force twin with the stream cut into random batches, each prefetched, decided
# event by event and flushed; then the cases a batch adds: two events of one batch on one
# entity, another worker writing an entity inside the batch, a batch holding an event
# another worker filed already, a batch's writes sent twice, the claims a prefetch takes.


def _run_batches(
    backend: StateBackend, stream: list[tuple[Event, bool]], cuts: list[int] | None
) -> None:
    """Before every event the backend answers what the brute-force twin recomputes, the
    stream decided in batches ending at `cuts` (each prefetched, then flushed), or event
    by event without a prefetch (`cuts` None)."""
    catalog = backend.features.catalog
    slow = ReferenceFeatures(catalog)
    plan = backend.features.plan(backend.features.layout)
    seen: dict[str, Event] = {}
    batched = cuts is not None
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts or ())})
    for start, end in itertools.pairwise(bounds):
        batch = stream[start:end]
        if batched:
            backend.prefetch([event for event, _ in batch])
        for event, sweep in batch:
            assert backend.snapshot(event, plan) == slow.snapshot(event), event
            referenced = seen.get(event.ref_event_id) if event.ref_event_id else None
            declined = _declined(event)
            backend.apply(event, referenced, declined)
            slow.update(event, declined)
            seen.setdefault(event.event_id, event)
            if sweep:
                backend.sweep()
        if batched:
            backend.flush()


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_batches_match_brute_force(backend_name: str, data: st.DataObject) -> None:
    stream = data.draw(streams())
    cuts = data.draw(st.lists(st.integers(0, 60), max_size=6))
    backend, cleanup = _standalone(backend_name, SMALL_CATALOG)
    try:
        _run_batches(backend, stream, cuts)
    finally:
        cleanup()


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_batches_keep_watched_history(backend_name: str, data: st.DataObject) -> None:
    stream = data.draw(backfilled_streams())
    cuts = data.draw(st.lists(st.integers(0, 60), max_size=6))
    backend, cleanup = _standalone(backend_name, WATCH_CATALOG)
    try:
        _run_batches(backend, stream, cuts)
    finally:
        cleanup()


@pytest.mark.parametrize("backend_name", BACKENDS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_batches_on_the_default_catalog(backend_name: str, data: st.DataObject) -> None:
    stream = data.draw(streams(max_events=25))
    cuts = data.draw(st.lists(st.integers(0, 30), max_size=4))
    backend, cleanup = _standalone(backend_name, load_catalog())
    try:
        _run_batches(backend, stream, cuts)
    finally:
        cleanup()


def _decide(backend: StateBackend, batch: list[Event]) -> list[int]:
    """Prefetch `batch`, read each event's count and file it (not flushed)."""
    backend.prefetch(batch)
    counts = []
    for event in batch:
        counts.append(_count(backend, event))
        backend.apply(event, None, False)
    return counts


def test_two_events_of_one_batch_on_one_entity(make: Factory) -> None:
    """The second sees the first (from the worker's scratch, nothing sent yet), and the
    batch writes the account once, carrying both events."""
    a = make(COUNT_CATALOG)
    t = 20_000_000_000
    batch = [_pay(1, t, user="s"), _pay(2, t + 1, user="s"), _pay(3, t + 2, user="z")]
    trips = a.round_trips if isinstance(a, RedisState) else 0
    assert _decide(a, batch) == [0, 1, 0]
    a.flush()
    assert _count(_peer(a), _pay(4, t + 3, user="s")) == 2
    if isinstance(a, RedisState):
        assert a.round_trips - trips == 2  # the prefetch and the flush
        guard = a.client.zrange(a.guard_key(("user", "s")), 0, -1)
        assert sorted(guard) == [b"e1", b"e2"]  # one write of the account, both ids


def test_another_worker_writing_inside_the_batch_loses_no_update(make: Factory) -> None:
    """Worker A prefetches a batch of two payments of one account; worker B writes the
    account meanwhile. A's write loses its race, A files its batch's two events into B's
    version: all three count, none twice."""
    a = make(COUNT_CATALOG)
    if not a.shared:
        pytest.skip("an unshared backend has one writer")
    b = _peer(a)
    t = 21_000_000_000
    assert _decide(a, [_pay(1, t, user="r"), _pay(2, t + 1, user="r")]) == [0, 1]
    other = _pay(3, t + 2, user="r")
    assert _count(b, other) == 0  # A's batch is not sent yet
    b.apply(other, None, False)
    b.flush()
    a.flush()
    assert isinstance(a, RedisState)
    assert a.conflicts >= 1
    assert _count(b, _pay(4, t + 3, user="r")) == 3
    assert _count(a, _pay(5, t + 4, user="r")) == 3


def test_two_workers_racing_in_batches_count_every_event_once(make: Factory) -> None:
    """Two workers deciding interleaved batches over three accounts, each reading before
    the other writes: every payment counted once."""
    a = make(COUNT_CATALOG)
    if not a.shared:
        pytest.skip("an unshared backend has one writer")
    b = _peer(a)
    t = 22_000_000_000
    n = 0
    for round_ in range(6):
        batches = []
        for worker in (a, b):
            batch = []
            for i in range(4):
                n += 1
                batch.append(_pay(n, t + n, user=f"h{(round_ + i) % 3}"))
            _decide(worker, batch)
            batches.append(batch)
        a.flush()
        b.flush()
    total = sum(_count(a, _pay(10_000 + k, t + 1_000, user=f"h{k}")) for k in range(3))
    assert total == n


def test_a_batch_holding_an_event_filed_elsewhere_files_only_the_others(
    make: Factory,
) -> None:
    """A worker died with its writes half sent: event e1 is in the account already. A
    batch deciding e1 again with e2 finds e1 among the account's writers (`CAS` 3) and
    files e2 alone into the account: e1 counted once, e2 once."""
    a = make(COUNT_CATALOG)
    if not a.shared:
        pytest.skip("an unshared backend has one writer")
    b = _peer(a)
    t = 23_000_000_000
    first, second = _pay(1, t, user="p"), _pay(2, t + 1, user="p")
    assert _decide(a, [first, second]) == [0, 1]
    assert _count(b, first) == 0
    b.apply(first, None, False)  # the same event, filed by another worker first
    b.flush()
    a.flush()
    assert _count(b, _pay(3, t + 2, user="p")) == 2


def test_a_batch_sent_twice_changes_the_state_once(make: Factory) -> None:
    a = _shared(make)
    t = 24_000_000_000
    _decide(a, [_pay(1, t, user="o"), _pay(2, t + 1, user="o"), _pay(3, t + 2, user="q")])
    assert a._batch is not None
    a._end_batch(a._batch)
    assert a._deferred is not None
    cas = [c for c in a._deferred.commands if c[0] == "EVALSHA"]
    a.flush()
    assert [a.client.execute_command(*c) for c in cas] == [2] * len(cas)
    assert _count(a, _pay(4, t + 3, user="o")) == 2


def test_a_batch_whose_reply_was_lost_is_counted_once(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _shared(make)
    faults = _Faults(monkeypatch)
    t = 25_000_000_000
    _decide(a, [_pay(1, t, user="l"), _pay(2, t + 1, user="l")])
    faults.drop_replies = 1
    with pytest.raises(StateUnavailable):
        a.flush()
    a.flush()  # sent again: applied already
    assert a.resent_applied >= 1
    assert not a.lost
    assert _count(_peer(a), _pay(3, t + 2, user="l")) == 2


def test_a_prefetch_claims_the_batch_and_gives_back_what_no_event_used(
    make: Factory,
) -> None:
    """The batch's ids are claimed with its fetch: an id another worker holds answers its
    decision; a claim no event used (an event refused before deciding) is given back at
    the flush, so a retry can claim it at once."""
    a = _shared(make)
    b = _peer(a)
    t = 26_000_000_000
    taken, mine, unused = _pay(1, t, user="c"), _pay(2, t + 1, user="c"), _pay(3, t + 2)
    assert b.claim(taken, b"h") is None
    b.settle(taken.event_id, b"h", _decision("e1", "review"))
    b.apply(taken, None, False)
    b.flush()
    a.prefetch([taken, mine, unused])
    claimed = a.claim(taken, b"h")
    assert claimed is not None and claimed.decision.action == "review"
    assert a.claim(mine, b"h2") is None
    assert _count(a, mine) == 1  # sees b's event
    a.settle(mine.event_id, b"h2", _decision("e2"))
    a.apply(mine, None, False)
    a.flush()
    assert a.client.get(a._claim_key(unused.event_id)) is None  # given back
    assert b.claim(unused, b"h3") is None
    found = b.claim(mine, b"h2")
    assert found is not None and found.decision.event_id == "e2"


def test_an_event_outside_the_prefetched_batch_is_read_into_it(make: Factory) -> None:
    """An event the prefetch did not name (a request arriving after it) is fetched and
    added to the batch's scratch without losing what the batch filed."""
    a = make(COUNT_CATALOG)
    t = 27_000_000_000
    a.prefetch([_pay(1, t, user="x")])
    assert _count(a, _pay(1, t, user="x")) == 0
    a.apply(_pay(1, t, user="x"), None, False)
    late = _pay(2, t + 1, user="y")
    assert _count(a, late) == 0
    a.apply(late, None, False)
    assert _count(a, _pay(3, t + 2, user="x")) == 1
    a.apply(_pay(3, t + 2, user="x"), None, False)
    a.flush()
    peer = _peer(a)
    assert _count(peer, _pay(4, t + 3, user="x")) == 2
    assert _count(peer, _pay(5, t + 3, user="y")) == 1


def test_two_batches_claiming_each_others_ids_do_not_wait_for_each_other(
    make: Factory,
) -> None:
    """Worker B's batch holds x2 and B waits for x1; worker A's batch holds x1 and A
    meets x2. Each publishes what its batch decided and gives back what it has not
    reached before waiting, so B answers A's decision of x1 and A decides x2 — instead of
    each waiting for the other until `wait_s` runs out. (B may find A's decision without
    waiting; its batch then ends as a batch ends, giving x2 back.)"""
    a = _shared(make)
    b = _peer(a)
    assert isinstance(b, RedisState)
    a.wait_s = b.wait_s = 2.0
    t = 28_000_000_000
    x1, x2 = _pay(1, t, user="w"), _pay(2, t + 1, user="w")
    b.prefetch([x2])
    a.prefetch([x1, x2])
    answered: list[Any] = []

    def b_decides() -> None:
        answered.append(b.claim(x1, b"h1"))
        b.flush()  # the end of b's batch (x2 not reached: given back)

    b_waits = threading.Thread(target=b_decides)
    assert a.claim(x1, b"h1") is None
    b_waits.start()
    a.settle(x1.event_id, b"h1", _decision("e1", "review"))
    a.apply(x1, None, False)
    assert a.claim(x2, b"h2") is None  # b gave x2 back
    a.settle(x2.event_id, b"h2", _decision("e2"))
    a.apply(x2, None, False)
    a.flush()
    b_waits.join()
    assert answered and answered[0] is not None and answered[0].decision.action == "review"
    assert _count(b, _pay(3, t + 2, user="w")) == 2
