"""A per-entity event timeline sorted by event time: the one structure behind every window.

Entries are `(ts, value)` kept sorted by `ts`; ties keep arrival order, so an event sees
every earlier-arrived event with `ts <= t`. A window of length W queried at time t covers
the half-open interval (t - W, t], found with two binary searches. Sums use running
totals, so a window sum costs two bisects and a subtraction regardless of its size.

Out-of-order arrival (within the configured lateness) is an insertion in the middle; it
costs O(entries after it), which is small because late events are rarely late by much.
Eviction drops a prefix once it is older than every window could ask for.

Streams read by `is_new` also keep `seen`, each value's latest ts among the entries, so
"is this value new within the window" is one dict lookup when the query is at or after
the newest entry (the usual case) instead of a scan comparing against every value in the
window — for the IPs a merchant saw in 30 days that scan was the costliest feature read.

Three more structures serve the behavioural aggregates, each kept only by the streams
that need it and each answering in O(1)-ish time when the query covers every entry (the
usual case: the longest window, asked at or after the newest entry), falling back to a
scan of the window otherwise:
- `ranked`, the entries' values sorted (quantile streams): the k-th smallest is an index;
- `tally`, each value's total weight among the entries (hour_share, top_share streams):
  the hour habit is three lookups, the top value's share a max over the distinct values;
- `weights`, each entry's weight, its amount in fen or 1 (top_share streams).

Cost: append O(1) amortised (O(n) memmove for `ranked`); count/sum O(log n); distinct O(k)
in the window; is_new O(1), or O(k) for a query older than the newest entry; quantile O(1)
(O(k log k) for a partial window); hour_share O(1); top_share O(distinct values).
The reads are generated in `features.state` (straight-line code per query plan).
"""

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from itertools import repeat
from typing import Any

import msgspec

from payguard.types import EpochMs


