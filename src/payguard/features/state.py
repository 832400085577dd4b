"""Point-in-time feature state: update with each event, query as of an event's time.

`FeatureState.update(event)` files the event into one timeline per matching stream;
`FeatureState.snapshot(event, plan)` reads the features a ruleset needs as of `event.ts`,
seeing only events that arrived before it with `ts <= event.ts` (ties in arrival order).
The engine always snapshots before it updates, so an event never sees itself or anything
later. Events arriving up to `lateness` behind the newest event time are placed exactly;
older ones are still decided but are counted as late (their windows may have been evicted).

Timelines are held per entity, not per stream: each entity kind (`user`, `device`,
`user+device`, …) maps a key to one record, a list with a slot per stream grouped by that
kind. A snapshot or update then looks an entity up once, not once per stream, which
matters because the state is far larger than the CPU caches and each lookup is a few
cache misses. Both run for every event, so both are generated as straight-line Python:
the update per event type (`_filer`), the snapshot per query plan (`_reading`), with
slots, windows and stream shapes as constants. The property test in
tests/features/test_point_in_time.py holds them to the brute-force twin in `reference`.

Feedback (`fraud_report`, `chargeback`, a `fraud` label) reaches label streams through
`source: referenced` filters: the entity comes from the event the feedback points at, the
time is when the feedback arrived — so a label can never leak into a decision made before
it existed.
An analyst's or a bank's `not_fraud` label clears the merchant, card and payee of the
event it references from its own time on (`features.cleared`): the plan's label-stream
features of a cleared entity are read again over the window after the clearing.
Filters with `account: payee` file a transfer under the receiving account (`received`),
so an account's own features can say when money last came in and how much.
"""

from collections.abc import Callable, Iterable
from functools import partial
from itertools import islice
from typing import Any, cast

import msgspec

from payguard.events import Event, is_fraud_verdict
from payguard.features.cleared import Clearings, clears
from payguard.features.cold import (
    COLD,
    IDLE_HEAD,
    Cold,
    Idle,
    decode_cold,
    decode_cold_tables,
    idle_costs,
    pack_idle,
    restored,
    timelines_in,
)
from payguard.features.compiled import filer_source, reading_source
from payguard.features.layout import (
    FOLDABLE_HOWS,
    RAW_HOWS,
    WATCHED_STREAM,
    Feature,
    Kind,
    Record,
    Stream,
    Table,
)
from payguard.features.spec import (
    ENTITY_EXTRACTORS,
    HOUR,
    VALUE_EXTRACTORS,
    WATCH_ALL,
    Catalog,
    Extractor,
    FeatureSpec,
    local_hour,
    parse_duration,
    received,
    stop_filter,
    stream_value,
)
from payguard.features.sweep import SweepRound
from payguard.features.timeline import (
    VALUES_ANY,
    VALUES_HOUR,
    VALUES_INT,
    VALUES_NONE,
    Timeline,
    encode_array,
    shape_of,
)
from payguard.features.watch import WatchedHistory
from payguard.generated import compile_function
from payguard.types import EpochMs

FOLD_PART = 256
"""Entries a slice of the sweep folds of one timeline at least, when it folds more than
that (about 0.5 ms where each entry also leaves a sorted array of 20k values)."""

PHONE_LINKS = 8
"""Accounts remembered per phone for filing carrier signals (which carry no account)."""


def link_phone(phone_users: dict[str, list[str]], phone: str, user: str) -> None:
    """Remember which accounts were seen with a phone, newest last, at most `PHONE_LINKS`
    of them (a shared family phone must not fan out without bound). Carrier signals carry
    only a phone; the feature state and the chain matcher both reach accounts through this."""
    users = phone_users.get(phone)
    if users is None:
        phone_users[phone] = [user]
        return
    if users and users[-1] == user:  # the common case: the phone's latest account again
        return
    if user in users:
        users.remove(user)
    users.append(user)
    if len(users) > PHONE_LINKS:
        del users[0]


THAW_AT_RESTORE = 16 << 10
"""Records whose encoding is at least this many bytes are decoded at restore, not when
first used: on the 20k × 90-day state 801 of 875,698 records (61 MB), 0.12 s of decoding
plus ~0.08 s to find them at start-up, where a first use decoded one inside a decision or
a sweep slice (a big merchant's 3.5 MB: 10 ms), every request queued behind it (issue
16, docs/benchmarks.md)."""

SWEEP_EVERY = 50_000
"""Events between the starts of two sweep rounds that evict idle entities (deterministic:
keyed to seq). A round runs in slices, one per event, and ends within `SWEEP_EVERY // 2`
events (features.sweep)."""

Reading = Callable[[list[Table], Event, dict[str, Any]], None]
"""Writes one plan's feature values for an event into a copy of the plan's template:
(entities, event, out). Generated per plan by `FeatureState.plan`."""


