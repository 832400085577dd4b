"""The expiry sweep in slices (features.sweep) against the whole sweep and the raw log.

Three claims, on the random streams of test_point_in_time (every aggregate, pairs,
carrier signals, feedback, payee views, out-of-order arrival within the lateness, watched
history with back-filled records):

- after any events with rounds begun and slices of any size run between them, finishing
  the round in flight and running one more round leaves exactly (`digest_items`) the
  state a whole sweep leaves at that point;
- the feature values before every event equal the brute-force twin's (which never
  sweeps), however the slices fall: sweep timing never changes a feature;
- a snapshot taken mid-round (`export`, `restore`) resumes the round where it stood: the
  restored state (which lists each pass's keys afresh) and the uninterrupted one (which
  builds them from the previous pass's kept keys) stay equal through further events and
  slices.
"""

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_point_in_time import SMALL_CATALOG, WATCH_CATALOG, _declined, backfilled_streams, streams

import payguard.features.state as state_module
from payguard.events import Event, Merchant, Payee
from payguard.features import Catalog, FeatureState
from payguard.features.cold import Cold
from payguard.features.reference import ReferenceFeatures
from payguard.features.sweep import SweepRound

Stream = list[tuple[Event, bool]]
Sweeps = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=1, max_value=12)), min_size=40, max_size=40
)
"""Per event: whether a round begins after it, and the budget of the slice that follows."""


def _copy(state: FeatureState) -> FeatureState:
    """An independent copy, through the snapshot's own export, encoding and restore
    (the export shares the live dictionaries of the watched history and phone links)."""
    twin = FeatureState(state.catalog)
    twin.restore(msgspec.msgpack.decode(msgspec.msgpack.encode(state.export())))
    return twin


def _file(state: FeatureState, event: Event, seen: dict[str, Event]) -> None:
    referenced = seen.get(event.ref_event_id) if event.ref_event_id else None
    state.update(event, referenced, _declined(event))
    seen.setdefault(event.event_id, event)


def _slice(state: FeatureState, begin: bool, budget: int) -> None:
    """What the engine does after filing an event: maybe begin a round, then one slice
    (here of a drawn budget, a few entries, so that rounds span many events)."""
    if begin:
        state.begin_sweep(1)
    sweep = state._sweep
    if sweep is not None and not sweep.step(state, budget):
        state._sweep = None
    for (what, index), kept in state.sweep_orders.items():
        # the next pass's list is built from the kept keys: they must be its table's first
        assert list(SweepRound._table(state, what, index))[: len(kept)] == kept


def _sliced(catalog: Catalog, stream: Stream, sweeps: list[tuple[bool, int]]) -> FeatureState:
    state = FeatureState(catalog)
    seen: dict[str, Event] = {}
    for (event, _), (begin, budget) in zip(stream, sweeps, strict=False):
        _file(state, event, seen)
        _slice(state, begin, budget)
    return state


def _round_out(state: FeatureState, budget: int) -> None:
    """Finish the round in flight, then run one whole round, in slices of `budget`."""
    while _step(state, budget):
        pass
    state.begin_sweep(1)
    while _step(state, budget):
        pass


def _step(state: FeatureState, budget: int) -> bool:
    sweep = state._sweep
    if sweep is None:
        return False
    if not sweep.step(state, budget):
        state._sweep = None
    return True


def _equal_after_rounds(catalog: Catalog, stream: Stream, sweeps: Any, budget: int) -> None:
    sliced = _sliced(catalog, stream, sweeps)
    whole = _copy(sliced)
    whole._sweep = None  # its round in flight is what `sweep` replaces
    _round_out(sliced, budget)
    whole.sweep()
    assert sliced.digest_items() == whole.digest_items()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), Sweeps, st.integers(min_value=1, max_value=7))
def test_slices_gone_round_leave_what_the_whole_sweep_leaves(
    stream: Stream, sweeps: list[tuple[bool, int]], budget: int
) -> None:
    _equal_after_rounds(SMALL_CATALOG, stream, sweeps, budget)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams(), Sweeps, st.integers(min_value=1, max_value=7))
def test_slices_of_the_watched_history_leave_what_the_whole_sweep_leaves(
    stream: Stream, sweeps: list[tuple[bool, int]], budget: int
) -> None:
    """The watched history's and the registrations' passes too (their forget horizon is
    only reached by a catalog `memory` short enough: below)."""
    _equal_after_rounds(WATCH_CATALOG, stream, sweeps, budget)


SHORT_MEMORY = msgspec.structs.replace(WATCH_CATALOG, memory="3m").validate()
"""Entities leave memory 3 minutes after their last event, so that the streams' gaps
(up to two hours) make the forgetting passes forget."""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams(), Sweeps, st.integers(min_value=1, max_value=7))
def test_slices_that_forget_leave_what_the_whole_sweep_leaves(
    stream: Stream, sweeps: list[tuple[bool, int]], budget: int
) -> None:
    _equal_after_rounds(SHORT_MEMORY, stream, sweeps, budget)


def _against_the_twin(catalog: Catalog, stream: Stream, sweeps: list[tuple[bool, int]]) -> None:
    fast = FeatureState(catalog)
    slow = ReferenceFeatures(catalog)
    plan = fast.plan(fast.layout)
    seen: dict[str, Event] = {}
    for (event, _), (begin, budget) in zip(stream, sweeps, strict=False):
        assert fast.snapshot(event, plan) == slow.snapshot(event), event
        _file(fast, event, seen)
        slow.update(event, _declined(event))
        _slice(fast, begin, budget)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), Sweeps)
