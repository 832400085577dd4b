"""One contract suite for every recorder: memory, SQLite and Postgres (a real server on
127.0.0.1:5432, a schema per test). What the engine and the group committer rely on —
records visible before they are durable, one atomic commit per batch, a failed or
discarded batch leaving no trace, a duplicate event id refused by the log itself, a log
reopened after a crash holding exactly what was committed — is checked here over each."""

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from payguard.decision import Decision, Reason
from payguard.events import Event
from payguard.store import LogFilter, MemoryRecorder, Recorder, SQLiteRecorder
from payguard.store.base import DuplicateRecordError
from payguard.store.postgres import PostgresRecorder

Opener = Callable[[], Recorder]
T0 = 1_700_000_000_000


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Opener]]:
    """(name, opener): each call of the opener opens a recorder on the same log, as a
    restarted process or a second worker would."""
    opened: list[Recorder] = []
    if request.param == "memory":
        shared = MemoryRecorder()

        def opener() -> Recorder:
            return shared

    elif request.param == "sqlite":

        def opener() -> Recorder:
            opened.append(SQLiteRecorder(tmp_path / "events.db"))
            return opened[-1]

    else:
        dsn, schema = request.getfixturevalue("pg_schema")

        def opener() -> Recorder:
            opened.append(PostgresRecorder(dsn, schema=schema))
            return opened[-1]

    yield request.param, opener
    for recorder in opened:
        recorder.discard_pending()
        recorder.close()


def shared_log(backend: tuple[str, Opener], *, live: bool = False) -> Opener:
    """The opener, for tests about two processes on one log (memory has no such thing);
    `live`: both write at once, as workers do (Postgres only: an SQLite log has one
    writing process, its data directory's lock holder, and others read it after)."""
    if backend[0] == "memory" or (live and backend[0] != "postgres"):
        pytest.skip(f"a {backend[0]} log has no concurrent writers")
    return backend[1]


def event(i: int, *, user: str = "u1", kind: str = "payment", ts: int | None = None) -> Event:
    return Event(event_id=f"e{i}", type=kind, ts=T0 + i * 1000 if ts is None else ts, user_id=user)


def decision(e: Event, action: str = "allow", **features: int) -> Decision:
    return Decision(
        event_id=e.event_id,
        action=action,
        score=7,
        reasons=[Reason(code="r", rule="r", text="t")] if action != "allow" else [],
        ruleset="v1",
        model=None,
        latency_us=12,
        features=dict(features) if features else msgspec.UNSET,
    )


def record(recorder: Recorder, e: Event, action: str = "allow", **features: int) -> int:
    payload = msgspec.json.encode(e)
    return recorder.append(
        e, payload, b"hash-" + e.event_id.encode(), decision(e, action, **features)
    )


def test_records_are_visible_before_and_after_they_are_durable(backend: tuple[str, Opener]) -> None:
    name, opener = backend
    log = opener()
    first = event(1)
    seq = record(log, first, "review", count_b=2, amount_a=5)
    found = log.lookup("e1")
    assert found is not None and found.payload_hash == b"hash-e1"
    assert found.decision.action == "review"
    assert list(found.decision.features.items()) == [("amount_a", 5), ("count_b", 2)]  # type: ignore[union-attr]
    assert log.get_event("e1") == first
    if name != "memory":
        assert log.is_pending("e1") and log.last_seq() == 0
    log.flush()
    assert not log.is_pending("e1")
    assert log.last_seq() == seq
    assert log.lookup("e1") == found
    assert log.lookup("nope") is None and log.get_event("nope") is None


def test_sealed_commit_leaves_the_next_queue_open(backend: tuple[str, Opener]) -> None:
    name, opener = backend
    log = opener()
    record(log, event(1))
    sealed = log.seal()
    later = record(log, event(2))  # the loop goes on while the writer commits
    if name != "memory":  # both readable meanwhile, each from its own batch's index
        assert log.is_pending("e1") and log.is_pending("e2")
        assert sealed.ids == {"e1": 0} and log.lookup("e1") is not None
    log.commit_sealed(sealed)
    log.acknowledge(sealed)
    assert log.lookup("e2") is not None
    if name != "memory":
        assert log.last_seq() == sealed.last_seq < later
        assert log.is_pending("e2") and not log.is_pending("e1")
    log.flush()
    assert log.last_seq() == later


def test_a_discarded_batch_leaves_no_trace(backend: tuple[str, Opener]) -> None:
    _, opener = backend
    log = opener()
    record(log, event(1))
    log.flush()
    durable = log.last_seq()
    if backend[0] == "memory":
        return  # memory keeps every record at once: nothing is ever pending
    record(log, event(2), x=1)
    log.seal()
    record(log, event(3))
    log.discard_pending()
    assert log.lookup("e2") is None and log.lookup("e3") is None
    assert log.last_seq() == durable
    log.flush()
    assert [e.event_id for _, e, _ in log.events_after(0)] == ["e1"]


