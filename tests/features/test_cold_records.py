"""Records restored from a snapshot stay encoded until used (features.cold).

- right after `restore` every record is still encoded (but those of at least
  THAW_AT_RESTORE bytes), the state counts the same
  timelines, and exporting it again writes the very bytes it was restored from;
- a state restored at any point of a random stream (every aggregate, pairs, carrier
  signals, feedback, the watched history), then fed the same events and sweep slices as
  the state it was copied from, reads the same feature values before every event, and
  both leave the same state at the end, whatever was thawed by then;
- an event thaws only the records it can touch, and `cold` counts what is left;
- a state whose sweep encodes idle records again (`idle_ms`) reads the same feature
  values before every event as one that never does, counts its records and encoded
  records right, exports the same records (its idle ones as they are) and leaves the same
  state; an idle record is passed over by the sweep, undecoded, until it is due, and a
  restart keeps it so.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_point_in_time import SMALL_CATALOG, backfilled_streams, streams
from test_sweep_slices import SHORT_MEMORY, Stream, Sweeps, _file, _slice

import payguard.features.state as state_module
from payguard.events import Event
from payguard.features import Catalog, FeatureState, load_catalog
from payguard.features.cold import COLD, Cold, Idle, decode_cold, decode_cold_tables, restored

_encode = msgspec.msgpack.Encoder().encode


@contextmanager
def _state_constant(name: str, value: int) -> Iterator[None]:
    """features.state's module constant `name` set to `value` for the block (hypothesis
    tests cannot take pytest's function-scoped monkeypatch)."""
    kept = getattr(state_module, name)
    setattr(state_module, name, value)
    try:
        yield
    finally:
        setattr(state_module, name, kept)


def _restored(state: FeatureState) -> FeatureState:
    """A new state restored from `state`'s snapshot encoding, as the engine restores one."""
    twin = FeatureState(state.catalog)
    twin.restore(msgspec.msgpack.decode(_encode(state.export())))
    return twin


def _cold(state: FeatureState) -> int:
    return sum(value.__class__ in COLD for table in state.entities for value in table.values())


def _fed(catalog: Catalog, stream: Stream) -> FeatureState:
    state = FeatureState(catalog)
    seen: dict[str, Event] = {}
    for event, _ in stream:
        _file(state, event, seen)
    return state


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_a_restored_state_is_cold_and_writes_back_what_it_read(stream: Stream) -> None:
    live = _fed(SMALL_CATALOG, stream)
    restored = _restored(live)
    records = sum(len(table) for table in live.entities)
    assert _cold(restored) == restored.cold == records
    assert restored.entity_count() == live.entity_count()
    assert restored.record_count() == live.record_count() == records
    assert restored.export()["entities"] == live.export()["entities"]
    assert _cold(restored) == records  # counting and exporting thawed nothing
    assert restored.digest_items() == live.digest_items()
    assert _cold(restored) == restored.cold == 0


def _resumed_alike(
    catalog: Catalog, stream: Stream, sweeps: list[tuple[bool, int]], at: int
) -> None:
    live = FeatureState(catalog)
    plan = live.plan(live.layout)
    restored: FeatureState | None = None
    seen: dict[str, Event] = {}
    for i, ((event, _), (begin, budget)) in enumerate(zip(stream, sweeps, strict=False)):
        if i == at:
            restored = _restored(live)
        expected = live.snapshot(event, plan)
        if restored is not None:
            assert restored.snapshot(event, restored.plan(restored.layout)) == expected, event
        for state in (live, restored):
            if state is not None:
                _file(state, event, dict(seen))
                _slice(state, begin, budget)
        seen.setdefault(event.event_id, event)
        if restored is not None:
            assert restored.cold == _cold(restored)
    if restored is not None:
        assert restored.digest_items() == live.digest_items()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), Sweeps, st.integers(min_value=0, max_value=39))
def test_a_cold_restore_reads_what_the_live_state_reads(
    stream: Stream, sweeps: list[tuple[bool, int]], at: int
) -> None:
    _resumed_alike(SMALL_CATALOG, stream, sweeps, at)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams(), Sweeps, st.integers(min_value=0, max_value=39))
def test_a_cold_restore_forgets_what_the_live_state_forgets(
    stream: Stream, sweeps: list[tuple[bool, int]], at: int
) -> None:
    _resumed_alike(SHORT_MEMORY, stream, sweeps, at)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), Sweeps, st.integers(min_value=0, max_value=39), st.integers(0, 400))
