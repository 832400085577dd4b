"""A per-entity event timeline sorted by event time: the one structure behind every window.

Entries are `(ts, value)` kept sorted by `ts`; ties keep arrival order, so an event sees
every earlier-arrived event with `ts <= t`. A window of length W queried at time t covers
the half-open interval (t - W, t], found with two binary searches. Sums use running
totals, so a window sum costs two bisects and a subtraction regardless of its size.

**Raw head and folded past.** Raw entries are kept only as far back as an exact answer
needs them: the stream's longest `count`/`sum`/`quantile`/`hour_share`/`top_share` window
(`Stream.raw_ms`, 0 when it has none) plus the lateness. Older entries are *folded*: each
value's latest folded time goes into `past` (value -> ts, one integer per distinct value)
and the latest folded time into `folded_last`. That is all `is_new`, `distinct` and
`minutes_since` need to stay exact over any longer window, because for a query at t every
entry later than t is still raw (t is never before the watermark minus the lateness):

- a value occurs in (t - W, t] iff a raw entry in that range has it or `past[value] > t - W`;
- `distinct` is the raw window's values united with the `past` values later than t - W
  (counted by a bisect: a stream read by `distinct` keeps `past` as a `Past`, its times
  also sorted);
- the latest entry at or before t is the raw one, else `folded_last`.

So "the devices an account used in 90 days" costs one integer per device, not one entry
per event: the per-account state stops growing once the windows are full. Folded values
older than every window (`Stream.retention_ms`) are dropped by the sweep; reads ignore
them anyway, since they compare times. (Count-like aggregates are not tiled into
time buckets: an exact count over a sliding window needs every entry's time, and at a
customer's rate of about one money event a day a one-day bucket holds one entry anyway;
see docs/features.md, "Cost and memory".)

Out-of-order arrival (within the configured lateness) is an insertion in the middle; it
costs O(entries after it), which is small because late events are rarely late by much.

Three more structures serve the behavioural aggregates over the raw head, each kept only
by the streams that need it and each answering in O(1)-ish time when the query covers
every raw entry (the usual case while the window is filling: the longest window, asked at
or after the newest entry), in O(entries left out) when it leaves out only a few of them
(`OUTSIDE_FEW`: once the window is full, the lateness margin at the head's start, which
the raw head keeps and the window does not reach; issue 16), falling back to a scan of the
window otherwise:
- `ranked`, the entries' values sorted (quantile streams): the k-th smallest is an index;
- `tally`, each value's total weight among the entries (hour_share, top_share streams):
  the hour habit is three lookups, the top value's share a max over the distinct values;
- `weights`, each entry's weight, its amount in fen or 1 (top_share streams).

Cost: append O(1) amortised (O(n) memmove for `ranked`, and for `Past.times` when a
folded value repeats); count/sum O(log n); distinct O(k + log(distinct folded values));
is_new O(raw entries in the window), the raw head of an `is_new` stream being usually a
few entries; quantile O(1) (O(k log k) for a partial
window); hour_share O(1); top_share O(1) over the whole head (`Tally` keeps its total and
heaviest weight; O(distinct values) when the heaviest lost weight since the last read),
else O(distinct values) — over a window that is most of the raw head, the head's tally
(a C-level copy) less the entries outside it.
The reads are generated in `features.compiled` (straight-line code per query plan).

**Packed, and nothing for an empty head** (issue 16). Amounts, running totals, weights
and ranked values are `array('q')` (8 bytes an entry, where a list slot and its own int
object cost about 40), hours are `array('b')`, and an hour tally is 24 counters in one
array; token values (devices, cards, merchants …) stay a list, of interned strings (one
copy per token, however many timelines hold it). Times stay a list: the ~30 streams an
event is filed into share its one time object (8 bytes a slot, as in an array), the
folded past keeps the same objects, and `bisect` over a list reads existing ints where
over an array it makes one per step (2.4 times slower; measured as 4 % of the whole
event). A stream read only for `count` or `minutes_since` keeps no values at
all. When the raw head is empty (every entry folded: the usual state of a novelty stream
between sessions) its containers are dropped (None) and made again by the next `add`, so
an idle timeline is a Struct and its folded past. `shape` says which containers a
timeline of its stream keeps. Running totals are absolute (never rebased, so a fold stays
O(folded entries)): 64 bits hold 92 trillion yuan filed under one entity.
"""

from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from itertools import repeat
from typing import Any

