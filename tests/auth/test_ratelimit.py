"""The token bucket against its brute-force twin: the sliding-window definition."""

from hypothesis import given, settings
from hypothesis import strategies as st

from payguard.auth import RateLimiter, TokenBucket
from payguard.auth.ratelimit import NS_PER_S


def reference_accepts(times_ns: list[int], rate: int, burst: int) -> list[bool]:
    """Accept a request at t iff, for every earlier accepted request a (and with nothing
    accepted yet), the accepted requests in [a, t] plus this one fit in
    burst + rate·(t − a): recomputed from the whole history at every request."""
    accepted: list[int] = []
    answers = []
    for t in times_ns:
        ok = burst >= 1
        for i, a in enumerate(accepted):
            count = len(accepted) - i + 1
            if count * NS_PER_S > burst * NS_PER_S + rate * (t - a):
                ok = False
                break
        if ok:
            accepted.append(t)
        answers.append(ok)
    return answers


gaps = st.lists(
    st.one_of(st.just(0), st.integers(0, 5_000_000), st.integers(0, 3 * NS_PER_S)),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(gaps=gaps, rate=st.integers(1, 50), burst=st.integers(1, 10))
def test_bucket_matches_the_sliding_window_reference(
    gaps: list[int], rate: int, burst: int
) -> None:
    start = 10 * NS_PER_S
    times, now = [], start
    for gap in gaps:
        now += gap
        times.append(now)
    bucket = TokenBucket(rate, burst, start)
    waits = [bucket.take(t) for t in times]
    assert [w == 0 for w in waits] == reference_accepts(times, rate, burst)


@settings(max_examples=200, deadline=None)
@given(gaps=gaps, rate=st.integers(1, 50), burst=st.integers(1, 10))
def test_the_wait_it_names_is_exactly_enough(gaps: list[int], rate: int, burst: int) -> None:
    """After a refusal with wait w, the reference accepts a request at +w but not at
    +w−1 (the same history, the refused request left out)."""
    start = 10 * NS_PER_S
    bucket, now, times = TokenBucket(rate, burst, start), start, []
    for gap in gaps:
        now += gap
        wait = bucket.take(now)
        if wait:
            assert wait >= 1
            assert reference_accepts([*times, now + wait], rate, burst)[-1]
            assert not reference_accepts([*times, now + wait - 1], rate, burst)[-1]
        else:
            times.append(now)


def test_limiter_gives_whole_seconds_and_keeps_keys_apart() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=2)
    t = 0
    assert limiter.check("a", t) == 0
    assert limiter.check("a", t) == 0
    assert limiter.check("a", t) == 1  # Retry-After: 1
    assert limiter.check("b", t) == 0
    assert limiter.check("a", t + NS_PER_S) == 0
    assert limiter.check("c", t, rate_per_s=1, burst=1) == 0
    assert limiter.check("c", t, rate_per_s=1, burst=1) == 1
    assert limiter.check("d", t, rate_per_s=2, burst=1) == 0
    assert limiter.check("d", t, rate_per_s=2, burst=1) == 1  # 0.5 s rounds up to 1
