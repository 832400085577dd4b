"""The raw head and the folded past of a `Timeline` stay exact.

`is_new`, `distinct` and `minutes_since` answer from each value's latest folded time
(`Timeline.past`) past the raw head, so folding must keep every value's latest time,
including entries filed late that land behind what was already folded; the property test
rarely builds those cases.
"""

from array import array

from payguard.events import Card, Event, Merchant
from payguard.features import FeatureState, Timeline, load_catalog
from payguard.features.timeline import VALUES_HOUR

from .test_point_in_time import SMALL_CATALOG

MINUTE = 60_000


def test_folding_keeps_the_latest_time_of_each_value() -> None:
    tl = Timeline.new(with_totals=False, with_past=True)
    for ts, value in ((100, "a"), (200, "b"), (300, "a"), (150, "a"), (250, "c")):
        tl.add(ts, value, horizon=0)
    assert list(tl.ts) == [100, 150, 200, 250, 300]
    tl.fold_through(200)
    assert (list(tl.ts), tl.values) == ([250, 300], ["c", "a"])
    assert tl.past == {"a": 150, "b": 200}
    assert tl.folded_last == 200
    tl.add(120, "b", horizon=200)  # late, behind the fold: b's latest stays 200
    assert tl.past == {"a": 150, "b": 200}
    assert list(tl.ts) == [250, 300]


def test_folded_values_answer_set_questions() -> None:
    tl = Timeline.new(with_totals=False, with_past=True)
    for ts, value in ((10, "x"), (20, "y"), (30, "x"), (40, "z")):
        tl.add(ts, value, horizon=25)
    assert tl.past == {"x": 10, "y": 20}
    assert tl.distinct_since(0, len(tl.ts), 15) == 3  # y, x, z
    assert tl.distinct_since(0, len(tl.ts), 5) == 3  # x twice counts once
    assert tl.occurs_since("y", 0, len(tl.ts), 15)
    assert not tl.occurs_since("y", 0, len(tl.ts), 20)
    tl.forget_past(15)
    assert tl.past == {"y": 20}


def test_sums_keep_their_base_when_folded() -> None:
    tl = Timeline.new(with_totals=True, with_past=False)
    for ts, amount in ((1, 5), (2, 7), (3, 11)):
        tl.add(ts, amount, horizon=0)
    tl.fold_through(2)
    assert tl.running == 12
    assert list(tl.totals) == [23]


def test_is_new_after_an_earlier_repeat_arrives_late() -> None:
    """d0 at T, then d0 again at T - 50 s (late): at T + 9 m 50 s the window (T - 10 s,
    T + 9 m 50 s] still holds the first, so d0 is not new."""
    state = FeatureState(SMALL_CATALOG)
    plan = state.plan(["is_new_device_any_by_user_10m"])
    t = 10_000_000

    def login(i: int, ts: int) -> Event:
        return Event(event_id=f"l{i}", type="login", ts=ts, user_id="u0", device_id="d0")

    state.update(login(1, t))
    state.update(login(2, t - 50_000))
    probe = login(3, t + 10 * MINUTE - 10_000)
    assert state.snapshot(probe, plan) == {"is_new_device_any_by_user_10m": False}
    later = login(4, t + 10 * MINUTE)
    assert state.snapshot(later, plan) == {"is_new_device_any_by_user_10m": True}


def test_an_emptied_head_keeps_nothing_raw_and_opens_again() -> None:
    """A head folded completely drops its containers; the next entry makes them again
    and its running total starts from what was folded."""
    tl = Timeline.new(with_totals=True, with_ranked=True)
    tl.add(1, 5, horizon=0)
    tl.add(2, 7, horizon=0)
    tl.fold_through(2)
    assert (tl.ts, tl.values, tl.totals, tl.ranked) == (None, None, None, None)
    assert tl.running == 12
    tl.add(3, 1, horizon=2)
    assert (list(tl.ts), list(tl.values), list(tl.totals), list(tl.ranked)) == (
        [3],
        [1],
        [13],
        [1],
    )


def test_hour_tallies_are_counters_that_folding_takes_back() -> None:
    tl = Timeline.new(with_tally=True, values=VALUES_HOUR)
    for ts, hour in ((1, 23), (2, 0), (3, 23), (4, 5)):
        tl.add(ts, hour, horizon=0)
    assert tl.hour_share(0, 4, 0) == 750  # 23, 0, 23 are within an hour of 0
    tl.fold_through(1)
    assert (tl.tally[23], tl.tally[0], tl.tally[5]) == (1, 1, 1)
    assert tl.hour_share(0, 3, 0) == 666


def test_packed_state_survives_a_snapshot() -> None:
    """Arrays go out as msgpack extensions and come back as arrays of the same kind."""
    state = FeatureState(load_catalog())
    for i in range(40):
        state.update(payment(i, ts=1_000_000 + i * 37 * MINUTE))
    state.sweep()
    again = FeatureState(load_catalog())
    again.restore(state.export())
    assert again.digest_items() == state.digest_items()
    packed = [tl for tls in map(again.timelines, range(len(again.streams))) for tl in tls.values()]
    assert any(isinstance(tl.totals, array) and tl.totals.typecode == "q" for tl in packed)
    assert any(isinstance(tl.values, array) and tl.values.typecode == "b" for tl in packed)


def payment(i: int, ts: int) -> Event:
    return Event(
        event_id=f"p{i}",
        type="payment",
        ts=ts,
        user_id=f"u{i % 3}",
        device_id="d0",
        amount=100 * (i + 1),
        card=Card(token=f"pan_{i % 2}"),
        merchant=Merchant(id=f"m{i % 4}", category="food"),
    )