import msgspec

from payguard.types import EpochMs

VALUES_NONE, VALUES_INT, VALUES_HOUR, VALUES_ANY = 0, 1, 2, 3
"""What a stream keeps per entry (the low two bits of `Timeline.shape`): nothing (`count`,
`minutes_since` streams), an integer (`array('q')`: amounts), a local hour (`array('b')`,
`hour_share` streams) or a token (a list of interned strings)."""
VALUE_BITS = 3
TOTALS, PAST, WEIGHTS, TALLY, RANKED, FIRST, LAST = 4, 8, 16, 32, 64, 128, 256
"""Bits of `Timeline.shape` above the value code: which containers the stream keeps;
FIRST and LAST: whether it keeps `first_ts` (`age` reads it) and `folded_last` (a
`minutes_since` past the raw head or the sweep of a first-seen time reads it)."""
HOURS = 24


def shape_of(
    values: int,
    with_totals: bool = False,
    with_past: bool = False,
    with_weights: bool = False,
    with_tally: bool = False,
    with_ranked: bool = False,
    with_first: bool = True,
    with_last: bool = True,
) -> int:
    """The `Timeline.shape` of a stream: its value code and the containers it keeps."""
    return (
        values
        | (FIRST if with_first else 0)
        | (LAST if with_last else 0)
        | (TOTALS if with_totals else 0)
        | (PAST if with_past else 0)
        | (WEIGHTS if with_weights else 0)
        | (TALLY if with_tally else 0)
        | (RANKED if with_ranked else 0)
    )


class Tally(dict[Any, int]):
    """A `top_share` stream's tally (value -> total weight of its raw entries) that also
    keeps the weights' total and the largest weight as entries come and go, so that the
    share over the whole head is one division instead of a visit of every distinct value
    (for a merchant's month of customers, hundreds of scattered ints: issue 11).

    `top` is -1 when unknown (the heaviest value lost weight): the next read computes
    it again. `top_value` is a value that held `top` when it was last set (a hint: a read
    checks that it still does); a window that leaves out a few of the head's oldest
    entries reads the share from it without visiting every value, as long as those
    entries are not the top value's (issue 16). A tally decoded from a snapshot or a
    shared store is a plain dict; the first read makes it a `Tally` (`Tally.of`)."""

    __slots__ = ("top", "top_value", "total")

    def __init__(self) -> None:
        super().__init__()
        self.top = 0
        self.top_value: Any = None
        self.total = 0

    @classmethod
    def of(cls, tally: dict[Any, int]) -> "Tally":
        """A plain tally as a `Tally` (its total and largest weight computed once)."""
        kept = cls()
        kept.update(tally)
        kept.total = sum(tally.values())
        kept.find_top()
        return kept

    def find_top(self) -> int:
        """Compute `top` and `top_value` again (O(distinct values)); returns `top`."""
        top, top_value = 0, None
        for value, held in self.items():
            if held > top:
                top, top_value = held, value
        self.top, self.top_value = top, top_value
        return top

    def add(self, value: Any, weight: int) -> None:
        """Count `weight` more for `value`."""
        held = self[value] = self.get(value, 0) + weight
        self.total += weight
        if held > self.top >= 0:
            self.top = held
            self.top_value = value

    def take(self, value: Any, weight: int) -> None:
        """Count `weight` less for `value`, dropping it at 0."""
        held = self.get(value, 0)
        if held - weight:
            self[value] = held - weight
        else:
            self.pop(value, None)
        self.total -= weight
        if held == self.top:
            self.top = -1


OUTSIDE_FEW = 8
"""A behavioural read of a window that leaves out at most 1/OUTSIDE_FEW as many of the raw
head's entries as it covers takes the head's kept structure (`ranked`, `tally`) less those
entries, in O(entries left out) instead of O(window) (issue 16): a full window of a busy
merchant's 30 days leaves out only the lateness margin at the head's start."""

PAST_SORTED_FROM = 16
"""A folded past read by `distinct` keeps its times sorted (`Past`) from this many values:
below it the visit of every value costs less than keeping them sorted on each fold."""