class QueryPlan(msgspec.Struct, frozen=True):
    """The features one ruleset needs for one event type.

    `template` holds every feature with its value for an entity with nothing filed, so a
    snapshot starts from a copy of it and `read` writes only what the timelines (or, for
    `is_new`, the event) change."""

    names: tuple[str, ...]
    template: dict[str, Any]
    read: Reading
    cleared: tuple[tuple[int, tuple[Feature, ...]], ...] = ()
    """The features an entity's clearing can change, by entity kind (features.cleared)."""


Filer = Callable[[list[Table], Callable[..., None], Event, EpochMs, EpochMs, bool], None]
"""Files one event into the streams of one event type: (entities, `_file_linked`, source,
t, watermark minus lateness, declined). Generated per event type by `_filer`."""


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


class FeatureState:
    """All timelines for one catalog, in process memory. Picklable for snapshots."""

    def __init__(self, catalog: Catalog, utc_offset_hours: int = 8) -> None:
        self.catalog = catalog
        self.utc_offset_hours = utc_offset_hours
        """Local time for `hour_share` (hours east of UTC; the engine's `utc_offset`)."""
        self.lateness_ms = parse_duration(catalog.lateness)
        self.memory_ms = parse_duration(catalog.memory)
        """How long an entity's first-seen and watch times outlive its last event."""
        self.streams: list[Stream] = []
        self.kinds: list[Kind] = []
        self.layout: dict[str, Feature] = {}
        """Every feature the catalog defines, by name: how and where it is read (its
        stream, window and rank)."""
        self._build(catalog)
        self.watch = WatchedHistory(self._watched_kinds(), parse_duration(catalog.learning))
        self.entities: list[Table] = [{} for _ in self.kinds]
        self.cold = 0
        """Records encoded: since a restore, or idle (features.cold); 0: none to check."""
        self.idle_ms = 0
        """The sweep encodes again a record whose newest entry is this much older than its
        round's base (features.cold, "Idle records"); 0: never."""
        self.watermark: EpochMs = 0
        self.late_events = 0
        self.updates = 0
        self._by_type: dict[str, list[Stream]] = {}
        self._by_ref_type: dict[str, list[Stream]] = {}
        self._by_payee_type: dict[str, list[Stream]] = {}
        self._any: list[Stream] = []
        self._any_payee: list[Stream] = []
        self._phone_users: dict[str, list[str]] = {}
        self._phone_linked: dict[str, EpochMs] = {}
        """Each linked phone's latest event with an account: links are forgotten the
        catalog's `memory` after it (`sweep`)."""
        self._filers: dict[str, tuple[Filer, Filer, Filer | None]] = {}
        self._index_streams()
        self.clearings = Clearings(self)
        """Entities an analyst's `not_fraud` label cleared of earlier reports."""
        self._sweep: SweepRound | None = None
        """The sweep round in flight, if any (`begin_sweep`)."""
        self.sweep_orders: dict[tuple[int, int], list[Any]] = {}
        """Each sweep pass's kept keys, in order: the next pass's list (features.sweep)."""
        self.sweep_work = 0
        """The units of work the last whole sweep round spent (features.sweep): the next
        round's budget per slice is based on it, not on the entity count alone."""

    def _build(self, catalog: Catalog) -> None:
        stream_ids: dict[tuple[str, str, str | None], int] = {}
        specs_of: dict[int, list[tuple[FeatureSpec, int]]] = {}
        for spec in catalog.features:
            if spec.how == "watched":
                self.layout[spec.name("")] = Feature(spec.name(""), "watched", -1, 0, False)
                continue
            ident = (spec.over, spec.by, stream_value(spec))
            idx = stream_ids.setdefault(ident, len(stream_ids))
            for window in spec.windows:
                specs_of.setdefault(idx, []).append((spec, parse_duration(window)))
        kind_of: dict[str, list[int]] = {}
        for (_, by, _), idx in stream_ids.items():
            kind_of.setdefault(by, []).append(idx)
        self.kinds = [Kind(by, _key_of(by), tuple(ids)) for by, ids in kind_of.items()]
        for (over, by, of), idx in stream_ids.items():
            members = specs_of[idx]
            value = self._extractor(of)
            flt = catalog.filters[over]
            kind = list(kind_of).index(by)
            retention = max((w for s, w in members if s.how != "age"), default=0)
            raw_ms = max((w for s, w in members if s.how in RAW_HOWS), default=0)
            if flt.source == "referenced":  # clearings re-read label windows raw
                raw_ms = retention
            self.streams.append(
                Stream(
                    index=idx,
                    filter=flt,
                    by=by,
                    of=of,
                    retention_ms=retention,
                    raw_ms=raw_ms,
                    keeps_first_seen=any(s.how == "age" for s, _ in members),
                    age_only=all(s.how == "age" for s, _ in members),
                    key=self.kinds[kind].key,
                    value=value,
                    conditional=(
                        flt.success is not None
                        or flt.categories is not None
                        or flt.channels is not None
                        or flt.outcomes is not None
                        or flt.methods is not None
                    ),
                    keeps_past=any(
                        s.how in ("is_new", "distinct") and w > raw_ms for s, w in members
                    ),
                    kind=kind,
                    slot=kind_of[by].index(idx),
                    weighs=any(s.how == "top_share" for s, _ in members),
                    tallies=any(s.how in ("top_share", "hour_share") for s, _ in members),
                    ranks=any(s.how == "quantile" for s, _ in members),
                    shape=_shape(of, members, raw_ms),
                )
            )
            if flt.before_stop is not None:
                self.streams[-1] = msgspec.structs.replace(
                    self.streams[-1], before_stop=self._stop_slot(stream_ids, by, flt.before_stop)
                )
            for spec, window_ms in members:
                window = next(w for w in spec.windows if parse_duration(w) == window_ms)
                name = spec.name(window)
                rank = spec.rank() if spec.how == "quantile" else (1, 2)
                self.layout[name] = Feature(
                    name,
                    spec.how,
                    idx,
                    window_ms,
                    longest=window_ms >= raw_ms,
                    rank=rank,
                    folded=spec.how in FOLDABLE_HOWS and window_ms > raw_ms,
                )

    def _stop_slot(
        self, stream_ids: dict[tuple[str, str, str | None], int], by: str, within: str
    ) -> tuple[int, int]:
        """Where a `before_stop` stream finds its entity's stops: the slot of a stream over
        the catalog's `stopped` filter by the same entity (validated to exist)."""
        stopped = stop_filter(self.catalog)
        ids = [i for (over, kind, _), i in stream_ids.items() if over == stopped and kind == by]
        kind = next(k for k in self.kinds if k.by == by)
        return kind.streams.index(ids[0]), parse_duration(within)

    def _extractor(self, of: str | None) -> Extractor | None:
        """What a stream keeps per entry; the local hour uses this state's UTC offset."""
        if of == HOUR:
            return partial(_event_hour, offset=self.utc_offset_hours)
        return VALUE_EXTRACTORS[of] if of else None

    def _watched_kinds(self) -> list[str]:
        """Entity kinds whose watch time `is_new`, `age` and `watched` features read: the
        first component of each one's `by` (`user` for `user+device`)."""
        kinds: list[str] = []
        for feature in self.layout.values():
            if feature.how in ("is_new", "age", "watched"):
                by = self._by_of(feature)
                kind = by.split("+")[0]
                if kind not in kinds and kind != WATCH_ALL:
                    kinds.append(kind)
        return kinds

    def _by_of(self, feature: Feature) -> str:
        if feature.stream == WATCHED_STREAM:
            return feature.name.removeprefix("watched_minutes_by_")
        return self.streams[feature.stream].by

    def value_type(self, name: str) -> str:
        """A feature's CEL type: `is_new` is a bool, every other aggregate an int."""
        return "bool" if self.layout[name].how == "is_new" else "int"

    def _index_streams(self) -> None:
        for stream in self.streams:
            flt = stream.filter
            target = self._by_ref_type if flt.source == "referenced" else self._by_type
            if flt.account == "payee":
                target = self._by_payee_type
            if "*" in flt.types:
                (self._any_payee if flt.account == "payee" else self._any).append(stream)
                continue
            for event_type in flt.types:
                target.setdefault(event_type, []).append(stream)

    def slots(self, kind: int) -> int:
        return len(self.kinds[kind].streams)

    def filers(self, event_type: str) -> tuple[Filer, Filer, Filer | None]:
        """The generated update code of one event type: its own streams (and the watched
        history), its `referenced` streams, its payee's (None when it has none)."""
        return self._filers.get(event_type) or self._filers_for(event_type)

    def _filers_for(self, event_type: str) -> tuple[Filer, Filer, Filer | None]:
        """The update code for one event type: its own streams, its `referenced` ones and
        those filing it under its payee (None when there are none: no view is built)."""
        payee_streams = [*self._by_payee_type.get(event_type, ()), *self._any_payee]
        own = [*self._by_type.get(event_type, ()), *self._any]
        filers = self._filers[event_type] = (
            self._filer(own, f"update {event_type}", observed_type=event_type),
            self._filer(self._by_ref_type.get(event_type, ()), f"update {event_type} referenced"),
            self._filer(payee_streams, f"update {event_type} payee") if payee_streams else None,
        )
        return filers

    def _filer(
        self, streams: Iterable[Stream], label: str, observed_type: str | None = None
    ) -> Filer:
        """Straight-line Python filing an event into `streams`, compiled once per event
        type (`compiled.filer_source`): every stream's constants, slot and shape are baked
        in, each entity is looked up once and each event value read once. With
        `observed_type`, it also does the watched-history bookkeeping of the event."""
        namespace: dict[str, Any] = {}
        source = filer_source(self, streams, namespace, observed_type)
        filer: Filer = compile_function(source, label, "file", namespace)
        return filer

    # -- queries -------------------------------------------------------------------------

    def plan(self, names: Iterable[str], label: str = "") -> QueryPlan:
        """Group the wanted features by entity kind, then by stream, so each entity is
        looked up once. The template keeps the order features had when grouped by stream.
        `label` names the generated code (`<payguard snapshot LABEL #N>` in tracebacks)."""
        wanted = sorted(set(names))
        by_stream: dict[int, list[Feature]] = {}
        for name in wanted:
            feature = self.layout[name]
            by_stream.setdefault(feature.stream, []).append(feature)
        template = {f.name: f.default for fs in by_stream.values() for f in fs}
        watched = by_stream.pop(WATCHED_STREAM, [])
        by_kind: dict[int, dict[int, list[Feature]]] = {}
        for idx, features in by_stream.items():
            by_kind.setdefault(self.streams[idx].kind, {})[idx] = features
        cleared = self.clearings.grouped(self, (self.layout[n] for n in wanted))
        return QueryPlan(
            names=tuple(wanted),
            template=template,
            read=self._reading(by_kind, watched, label),
            cleared=cleared,
        )

    def _reading(
        self, by_kind: dict[int, dict[int, list[Feature]]], watched: list[Feature], label: str
    ) -> Reading:
        """Straight-line Python reading a plan's features (`compiled.reading_source`):
        one entity lookup per kind, then each stream's features with their windows baked
        in. A snapshot runs for every event, and as loops calling a closure per feature it
        cost about a third more."""
        namespace: dict[str, Any] = {}
        source = reading_source(self, by_kind, watched, namespace)
        name = f"snapshot {label}".rstrip()
        reading: Reading = compile_function(source, name, "read", namespace)
        return reading

    def snapshot(self, event: Event, plan: QueryPlan) -> dict[str, Any]:
        """Feature values as of `event.ts`, from events that arrived before this one."""
        if self.cold:  # after a restart, until every record is decoded (features.cold)
            self.thaw_for(event)
        out = plan.template.copy()
        plan.read(self.entities, event, out)
        if self.clearings.active and plan.cleared:
            self.clearings.relax(self, event, plan.cleared, out)
        return out

    # -- updates -------------------------------------------------------------------------

    def update(self, event: Event, referenced: Event | None = None, declined: bool = False) -> None:
        """File `event` into every stream it matches. `referenced` is the event a feedback
        event points at (None if unknown), used by `source: referenced` streams when the
        feedback is a fraud verdict (`events.is_fraud_verdict`); `declined`
        says the engine sent it to review or blocked it (`settled` filters skip it, only
        `stopped` ones keep it)."""
        t = event.ts
        base = self.watermark - self.lateness_ms
        if t < base:
            self.late_events += 1
        filers = self._filers.get(event.type) or self._filers_for(event.type)
        if self.cold:
            self.thaw_for(event, referenced)
        filers[0](self.entities, self._file_linked, event, t, base, declined)  # and watch
        if referenced is not None and is_fraud_verdict(event):  # not a `not_fraud` label
            filers[1](self.entities, self._file_linked, referenced, t, base, False)
        elif referenced is not None and self.clearings.kinds and clears(event):
            self.clearings.file(self, referenced, t)
        if filers[2] is not None and (view := received(event)) is not None:
            filers[2](self.entities, self._file_linked, view, t, base, declined)
        if event.phone is not None and event.user_id is not None:
            self._link_phone(event.phone, event.user_id)
            if self._phone_linked.get(event.phone, t) <= t:
                self._phone_linked[event.phone] = t
        if t > self.watermark:
            self.watermark = t
        self.updates += 1

    def thaw(self, records: Table, key: str, cold: msgspec.Raw | bytes) -> Record:
        """Decode the encoded record of `key` in place (same key: the table's order
        stays) and count it off `cold`."""
        record = records[key] = decode_cold(cold)
        self.cold -= 1
        return record

    def thaw_for(self, event: Event, referenced: Event | None = None) -> None:
        """Decode the records `event` can read or file, before the generated code (which
        assumes decoded records) runs: its entities of every kind, and those of the event
        a verdict references and of the payee's view of a transfer."""
        view = received(event)
        for source in (event, referenced, view):
            if source is None:
                continue
            for kind, records in zip(self.kinds, self.entities, strict=True):
                key = kind.key(source)
                if key is not None:
                    record = records.get(key)
                    if isinstance(record, COLD):
                        self.thaw(records, key, record)

    def _file_linked(
        self,
        kind: int,
        slot: int,
        n_slots: int,
        phone: str,
        t: EpochMs,
        value: Any,
        horizon: EpochMs,
        new_timeline: Callable[[], Timeline],
        age_only: bool,
        weight: int = 1,
    ) -> None:
        """A carrier signal carries no account: file it under every account linked to
        its phone."""
        entities = self.entities[kind]
        for user in self._phone_users.get(phone, ()):
            record = entities.get(user)
            if isinstance(record, COLD):
                record = self.thaw(entities, user, record)
            if record is None:
                record = entities[user] = [None] * n_slots
            tl = record[slot]
            if tl is None:
                tl = record[slot] = new_timeline()
            if age_only:
                if tl.first_ts is None or t < tl.first_ts:
                    tl.first_ts = t
                if tl.folded_last is None or t > tl.folded_last:
                    tl.folded_last = t
            else:
                tl.add(t, value, horizon, weight)

    def _link_phone(self, phone: str, user: str) -> None:
        link_phone(self._phone_users, phone, user)

    def accounts_of(self, event: Event) -> tuple[str, ...]:
        """The accounts an event concerns: its own, or for a carrier signal (a phone and
        no account) the accounts last seen with that phone."""
        if event.user_id is not None:
            return (event.user_id,)
        if event.phone is not None:
            return tuple(self._phone_users.get(event.phone, ()))
        return ()

    def sweep(self) -> int:
        """Fold raw entries past every stream's raw head, forget folded values older than
        its windows, drop timelines with nothing left and entities with no timeline, then
        what the watched history and the phone links keep of entities that left; returns
        the timelines left. First-seen times (`age`) stay for the catalog's `memory` after
        the entity's last event. The whole state in one call (tools, tests, the twin of
        the slices); the engine sweeps in slices (`begin_sweep`, `sweep_step`)."""
        base = self.watermark - self.lateness_ms
        forget_before = base - self.memory_ms
        if self.watch.start is None or forget_before < self.watch.start:
            forget_before = -1  # nothing watched that long yet; back-filled history stays
        watch_start = self.watch.start if self.watch.start is not None else 0
        self.sweep_orders.clear()  # deletes what the passes' kept keys still list
        for kind in range(len(self.kinds)):
            sweep_entity = self.sweep_entity_of(kind, base, forget_before, watch_start)
            for key in list(self.entities[kind]):
                sweep_entity(key)
        self._forget_departed(forget_before)
        return self.entity_count()

    def sweep_entity_of(
        self, kind: int, base: EpochMs, forget_before: EpochMs, watch_start: EpochMs
    ) -> Callable[..., tuple[bool, int, int, int]]:
        """What the sweep does to one entity of `kind` (by key; an absent key is passed
        over): fold and forget each timeline (`_sweep_timeline`), drop the empty ones
        and the entity once it has none. Called as `(key, start=0, budget=None)`: from
        slot `start` on, pausing before a slot once `budget` units of work are spent, and
        folding a long raw head `FOLD_PART` entries or more at a time (a busy merchant's
        eight streams of 15k entries and 12k folded values took 5-30 ms in one piece,
        issue 16), and forgetting a large folded past `FOLD_PART` values or more at a time
        from `offset` on; returns whether the entity is still there, the slot to resume at
        (-1: done), the work spent (1 per entity and per timeline, plus the entries
        folded and the folded values scanned) and the offset to resume at in that slot's
        folded past."""
        entities = self.entities[kind]
        streams = [self.streams[idx] for idx in self.kinds[kind].streams]
        # Per slot, for `_untouched`: where its raw head folds and its folded time is
        # forgotten (no fold horizon for an `age`-only stream: it keeps no raw head).
        fold_at = [None if s.age_only else base - s.raw_ms for s in streams]
        forget_at = [base - s.retention_ms for s in streams]
        idle_before = base - self.idle_ms if self.idle_ms else None
        memory = self.memory_ms

        def sweep_entity(
            key: str, start: int = 0, budget: int | None = None, offset: int = 0
        ) -> tuple[bool, int, int, int]:
            record = entities.get(key)
            if record is None:
                return False, -1, 1, 0
            if isinstance(record, Idle):  # nothing to do before its due time
                due, total, _ = IDLE_HEAD.unpack_from(record)
                if due > base:
                    if not start and (budget is None or 1 + total <= budget):
                        return True, -1, 1 + total, 0  # no pause: the usual case
                    return _pass_over(record, streams, start, budget, offset)
                record = self.thaw(entities, key, record)
            elif isinstance(record, Cold):  # the first round after a restart (features.cold)
                record = self.thaw(entities, key, record)
            work = 1
            for slot, tl in enumerate(record[start:] if start else record, start):
                if tl is None:
                    continue
                if budget is not None and work >= budget and slot > start:
                    return True, slot, work, 0
                ts = tl.ts
                # Most timelines have nothing to fold or forget (on the bench stream a
                # third are heads younger than their fold horizon with no folded past,
                # another third the age-only ones below): `_sweep_timeline` would leave
                # them as they are, for 1 unit of work; said here without its call.
                if (
                    ts
                    and not offset
                    and tl.past is None
                    and len(ts) <= FOLD_PART
                    and (horizon := fold_at[slot]) is not None
                    and ts[0] > horizon
                    and ((last := tl.folded_last) is None or last > forget_at[slot])
                ):
                    work += 1
                    continue
                if (
                    fold_at[slot] is None
                    and not ts
                    and tl.past is None
                    and (last := tl.folded_last) is not None
                    and last > forget_before
                ):  # an `age`-only timeline (a third of them) seen since the memory began
                    work += 1
                    continue
                raw = len(ts) if ts else 0
                if budget is not None and (raw > FOLD_PART or offset or tl.past):
                    part = max(FOLD_PART, budget - work)
                    folded = _fold_part(tl, streams[slot], base, part) if not offset else 0
                    if folded:  # more to fold: this slot again, in the next slice
                        return True, slot, work + folded, 0
                    scanned = _forget_part(tl, streams[slot], base, offset, part)
                    if scanned is not None:  # more folded values to scan: the same
                        return True, slot, work + scanned[1], scanned[0]
                offset = 0
                work += 1 + raw + (len(tl.past) if tl.past else 0)
                if not _sweep_timeline(tl, streams[slot], base, forget_before, watch_start):
                    record[slot] = None
                elif tl.ts:
                    work -= len(tl.ts)  # the entries still raw were not folded
            if not any(record):
                del entities[key]
                return False, -1, work, 0
            if idle_before is not None and (costs := _idle_costs(record, idle_before)):
                entities[key] = pack_idle(record, _due(record, streams, memory), costs)
                self.cold += 1
            return True, -1, work, 0

        return sweep_entity

    def begin_sweep(self, events: int) -> None:
        """Start a sweep round that visits every entry in slices over about `events` calls
        of `sweep_step` (features.sweep); a round still in flight goes on instead."""
        if self._sweep is None:
            self._sweep = SweepRound.begin(self, events)

    def sweep_step(self) -> bool:
        """One slice of the round in flight; whether there was one (else nothing done)."""
        sweep = self._sweep
        if sweep is None:
            return False
        if not sweep.step(self):
            self._sweep = None
        return True

    def _forget_departed(self, before: EpochMs) -> None:
        """Forget the watch times and registrations of entities last seen at or before
        `before` (and at or after the watch start: back-filled history stays), and the
        links of phones last seen with an account then."""
        self.watch.forget(before)
        linked, start = self._phone_linked, self.watch.start or 0
        for phone in [p for p, ts in linked.items() if start <= ts <= before]:
            del linked[phone]
            self._phone_users.pop(phone, None)

    def knows(self, key: str) -> bool:
        """Whether any stream has filed anything under entity `key` (a token, a user_id):
        how a token-key rotation recognises an entity seen under the previous key."""
        return any(key in entities for entities in self.entities)

    def record_count(self) -> int:
        """Entities held (a record each, of every kind): what `/metrics` reports, counted
        in constant time (`entity_count` visits every record: 0.1 s at 20k × 90 days, and
        ten times that on a restored state whose records are still encoded)."""
        return sum(len(table) for table in self.entities)

    def entity_count(self) -> int:
        """Timelines alive: (stream, entity) pairs with anything filed."""
        return sum(
            timelines_in(record) for entities in self.entities for record in entities.values()
        )

    def timelines(self, stream: int) -> dict[str, Timeline]:
        """One stream's timelines by entity key (a view built for inspection, not the hot path)."""
        s = self.streams[stream]
        records = self.entities[s.kind]
        for key, record in list(records.items()):
            if isinstance(record, COLD):
                self.thaw(records, key, record)
        return {
            key: tl
            for key, record in records.items()
            if (tl := cast(Record, record)[s.slot]) is not None
        }

    def digest_items(self) -> list[tuple[Any, ...]]:
        """A canonical listing of every timeline and link, for equality across restarts."""
        items: list[tuple[Any, ...]] = [
            (
                idx,
                key,
                list(tl.ts or ()),
                list(tl.values or ()),
                tl.first_ts,
                tl.running,
                sorted((tl.past or {}).items()),
                tl.folded_last,
            )
            for idx in range(len(self.streams))
            for key, tl in sorted(self.timelines(idx).items())
        ]
        items.extend(("phone", p, list(u)) for p, u in sorted(self._phone_users.items()))
        items.append(("phone_linked", sorted(self._phone_linked.items())))
        items.append(("watermark", self.watermark, self.late_events, self.updates))
        watch = self.watch
        items.append(
            ("watch", watch.start, watch.since, watch.last, sorted(watch.registered.items()))
        )
        items.append(("clearings", self.clearings.export()))
        return items

    # -- persistence ---------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything a snapshot must hold to resume exactly (see `restore`). The entities
        are one msgpack blob: encoding them in C is several times faster than pickling."""
        return {
            "layout": ENTITY_LAYOUT,
            "entities": _encode_entities(self.entities),
            "phone_users": self._phone_users,
            "phone_linked": self._phone_linked,
            "watermark": self.watermark,
            "late_events": self.late_events,
            "updates": self.updates,
            "watch": self.watch.export(),
            "clearings": self.clearings.export(),
            "sweep": self._sweep.export() if self._sweep is not None else None,
            "sweep_work": self.sweep_work,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Adopt timelines from a snapshot taken with the same catalog and this layout
        (any other is refused: the caller replays the log)."""
        if state.get("layout") not in READABLE_LAYOUTS:
            raise ValueError(f"snapshot holds feature layout {state.get('layout')!r}")
        entities = decode_cold_tables(state["entities"])  # features.cold
        if len(entities) != len(self.kinds):
            raise ValueError("snapshot was taken with a different feature catalog")
        self.watch.restore(state["watch"])
        self.clearings.restore(state.get("clearings") or [{} for _ in self.kinds])
        self._settle_restored(entities)
        self._phone_users = state["phone_users"]
        self._phone_linked = state["phone_linked"]
        self.watermark = state["watermark"]
        self.late_events = state["late_events"]
        self.updates = state["updates"]
        sweep = state.get("sweep")
        self._sweep = SweepRound.restore(sweep) if sweep is not None else None
        self.sweep_orders = SweepRound.orders(self)
        self.sweep_work = int(state.get("sweep_work", 0))

    def _settle_restored(self, tables: list[dict[str, msgspec.Raw]]) -> None:
        """Adopt a snapshot's entity tables, every record still encoded: idle ones kept
        idle (`restored`: the sweep passes over them until due), and the records whose
        encoding is at least `THAW_AT_RESTORE` bytes, the few hubs, decoded now instead
        of on first use (features.cold)."""
        self.entities = entities = cast(list[Table], tables)  # each value replaced below
        self.cold = sum(len(table) for table in entities)
        for raw_records, records in zip(tables, entities, strict=True):
            large = []
            for key, raw in raw_records.items():
                cold = records[key] = restored(raw)
                if len(cold) >= THAW_AT_RESTORE:
                    large.append((key, cold))
            for key, cold in large:
                self.thaw(records, key, cold)

    def adopt(
        self,
        entities: list[Table],
        clearings: list[dict[str, list[EpochMs]]],
        phone_users: dict[str, list[str]],
        phone_linked: dict[str, EpochMs],
        watermark: EpochMs,
    ) -> None:
        """Take over freshly decoded parts as they are, unchecked and uncopied: a Redis
        worker restores a few entities per event (state.redis), and `restore`'s blob
        round trip and copies were most of its CPU. The caller owns nothing it passes
        afterwards; the watched history is set on `watch` directly."""
        self.entities = entities
        self.cold = 0
        self.sweep_orders.clear()
        self.clearings.times = clearings
        self.clearings.active = any(clearings)
        self._phone_users = phone_users
        self._phone_linked = phone_linked
        self.watermark = watermark
        self.late_events = 0
        self.updates = 0

    def phone_links(self) -> tuple[dict[str, list[str]], dict[str, EpochMs]]:
        """The accounts seen with each phone and each phone's latest linked event (what
        `export` holds of them, without encoding every entity)."""
        return self._phone_users, self._phone_linked


