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

Cost: append O(1) amortised; count/sum O(log n); distinct O(k) in the window; is_new
O(1), or O(k) for a query older than the newest entry.
The reads are generated in `features.state` (straight-line code per query plan).
"""

from bisect import bisect_right
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

    @classmethod
    def new(cls, with_totals: bool, with_seen: bool) -> "Timeline":
        return cls([], [], [] if with_totals else None, 0, None, {} if with_seen else None)

    def track_seen(self) -> None:
        """Build `seen` from the entries (for timelines restored without it)."""
        self.seen = dict(zip(self.values, self.ts, strict=True))  # ts ascending: latest wins

    def add(self, ts: EpochMs, value: Any, horizon: EpochMs) -> None:
        """Insert after every entry with the same or an earlier ts, then drop entries at or
        before `horizon` (one call on the hot path instead of two)."""
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        seen = self.seen
        if seen is not None and seen.get(value, ts) <= ts:
            seen[value] = ts
        times = self.ts
        if not times or ts >= times[-1]:
            times.append(ts)
            self.values.append(value)
            if self.totals is not None:
                self.totals.append((self.totals[-1] if self.totals else self.running) + value)
            if times[0] <= horizon:
                self.evict_through(horizon)
            return
        self._insert(ts, value)
        if times[0] <= horizon:
            self.evict_through(horizon)

    def _insert(self, ts: EpochMs, value: Any) -> None:
        times = self.ts
        pos = bisect_right(times, ts)
        times.insert(pos, ts)
        self.values.insert(pos, value)
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
        if self.totals is not None:
            self.running = self.totals[cut - 1]
            del self.totals[:cut]
        del times[:cut]
        del self.values[:cut]


class LegacyTimeline:
    """What a snapshot written before `Timeline` was a Struct unpickles to (see
    `Engine._load_snapshot`); `FeatureState.restore` turns it into a `Timeline`."""

    __slots__ = ("first_ts", "running", "totals", "ts", "values")

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.ts, self.values, self.totals, self.running, self.first_ts = state