def test_a_reopened_log_holds_exactly_what_was_committed(backend: tuple[str, Opener]) -> None:
    opener = shared_log(backend)
    log = opener()
    for i in range(1, 6):
        record(log, event(i), "block" if i % 2 else "allow", n=i)
    log.flush()
    record(log, event(6))  # queued, never committed: the process "dies" here
    again = opener()
    replayed = list(again.events_after(0))
    assert [(e.event_id, action) for _, e, action in replayed] == [
        (f"e{i}", "block" if i % 2 else "allow") for i in range(1, 6)
    ]
    assert [seq for seq, _, _ in replayed] == sorted(seq for seq, _, _ in replayed)
    assert again.last_seq() == replayed[-1][0]
    assert again.lookup("e6") is None
    stored = again.lookup("e3")
    assert stored is not None and stored.decision.features == {"n": 3}
    assert [seq for seq, _, _ in again.events_after(replayed[1][0])] == [
        seq for seq, _, _ in replayed[2:]
    ]


def test_a_duplicate_id_from_another_worker_fails_the_whole_batch(
    backend: tuple[str, Opener],
) -> None:
    opener = shared_log(backend)
    first, second = opener(), opener()
    record(first, event(1), "block")
    first.flush()
    record(second, event(2))
    record(second, event(1), "allow")  # the same event, decided by another worker
    with pytest.raises((sqlite3.IntegrityError, DuplicateRecordError)) as caught:
        second.flush()
    if isinstance(caught.value, DuplicateRecordError):
        assert caught.value.event_ids == ["e1"]
    second.discard_pending()
    found = second.lookup("e1")
    assert found is not None and found.decision.action == "block"  # the first worker's
    assert second.lookup("e2") is None
    second.reload()
    assert [e.event_id for _, e, _ in second.events_after(0)] == ["e1"]


def test_newest_is_a_filtered_newest_first_scan(backend: tuple[str, Opener]) -> None:
    _, opener = backend
    log = opener()
    users = ["a", "b", "c"]
    actions = ["allow", "review", "block"]
    made = []
    for i in range(1, 31):
        kind = "label" if i % 7 == 0 else "payment"
        e = event(i, user=users[i % 3], kind=kind, ts=T0 + (i * 37 % 11) * 1000)
        action = actions[i % 3 if kind == "payment" else 0]
        record(log, e, action)
        made.append((e, action))
    log.flush()
    filters = [
        LogFilter(),
        LogFilter(user_id="b"),
        LogFilter(action="block", exclude_types=frozenset({"label"})),
        LogFilter(since_ms=T0 + 3000, until_ms=T0 + 8000),
    ]
    for f in filters:
        expected = [
            e.event_id
            for e, action in reversed(made)
            if (f.user_id is None or e.user_id == f.user_id)
            and (f.action is None or action == f.action)
            and (f.since_ms is None or e.ts >= f.since_ms)
            and (f.until_ms is None or e.ts < f.until_ms)
            and e.type not in f.exclude_types
        ]
        assert [e.event_id for _, e, _ in log.newest(None, f)] == expected
        seqs = [seq for seq, _, _ in log.newest(None, f)]
        if len(seqs) > 2:
            assert [seq for seq, _, _ in log.newest(seqs[1], f)] == seqs[2:]


def test_a_load_is_durable_whole_or_not_at_all(backend: tuple[str, Opener]) -> None:
    _, opener = backend
    log = opener()
    record(log, event(1))
    log.flush()
    log.begin_load()
    record(log, event(2))
    log.flush()
    record(log, event(3))
    log.end_load(commit=False)
    assert [e.event_id for _, e, _ in log.events_after(0)] == ["e1"]
    log.begin_load()
    record(log, event(4))
    log.flush()
    record(log, event(5))
    log.end_load(commit=True)
    assert [e.event_id for _, e, _ in log.events_after(0)] == ["e1", "e4", "e5"]
    log.probe_write()


def test_a_second_worker_reads_the_first_ones_feature_names(backend: tuple[str, Opener]) -> None:
    opener = shared_log(backend, live=True)
    first, second = opener(), opener()
    record(first, event(1), "review", velocity=3, amount_sum=10_000)
    first.flush()
    found = second.lookup("e1")
    assert found is not None
    assert found.decision.features == {"amount_sum": 10_000, "velocity": 3}
    [(_, _, listed)] = list(second.newest(None, LogFilter()))
    assert listed.features == {"amount_sum": 10_000, "velocity": 3}
