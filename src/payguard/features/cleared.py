"""Cleared entities: an analyst's (or a bank's) `not_fraud` verdict discounts the fraud
reports an entity collected up to the verdict's time.

Fraud reports, chargebacks and `fraud` labels reach the label streams (`source:
referenced` filters) under the entities of the event they point at, and rules read them
as "this merchant was reported" (`count_fraud_label_by_merchant_30d`, …). A merchant
that a few customers reported by mistake — or that a fraud ring reported on purpose —
would carry that for the whole window. When someone who can judge the entity (`source`
`analyst` or `bank`, `CLEARING_SOURCES`) labels an event of it `not_fraud`, the merchant,
payee and card of that event (`CLEARED_ENTITIES`) are cleared at the label's time `L`:
from then on their label-stream aggregates count only reports dated after `L`. A report
filed after the verdict counts again, so a merchant that goes bad later is seen.

Point in time: the clearing is one more entry per entity, dated `L`. An event at `t`
sees it only if the label arrived before the event and `L <= t`, so an event dated before
the verdict still sees the reports it saw (a window `(t - W, t]` becomes
`(max(t - W, L), t]`, with `L` the latest such clearing). The brute-force twin
(`features.reference`) recomputes the same from the raw log.

What it deliberately does not do: a customer's own "that was me" (`source: customer`)
clears nothing (a customer cannot vouch for a merchant, and a mule would clear its own
accounts), and the account's and device's own report counts are never cleared (the
customer's history is not the merchant's). Cleared aggregates are the windowed ones
(count, sum, distinct, minutes/seconds since, quantile, hour share, top share); `is_new`
and `age` over a label stream are left as they are.
"""

from bisect import bisect_right, insort
from collections.abc import Iterable
from typing import Any, cast

from payguard.events import Event
from payguard.features.layout import Feature, Record, StateLayout
from payguard.features.timeline import Timeline
from payguard.types import HOUR_MS, MINUTE_MS, EpochMs

CLEARING_SOURCES: frozenset[str] = frozenset({"analyst", "bank"})
"""Who can clear an entity with a `not_fraud` label."""
CLEARED_ENTITIES: frozenset[str] = frozenset({"merchant", "payee", "card"})
"""Entity kinds a clearing reaches: a kind grouped by one of these first (`merchant`,
`merchant+net`, `card`, `payee`)."""
CLEARED_HOWS: frozenset[str] = frozenset(
    {
        "count",
        "sum",
        "distinct",
        "minutes_since",
        "seconds_since",
        "quantile",
        "hour_share",
        "top_share",
    }
)
"""Aggregates whose window a clearing shortens."""
NEVER = 10**9
"""`features.state.NEVER` (not imported: state imports this module)."""


def clears(event: Event) -> bool:
    """Whether `event` clears the entities of the event it references: a `not_fraud`
    label from a source that can judge them (`CLEARING_SOURCES`)."""
    return event.type == "label" and event.label == "not_fraud" and event.source in CLEARING_SOURCES


def is_cleared_kind(by: str) -> bool:
    """Whether a clearing reaches entities grouped `by` (its first component)."""
    return by.split("+")[0] in CLEARED_ENTITIES


