"""The engine on a shared state claims each event_id before deciding it: a repeat sent
to another worker answers the first decision, another payload is a conflict, and an
event that is refused gives its claim back at once; a decision whose worker died before
committing it is recorded by the worker its client retries on."""

import uuid
from collections.abc import Iterator

import pytest
from state_support import clean_client, engine, feature_ruleset_text, redis_state, redis_url

from payguard.engine import DuplicateEventError, Engine, core
from payguard.events import Event, EventError
from payguard.policy.degraded import REASON_CODE
from payguard.state import redis as redis_module
from payguard.state.redis import RedisState
from payguard.store.postgres import PostgresRecorder

PAYMENT = (
    b'{"event_id":"%s","type":"payment","ts":1790000000000,"user_id":"u1","amount":"12.00",'
    b'"merchant":{"id":"m1","category":"ecommerce"}}'
)


@pytest.fixture
def workers() -> Iterator[list[Engine]]:
    url = redis_url()
    prefix = f"c{uuid.uuid4().hex[:10]}"
    text = feature_ruleset_text()
    yield [engine(text, state=redis_state(url, prefix)) for _ in range(2)]
    clean_client(url, prefix).close()


def test_a_repeat_on_another_worker_answers_the_first_decision(workers: list[Engine]) -> None:
    first, second = workers
    raw = PAYMENT % b"p-1"
    decision, repeat = first.process(first.decoder.decode(raw))
    assert not repeat
    again, repeat = second.process(second.decoder.decode(raw))
    assert repeat
    assert again == decision


def test_another_payload_under_a_claimed_id_is_a_conflict(workers: list[Engine]) -> None:
    first, second = workers
    first.process(first.decoder.decode(PAYMENT % b"p-2"))
    other = (PAYMENT % b"p-2").replace(b"12.00", b"13.00")
    with pytest.raises(DuplicateEventError):
        second.process(second.decoder.decode(other))


def test_a_refused_event_gives_its_claim_back(workers: list[Engine]) -> None:
    first, second = workers
    label = b'{"event_id":"l-1","type":"label","ts":1790000000000,"ref_event_id":"nowhere",'
    label += b'"label":"fraud","source":"bank"}'
    with pytest.raises(EventError):
        first.process(first.decoder.decode(label))
    with pytest.raises(EventError):  # refused again on its merits, not "still being decided"
        second.process(second.decoder.decode(label))


def test_a_decision_its_worker_never_committed_is_recorded_once_by_another(
    pg_schema: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed after its state writes (which settle the claim) and before its
    commit: the client's retry reaches another worker, which waits for the log, then
    records the settled decision itself, without filing the event a second time."""
    monkeypatch.setattr(core, "ADOPT_AFTER_S", 0.05)
    dsn, schema = pg_schema
    log_dsn = f"{dsn} options='-c search_path={schema}'"
    url = redis_url()
    prefix = f"a{uuid.uuid4().hex[:10]}"
    text = feature_ruleset_text()
    dying, other = (
        engine(text, state=redis_state(url, prefix), recorder=PostgresRecorder(log_dsn))
        for _ in range(2)
    )
    try:
        raw = PAYMENT % b"p-adopt"
        decided, _ = dying.process_queued(dying.decoder.decode(raw))
        dying.send_state()  # the batch's state writes, sent before its commit (commits.py)
        dying.recorder.discard_pending()  # killed before its commit: nothing in the log
        answered, repeat = other.process(other.decoder.decode(raw), commit=True)
        assert (answered, repeat) == (decided, False)
        stored = other.recorder.lookup("p-adopt")
        assert stored is not None and stored.decision == decided
        again, repeat = dying.process(dying.decoder.decode(raw))  # any later retry
        assert (again, repeat) == (decided, True)
        assert _payments_of_u1(other) == 1  # filed once, by the worker that decided it
    finally:
        for worker in (dying, other):
            worker.recorder.close()
        clean_client(url, prefix).close()


def _payments_of_u1(worker: Engine) -> int:
    features = worker.features
    names = [
        name
        for name, f in features.layout.items()
        if f.how == "count" and f.stream >= 0 and features.streams[f.stream].by == "user"
    ]
    plan = features.plan(names)
    probe = Event(event_id="probe", type="login", ts=1790000000001, user_id="u1")
    counts: dict[str, int] = worker.state.snapshot(probe, plan)
    return max(counts.values())


def test_a_claim_whose_worker_died_before_deciding_is_waited_out(
    workers: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed between its claim and its decision leaves an empty claim: the
    retry on another worker waits its lease out and decides the event normally (the
    lease is shorter than the wait, so this is never a degraded answer)."""
    dying, other = workers
    assert isinstance(other.state, RedisState)
    lease_ms = redis_module.LEASE_MS
    assert lease_ms < 1000 * other.state.wait_s
    monkeypatch.setattr(redis_module, "LEASE_MS", 200)
    raw = PAYMENT % b"p-lease"
    event = dying.decoder.decode(raw)
    assert dying.state.claim(event, dying.payload_hash(event)) is None  # then SIGKILL
    decision, repeat = other.process(other.decoder.decode(raw))
    assert not repeat
    assert all(r.code != REASON_CODE for r in decision.reasons)


def test_a_prefetched_batch_decides_as_event_by_event(workers: list[Engine]) -> None:
    """One worker decides a batch read in one round trip (`Engine.prefetch`) with a
    repeat inside it and an event the other worker decided first: the repeats answer
    the first decisions, each payment is counted once, and the batch costs two round
    trips."""
    first, second = workers
    done, _ = second.process(second.decoder.decode(PAYMENT % b"b-0"))
    raws = [PAYMENT % b"b-1", PAYMENT % b"b-0", PAYMENT % b"b-2", PAYMENT % b"b-1"]
    events = [first.decoder.decode(raw) for raw in raws]
    trips = first.state.round_trips if isinstance(first.state, RedisState) else 0
    first.prefetch(events)
    answers = [first.process_queued(event) for event in events]
    first.flush()
    assert isinstance(first.state, RedisState)
    assert first.state.round_trips - trips == 2  # the batch's read and its writes
    assert [repeat for _, repeat in answers] == [False, True, False, True]
    assert answers[1][0] == done
    assert answers[3][0] == answers[0][0]
    assert _payments_of_u1(second) == _payments_of_u1(first) == 3