class Past(dict[Any, EpochMs]):
    """A folded past (value -> its latest folded time) that also keeps those times sorted
    (`times`, one slot per value), so that how many values were last seen after a window's
    start is a bisect instead of a visit of every folded value (issues 16 and 11: a
    merchant's month of customers read on each of its payments grew with the history).

    Only `distinct` reads need the count: a past decoded from a snapshot or a shared store,
    one only `is_new` reads, or a small one is a plain dict (encoded alike), made a `Past`
    by the first `distinct` read that finds `PAST_SORTED_FROM` values or more (`Past.of`)
    and kept one by every fold after it (`fold`)."""

    __slots__ = ("times",)

    def __init__(self) -> None:
        super().__init__()
        self.times: list[EpochMs] = []

    @classmethod
    def of(cls, past: dict[Any, EpochMs]) -> "Past":
        """A plain folded past as a `Past` (its times sorted once)."""
        kept = cls()
        kept.update(past)
        kept.times = sorted(past.values())
        return kept

    def fold(self, value: Any, ts: EpochMs) -> None:
        """Record `value` folded at `ts` unless it was already folded later (an entry
        filed late may be older): its old time leaves `times`, the new one joins it."""
        old = self.get(value)
        if old is not None and old >= ts:
            return
        times = self.times
        if old is not None:
            del times[bisect_left(times, old)]
        if not times or ts >= times[-1]:
            times.append(ts)
        else:
            insort(times, ts)
        self[value] = ts

    def count_after(self, since: EpochMs) -> int:
        """How many values were last folded after `since`."""
        times = self.times
        return len(times) - bisect_right(times, since)

    def forget(self, horizon: EpochMs) -> None:
        """Drop the values last folded at or before `horizon`."""
        times = self.times
        cut = bisect_right(times, horizon)
        if cut:
            del times[:cut]
            for value in [v for v, ts in self.items() if ts <= horizon]:
                del self[value]