def _idle_costs(record: Record, before: EpochMs) -> list[tuple[int, int]] | None:
    """If nothing in `record` is later than `before` (its newest raw entry, folded time,
    folded value or first-seen time: no event filed into it since), the slot and folded
    values of each of its timelines (the work the sweep counts while it has nothing to
    do: `_pass_over`); else None."""
    costs = []
    for slot, tl in enumerate(record):
        if tl is None:
            continue
        ts = tl.ts
        if ts and ts[-1] > before:
            return None
        last = tl.folded_last
        if last is not None and last > before:
            return None
        if tl.first_ts is not None and tl.first_ts > before:
            return None
        past = tl.past
        if past and max(past.values()) > before:
            return None
        costs.append((slot, len(past) if past else 0))
    return costs or None


def _pass_over(
    idle: Idle, streams: list[Stream], start: int, budget: int | None, offset: int
) -> tuple[bool, int, int, int]:
    """What `sweep_entity_of` returns for an idle record with nothing due, from slot
    `start` (and `offset` in its folded past) on: the work it counts, pausing before a
    timeline once `budget` is spent and inside a folded past it scans in parts
    (`_forget_part`, which forgets nothing here), as it does on the decoded record."""
    work = 1
    for slot, folded in idle_costs(idle):
        if slot < start:
            continue
        if budget is not None and work >= budget and slot > start:
            return True, slot, work, 0
        if budget is not None and folded and not streams[slot].age_only:
            part = max(FOLD_PART, budget - work)
            if folded - offset > part:  # `_forget_part` scans `part` values, then pauses
                return True, slot, work + part, offset + part
        offset = 0
        work += 1 + folded
    return True, -1, work, 0


