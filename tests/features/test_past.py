"""`Past`, the folded past that keeps its times sorted, counts `distinct` exactly (issue 16).

`Timeline.distinct_since` counts the folded values last seen after a window's start by a
bisect of `Past.times` instead of a visit of every folded value. Held here to a naive
recomputation over the same timeline and to a brute force over every entry filed, through
folds, late entries, the sweep's forgetting and a snapshot's plain dict; the point-in-time
property tests hold the generated reads to the brute-force twin.
"""

from bisect import bisect_right

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from payguard.features.timeline import PAST_SORTED_FROM, Past, Timeline

# (ts step, value, lateness): times mostly move on, some entries are filed late; values
# both fewer and more than `PAST_SORTED_FROM` (a small past stays a plain dict).
filings = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 3 * PAST_SORTED_FROM), st.integers(0, 60)),
    max_size=120,
)


def naive(tl: Timeline, lo: int, hi: int, since: int) -> int:
    """`distinct_since` as it was: every folded value visited."""
    values = set(tl.values[lo:hi]) if tl.values is not None else set()
    values.update(v for v, ts in (tl.past or {}).items() if ts > since)
    return len(values)


def assert_kept(past: dict[int, int] | None) -> None:
    """A `Past`'s times are its values' times, sorted."""
    if type(past) is Past:
        assert past.times == sorted(past.values())


@given(filings, st.integers(1, 200), st.integers(0, 120), st.booleans())
def test_distinct_counts_as_a_visit_of_every_folded_value(
    filed: list[tuple[int, int, int]], window: int, keep: int, decode_midway: bool
) -> None:
    tl = Timeline.new(with_past=True)
    now = 0
    for i, (step, value, late) in enumerate(filed):
        now += step
        tl.add(max(now - late, 0), value, horizon=now - keep)
        if decode_midway and i == len(filed) // 2:  # a snapshot holds a plain dict
            raw = msgspec.msgpack.encode(tl.past)
            assert raw == msgspec.msgpack.encode(None if tl.past is None else dict(tl.past))
            tl.past = msgspec.msgpack.decode(raw)
        if i % 7 == 6:
            tl.forget_past(now - 3 * window)
        assert_kept(tl.past)
        for t in (now, now - keep // 2):
            ts = tl.ts or []
            hi = bisect_right(ts, t)
            lo = bisect_right(ts, t - window, 0, hi)
            assert tl.distinct_since(lo, hi, t - window) == naive(tl, lo, hi, t - window)
            assert_kept(tl.past)


@given(filings, st.integers(1, 200), st.integers(0, 120))
def test_distinct_over_the_folded_past_is_the_window_s_distinct_values(
    filed: list[tuple[int, int, int]], window: int, keep: int
) -> None:
    """Asked at the newest time, past what is folded: the values of every entry filed in
    (t - window, t], however much of it was folded and forgotten."""
    tl = Timeline.new(with_past=True)
    entries: list[tuple[int, int]] = []
    now = 0
    for i, (step, value, late) in enumerate(filed):
        now += step
        ts = max(now - late, 0)
        entries.append((ts, value))
        tl.add(ts, value, horizon=now - keep)
        if i % 5 == 4:
            tl.forget_past(now - window - 200)  # older than any query below
        t = max(e[0] for e in entries)
        since = t - window
        held = tl.ts or []
        lo = bisect_right(held, since)
        expected = len({v for ts, v in entries if since < ts <= t})
        assert tl.distinct_since(lo, len(held), since) == expected


def test_a_past_stays_sorted_through_late_and_repeated_values() -> None:
    past = Past()
    for value, ts in (("a", 10), ("b", 30), ("a", 20), ("c", 5), ("b", 25), ("a", 40)):
        past.fold(value, ts)
    assert dict(past) == {"a": 40, "b": 30, "c": 5}
    assert past.times == [5, 30, 40]
    assert [past.count_after(s) for s in (0, 5, 30, 40)] == [3, 2, 1, 0]
    past.forget(30)
    assert dict(past) == {"a": 40}
    assert past.times == [40]
    assert Past.of({"x": 3, "y": 1}).times == [1, 3]


def test_only_a_distinct_read_of_a_large_past_makes_it_a_past() -> None:
    """An `is_new`-only stream, or a small past, keeps a plain dict: no times to sort."""
    tl = Timeline.new(with_past=True)
    n = PAST_SORTED_FROM
    for i in range(n - 1):
        tl.add(10 * i, f"v{i}", horizon=10 * i)
    assert type(tl.past) is dict
    assert tl.distinct_since(0, 0, 15) == n - 3  # v2 .. v{n-2}
    assert type(tl.past) is dict
    tl.add(10 * n, "w", horizon=10 * n)
    assert tl.occurs_since("w", 0, 0, 15)
    assert type(tl.past) is dict
    assert tl.distinct_since(0, 0, 15) == n - 2
    assert type(tl.past) is Past
    tl.add(10 * n + 20, "v3", horizon=10 * n + 20)  # v3 folds again: kept sorted
    assert type(tl.past) is Past
    assert tl.past.times == sorted(tl.past.values())
    assert tl.distinct_since(0, 0, 25) == n - 3