def test_large_records_are_thawed_at_restore_and_read_alike(
    stream: Stream, sweeps: list[tuple[bool, int]], at: int, threshold: int
) -> None:
    """Records whose encoding reaches THAW_AT_RESTORE bytes are decoded by the restore,
    the rest stay encoded; either way the state reads and ends as the live one."""
    with _state_constant("THAW_AT_RESTORE", threshold):
        live = _fed(SMALL_CATALOG, stream)
        sizes = [
            {key: len(raw) for key, raw in table.items()}
            for table in decode_cold_tables(live.export()["entities"])
        ]
        restored = _restored(live)
        for size_of, table in zip(sizes, restored.entities, strict=True):
            for key, record in table.items():
                assert (record.__class__ in COLD) == (size_of[key] < threshold), key
        assert restored.cold == _cold(restored)
        assert restored.export()["entities"] == live.export()["entities"]
        _resumed_alike(SMALL_CATALOG, stream, sweeps, at)


def test_an_event_thaws_only_the_records_it_looks_up() -> None:
    live = FeatureState(SMALL_CATALOG)
    for i in range(20):
        live.update(Event(event_id=f"l{i}", type="login", ts=1_000 + i, user_id=f"u{i}"))
    restored = _restored(live)
    before = _cold(restored)
    event = Event(event_id="x", type="login", ts=2_000, user_id="u3")
    restored.snapshot(event, restored.plan(restored.layout))
    restored.update(event)
    thawed = before - _cold(restored)
    assert 0 < thawed <= len(restored.kinds)
    assert restored.cold == _cold(restored)
    assert all(
        table[key].__class__ is Cold
        for table in restored.entities
        for key in table
        if key not in ("u3",) and not key.startswith("u3+")
    )


def _idle_alike(
    catalog: Catalog, stream: Stream, sweeps: list[tuple[bool, int]], idle_ms: int
) -> None:
    """A state whose sweep encodes idle records (and a copy of it restored halfway, as a
    restarted server is) reads and leaves what one that never encodes does, its sweep's
    slices falling where they fall there; `cold`, `record_count` and `export` stay right."""
    live, idle = FeatureState(catalog), FeatureState(catalog)
    idle.idle_ms = idle_ms
    restored: FeatureState | None = None
    plan = live.plan(live.layout)
    seen: dict[str, Event] = {}
    for i, ((event, _), (begin, budget)) in enumerate(zip(stream, sweeps, strict=False)):
        if i == len(stream) // 2:
            restored = _restored(idle)
            restored.idle_ms = idle_ms
        expected = live.snapshot(event, plan)
        states = [s for s in (idle, restored) if s is not None]
        for state in states:
            assert state.snapshot(event, state.plan(state.layout)) == expected, event
        for state in (live, *states):
            _file(state, event, dict(seen))
            _slice(state, begin, budget)
        seen.setdefault(event.event_id, event)
        for state in states:
            assert state.cold == _cold(state)
            assert state.record_count() == live.record_count()
            assert _progress(state) == _progress(live)
    live_records, _ = _exported(live)
    for state in [s for s in (idle, restored) if s is not None]:
        records, idle_records = _exported(state)
        assert records == live_records
        assert idle_records == sum(r.__class__ is Idle for t in state.entities for r in t.values())
        assert state.entity_count() == live.entity_count()
        assert _restored(state).digest_items() == live.digest_items()
        assert state.digest_items() == live.digest_items()
        assert state.cold == _cold(state) == 0


def _exported(state: FeatureState) -> tuple[list[dict[str, object]], int]:
    """Every record of `state`'s snapshot, decoded (what a restore of it reads), and how
    many of them it holds as idle records (header and all)."""
    tables = [
        {k: restored(r) for k, r in t.items()}
        for t in decode_cold_tables(state.export()["entities"])
    ]
    idle = sum(r.__class__ is Idle for t in tables for r in t.values())
    return [{k: decode_cold(r) for k, r in t.items()} for t in tables], idle


def _progress(state: FeatureState) -> tuple[object, ...]:
    """Where the sweep's round in flight stands, and what the last round spent."""
    sweep = state._sweep
    if sweep is None:
        return None, state.sweep_work
    left = None if sweep.keys is None else sweep.keys[sweep.pos :]  # a restore keeps these
    where = (sweep.passes[:1], left, sweep.slot, sweep.offset, sweep.work)
    return where, state.sweep_work