def _due(record: Record, streams: list[Stream], memory_ms: int) -> EpochMs:
    """The earliest round base at which the sweep would change `record` (just swept):
    its oldest raw entry reaching its fold horizon, a folded value or a forgettable
    folded time leaving the longest window, a first-seen time its `memory`
    (`_sweep_timeline`'s tests, each solved for the base)."""
    due = 2**62
    for tl, stream in zip(record, streams, strict=True):
        if tl is None:
            continue
        if not stream.age_only:
            if tl.ts:
                due = min(due, tl.ts[0] + stream.raw_ms)
            past = tl.past
            if past is not None:
                oldest = min(past.values(), default=-(2**62))  # empty: the sweep drops it
                due = min(due, oldest + stream.retention_ms)
            if tl.folded_last is not None and not stream.keeps_first_seen:
                due = min(due, tl.folded_last + stream.retention_ms)
        if stream.keeps_first_seen:
            last = tl.last_seen()
            due = min(due, -(2**62) if last is None else last + memory_ms)
    return due


def _fold_part(tl: Timeline, stream: Stream, base: EpochMs, part: int) -> int:
    """Fold the first `part` (or a few more, equal times) of the entries the sweep folds,
    if it folds more than that; the entries folded (0: none, the sweep folds the rest).
    Folding a prefix and then the rest is folding the whole (`fold_through`)."""
    ts = tl.ts
    horizon = base - stream.raw_ms
    if stream.age_only or not ts or len(ts) <= part or ts[part] > horizon:
        return 0
    before = len(ts)
    tl.fold_through(ts[part - 1])
    return before - (len(tl.ts) if tl.ts else 0)