class Timeline(msgspec.Struct, array_like=True, gc=False):
    """Sorted `(ts, value)` entries of one stream for one entity key.

    A msgspec Struct so that a state snapshot encodes and decodes every timeline in C
    (pickling them one Python call each took a fifth of a second per 100,000 events).
    `gc=False`: a timeline holds only numbers and strings, never a reference cycle."""

    ts: list[EpochMs] = msgspec.field(default_factory=list)
    values: list[Any] = msgspec.field(default_factory=list)
    totals: list[int] | None = None
    """Running totals of `values` (sum streams only)."""
    running: int = 0
    """Total of all values evicted so far: the base the running totals start from."""
    first_ts: EpochMs | None = None
    """Earliest ts ever added (survives eviction): the entity's first-seen time."""
    seen: dict[Any, EpochMs] | None = None
    """Latest ts of each value among the entries (streams read by `is_new` only)."""
    weights: list[int] | None = None
    """Each entry's weight: its amount in fen, 1 without one (`top_share` streams only)."""
    tally: dict[Any, int] | None = None
    """Total weight of each value among the entries, a count where entries carry no weight
    (`hour_share` and `top_share` streams only)."""
    ranked: list[int] | None = None
    """The entries' values in ascending order (`quantile` streams only)."""

    @classmethod
    def new(
        cls,
        with_totals: bool,
        with_seen: bool,
        with_weights: bool = False,
        with_tally: bool = False,
        with_ranked: bool = False,
    ) -> "Timeline":
        return cls(
            [],
            [],
            [] if with_totals else None,
            0,
            None,
            {} if with_seen else None,
            [] if with_weights else None,
            {} if with_tally else None,
            [] if with_ranked else None,
        )

    def track_seen(self) -> None:
        """Build `seen` from the entries (for timelines restored without it)."""
        self.seen = dict(zip(self.values, self.ts, strict=True))  # ts ascending: latest wins

    def track_tally(self) -> None:
        """Build `tally` from the entries (for timelines restored without it)."""
        tally: dict[Any, int] = {}
        for value, weight in zip(self.values, self._weights(), strict=True):
            tally[value] = tally.get(value, 0) + weight
        self.tally = tally

    def track_ranked(self) -> None:
        """Build `ranked` from the entries (for timelines restored without it)."""
        self.ranked = sorted(self.values)

    def _weights(self, lo: int = 0, hi: int | None = None) -> Iterable[int]:
        """Weights of entries [lo, hi): the kept ones, or 1 each where none are kept."""
        end = len(self.values) if hi is None else hi
        return self.weights[lo:end] if self.weights is not None else repeat(1, end - lo)

    def add(self, ts: EpochMs, value: Any, horizon: EpochMs, weight: int = 1) -> None:
        """Insert after every entry with the same or an earlier ts, then drop entries at or
        before `horizon` (one call on the hot path instead of two). `weight` is kept only
        by streams that keep weights."""
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        seen = self.seen
        if seen is not None and seen.get(value, ts) <= ts:
            seen[value] = ts
        if self.weights is None:
            weight = 1
        if self.tally is not None:
            self.tally[value] = self.tally.get(value, 0) + weight
        if self.ranked is not None:
            insort(self.ranked, value)
        times = self.ts
        if not times or ts >= times[-1]:
            times.append(ts)
            self.values.append(value)
            if self.totals is not None:
                self.totals.append((self.totals[-1] if self.totals else self.running) + value)
            if self.weights is not None:
                self.weights.append(weight)
            if times[0] <= horizon:
                self.evict_through(horizon)
            return
        self._insert(ts, value, weight)
        if times[0] <= horizon:
            self.evict_through(horizon)

    def _insert(self, ts: EpochMs, value: Any, weight: int) -> None:
        times = self.ts
        pos = bisect_right(times, ts)
        times.insert(pos, ts)
        self.values.insert(pos, value)
        if self.weights is not None:
            self.weights.insert(pos, weight)
        totals = self.totals
        if totals is not None:
            before = totals[pos - 1] if pos else self.running
            totals.insert(pos, before + value)
            for i in range(pos + 1, len(totals)):
                totals[i] += value

    def evict_through(self, horizon: EpochMs) -> None:
        """Drop entries with ts <= horizon; no window can reach them any more."""
        times = self.ts
        if not times or times[0] > horizon:
            return
        cut = bisect_right(times, horizon)
        seen = self.seen
        if seen is not None:
            for value in self.values[:cut]:
                if seen.get(value, horizon + 1) <= horizon:  # no later entry has it
                    del seen[value]
        if self.tally is not None or self.ranked is not None:
            self._forget(cut)
        if self.totals is not None:
            self.running = self.totals[cut - 1]
            del self.totals[:cut]
        if self.weights is not None:
            del self.weights[:cut]
        del times[:cut]
        del self.values[:cut]

    def _forget(self, cut: int) -> None:
        """Take the first `cut` entries out of `tally` and `ranked` (before eviction)."""
        tally, ranked = self.tally, self.ranked
        for value, weight in zip(self.values[:cut], self._weights(0, cut), strict=True):
            if tally is not None:
                left = tally.get(value, 0) - weight
                if left:
                    tally[value] = left
                else:
                    tally.pop(value, None)
            if ranked is not None:
                del ranked[bisect_left(ranked, value)]

    # -- behavioural aggregates over entries [lo, hi) -------------------------------------

    def quantile(self, lo: int, hi: int, num: int, den: int) -> int:
        """The nearest-rank q-quantile (q = num/den) of the values in entries [lo, hi),
        which must not be empty: the k-th smallest with k = ceil(q * count). From `ranked`
        directly when the range is every entry; after taking a few outside values out of a
        copy of it when they are few; otherwise by sorting the window."""
        k = -(-num * (hi - lo) // den)
        ranked, values = self.ranked, self.values
        outside = len(values) - (hi - lo)
        if ranked is not None and outside == 0:
            return ranked[k - 1]
        if ranked is not None and outside * 8 <= hi - lo:
            kept = ranked.copy()
            for value in (*values[:lo], *values[hi:]):
                del kept[bisect_left(kept, value)]
            return kept[k - 1]
        ordered: list[int] = sorted(values[lo:hi])
        return ordered[k - 1]

    def hour_share(self, lo: int, hi: int, hour: int) -> int:
        """Permille of entries [lo, hi) (not empty) whose hour is within one hour of `hour`,
        circularly (23 and 0 are neighbours)."""
        tally = self.tally
        if tally is not None and lo == 0 and hi == len(self.values):
            near = tally.get(hour, 0) + tally.get((hour + 1) % 24, 0)
            near += tally.get((hour - 1) % 24, 0)
        else:
            near = sum(1 for h in self.values[lo:hi] if (h - hour) % 24 in (0, 1, 23))
        return near * 1000 // (hi - lo)

    def top_share(self, lo: int, hi: int) -> int:
        """Permille of the total weight of entries [lo, hi) that its heaviest value holds;
        0 when the total is 0."""
        tally = self.tally
        if tally is None or lo != 0 or hi != len(self.values):
            tally = {}
            for value, weight in zip(self.values[lo:hi], self._weights(lo, hi), strict=True):
                tally[value] = tally.get(value, 0) + weight
        total = sum(tally.values())
        return max(tally.values()) * 1000 // total if total > 0 else 0


class LegacyTimeline:
    """What a snapshot written before `Timeline` was a Struct unpickles to (see
    `Engine._load_snapshot`); `FeatureState.restore` turns it into a `Timeline`."""

    __slots__ = ("first_ts", "running", "totals", "ts", "values")

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.ts, self.values, self.totals, self.running, self.first_ts = state
