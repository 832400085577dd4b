"""The brute-force twin of `FeatureState`: recompute every feature from the raw log.

Slow and obvious on purpose. It keeps every event in arrival order and, for each query,
rescans the events that arrived earlier. Property tests drive it and the fast state with
the same random streams (out of order within the lateness, feedback, carrier signals) and
require identical values after every event. It does not model events later than the
lateness, whose windows the fast state may already have evicted.

Cleared entities (features.cleared) are recomputed by their definition too: the latest
time at or before the query of a logged analyst's or bank's `not_fraud` label whose
referenced event has the entity's key, and only reports after it in the window.

Watched history (features.watch) is recomputed from the same log by its definition: the
watch start is the first logged activity event's time; an entity's first-watched time the
earliest logged event naming it at or after that; an account born under watch one with a
logged `register` at or after it.
"""

from collections import Counter
from typing import Any

from payguard.events import Event, is_fraud_verdict
from payguard.features.cleared import CLEARED_HOWS, clears, is_cleared_kind
from payguard.features.layout import NEVER
from payguard.features.spec import (
    ENTITY_EXTRACTORS,
    VALUE_EXTRACTORS,
    WATCH_ALL,
    Catalog,
    EventFilter,
    FeatureSpec,
    local_hour,
    parse_duration,
    received,
)
from payguard.features.state import PHONE_LINKS
from payguard.features.watch import ACCOUNT, CONTEXT_TYPES
from payguard.types import MINUTE_MS