def _forget_part(
    tl: Timeline, stream: Stream, base: EpochMs, offset: int, part: int
) -> tuple[int, int] | None:
    """Forget what the sweep forgets among the `part` folded values from `offset` on, if
    more than `part` are left from there (else None: the sweep's own `forget_past` does
    the rest, over the survivors and the values left); the offset of the next part and
    the values scanned. Exact whatever happens between parts: a part deletes only what
    the whole `forget_past` with the same horizon deletes, and that one runs last."""
    past = tl.past
    if stream.age_only or past is None or len(past) - offset <= part:
        return None
    horizon = base - stream.retention_ms
    chunk = list(islice(past.items(), offset, offset + part))
    gone = [value for value, ts in chunk if ts <= horizon]
    for value in gone:
        del past[value]
    return offset + len(chunk) - len(gone), len(chunk)


def _sweep_timeline(
    tl: Timeline, stream: Stream, base: EpochMs, forget_before: EpochMs, watch_start: EpochMs
) -> bool:
    """Fold and forget what no window of `stream` reaches any more; whether anything is left
    (a first-seen time stays while the entity was seen after `forget_before`, or if it was
    last seen before the watch started: back-filled history, bounded by the bank's
    customers, not by the stream of newcomers)."""
    if not stream.age_only:
        ts = tl.ts
        if ts and ts[0] <= base - stream.raw_ms:  # most have nothing to fold: no call
            tl.fold_through(base - stream.raw_ms)
        if tl.past or tl.folded_last is not None:
            tl.forget_past(base - stream.retention_ms, keep_last=stream.keeps_first_seen)
        if tl.ts or tl.past or (tl.folded_last is not None and not stream.keeps_first_seen):
            return True
    if not stream.keeps_first_seen:
        return False
    last = tl.last_seen()
    return last is not None and (last > forget_before or last < watch_start)