def test_feature_values_do_not_depend_on_where_slices_fall(
    stream: Stream, sweeps: list[tuple[bool, int]]
) -> None:
    _against_the_twin(SMALL_CATALOG, stream, sweeps)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams(), Sweeps)
def test_watched_features_do_not_depend_on_where_slices_fall(
    stream: Stream, sweeps: list[tuple[bool, int]]
) -> None:
    _against_the_twin(WATCH_CATALOG, stream, sweeps)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(backfilled_streams(), Sweeps, st.integers(min_value=0, max_value=39))
def test_a_snapshot_mid_round_resumes_the_round(
    stream: Stream, sweeps: list[tuple[bool, int]], at: int
) -> None:
    """Restored at event `at` from an export of the live state (round, keys left and
    all), then both fed the same events and slices: equal at every later step."""
    live = FeatureState(SHORT_MEMORY)
    restored: FeatureState | None = None
    seen: dict[str, Event] = {}
    for i, ((event, _), (begin, budget)) in enumerate(zip(stream, sweeps, strict=False)):
        if i == at:
            restored = _copy(live)
        for state in (live, restored):
            if state is not None:
                _file(state, event, dict(seen))
                _slice(state, begin, budget)
        seen.setdefault(event.event_id, event)
        if restored is not None:
            assert restored.digest_items() == live.digest_items()
            assert (restored._sweep is None) == (live._sweep is None)


def _busy_user(n: int) -> FeatureState:
    """One account with `n` payments a second apart, each to a new payee from a new
    device, then a quiet hour (another account's login): thousands of raw entries to fold
    and folded values under one entity (the shape of a busy merchant, issue 16)."""
    state = FeatureState(SMALL_CATALOG)
    start = 1_700_000_000_000
    for i in range(n):
        state.update(
            Event(
                event_id=f"p{i}",
                type="payment",
                ts=start + i * 1_000,
                user_id="u",
                device_id=f"d{i}",
                amount=100 + i,
                merchant=Merchant(id="m0", category="food"),
                payee=Payee(id=f"x{i}"),
            )
        )
    state.update(Event(event_id="q", type="login", ts=start + n * 1_000 + 3_600_000, user_id="v"))
    return state


def test_a_huge_entity_is_swept_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice's budget counts work (entries folded, folded values scanned), so one
    entity worth far more than a slice is swept over several slices, a timeline or a
    part of a long fold at a time; a snapshot between two of them resumes inside it, and
    the result is the whole sweep's."""
    parts: list[int] = []
    fold_part = state_module._fold_part

    def counted(*args: Any) -> int:
        parts.append(fold_part(*args))
        return parts[-1]

    monkeypatch.setattr(state_module, "_fold_part", counted)
    sliced = _busy_user(3_000)
    whole = _copy(sliced)
    whole.sweep()
    sliced.begin_sweep(1)
    paused = 0
    restored: FeatureState | None = None
    while _step(sliced, 50):
        sweep = sliced._sweep
        if sweep is not None and sweep.slot:
            paused += 1
            if restored is None:
                restored = _copy(sliced)
    assert paused > 1
    assert sum(1 for p in parts if p) > 1  # a raw head of 1,200 entries folded in parts
    assert restored is not None and restored._sweep is not None and restored._sweep.slot
    while _step(restored, 50):
        pass
    assert sliced.digest_items() == whole.digest_items() == restored.digest_items()
    assert sliced.sweep_work > 3_000  # the next round's budget counts that work


def _swept_timeline_by_timeline(state: FeatureState) -> None:
    """The whole sweep as its per-timeline rule says it (`state._sweep_timeline` on
    every timeline, then the empty records dropped and the departed forgotten): the
    twin of `sweep_entity_of`, which says "nothing to fold or forget" for most
    timelines without asking it."""
    base = state.watermark - state.lateness_ms
    forget_before = base - state.memory_ms
    if state.watch.start is None or forget_before < state.watch.start:
        forget_before = -1
    watch_start = state.watch.start if state.watch.start is not None else 0
    state.sweep_orders.clear()
    for kind, entities in enumerate(state.entities):
        streams = [state.streams[idx] for idx in state.kinds[kind].streams]
        for key in list(entities):
            record = entities[key]
            if record.__class__ is Cold:  # a restored twin's record not used yet
                record = state.thaw(entities, key, record)  # type: ignore[arg-type]
            for slot, tl in enumerate(record):
                if tl is not None and not state_module._sweep_timeline(
                    tl, streams[slot], base, forget_before, watch_start
                ):
                    record[slot] = None
            if not any(record):
                del entities[key]
    state._forget_departed(forget_before)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([SMALL_CATALOG, WATCH_CATALOG, SHORT_MEMORY]),
    backfilled_streams(),
    st.integers(min_value=0, max_value=40 * 24 * 60),
)
def test_the_sweep_leaves_what_its_per_timeline_rule_leaves(
    catalog: Catalog, stream: Stream, later_minutes: int
) -> None:
    """Swept `later_minutes` after the last event (so that heads fold and folded values
    and first-seen times are forgotten), the sweep and its twin leave equal states."""
    state = FeatureState(catalog)
    seen: dict[str, Event] = {}
    for event, _ in stream:
        _file(state, event, seen)
    state.watermark += later_minutes * 60_000
    twin = _copy(state)
    state.sweep()
    _swept_timeline_by_timeline(twin)
    assert state.digest_items() == twin.digest_items()
