"""Per-key rate limits: a token bucket per API key, in exact integer arithmetic.

A bucket holds up to `burst` tokens, gains `rate_per_s` tokens a second and a request
takes one; a request that finds less than one token is refused with the time until one
is there (the 429's `Retry-After`). Equivalently, over any window [a, t] ending at an
accepted request, at most `burst + rate_per_s·(t − a)` requests are accepted — the
definition the brute-force twin in the tests checks against. Credit is counted in
token-nanoseconds, so no float rounding ever lets an extra request through.

The clock is an argument (monotonic nanoseconds): the API passes `time.monotonic_ns()`,
tests pass their own. A clock that steps back is treated as standing still.
"""

from typing import Final

NS_PER_S: Final = 1_000_000_000


class TokenBucket:
    """One key's bucket; starts full."""

    __slots__ = ("_capacity", "_credit", "_last_ns", "rate_per_s")

    def __init__(self, rate_per_s: int, burst: int, now_ns: int) -> None:
        if rate_per_s < 1 or burst < 1:
            raise ValueError("rate_per_s and burst must be at least 1")
        self.rate_per_s = rate_per_s
        self._capacity = burst * NS_PER_S
        self._credit = self._capacity
        self._last_ns = now_ns

    def take(self, now_ns: int) -> int:
        """Take one token: 0 if the request may go ahead, else the nanoseconds to wait."""
        elapsed = max(0, now_ns - self._last_ns)
        self._last_ns = max(self._last_ns, now_ns)
        self._credit = min(self._capacity, self._credit + elapsed * self.rate_per_s)
        if self._credit >= NS_PER_S:
            self._credit -= NS_PER_S
            return 0
        missing = NS_PER_S - self._credit
        return -(-missing // self.rate_per_s)


class RateLimiter:
    """A bucket per key id, created on the key's first request with the key's own rate
    and burst, or the defaults. Memory is one small object per key that has been used;
    a key whose limits change gets a fresh (full) bucket."""

    def __init__(self, rate_per_s: int, burst: int) -> None:
        self.rate_per_s, self.burst = rate_per_s, burst
        self._buckets: dict[str, tuple[int, int, TokenBucket]] = {}

    def check(
        self, key_id: str, now_ns: int, rate_per_s: int | None = None, burst: int | None = None
    ) -> int:
        """0 if `key_id` may make a request now, else whole seconds to wait (≥ 1)."""
        rate, size = rate_per_s or self.rate_per_s, burst or self.burst
        found = self._buckets.get(key_id)
        if found is None or found[:2] != (rate, size):
            found = (rate, size, TokenBucket(rate, size, now_ns))
            self._buckets[key_id] = found
        wait_ns = found[2].take(now_ns)
        return 0 if wait_ns == 0 else max(1, -(-wait_ns // NS_PER_S))
