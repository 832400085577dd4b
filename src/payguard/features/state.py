"""Point-in-time feature state: update with each event, query as of an event's time.

`FeatureState.update(event)` files the event into one timeline per matching stream;
`FeatureState.snapshot(event, plan)` reads the features a ruleset needs as of `event.ts`,
seeing only events that arrived before it with `ts <= event.ts` (ties in arrival order).
The engine always snapshots before it updates, so an event never sees itself or anything
later. Events arriving up to `lateness` behind the newest event time are placed exactly;
older ones are still decided but are counted as late (their windows may have been evicted).

Feedback (`fraud_report`, `chargeback`) reaches label streams through `source: referenced`
filters: the entity comes from the event the feedback points at, the time is when the
feedback arrived — so a label can never leak into a decision made before it existed.
"""

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from payguard.events import Event
from payguard.features.spec import (
    ENTITY_EXTRACTORS,
    VALUE_EXTRACTORS,
    Catalog,
    EventFilter,
    Extractor,
    FeatureSpec,
    parse_duration,
)
from payguard.features.timeline import Timeline
from payguard.types import EpochMs, MINUTE_MS

NEVER = 10**9
"""Value of `minutes_since`/`seconds_since` when nothing matched: comparisons like
`minutes_since_sim_swap_by_phone_72h <= 4320` are then simply false."""

PHONE_LINKS = 8
"""Accounts remembered per phone for filing carrier signals (which carry no account)."""

SWEEP_EVERY = 50_000
"""Events between full sweeps that evict idle entities (deterministic: keyed to seq)."""

Reader = Callable[[Timeline | None, EpochMs, Event], Any]


class Stream(msgspec.Struct, frozen=True):
    """Events of one filter grouped by one entity, with the value one aggregate needs."""

    index: int
    filter: EventFilter
    by: str
    of: str | None
    retention_ms: int
    keeps_first_seen: bool
    key: Extractor
    value: Extractor | None
    conditional: bool
    """Whether the filter checks more than the event type (skipped on the hot path if not)."""


class Feature(msgspec.Struct, frozen=True):
    name: str
    stream: int
    read: Reader


class QueryPlan(msgspec.Struct, frozen=True):
    """The features one ruleset needs for one event type, grouped by stream."""

    names: tuple[str, ...]
    groups: tuple[tuple[int, Extractor, tuple[tuple[str, Reader], ...]], ...]


def _key_of(by: str) -> Extractor:
    parts = [ENTITY_EXTRACTORS[p] for p in by.split("+")]
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts

        def pair(event: Event) -> str | None:
            a, b = first(event), second(event)
            return None if a is None or b is None else f"{a}|{b}"

        return pair

    def tuple_key(event: Event) -> str | None:
        values = [part(event) for part in parts]
        return None if any(v is None for v in values) else "|".join(values)

    return tuple_key


def _reader(spec: FeatureSpec, window_ms: int, value: Extractor, key_of: Extractor) -> Reader:
    """The read function of one feature; each returns the documented default when the
    entity is absent from the event or has no timeline yet."""
    how = spec.how
    if how == "count":
        return lambda tl, t, e: tl.count(t, window_ms) if tl else 0
    if how == "sum":
        return lambda tl, t, e: tl.sum(t, window_ms) if tl else 0
    if how == "distinct":
        return lambda tl, t, e: tl.distinct(t, window_ms) if tl else 0

    if how == "is_new":

        def is_new(tl: Timeline | None, t: EpochMs, e: Event) -> bool:
            current = value(e)
            if current is None:
                return False
            if tl is None:  # new, unless the event has no entity to be new for
                return key_of(e) is not None
            return not tl.contains(t, window_ms, current)

        return is_new
    unit = MINUTE_MS if how == "minutes_since" else 1_000
    if how in ("minutes_since", "seconds_since"):

        def since(tl: Timeline | None, t: EpochMs, e: Event) -> int:
            last = tl.last_before(t, window_ms) if tl else None
            return NEVER if last is None else (t - last) // unit

        return since

    def age(tl: Timeline | None, t: EpochMs, e: Event) -> int:
        first = tl.first_ts if tl else None
        return 0 if first is None or first > t else (t - first) // MINUTE_MS

    return age


