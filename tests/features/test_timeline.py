"""`Timeline.seen` (each value's latest time among the entries) stays exact.

`is_new` answers from it instead of scanning the window, so it must track inserts in
the middle and evictions exactly; the property test rarely builds those cases.
"""

from payguard.events import Event
from payguard.features import FeatureState, Timeline

from .test_point_in_time import SMALL_CATALOG

MINUTE = 60_000


def test_seen_keeps_the_latest_time_of_each_value() -> None:
    tl = Timeline.new(with_totals=False, with_seen=True)
    for ts, value in ((100, "a"), (200, "b"), (300, "a"), (150, "a"), (250, "c")):
        tl.add(ts, value, horizon=0)
    assert tl.ts == [100, 150, 200, 250, 300]
    assert tl.seen == {"a": 300, "b": 200, "c": 250}
    tl.evict_through(200)
    assert tl.seen == {"a": 300, "c": 250}
    tl.evict_through(300)
    assert tl.seen == {}


def test_rebuilt_seen_equals_tracked_seen() -> None:
    tl = Timeline.new(with_totals=False, with_seen=True)
    for ts, value in ((5, "x"), (1, "y"), (3, "x"), (9, "y"), (7, "z")):
        tl.add(ts, value, horizon=0)
    tracked = tl.seen
    tl.track_seen()
    assert tl.seen == tracked


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