class ReferenceFeatures:
    def __init__(self, catalog: Catalog, utc_offset_hours: int = 8) -> None:
        self.catalog = catalog
        self.utc_offset_hours = utc_offset_hours
        self.log: list[Event] = []
        self._by_id: dict[str, Event] = {}
        self._links: list[dict[str, list[str]]] = []
        """Phone → accounts as they stood when each logged event arrived."""
        self._declined: list[bool] = []

    def update(self, event: Event, declined: bool = False) -> None:
        previous = self._links[-1] if self._links else {}
        links = {phone: list(users) for phone, users in previous.items()}
        if event.phone is not None and event.user_id is not None:
            users = links.setdefault(event.phone, [])
            if event.user_id in users:
                users.remove(event.user_id)
            users.append(event.user_id)
            del users[:-PHONE_LINKS]
        self.log.append(event)
        self._links.append(links)
        self._declined.append(declined)
        self._by_id.setdefault(event.event_id, event)

    def snapshot(self, event: Event) -> dict[str, Any]:
        """Every feature of the catalog for `event`, from the events logged so far."""
        out: dict[str, Any] = {}
        for spec in self.catalog.features:
            if spec.how == "watched" and spec.by == WATCH_ALL:
                start = self._watch_start()
                watching = 0 if start is None or start > event.ts else event.ts - start
                out[spec.name("")] = watching // MINUTE_MS
                continue
            if spec.how == "watched":
                first = self._watched_since(spec.by, ENTITY_EXTRACTORS[spec.by](event))
                watched = 0 if first is None or first > event.ts else event.ts - first
                out[spec.name("")] = watched // MINUTE_MS
                continue
            flt = self.catalog.filters[spec.over]
            entries = self._entries(flt, spec)
            for window in spec.windows:
                out[spec.name(window)] = self._value(spec, window, entries, event)
        return out

    def _entries(self, flt: EventFilter, spec: FeatureSpec) -> list[tuple[str, int, Any]]:
        """(key, ts, value) of every logged event that this spec's stream would hold."""
        entries: list[tuple[str, int, Any]] = []
        for position, logged in enumerate(self.log):
            if "*" not in flt.types and logged.type not in flt.types:
                continue
            if flt.settled and self._declined[position]:
                continue
            if flt.stopped and not self._declined[position]:
                continue
            stop = flt.before_stop
            if stop is not None and self._stopped_before(spec.by, position, stop):
                continue
            source: Event | None = logged
            if flt.source == "referenced":
                source = self._referenced(logged, position)
            if flt.account == "payee" and source is not None:
                source = received(source)
            if source is None or not flt.matches(source):
                continue
            value: Any = None
            if spec.how == "hour_share":
                value = local_hour(logged.ts, self.utc_offset_hours)
            elif spec.of is not None and _keeps_values(spec):
                value = VALUE_EXTRACTORS[spec.of](source)
                if value is None:
                    continue
                if spec.how == "top_share":
                    value = (value, 1 if source.amount is None else source.amount)
            for key in self._keys(spec.by, source, position):
                entries.append((key, logged.ts, value))
        return entries

    def _stopped_before(self, by: str, position: int, before_stop: str) -> bool:
        """Whether an event logged before `position` with the same `by` key was stopped
        within the `before_stop` duration before the logged event's time (a stop that
        arrived later does not reach back)."""
        logged = self.log[position]
        within = parse_duration(before_stop)
        key = _key(by, logged)
        if key is None:
            return False
        return any(
            self._declined[q]
            and _key(by, earlier) == key
            and logged.ts - within < earlier.ts <= logged.ts
            for q, earlier in enumerate(self.log[:position])
        )

    def _referenced(self, feedback: Event, position: int) -> Event | None:
        if feedback.ref_event_id is None or not is_fraud_verdict(feedback):
            return None
        for earlier in self.log[:position]:
            if earlier.event_id == feedback.ref_event_id:
                return earlier
        return None

    def _keys(self, by: str, source: Event, position: int) -> list[str]:
        key = _key(by, source)
        if key is not None:
            return [key]
        if by == "user" and source.phone is not None and position > 0:
            return list(self._links[position - 1].get(source.phone, []))
        return []

    def _value(
        self, spec: FeatureSpec, window: str, entries: list[tuple[str, int, Any]], event: Event
    ) -> Any:
        key = _key(spec.by, event)
        t = event.ts
        mine = [(ts, v) for k, ts, v in entries if k == key] if key is not None else []
        if spec.how == "age":
            firsts = [ts for ts, _ in mine]
            first = min(firsts) if firsts else None
            observed = 0 if first is None or first > t else (t - first) // MINUTE_MS
            appeared = t if first is None or first > t else first
            if self._knows_age(spec.by, event, appeared):
                return observed
            return max(observed, self._learning_ms() // MINUTE_MS)
        window_ms = parse_duration(window)
        inside = [(ts, v) for ts, v in mine if t - window_ms < ts <= t]
        cleared = self._cleared_at(spec, key, t)
        if cleared is not None:
            inside = [(ts, v) for ts, v in inside if ts > cleared]
        if spec.how == "count":
            return len(inside)
        if spec.how == "sum":
            return sum(v for _, v in inside)
        if spec.how == "distinct":
            return len({v for _, v in inside})
        if spec.how == "is_new":
            current = VALUE_EXTRACTORS[spec.of](event) if spec.of else None
            new = current is not None and key is not None and current not in {v for _, v in inside}
            return new and self._knows_new(spec.by, event, window_ms)
        if spec.how in ("quantile", "hour_share", "top_share"):
            return self._behaviour(spec, [v for _, v in inside], t) if inside else 0
        unit = MINUTE_MS if spec.how == "minutes_since" else 1_000
        return (t - max(ts for ts, _ in inside)) // unit if inside else NEVER

    def _cleared_at(self, spec: FeatureSpec, key: str | None, t: int) -> int | None:
        """The latest time at or before `t` that an analyst's or a bank's `not_fraud` label
        logged so far cleared entity `key` of a label stream (features.cleared), if any."""
        flt = self.catalog.filters[spec.over]
        if (
            key is None
            or flt.source != "referenced"
            or spec.how not in CLEARED_HOWS
            or not is_cleared_kind(spec.by)
        ):
            return None
        times = [
            label.ts
            for position, label in enumerate(self.log)
            if clears(label)
            and label.ts <= t
            and (ref := self._first_before(label.ref_event_id, position)) is not None
            and _key(spec.by, ref) == key
        ]
        return max(times, default=None)

    def _first_before(self, event_id: str | None, position: int) -> Event | None:
        """The first event logged before `position` with this id."""
        return next((e for e in self.log[:position] if e.event_id == event_id), None)

    def _behaviour(self, spec: FeatureSpec, values: list[Any], t: int) -> int:
        """Quantile, hour share or top share of a non-empty window, from the definitions."""
        if spec.how == "quantile":
            num, den = spec.rank()
            rank = 1
            while rank * den < num * len(values):
                rank += 1  # the smallest rank with rank >= q * n, counted up one by one
            chosen: int = sorted(values)[rank - 1]
            return chosen
        if spec.how == "hour_share":
            hour = local_hour(t, self.utc_offset_hours)
            near = [h for h in values if min((h - hour) % 24, (hour - h) % 24) <= 1]
            return len(near) * 1000 // len(values)
        volume: Counter[str] = Counter()
        for entity, weight in values:
            volume[entity] += weight
        total = sum(volume.values())
        return max(volume.values()) * 1000 // total if total else 0

    # -- watched history, by its definition ----------------------------------------------

    def _learning_ms(self) -> int:
        return parse_duration(self.catalog.learning)

    def _watch_start(self) -> int | None:
        """The first logged activity event's time."""
        return next((e.ts for e in self.log if e.type not in CONTEXT_TYPES), None)

    def _watched_since(self, kind: str, key: str | None) -> int | None:
        """The earliest logged event naming `key` (as a `kind`) at or after the watch start.
        Only events logged after the watch start count: one that arrived before it
        started cannot have been watched."""
        start = self._watch_start()
        if start is None or key is None:
            return None
        began = next(i for i, e in enumerate(self.log) if e.type not in CONTEXT_TYPES)
        times = [
            e.ts for e in self.log[began:] if e.ts >= start and ENTITY_EXTRACTORS[kind](e) == key
        ]
        return min(times, default=None)

    def _registers(self, user: str | None) -> list[int]:
        return [e.ts for e in self.log if e.type == "register" and e.user_id == user]

    def _born(self, kind: str, key: str | None) -> bool:
        start = self._watch_start()
        return (
            kind == ACCOUNT
            and key is not None
            and start is not None
            and any(ts >= start for ts in self._registers(key))
        )

    def _knows_new(self, by: str, event: Event, window_ms: int) -> bool:
        start = self._watch_start()
        kind = by.split("+")[0]
        key = ENTITY_EXTRACTORS[kind](event)
        if start is None:
            return False
        if event.ts - start >= window_ms or self._born(kind, key):
            return True
        first = self._watched_since(kind, key)
        return first is not None and event.ts - first >= min(window_ms, self._learning_ms())

    def _knows_age(self, by: str, event: Event, appeared: int) -> bool:
        start = self._watch_start()
        kind, pair = by.split("+")[0], "+" in by
        key = ENTITY_EXTRACTORS[kind](event)
        if start is None or key is None:
            return False
        if kind == ACCOUNT:
            if self._born(kind, key):
                return True
            if not pair:
                return bool(self._registers(key))
        since = self._watched_since(kind, key) if pair else start
        return since is not None and appeared - since >= self._learning_ms()


def _keeps_values(spec: FeatureSpec) -> bool:
    return spec.how in ("sum", "distinct", "is_new", "quantile", "top_share")


def _key(by: str, event: Event) -> str | None:
    parts = [ENTITY_EXTRACTORS[p](event) for p in by.split("+")]
    if any(p is None for p in parts):
        return None
    return "|".join(parts)