class Timeline(msgspec.Struct, array_like=True, gc=False):
    """The raw head of one stream for one entity key, and its folded past.

    A msgspec Struct so that a state snapshot encodes and decodes every timeline in C
    (arrays as msgpack extensions, `encode_entities`). `gc=False`: a timeline holds only
    numbers, strings and arrays, never a reference cycle. The containers of the raw head
    are None while it is empty (see the module's docstring): `ts` is None exactly then."""

    shape: int
    ts: list[EpochMs] | None = None
    """Entry times, ascending (a list: see the module's docstring); None when no entry
    is raw."""
    values: Any = None
    """Entry values (`shape & VALUE_BITS`): `array('q')`, `array('b')`, a list, or None."""
    totals: Any = None
    """Running totals of `values`, `array('q')` (sum streams only)."""
    running: int = 0
    """Total of all values folded so far: the base the running totals start from."""
    first_ts: EpochMs | None = None
    """Earliest ts ever added (survives folding): the entity's first-seen time (FIRST)."""
    past: dict[Any, EpochMs] | None = None
    """Latest time of each folded value (streams read by `is_new` or `distinct` only;
    None until something is folded)."""
    weights: Any = None
    """Each entry's weight, `array('q')`: its amount in fen, 1 without one (`top_share`
    streams only)."""
    tally: Any = None
    """Total weight of each value among the entries, a count where entries carry no weight
    (`hour_share`: 24 counters in an `array('q')`; `top_share`: a dict)."""
    ranked: Any = None
    """The entries' values in ascending order, `array('q')` (`quantile` streams only)."""
    folded_last: EpochMs | None = None
    """The latest folded time (for an `age`-only stream, which keeps no entries, the
    latest time filed): `minutes_since` past the raw head, and when the entity was last
    seen, for forgetting it (`FeatureState.sweep`); LAST streams only."""

    @classmethod
    def new(
        cls,
        with_totals: bool = False,
        with_past: bool = False,
        with_weights: bool = False,
        with_tally: bool = False,
        with_ranked: bool = False,
        values: int = VALUES_ANY,
    ) -> "Timeline":
        """An empty timeline (tests and tools; the state builds them from `shape_of`)."""
        if with_totals and values == VALUES_ANY:
            values = VALUES_INT
        shape = shape_of(values, with_totals, with_past, with_weights, with_tally, with_ranked)
        return cls(shape)

    def open(self) -> list[EpochMs]:
        """Make the raw head's containers (it was empty); returns `ts`."""
        shape = self.shape
        code = shape & VALUE_BITS
        if code == VALUES_INT:
            self.values = array("q")
        elif code == VALUES_HOUR:
            self.values = array("b")
        elif code == VALUES_ANY:
            self.values = []
        if shape & TOTALS:
            self.totals = array("q")
        if shape & WEIGHTS:
            self.weights = array("q")
        if shape & TALLY:
            self.tally = array("q", bytes(8 * HOURS)) if code == VALUES_HOUR else Tally()
        if shape & RANKED:
            self.ranked = array("q")
        times = self.ts = []
        return times

    def close(self) -> None:
        """Drop the raw head's containers: every entry was folded."""
        self.ts = self.values = self.totals = self.weights = self.tally = self.ranked = None

    def _weights(self, lo: int = 0, hi: int | None = None) -> Iterable[int]:
        """Weights of entries [lo, hi): the kept ones, or 1 each where none are kept."""
        end = len(self.ts or ()) if hi is None else hi
        return self.weights[lo:end] if self.weights is not None else repeat(1, end - lo)

    def last_seen(self) -> EpochMs | None:
        """The latest time filed that is still held (raw or folded)."""
        last = self.folded_last
        if self.ts and (last is None or self.ts[-1] > last):
            newest: EpochMs = self.ts[-1]
            return newest
        return last

    def add(self, ts: EpochMs, value: Any, horizon: EpochMs, weight: int = 1) -> None:
        """Insert after every entry with the same or an earlier ts, then fold entries at or
        before `horizon` (the raw head's start; one call on the hot path instead of two).
        `weight` is kept only by streams that keep weights."""
        if self.shape & FIRST and (self.first_ts is None or ts < self.first_ts):
            self.first_ts = ts
        times = self.ts
        if times is None:
            times = self.open()
        if self.weights is None:
            weight = 1
        tally = self.tally
        if tally is not None:
            if isinstance(tally, Tally):
                tally.add(value, weight)
            elif isinstance(tally, dict):
                tally[value] = tally.get(value, 0) + weight
            else:
                tally[value] += weight
        if self.ranked is not None:
            insort(self.ranked, value)
        if not times or ts >= times[-1]:
            times.append(ts)
            if self.values is not None:
                self.values.append(value)
            if self.totals is not None:
                self.totals.append((self.totals[-1] if self.totals else self.running) + value)
            if self.weights is not None:
                self.weights.append(weight)
        else:
            self._insert(ts, value, weight)
        if times[0] <= horizon:
            self.fold_through(horizon)

    def _insert(self, ts: EpochMs, value: Any, weight: int) -> None:
        times = self.ts
        assert times is not None  # add() opened the head
        pos = bisect_right(times, ts)
        times.insert(pos, ts)
        if self.values is not None:
            self.values.insert(pos, value)
        if self.weights is not None:
            self.weights.insert(pos, weight)
        totals = self.totals
        if totals is not None:
            before = totals[pos - 1] if pos else self.running
            totals.insert(pos, before + value)
            for i in range(pos + 1, len(totals)):
                totals[i] += value

    def fold_through(self, horizon: EpochMs) -> None:
        """Move raw entries with ts <= horizon into the folded past: no exact window
        needs them raw any more (their values' latest times stay in `past`)."""
        times = self.ts
        if not times or times[0] > horizon:
            return
        whole = times[-1] <= horizon  # every entry folds (a third of the calls): no copies
        cut = len(times) if whole else bisect_right(times, horizon)
        if self.shape & PAST:
            past = self.past
            if past is None:
                past = self.past = {}
            values = self.values if whole else self.values[:cut]
            folded = times if whole else times[:cut]
            if type(past) is Past:
                for value, ts in zip(values, folded, strict=True):
                    past.fold(value, ts)
            else:
                get = past.get
                for value, ts in zip(values, folded, strict=True):
                    if get(value, ts) <= ts:  # an entry filed late may be older
                        past[value] = ts
        if self.shape & LAST:
            last = times[cut - 1]
            if self.folded_last is None or last > self.folded_last:
                self.folded_last = last
        if self.totals is not None:
            self.running = self.totals[cut - 1]
        if whole:
            self.close()
            return
        if self.tally is not None or self.ranked is not None:
            self._forget(cut)
        if self.totals is not None:
            del self.totals[:cut]
        if self.weights is not None:
            del self.weights[:cut]
        del times[:cut]
        if self.values is not None:
            del self.values[:cut]

    def forget_past(self, horizon: EpochMs, keep_last: bool = False) -> None:
        """Drop folded values at or before `horizon`: older than every window; and the
        latest folded time unless `keep_last` (it says when an `age` entity was last seen)."""
        past = self.past
        if type(past) is Past:
            past.forget(horizon)
        elif past:
            for value in [v for v, ts in past.items() if ts <= horizon]:
                del past[value]
        if past is not None and not past:
            self.past = None
        if not keep_last and self.folded_last is not None and self.folded_last <= horizon:
            self.folded_last = None

    def _forget(self, cut: int) -> None:
        """Take the first `cut` entries out of `tally` and `ranked` (before folding)."""
        tally, ranked = self.tally, self.ranked
        counters = tally if tally is not None and not isinstance(tally, dict) else None
        for value, weight in zip(self.values[:cut], self._weights(0, cut), strict=True):
            if counters is not None:
                counters[value] -= weight
            elif isinstance(tally, Tally):
                tally.take(value, weight)
            elif tally is not None:
                left = tally.get(value, 0) - weight
                if left:
                    tally[value] = left
                else:
                    tally.pop(value, None)
            if ranked is not None:
                del ranked[bisect_left(ranked, value)]

    # -- set-like aggregates over the raw window [lo, hi) and the folded past ------------

    def occurs_since(self, value: Any, lo: int, hi: int, since: EpochMs) -> bool:
        """Whether `value` occurs in the raw entries [lo, hi) or folded after `since`."""
        past = self.past
        if past is not None and past.get(value, since) > since:
            return True
        values = self.values
        if values is None:
            return False
        return value in (values if lo == 0 and hi == len(values) else values[lo:hi])

    def distinct_since(self, lo: int, hi: int, since: EpochMs) -> int:
        """Distinct values of the raw entries [lo, hi) and of the past folded after `since`:
        the folded ones counted by a bisect of `Past.times`, then each distinct raw value
        that the past does not already count (O(log n + raw entries), not O(past)).

        Most calls (issue 11: 145k on the seed-5 world) see a window of zero or one raw
        entries and a past of one or two values: those take no set and no generator."""
        span = hi - lo
        if span <= 0:
            raw: Any = ()
        elif span == 1:
            raw = (self.values[lo],)
        else:
            raw = set(self.values[lo:hi])
        past = self.past
        if not past:
            return len(raw)
        if type(past) is not Past:  # decoded, small, or read by `is_new` until now
            if len(past) < PAST_SORTED_FROM:
                count = len(raw)
                for value, ts in past.items():
                    if ts > since and value not in raw:
                        count += 1
                return count
            past = self.past = Past.of(past)
        count = past.count_after(since)
        for value in raw:
            if past.get(value, since) <= since:
                count += 1
        return count

    # -- behavioural aggregates over entries [lo, hi) -------------------------------------

    def quantile(self, lo: int, hi: int, num: int, den: int) -> int:
        """The nearest-rank q-quantile (q = num/den) of the values in entries [lo, hi),
        which must not be empty: the k-th smallest with k = ceil(q * count). From `ranked`
        directly when the range is every entry; from `ranked` past the positions of the few
        values outside the range when they are few (`_outside`: a window that leaves out
        the head's oldest entries, the lateness margin, once the window is full); otherwise
        by sorting the window."""
        k = -(-num * (hi - lo) // den)
        ranked, values = self.ranked, self.values
        outside = len(values) - (hi - lo)
        if ranked is not None and outside == 0:
            return int(ranked[k - 1])
        if ranked is not None and self._few_outside(lo, hi):
            # the k-th of `ranked` once the outside values' slots are skipped: each slot
            # of one at or before the candidate moves it one on (equal values take
            # consecutive slots: which of them is skipped does not change the answer)
            j, slot, previous = k - 1, -1, None
            for value in sorted(self._outside(values, lo, hi)):
                slot = slot + 1 if value == previous else bisect_left(ranked, value)
                previous = value
                if slot > j:
                    break
                j += 1
            return int(ranked[j])
        ordered: list[int] = sorted(values[lo:hi])
        return ordered[k - 1]

    def _few_outside(self, lo: int, hi: int) -> bool:
        """Whether the raw entries outside [lo, hi) are few enough (`OUTSIDE_FEW`) to take
        the head's kept structure less them."""
        return (len(self.values) - (hi - lo)) * OUTSIDE_FEW <= hi - lo

    @staticmethod
    def _outside(entries: Any, lo: int, hi: int) -> Any:
        """The entries before `lo` and from `hi` on (a few, by the callers' tests)."""
        return (*entries[:lo], *entries[hi:]) if hi < len(entries) else entries[:lo]

    def _outside_weights(self, lo: int, hi: int) -> dict[Any, int]:
        """Each value's total weight among the entries outside [lo, hi)."""
        weights = self.weights
        gone: dict[Any, int] = {}
        get = gone.get
        if weights is None:
            for value in self._outside(self.values, lo, hi):
                gone[value] = get(value, 0) + 1
        else:
            outside = self._outside
            for value, weight in zip(
                outside(self.values, lo, hi), outside(weights, lo, hi), strict=True
            ):
                gone[value] = get(value, 0) + weight
        return gone

    def distinct_tallied(self, lo: int, hi: int) -> int:
        """Distinct values of entries [lo, hi) of a tallied stream (`tally` a dict, weights
        > 0): the tally's values less those whose whole weight lies outside the range,
        when the entries outside are few; else the window's set."""
        tally, values = self.tally, self.values
        if isinstance(tally, dict) and self._few_outside(lo, hi):
            gone = self._outside_weights(lo, hi)
            return len(tally) - sum(1 for value, less in gone.items() if tally[value] <= less)
        return len(set(values[lo:hi]))

    def hour_share(self, lo: int, hi: int, hour: int) -> int:
        """Permille of entries [lo, hi) (not empty) whose hour is within one hour of `hour`,
        circularly (23 and 0 are neighbours)."""
        tally = self.tally
        if tally is not None and lo == 0 and hi == len(self.values):
            if isinstance(tally, dict):
                near = tally.get(hour, 0) + tally.get((hour + 1) % 24, 0)
                near += tally.get((hour - 1) % 24, 0)
            else:
                near = tally[hour] + tally[(hour + 1) % 24] + tally[(hour - 1) % 24]
        elif tally is not None and self.weights is None and self._few_outside(lo, hi):
            # the head's counters less the few entries outside the window
            near = tally[hour] + tally[(hour + 1) % 24] + tally[(hour - 1) % 24]
            for h in self._outside(self.values, lo, hi):
                if (h - hour) % 24 in (0, 1, 23):
                    near -= 1
        else:
            near = sum(1 for h in self.values[lo:hi] if (h - hour) % 24 in (0, 1, 23))
        return int(near * 1000 // (hi - lo))

    def top_share(self, lo: int, hi: int) -> int:
        """Permille of the total weight of entries [lo, hi) that its heaviest value holds;
        0 when the total is 0."""
        tally = self.tally
        n = len(self.values) if isinstance(tally, dict) else 0
        if n and self._few_outside(lo, hi):
            # the head's tally less the few entries outside the window (the lateness
            # margin of a full window): its top stands unless they are the top value's
            if type(tally) is not Tally:
                tally = self.tally = Tally.of(tally)
            top = tally.top
            if top < 0 or tally.get(tally.top_value) != top:
                top = tally.find_top()
            gone = self._outside_weights(lo, hi)
            total = tally.total - sum(gone.values())
            if tally.top_value not in gone:
                best = top
            else:
                best = max(held - gone.get(value, 0) for value, held in tally.items())
            return int(best * 1000 // total) if total > 0 else 0
        if not isinstance(tally, dict) or n - (hi - lo) > hi - lo:
            tally = {}
            for value, weight in zip(self.values[lo:hi], self._weights(lo, hi), strict=True):
                tally[value] = tally.get(value, 0) + weight
        elif lo != 0 or hi != n:  # the head's tally less the entries outside the window
            tally = dict(tally)
            for a, b in ((0, lo), (hi, n)):
                for value, weight in zip(self.values[a:b], self._weights(a, b), strict=True):
                    tally[value] -= weight
        total = sum(tally.values())
        return int(max(tally.values()) * 1000 // total) if total > 0 else 0


_EXT_OF = {"q": 1, "b": 2}
_TYPECODE_OF = {code: typecode for typecode, code in _EXT_OF.items()}


def encode_array(obj: Any) -> msgspec.msgpack.Ext:
    """A timeline's array as a msgpack extension (its machine bytes; a snapshot is read
    back on the machine that wrote it, or refused by its digest and format)."""
    if isinstance(obj, array):
        return msgspec.msgpack.Ext(_EXT_OF[obj.typecode], obj.tobytes())
    raise NotImplementedError(f"cannot encode {type(obj).__name__} in a timeline")


def decode_array(code: int, data: memoryview) -> "array[int]":
    """The array `encode_array` wrote."""
    packed = array(_TYPECODE_OF[code])
    packed.frombytes(data)
    return packed