class FeatureState:
    """All timelines for one catalog, in process memory. Picklable for snapshots."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.lateness_ms = parse_duration(catalog.lateness)
        self.streams: list[Stream] = []
        self.features: dict[str, Feature] = {}
        self._build(catalog)
        self.timelines: list[dict[str, Timeline]] = [{} for _ in self.streams]
        self.watermark: EpochMs = 0
        self.late_events = 0
        self.updates = 0
        self._by_type: dict[str, list[Stream]] = {}
        self._by_ref_type: dict[str, list[Stream]] = {}
        self._any: list[Stream] = []
        self._phone_users: dict[str, list[str]] = {}
        self._index_streams()

    def _build(self, catalog: Catalog) -> None:
        stream_ids: dict[tuple[str, str, str | None], int] = {}
        specs_of: dict[int, list[tuple[FeatureSpec, int]]] = {}
        for spec in catalog.features:
            of = spec.of if spec.how in ("sum", "distinct", "is_new") else None
            ident = (spec.over, spec.by, of)
            idx = stream_ids.setdefault(ident, len(stream_ids))
            for window in spec.windows:
                specs_of.setdefault(idx, []).append((spec, parse_duration(window)))
        for (over, by, of), idx in stream_ids.items():
            members = specs_of[idx]
            value = VALUE_EXTRACTORS[of] if of else None
            flt = catalog.filters[over]
            self.streams.append(
                Stream(
                    index=idx,
                    filter=catalog.filters[over],
                    by=by,
                    of=of,
                    retention_ms=max((w for s, w in members if s.how != "age"), default=0),
                    keeps_first_seen=any(s.how == "age" for s, _ in members),
                    key=_key_of(by),
                    value=value,
                    conditional=(
                        flt.success is not None
                        or flt.categories is not None
                        or flt.channels is not None
                    ),
                )
            )
            for spec, window_ms in members:
                window = next(w for w in spec.windows if parse_duration(w) == window_ms)
                name = spec.name(window)
                reader = _reader(spec, window_ms, value or (lambda e: None), _key_of(by))
                self.features[name] = Feature(name, idx, reader)

    def _index_streams(self) -> None:
        for stream in self.streams:
            flt = stream.filter
            target = self._by_ref_type if flt.source == "referenced" else self._by_type
            if "*" in flt.types:
                self._any.append(stream)
                continue
            for event_type in flt.types:
                target.setdefault(event_type, []).append(stream)

    # -- queries -------------------------------------------------------------------------

    def plan(self, names: Iterable[str]) -> QueryPlan:
        """Group the wanted features by stream so each timeline is looked up once."""
        wanted = sorted(set(names))
        groups: dict[int, list[tuple[str, Reader]]] = {}
        for name in wanted:
            feature = self.features[name]
            groups.setdefault(feature.stream, []).append((name, feature.read))
        return QueryPlan(
            names=tuple(wanted),
            groups=tuple(
                (idx, self.streams[idx].key, tuple(readers)) for idx, readers in groups.items()
            ),
        )

    def snapshot(self, event: Event, plan: QueryPlan) -> dict[str, Any]:
        """Feature values as of `event.ts`, from events that arrived before this one."""
        t = event.ts
        out: dict[str, Any] = {}
        timelines = self.timelines
        for idx, key_of, readers in plan.groups:
            key = key_of(event)
            tl = timelines[idx].get(key) if key is not None else None
            for name, read in readers:
                out[name] = read(tl, t, event)
        return out

    # -- updates -------------------------------------------------------------------------

    def update(self, event: Event, referenced: Event | None = None) -> None:
        """File `event` into every stream it matches. `referenced` is the event a feedback
        event points at (None if unknown), used by `source: referenced` streams."""
        t = event.ts
        base = self.watermark - self.lateness_ms
        if t < base:
            self.late_events += 1
        for stream in self._by_type.get(event.type, ()):
            self._add(stream, event, t, base)
        for stream in self._any:
            self._add(stream, event, t, base)
        if referenced is not None:
            for stream in self._by_ref_type.get(event.type, ()):
                self._add(stream, referenced, t, base)
        if event.phone is not None and event.user_id is not None:
            self._link_phone(event.phone, event.user_id)
        if t > self.watermark:
            self.watermark = t
        self.updates += 1

    def _link_phone(self, phone: str, user: str) -> None:
        """Remember which accounts were seen with a phone, newest last, at most
        `PHONE_LINKS` of them (a shared family phone must not fan out without bound)."""
        users = self._phone_users.setdefault(phone, [])
        if users and users[-1] == user:
            return
        if user in users:
            users.remove(user)
        users.append(user)
        if len(users) > PHONE_LINKS:
            del users[0]

    def _add(self, stream: Stream, source: Event, t: EpochMs, base: EpochMs) -> None:
        """File `source` (at time t) under its key; `base` is watermark minus lateness."""
        if stream.conditional and not stream.filter.matches(source):
            return
        horizon = base - stream.retention_ms
        if t <= horizon:
            return
        key = stream.key(source)
        value = None
        if stream.value is not None:
            value = stream.value(source)
            if value is None:
                return  # nothing to count distinct or sum: the event lacks the field
        timelines = self.timelines[stream.index]
        if key is not None:
            tl = timelines.get(key)
            if tl is None:
                tl = timelines[key] = Timeline(with_totals=stream.of == "amount")
            tl.add(t, value, horizon)
        elif stream.by == "user" and source.phone is not None:
            for user in self._phone_users.get(source.phone, ()):
                tl = timelines.get(user)
                if tl is None:
                    tl = timelines[user] = Timeline(with_totals=stream.of == "amount")
                tl.add(t, value, horizon)

    def sweep(self) -> int:
        """Evict expired entries everywhere and drop empty entities; returns entities left."""
        left = 0
        for stream in self.streams:
            horizon = self.watermark - self.lateness_ms - stream.retention_ms
            timelines = self.timelines[stream.index]
            for key in list(timelines):
                tl = timelines[key]
                tl.evict_through(horizon)
                if not tl.ts and not stream.keeps_first_seen:
                    del timelines[key]
            left += len(timelines)
        return left

    def entity_count(self) -> int:
        return sum(len(t) for t in self.timelines)

    def digest_items(self) -> list[tuple[Any, ...]]:
        """A canonical listing of every timeline and link, for equality across restarts."""
        items: list[tuple[Any, ...]] = [
            (idx, key, list(tl.ts), list(tl.values), tl.first_ts, tl.running)
            for idx, timelines in enumerate(self.timelines)
            for key, tl in sorted(timelines.items())
        ]
        items.extend(("phone", p, list(u)) for p, u in sorted(self._phone_users.items()))
        items.append(("watermark", self.watermark, self.late_events, self.updates))
        return items

    # -- persistence ---------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything a snapshot must hold to resume exactly (see `restore`)."""
        return {
            "timelines": self.timelines,
            "phone_users": self._phone_users,
            "watermark": self.watermark,
            "late_events": self.late_events,
            "updates": self.updates,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Adopt timelines from a snapshot taken with the same catalog."""
        if len(state["timelines"]) != len(self.streams):
            raise ValueError("snapshot was taken with a different feature catalog")
        self.timelines = state["timelines"]
        self._phone_users = state["phone_users"]
        self.watermark = state["watermark"]
        self.late_events = state["late_events"]
        self.updates = state["updates"]