class Clearings:
    """The clearing times per entity kind and key, each list ascending (see the module
    docstring), for the feature state of one catalog."""

    def __init__(self, state: StateLayout) -> None:
        self.times: list[dict[str, list[EpochMs]]] = [{} for _ in state.kinds]
        self.active = False
        """Whether any clearing is held (the snapshot's only cost while none is)."""
        referenced = [s for s in state.streams if s.filter.source == "referenced"]
        reached = [s for s in referenced if is_cleared_kind(s.by)]
        self.kinds: tuple[int, ...] = tuple(dict.fromkeys(s.kind for s in reached))
        """Entity kinds (indices) holding a label stream a clearing reaches."""
        self.reach_ms = max((s.retention_ms for s in reached), default=0)
        """The longest window of those streams: older clearings can matter no more."""

    def file(self, state: StateLayout, referenced: Event, t: EpochMs) -> None:
        """Clear the entities of `referenced` (a label's event) at `t`, the label's time."""
        horizon = state.watermark - state.lateness_ms - self.reach_ms
        for kind in self.kinds:
            key = state.kinds[kind].key(referenced)
            if key is not None:
                self.add(kind, key, t, horizon)

    def relax(
        self,
        state: StateLayout,
        event: Event,
        groups: Iterable[tuple[int, tuple[Feature, ...]]],
        out: dict[str, Any],
    ) -> None:
        """Recompute the plan's cleared features (grouped by entity kind) of `event`'s
        entities whose window starts before their latest clearing at or before the
        event's time. A kind with nothing cleared costs a list index; an entity that was
        never cleared one key and one dict lookup."""
        t = event.ts
        for kind, features in groups:
            by_key = self.times[kind]
            if not by_key:
                continue
            key = state.kinds[kind].key(event)
            if key is None or key not in by_key:
                continue
            cleared = self.latest(kind, key, t)
            record = cast("Record | None", state.entities[kind].get(key))  # thaw_for decoded it
            if cleared is None or record is None:
                continue
            for f in features:
                tl = record[state.streams[f.stream].slot]
                if tl is None or cleared <= t - f.window_ms:
                    continue
                ts = tl.ts or ()
                hi = bisect_right(ts, t)
                lo = bisect_right(ts, cleared, 0, hi)
                out[f.name] = window_value(f.how, tl, lo, hi, t, f.rank, state.utc_offset_hours)

    def grouped(
        self, state: StateLayout, features: Iterable[Feature]
    ) -> tuple[tuple[int, tuple[Feature, ...]], ...]:
        """The features a clearing can change, grouped by entity kind (a plan keeps them)."""
        by_kind: dict[int, list[Feature]] = {}
        for f in features:
            if self.reaches(state, f):
                by_kind.setdefault(state.streams[f.stream].kind, []).append(f)
        return tuple((kind, tuple(fs)) for kind, fs in by_kind.items())

    def reaches(self, state: StateLayout, feature: Feature) -> bool:
        """Whether a clearing can change `feature` (a plan keeps only those)."""
        if feature.how not in CLEARED_HOWS or feature.stream < 0:
            return False
        stream = state.streams[feature.stream]
        return stream.filter.source == "referenced" and stream.kind in self.kinds

    def add(self, kind: int, key: str, ts: EpochMs, horizon: EpochMs) -> None:
        """Clear `key` of `kind` at `ts`; forget its clearings at or before `horizon`
        (no window of an exact query reaches back to them any more)."""
        times = self.times[kind].setdefault(key, [])
        insort(times, ts)
        cut = bisect_right(times, horizon)
        if cut:
            del times[:cut]
        if not times:
            del self.times[kind][key]
        self.active = any(self.times)

    def latest(self, kind: int, key: str, t: EpochMs) -> EpochMs | None:
        """The latest clearing of `key` at or before `t`, if any."""
        times = self.times[kind].get(key)
        if not times:
            return None
        i = bisect_right(times, t)
        return times[i - 1] if i else None

    def export(self) -> list[dict[str, list[EpochMs]]]:
        return [dict(by_key) for by_key in self.times]

    def restore(self, times: list[dict[str, list[EpochMs]]]) -> None:
        if len(times) != len(self.times):
            raise ValueError("snapshot was taken with a different feature catalog")
        self.times = [{k: list(v) for k, v in by_key.items()} for by_key in times]
        self.active = any(self.times)


def window_value(
    how: str,
    tl: Timeline,
    lo: int,
    hi: int,
    t: EpochMs,
    rank: tuple[int, int],
    utc_offset_hours: int,
) -> Any:
    """A cleared aggregate over entries `[lo, hi)` of `tl` (the window after the clearing),
    with the value an empty window has (0, or NEVER for the times since)."""
    if how == "count":
        return hi - lo
    if hi <= lo:
        return NEVER if how in ("minutes_since", "seconds_since") else 0
    if how == "sum":
        totals = tl.totals
        if totals is None:
            return sum(tl.values[lo:hi])
        return totals[hi - 1] - (totals[lo - 1] if lo else tl.running)
    if how == "distinct":
        return len(set(tl.values[lo:hi]))
    if how in ("minutes_since", "seconds_since"):
        unit = MINUTE_MS if how == "minutes_since" else 1_000
        return (t - (tl.ts or [t])[hi - 1]) // unit  # hi > lo >= 0: ts has entries
    if how == "quantile":
        return tl.quantile(lo, hi, *rank)
    if how == "hour_share":
        return tl.hour_share(lo, hi, (t // HOUR_MS + utc_offset_hours) % 24)
    return tl.top_share(lo, hi)
