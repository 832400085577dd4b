"""A full window leaves out only a few of the raw head's oldest entries (the lateness
margin, issue 16): its behavioural reads take the head's kept structure less those
entries. Each read is held to a recomputation from the window's raw entries, for every
window of the head, whichever path it takes."""

from hypothesis import given, settings
from hypothesis import strategies as st

from payguard.features.timeline import VALUES_HOUR, VALUES_INT, Tally, Timeline

MINUTE = 60_000

filed = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from("abcdef"), st.integers(1, 9)),
    min_size=1,
    max_size=60,
)


def windows(n: int) -> list[tuple[int, int]]:
    return [(lo, hi) for lo in range(n) for hi in range(lo + 1, n + 1)]


def tallied(entries: list[tuple[int, str, int]], weights: bool, horizon: int) -> Timeline:
    tl = Timeline.new(with_weights=weights, with_tally=True)
    for ts, value, weight in entries:
        tl.add(ts * MINUTE, value, horizon=-1, weight=weight)
    tl.fold_through(horizon * MINUTE)
    return tl


@settings(max_examples=150)
@given(filed, st.integers(-1, 20), st.booleans())
def test_top_share_and_distinct_of_any_window(
    entries: list[tuple[int, str, int]], horizon: int, weighted: bool
) -> None:
    tl = tallied(entries, weighted, horizon)
    if tl.ts is None:
        return
    n = len(tl.ts)
    for lo, hi in windows(n):
        held: dict[str, int] = {}
        for i in range(lo, hi):
            held[tl.values[i]] = held.get(tl.values[i], 0) + (tl.weights[i] if weighted else 1)
        expected = max(held.values()) * 1000 // sum(held.values())
        assert tl.top_share(lo, hi) == expected, (lo, hi)
        assert tl.distinct_tallied(lo, hi) == len(held), (lo, hi)
    assert isinstance(tl.tally, Tally)
    assert tl.tally.top in (-1, max(tl.tally.values()))


@settings(max_examples=100)
@given(filed, st.integers(-1, 20))
def test_top_share_after_the_tally_lost_its_top_and_was_decoded(
    entries: list[tuple[int, str, int]], horizon: int
) -> None:
    """A stale `top_value` (the top value lost weight, or a plain dict from a snapshot)
    is checked, never trusted."""
    tl = tallied(entries, True, horizon)
    if tl.ts is None:
        return
    n = len(tl.ts)
    tl.tally.top_value = tl.values[0]  # a hint that may be wrong
    plain = Timeline.new(with_weights=True, with_tally=True)
    plain.ts, plain.values, plain.weights = tl.ts, tl.values, tl.weights
    plain.tally = dict(tl.tally)
    for lo, hi in windows(n):
        held: dict[str, int] = {}
        for i in range(lo, hi):
            held[tl.values[i]] = held.get(tl.values[i], 0) + tl.weights[i]
        expected = max(held.values()) * 1000 // sum(held.values())
        assert tl.top_share(lo, hi) == expected
        assert plain.top_share(lo, hi) == expected


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 30)), min_size=1, max_size=60),
    st.integers(-1, 20),
    st.sampled_from([(1, 2), (9, 10), (1, 10), (99, 100), (1, 1)]),
)
def test_quantile_of_any_window(
    entries: list[tuple[int, int]], horizon: int, q: tuple[int, int]
) -> None:
    tl = Timeline.new(with_ranked=True, values=VALUES_INT)
    for ts, amount in entries:
        tl.add(ts * MINUTE, amount, horizon=-1)
    tl.fold_through(horizon * MINUTE)
    if tl.ts is None:
        return
    num, den = q
    for lo, hi in windows(len(tl.ts)):
        window = sorted(tl.values[lo:hi])
        assert tl.quantile(lo, hi, num, den) == window[-(-num * len(window) // den) - 1]


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 23)), min_size=1, max_size=60),
    st.integers(-1, 20),
    st.integers(0, 23),
)
def test_hour_share_of_any_window(entries: list[tuple[int, int]], horizon: int, hour: int) -> None:
    tl = Timeline.new(with_tally=True, values=VALUES_HOUR)
    for ts, h in entries:
        tl.add(ts * MINUTE, h, horizon=-1)
    tl.fold_through(horizon * MINUTE)
    if tl.ts is None:
        return
    for lo, hi in windows(len(tl.ts)):
        near = sum(1 for h in tl.values[lo:hi] if (h - hour) % 24 in (0, 1, 23))
        assert tl.hour_share(lo, hi, hour) == near * 1000 // (hi - lo)