def _shape(of: str | None, members: list[tuple[FeatureSpec, int]], raw_ms: int) -> int:
    """The containers a stream's timelines keep (features.timeline): values packed by
    kind, and the structures its aggregates read (the same tests as `Stream`'s flags)."""
    values = VALUES_NONE
    if of == "amount":
        values = VALUES_INT
    elif of == HOUR:
        values = VALUES_HOUR
    elif of is not None:
        values = VALUES_ANY
    return shape_of(
        values,
        with_totals=of == "amount",
        with_past=any(s.how in ("is_new", "distinct") and w > raw_ms for s, w in members),
        with_weights=any(s.how == "top_share" for s, _ in members),
        with_tally=any(s.how in ("top_share", "hour_share") for s, _ in members),
        with_ranked=any(s.how == "quantile" for s, _ in members),
        with_first=any(s.how == "age" for s, _ in members),
        with_last=any(
            s.how == "age" or (s.how in ("minutes_since", "seconds_since") and w > raw_ms)
            for s, w in members
        ),
    )


def _event_hour(event: Event, offset: int) -> int:
    """The local hour of an event, the value `hour_share` streams keep."""
    return local_hour(event.ts, offset)


ENTITY_LAYOUT = "entities/msgpack/5"
"""Names the layout `export` writes, so `restore` can tell it from earlier ones (2: raw
heads with a folded past, 3: packed into arrays, features.timeline; 5: idle records as
they are, features.cold)."""
READABLE_LAYOUTS = frozenset({ENTITY_LAYOUT, "entities/msgpack/3"})
"""What `restore` reads: a layout-3 snapshot is layout 5 without idle records."""

_encode_entities = msgspec.msgpack.Encoder(enc_hook=encode_array).encode