IdleAfter = st.sampled_from([1, 60_000, 3_600_000])
"""Event time after which the sweep encodes a record again (the streams span hours)."""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), Sweeps, IdleAfter, st.sampled_from([state_module.FOLD_PART, 1, 2]))
def test_records_encoded_when_idle_read_what_decoded_ones_read(
    stream: Stream, sweeps: list[tuple[bool, int]], idle_ms: int, fold_part: int
) -> None:
    """With `FOLD_PART` small too, so that slices pause inside folded pasts."""
    with _state_constant("FOLD_PART", fold_part):
        _idle_alike(SMALL_CATALOG, stream, sweeps, idle_ms)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams(), Sweeps, IdleAfter)
def test_records_encoded_when_idle_are_forgotten_alike(
    stream: Stream, sweeps: list[tuple[bool, int]], idle_ms: int
) -> None:
    _idle_alike(SHORT_MEMORY, stream, sweeps, idle_ms)


def _swept_with_idle_records() -> FeatureState:
    """Five accounts' logins, then a sixth's an hour later, swept with `idle_ms` 1: the
    first five accounts' records are idle."""
    state = FeatureState(SMALL_CATALOG)
    state.idle_ms = 1
    for i in range(5):
        state.update(Event(event_id=f"l{i}", type="login", ts=1_000 + i, user_id=f"u{i}"))
    state.update(Event(event_id="late", type="login", ts=3_600_000, user_id="u9"))
    state.sweep()
    return state


def _idle_bytes(state: FeatureState) -> dict[tuple[int, str], bytes]:
    """(entity kind, key) → the encoding of each idle record of `state`."""
    return {
        (kind, key): bytes(record)
        for kind, table in enumerate(state.entities)
        for key, record in table.items()
        if record.__class__ is Idle
    }


def test_an_idle_record_is_encoded_and_passed_over_until_due() -> None:
    state = _swept_with_idle_records()
    encoded = _idle_bytes(state)
    assert encoded and state.cold == _cold(state) == len(encoded)
    state.sweep()  # nothing due yet: the same bytes, nothing decoded
    assert _idle_bytes(state) == encoded


def test_a_restart_keeps_idle_records_idle_until_due() -> None:
    """A snapshot writes an idle record as it is, and the first sweep round after a restart
    passes over it undecoded, as the running state's round does: it does not decode every
    record the snapshot held (the ~850,000 of a 20k × 90-day server, features.cold)."""
    state = _swept_with_idle_records()
    idle = _idle_bytes(state)
    assert idle and _exported(state)[1] == len(idle) == state.cold
    twin = _restored(state)
    twin.idle_ms = 1
    assert twin.cold == twin.record_count() == state.record_count()
    objects = {(k, key): r for k, t in enumerate(twin.entities) for key, r in t.items()}
    for copy in (state, twin):
        copy.sweep()  # nothing due yet: the idle records stay as they were, undecoded
        assert _idle_bytes(copy) == idle
    assert twin.cold == state.cold == len(idle)
    assert all(twin.entities[k][key] is objects[k, key] for k, key in idle)  # never decoded
    assert twin.digest_items() == state.digest_items()


def test_an_idle_record_counts_the_sweeps_work_as_its_decoded_twin() -> None:
    """Slot by slot and inside a folded past scanned in parts (`FOLD_PART` made 2): an
    account's 30 devices, folded into the past of its 90-day `distinct` stream."""
    twins = [FeatureState(load_catalog()) for _ in range(2)]
    twins[0].idle_ms = 1
    for state in twins:
        for i in range(30):
            state.update(_login(f"l{i}", 1_000 + i, "u1", device_id=f"d{i}", ip=f"10.0.{i}.1"))
        state.update(_login("z", 35 * 86_400_000, "u2"))
        state.sweep()
    user = next(i for i, kind in enumerate(twins[1].kinds) if kind.by == "user")
    record = twins[1].entities[user]["u1"]
    assert max(len(tl.past or ()) for tl in record if tl is not None) == 30  # type: ignore[union-attr]
    assert isinstance(twins[0].entities[user]["u1"], Idle) and not twins[1].cold
    with _state_constant("FOLD_PART", 2):
        for kind, table in enumerate(twins[1].entities):
            for key in table:
                for budget in (1, 2, 3, 5, 20, None):
                    for start, offset in ((0, 0), (1, 0), (1, 3), (1, 28), (2, 0)):
                        seen = [
                            s.sweep_entity_of(kind, s.watermark - s.lateness_ms, -1, 0)(
                                key, start, budget, offset
                            )
                            for s in twins
                        ]
                        assert seen[0] == seen[1], (key, budget, start, offset)


def _login(event_id: str, ts: int, user: str, **fields: str) -> Event:
    return Event(
        event_id=event_id,
        type="login",
        ts=ts,
        user_id=user,
        channel="app",
        method="password",
        success=True,
        **fields,
    )  # type: ignore[arg-type]
