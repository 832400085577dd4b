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
Filters with `account: payee` file a transfer under the receiving account (`received`),
so an account's own features can say when money last came in and how much.
"""

from bisect import bisect_right, insort
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import msgspec

from payguard.events import Event, is_fraud_verdict
from payguard.features.spec import (
    ENTITY_EXTRACTORS,
    HOUR,
    VALUE_EXTRACTORS,
    WATCH_ALL,
    Catalog,
    EventFilter,
    Extractor,
    FeatureSpec,
    local_hour,
    parse_duration,
    received,
    stream_value,
)
from payguard.features.timeline import Timeline
from payguard.features.watch import WatchedHistory
from payguard.types import HOUR_MS, MINUTE_MS, EpochMs

NEVER = 10**9
"""Value of `minutes_since`/`seconds_since` when nothing matched: comparisons like
`minutes_since_sim_swap_by_phone_72h <= 4320` are then simply false."""

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


SWEEP_EVERY = 50_000
"""Events between full sweeps that evict idle entities (deterministic: keyed to seq)."""

Record = list[Timeline | None]
"""One entity's timelines, a slot per stream of its kind (None: nothing filed yet)."""


class Stream(msgspec.Struct, frozen=True):
    """Events of one filter grouped by one entity, with the value one aggregate needs."""

    index: int
    filter: EventFilter
    by: str
    of: str | None
    retention_ms: int
    keeps_first_seen: bool
    age_only: bool
    """Only `age` reads this stream: it needs the first-seen time, never the entries."""
    key: Extractor
    value: Extractor | None
    conditional: bool
    """Whether the filter checks more than the event type (skipped on the hot path if not)."""
    tracks_seen: bool
    """Whether `is_new` reads this stream, so its timelines keep `Timeline.seen`."""
    kind: int
    """Index of the entity kind (`by`) whose records hold this stream's timelines."""
    slot: int
    """Position of this stream's timeline in each record of its kind."""
    weighs: bool = False
    """Whether `top_share` reads this stream, so its timelines keep `weights` (fen)."""
    tallies: bool = False
    """Whether `top_share` or `hour_share` reads it, so its timelines keep `tally`."""
    ranks: bool = False
    """Whether `quantile` reads it, so its timelines keep `ranked`."""


class Kind(msgspec.Struct, frozen=True):
    """One way to group by entity (`user`, `user+device`, …) and its streams, by slot."""

    by: str
    key: Extractor
    streams: tuple[int, ...]


class Feature(msgspec.Struct, frozen=True):
    name: str
    how: str
    stream: int
    window_ms: int
    longest: bool
    """Whether this is its stream's longest window (older entries are evicted)."""
    rank: tuple[int, int] = (1, 2)
    """The quantile `quantile` reads, as an exact fraction (numerator, denominator)."""

    @property
    def default(self) -> Any:
        """The value when the entity has nothing filed (`is_new` depends on the event)."""
        return NEVER if self.how in ("minutes_since", "seconds_since") else _DEFAULTS.get(self.how)


_DEFAULTS: dict[str, Any] = {
    "count": 0,
    "sum": 0,
    "distinct": 0,
    "age": 0,
    "is_new": None,
    "quantile": 0,
    "hour_share": 0,
    "top_share": 0,
    "watched": 0,
}
WATCHED_STREAM = -1
"""`Feature.stream` of a `watched` feature: it reads `FeatureState.watch`, not a stream."""

Reading = Callable[[list[dict[str, "Record"]], Event, dict[str, Any]], None]
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


Filer = Callable[
    [list[dict[str, "Record"]], Callable[..., None], Event, EpochMs, EpochMs, bool], None
]
"""Files one event into the streams of one event type: (entities, `_file_linked`, source,
t, watermark minus lateness, declined). Generated per event type by `_filer`."""


def _filing_lines(stream: Stream, n_slots: int, namespace: dict[str, Any]) -> list[str]:
    """The code filing `source` into one stream (see `FeatureState._filer`): skip it if
    the filter rejects it, if it is older than the stream's horizon (unless only its
    first-seen time is kept) or if it lacks the value; a carrier signal without an account
    goes to the accounts linked to its phone; otherwise append (`Timeline.add` when out of
    order) and evict what fell out of the longest window."""
    i, slot = stream.index, stream.slot
    namespace[f"flt_{i}"] = stream.filter
    namespace[f"value_{i}"] = stream.value
    namespace[f"new_{i}"] = partial(
        Timeline.new,
        stream.of == "amount",
        stream.tracks_seen,
        stream.weighs,
        stream.tallies,
        stream.ranks,
    )
    checks = [f"flt_{i}.matches(source)"] if stream.conditional else []
    if stream.filter.settled:
        checks.insert(0, "not declined")
    if not stream.age_only:
        checks.append(f"t > base - {stream.retention_ms}")
    code = [
        f"# stream {i}: {stream.filter.types} by {stream.by}, of {stream.of}",
        f"if {' and '.join(checks) or 'True'}:",
        f"    horizon = base - {stream.retention_ms}",
        _value_line(stream),
        "    if value is not None:" if stream.value else "    if True:",
    ]
    if stream.weighs:
        code.append("        weight = 1 if source.amount is None else source.amount")
    weight = ", weight" if stream.weighs else ""
    code.append("        if key is None:")
    if stream.by == "user":
        code += [
            "            if source.phone is not None:",
            f"                link({stream.kind}, {slot}, {n_slots}, source.phone, t, value,"
            f" horizon, new_{i}, {stream.age_only}{weight})",
        ]
    else:
        code.append("            pass")
    code += [
        "        else:",
        "            if record is None:",
        f"                record = records[key] = [None] * {n_slots}",
        f"            tl = record[{slot}]",
        "            if tl is None:",
        f"                tl = record[{slot}] = new_{i}()",
    ]
    if stream.age_only:  # `age` reads only the first-seen time: keep no entries
        code += [
            "            first = tl.first_ts",
            "            if first is None or t < first:",
            "                tl.first_ts = t",
        ]
    else:
        code += [
            "            times = tl.ts",
            "            if times and t < times[-1]:",
            f"                tl.add(t, value, horizon{weight})  # out of order: in the middle",
            "            else:",
            "                if not times:",
            "                    first = tl.first_ts",
            "                    if first is None or t < first:",
            "                        tl.first_ts = t",
            "                times.append(t)",
            "                tl.values.append(value)",
        ]
        if stream.of == "amount":
            code += [
                "                totals = tl.totals",
                "                totals.append((totals[-1] if totals else tl.running) + value)",
            ]
        if stream.tracks_seen:
            code.append("                tl.seen[value] = t")
        code += _behaviour_filing_lines(stream)
        code += [
            "                if times[0] <= horizon:",
            "                    tl.evict_through(horizon)",
        ]
    return ["    " + line for line in code]


def _value_line(stream: Stream) -> str:
    """The entry's value: its field, or for `hour_share` the local hour it is filed at
    (the feedback's own time for a `referenced` stream, like every entry's time)."""
    if stream.of == HOUR:
        return f"    value = (t // {HOUR_MS} + utc_offset) % 24"
    return f"    value = value_{stream.index}(source)" if stream.value else "    value = None"


def _behaviour_filing_lines(stream: Stream) -> list[str]:
    """Appending in time order: keep the entry's weight, its value's tally and the sorted
    values for the streams that keep them (see `Timeline`)."""
    pad = " " * 16
    code: list[str] = []
    if stream.weighs:
        code.append(pad + "tl.weights.append(weight)")
    if stream.tallies:
        added = "weight" if stream.weighs else "1"
        code += [pad + "tally = tl.tally", pad + f"tally[value] = tally.get(value, 0) + {added}"]
    if stream.ranks:
        code.append(pad + "insort(tl.ranked, value)")
    return code


def _guarded(block: list[str], members: list[Stream]) -> list[str]:
    """A kind's filing code, behind its filters when every stream of it has a condition:
    `merchant_api by merchant+net` then parses no address for a payment that is no API
    debit (the filter is asked again inside, only for the events that pass)."""
    if not all(s.conditional and not s.filter.settled for s in members):
        return block
    either = " or ".join(f"flt_{s.index}.matches(source)" for s in members)
    return [f"    if {either}:", *("    " + line for line in block)]


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


def _reading_lines(stream: Stream, features: list[Feature], namespace: dict[str, Any]) -> list[str]:
    """The code reading one stream's features from its timeline `tl` (not None) as of t.

    Each aggregate is a couple of bisects over the sorted times. Events mostly arrive in
    time order, so the upper bound is usually the whole timeline and its bisect is skipped
    (`t >= ts[-1]`); and the longest window of a stream, whose older entries are evicted,
    usually starts before the first entry (`ts[0]`), so its lower bisect is skipped too.
    Each bisect step reads an int object elsewhere in memory, and those cache misses are
    most of a read's cost. With nothing filed the template's values stand, except is_new."""
    namespace[f"value_{stream.index}"] = stream.value
    ages = [f for f in features if f.how == "age"]
    timed = [f for f in features if f.how != "age"]
    code = (
        [
            "first = tl.first_ts",
            *(
                f"out[{f.name!r}] = 0 if first is None or first > t else (t - first) // {MINUTE_MS}"
                for f in ages
            ),
        ]
        if ages
        else []
    )
    if not timed:
        return code
    code += [
        "ts = tl.ts",
        "if ts:",
        "    n = len(ts)",
        "    hi = n if t >= ts[-1] else bisect_right(ts, t)",
    ]
    for f in timed:
        code += ["    " + line for line in _aggregate_lines(f, stream.index)]
    new_ones = [f for f in timed if f.how == "is_new"]
    if new_ones:
        code.append("else:")
        code += [f"    out[{f.name!r}] = value_{stream.index}(event) is not None" for f in new_ones]
    return code


def _aggregate_lines(f: Feature, stream: int) -> list[str]:
    """One feature of a non-empty timeline; `n`, `hi` (entries at or before t) are set."""
    w, name = f.window_ms, repr(f.name)
    lo = f"bisect_right(ts, t - {w}, 0, hi)"
    lo = f"0 if ts[0] > t - {w} else {lo}" if f.longest else lo
    if f.how == "count":
        return [f"out[{name}] = hi - ({lo})"]
    if f.how == "sum":
        return [
            f"lo = {lo}",
            "totals = tl.totals",
            "if totals is not None and hi > lo:",
            f"    out[{name}] = totals[hi - 1] - (totals[lo - 1] if lo else tl.running)",
        ]
    window = "(tl.values if lo == 0 and hi == n else tl.values[lo:hi])"
    if f.how == "distinct":
        return [f"lo = {lo}", f"out[{name}] = len(set{window})"]
    if f.how == "is_new":
        return [
            f"current = value_{stream}(event)",
            "if current is None:",
            f"    out[{name}] = False",
            "elif t >= ts[-1] and tl.seen is not None:  # every entry is at or before t",
            "    last = tl.seen.get(current)",
            f"    out[{name}] = last is None or last <= t - {w}",
            "else:",
            f"    lo = {lo}",
            f"    out[{name}] = current not in {window}",
        ]
    if f.how in ("quantile", "hour_share", "top_share"):
        return _behaviour_lines(f, lo)
    unit = MINUTE_MS if f.how == "minutes_since" else 1_000
    return [f"if hi and ts[hi - 1] > t - {w}:", f"    out[{name}] = (t - ts[hi - 1]) // {unit}"]


def _behaviour_lines(f: Feature, lo: str) -> list[str]:
    """A quantile, hour share or top share of a non-empty window (0 if it is empty)."""
    name = repr(f.name)
    if f.how == "quantile":
        num, den = f.rank
        read = f"tl.quantile(lo, hi, {num}, {den})"
    elif f.how == "hour_share":
        read = "tl.hour_share(lo, hi, hour)"
    else:
        read = "tl.top_share(lo, hi)"
    return [f"lo = {lo}", "if hi > lo:", f"    out[{name}] = {read}"]


class FeatureState:
    """All timelines for one catalog, in process memory. Picklable for snapshots."""

    def __init__(self, catalog: Catalog, utc_offset_hours: int = 8) -> None:
        self.catalog = catalog
        self.utc_offset_hours = utc_offset_hours
        """Local time for `hour_share` (hours east of UTC; the engine's `utc_offset`)."""
        self.lateness_ms = parse_duration(catalog.lateness)
        self.streams: list[Stream] = []
        self.kinds: list[Kind] = []
        self.layout: dict[str, Feature] = {}
        """Every feature the catalog defines, by name: how and where it is read (its
        stream, window and rank)."""
        self._build(catalog)
        self.watch = WatchedHistory(self._watched_kinds(), parse_duration(catalog.learning))
        self.entities: list[dict[str, Record]] = [{} for _ in self.kinds]
        self.watermark: EpochMs = 0
        self.late_events = 0
        self.updates = 0
        self._by_type: dict[str, list[Stream]] = {}
        self._by_ref_type: dict[str, list[Stream]] = {}
        self._by_payee_type: dict[str, list[Stream]] = {}
        self._any: list[Stream] = []
        self._any_payee: list[Stream] = []
        self._phone_users: dict[str, list[str]] = {}
        self._filers: dict[str, tuple[Filer, Filer, Filer | None]] = {}
        self._index_streams()

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
            self.streams.append(
                Stream(
                    index=idx,
                    filter=flt,
                    by=by,
                    of=of,
                    retention_ms=retention,
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
                    tracks_seen=any(s.how == "is_new" for s, _ in members),
                    kind=kind,
                    slot=kind_of[by].index(idx),
                    weighs=any(s.how == "top_share" for s, _ in members),
                    tallies=any(s.how in ("top_share", "hour_share") for s, _ in members),
                    ranks=any(s.how == "quantile" for s, _ in members),
                )
            )
            for spec, window_ms in members:
                window = next(w for w in spec.windows if parse_duration(w) == window_ms)
                name = spec.name(window)
                longest = window_ms >= retention
                rank = spec.rank() if spec.how == "quantile" else (1, 2)
                self.layout[name] = Feature(name, spec.how, idx, window_ms, longest, rank)

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

    def _slots(self, kind: int) -> int:
        return len(self.kinds[kind].streams)

    def _filers_for(self, event_type: str) -> tuple[Filer, Filer, Filer | None]:
        """The update code for one event type: its own streams, its `referenced` ones and
        those filing it under its payee (None when there are none: no view is built)."""
        payee_streams = [*self._by_payee_type.get(event_type, ()), *self._any_payee]
        filers = self._filers[event_type] = (
            self._filer([*self._by_type.get(event_type, ()), *self._any]),
            self._filer(self._by_ref_type.get(event_type, ())),
            self._filer(payee_streams) if payee_streams else None,
        )
        return filers

    def _filer(self, streams: Iterable[Stream]) -> Filer:
        """Straight-line Python filing an event into `streams`, compiled once per event
        type: every stream's constants, slot and shape (sums, `seen`, age only) are baked
        in, and each entity is looked up once. It runs for every event, and as a loop over
        tuples describing the streams it cost about twice as much."""
        by_kind: dict[int, list[Stream]] = {}
        for stream in streams:
            by_kind.setdefault(stream.kind, []).append(stream)
        namespace: dict[str, Any] = {"insort": insort, "utc_offset": self.utc_offset_hours}
        lines = ["def file(entities, link, source, t, base, declined):"]
        for kind, members in by_kind.items():
            namespace[f"key_{kind}"] = self.kinds[kind].key
            block = [
                f"    records = entities[{kind}]",
                f"    key = key_{kind}(source)",
                "    record = records.get(key) if key is not None else None",
            ]
            for stream in members:
                block += _filing_lines(stream, self._slots(kind), namespace)
            lines += _guarded(block, members)
        if len(lines) == 1:
            lines.append("    pass")
        exec(compile("\n".join(lines), "<payguard update>", "exec"), namespace)
        filer: Filer = namespace["file"]
        return filer

    # -- queries -------------------------------------------------------------------------

    def plan(self, names: Iterable[str]) -> QueryPlan:
        """Group the wanted features by entity kind, then by stream, so each entity is
        looked up once. The template keeps the order features had when grouped by stream."""
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
        return QueryPlan(
            names=tuple(wanted), template=template, read=self._reading(by_kind, watched)
        )

    def _reading(
        self, by_kind: dict[int, dict[int, list[Feature]]], watched: list[Feature]
    ) -> Reading:
        """Straight-line Python reading a plan's features: one entity lookup per kind, then
        each stream's features with their windows baked in. A snapshot runs for every event,
        and as loops calling a closure per feature it cost about a third more."""
        namespace: dict[str, Any] = {"bisect_right": bisect_right}
        lines = ["def read(entities, event, out):", "    t = event.ts"]
        wanted = (f for streams in by_kind.values() for fs in streams.values() for f in fs)
        if any(f.how == "hour_share" for f in wanted):  # this event's local hour, once
            lines.append(f"    hour = (t // {HOUR_MS} + {self.utc_offset_hours}) % 24")
        for kind, streams in by_kind.items():
            namespace[f"key_{kind}"] = self.kinds[kind].key
            lines += ["    " + line for line in self._kind_lines(kind, streams, namespace)]
            lines += ["    " + line for line in self._watch_lines(kind, streams, namespace)]
        lines += ["    " + line for line in self._watched_lines(watched, namespace)]
        exec(compile("\n".join(lines), "<payguard snapshot>", "exec"), namespace)
        reading: Reading = namespace["read"]
        return reading

    def _kind_lines(
        self, kind: int, streams: dict[int, list[Feature]], namespace: dict[str, Any]
    ) -> list[str]:
        """Look the event's entity of one kind up, then read each wanted stream's slot.
        Without a record (or a timeline) only `is_new` differs from the template."""
        new_ones = [(idx, f) for idx, fs in streams.items() for f in fs if f.how == "is_new"]
        for idx, _ in new_ones:
            namespace[f"value_{idx}"] = self.streams[idx].value
        code = [
            f"key = key_{kind}(event)",
            f"record = entities[{kind}].get(key) if key is not None else None",
            "if record is None:",
            *(
                f"    out[{f.name!r}] = key is not None and value_{idx}(event) is not None"
                for idx, f in new_ones
            ),
            "    pass",
            "else:",
        ]
        for idx, features in streams.items():
            code += [
                f"    tl = record[{self.streams[idx].slot}]",
                "    if tl is None:",
                *(
                    f"        out[{f.name!r}] = value_{idx}(event) is not None"
                    for f in features
                    if f.how == "is_new"
                ),
                "        pass",
                "    else:",
                *(
                    "        " + line
                    for line in _reading_lines(self.streams[idx], features, namespace)
                ),
            ]
        return code

    def _watch_lines(
        self, kind: int, streams: dict[int, list[Feature]], namespace: dict[str, Any]
    ) -> list[str]:
        """After a kind's features are read: `is_new` that payguard has not watched the
        entity long enough to know reads false, and such an `age` at least the learning
        period (features.watch). `record` is the entity's record or None."""
        by = self.kinds[kind].by
        component = by.split("+")[0]
        watched = [
            (idx, f) for idx, fs in streams.items() for f in fs if f.how in ("is_new", "age")
        ]
        if not watched:
            return []
        namespace["watch"] = self.watch
        namespace[f"component_{kind}"] = ENTITY_EXTRACTORS[component]
        ci, pair = self.watch.index(component), "+" in by
        code = [f"c = component_{kind}(event)"]
        for idx, f in watched:
            name, slot = repr(f.name), self.streams[idx].slot
            if f.how == "is_new":
                code += [
                    f"if out[{name}] and not watch.knows_new({ci}, c, t, {f.window_ms}):",
                    f"    out[{name}] = False",
                ]
            else:
                code += [
                    f"tl = record[{slot}] if record is not None else None",
                    "first = None if tl is None else tl.first_ts",
                    f"out[{name}] = watch.age({ci}, c, {pair}, first, t)",
                ]
        return code

    def _watched_lines(self, watched: list[Feature], namespace: dict[str, Any]) -> list[str]:
        """`watched_minutes_by_<kind>`: minutes since payguard first saw the entity."""
        namespace["watch"] = self.watch
        code = []
        for f in watched:
            kind = self._by_of(f)
            if kind == WATCH_ALL:
                code.append(f"out[{f.name!r}] = watch.watching_minutes(t)")
                continue
            namespace[f"entity_{kind}"] = ENTITY_EXTRACTORS[kind]
            ci = self.watch.index(kind)
            code.append(f"out[{f.name!r}] = watch.watched_minutes({ci}, entity_{kind}(event), t)")
        return code

    def snapshot(self, event: Event, plan: QueryPlan) -> dict[str, Any]:
        """Feature values as of `event.ts`, from events that arrived before this one."""
        out = plan.template.copy()
        plan.read(self.entities, event, out)
        return out

    # -- updates -------------------------------------------------------------------------

    def update(self, event: Event, referenced: Event | None = None, declined: bool = False) -> None:
        """File `event` into every stream it matches. `referenced` is the event a feedback
        event points at (None if unknown), used by `source: referenced` streams when the
        feedback is a fraud verdict (`events.is_fraud_verdict`); `declined`
        says the engine sent it to review or blocked it (`settled` filters skip it)."""
        t = event.ts
        base = self.watermark - self.lateness_ms
        if t < base:
            self.late_events += 1
        filers = self._filers.get(event.type) or self._filers_for(event.type)
        filers[0](self.entities, self._file_linked, event, t, base, declined)
        self.watch.observe(event)
        if referenced is not None and is_fraud_verdict(event):  # not a `not_fraud` label
            filers[1](self.entities, self._file_linked, referenced, t, base, False)
        if filers[2] is not None and (view := received(event)) is not None:
            filers[2](self.entities, self._file_linked, view, t, base, declined)
        if event.phone is not None and event.user_id is not None:
            self._link_phone(event.phone, event.user_id)
        if t > self.watermark:
            self.watermark = t
        self.updates += 1

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
            if record is None:
                record = entities[user] = [None] * n_slots
            tl = record[slot]
            if tl is None:
                tl = record[slot] = new_timeline()
            if age_only:
                if tl.first_ts is None or t < tl.first_ts:
                    tl.first_ts = t
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
        """Evict expired entries everywhere and drop empty timelines and entities; returns
        the timelines left."""
        left = 0
        for kind, entities in zip(self.kinds, self.entities, strict=True):
            streams = [self.streams[idx] for idx in kind.streams]
            horizons = [self.watermark - self.lateness_ms - s.retention_ms for s in streams]
            for key, record in list(entities.items()):
                for slot, tl in enumerate(record):
                    if tl is None:
                        continue
                    ts = tl.ts
                    if ts and ts[0] <= horizons[slot]:  # most have nothing to evict: no call
                        tl.evict_through(horizons[slot])
                    if not ts and not streams[slot].keeps_first_seen:
                        record[slot] = None
                    else:
                        left += 1
                if not any(record):
                    del entities[key]
        return left

    def knows(self, key: str) -> bool:
        """Whether any stream has filed anything under entity `key` (a token, a user_id):
        how a token-key rotation recognises an entity seen under the previous key."""
        return any(key in entities for entities in self.entities)

    def entity_count(self) -> int:
        """Timelines alive: (stream, entity) pairs with anything filed."""
        return sum(
            len(record) - record.count(None)
            for entities in self.entities
            for record in entities.values()
        )

    def timelines(self, stream: int) -> dict[str, Timeline]:
        """One stream's timelines by entity key (a view built for inspection, not the hot path)."""
        s = self.streams[stream]
        return {
            key: tl
            for key, record in self.entities[s.kind].items()
            if (tl := record[s.slot]) is not None
        }

    def digest_items(self) -> list[tuple[Any, ...]]:
        """A canonical listing of every timeline and link, for equality across restarts."""
        items: list[tuple[Any, ...]] = [
            (idx, key, list(tl.ts), list(tl.values), tl.first_ts, tl.running)
            for idx in range(len(self.streams))
            for key, tl in sorted(self.timelines(idx).items())
        ]
        items.extend(("phone", p, list(u)) for p, u in sorted(self._phone_users.items()))
        items.append(("watermark", self.watermark, self.late_events, self.updates))
        watch = self.watch
        items.append(("watch", watch.start, watch.since, sorted(watch.registered.items())))
        return items

    # -- persistence ---------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Everything a snapshot must hold to resume exactly (see `restore`). The entities
        are one msgpack blob: encoding them in C is several times faster than pickling."""
        return {
            "layout": ENTITY_LAYOUT,
            "entities": _encode_entities(self.entities),
            "phone_users": self._phone_users,
            "watermark": self.watermark,
            "late_events": self.late_events,
            "updates": self.updates,
            "watch": self.watch.export(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Adopt timelines from a snapshot taken with the same catalog (this layout, or
        the earlier one with a dict of timelines per stream)."""
        if state.get("layout") == ENTITY_LAYOUT:
            entities = _decode_entities(state["entities"])
            if len(entities) != len(self.kinds):
                raise ValueError("snapshot was taken with a different feature catalog")
        else:
            entities = self._from_streams(state["timelines"])
        if "watch" not in state:
            raise ValueError("snapshot was taken before watched history was kept")
        self.watch.restore(state["watch"])
        self._track_seen(entities)
        self.entities = entities
        self._phone_users = state["phone_users"]
        self.watermark = state["watermark"]
        self.late_events = state["late_events"]
        self.updates = state["updates"]

    def _track_seen(self, entities: list[dict[str, Record]]) -> None:
        """Give `is_new` streams' timelines their `seen` if the snapshot had none (and
        `quantile`, `hour_share`, `top_share` ones their `ranked` and `tally`)."""
        for stream in self.streams:
            if not (stream.tracks_seen or stream.weighs or stream.tallies or stream.ranks):
                continue
            for record in entities[stream.kind].values():
                tl = record[stream.slot]
                if tl is None:
                    continue
                if stream.tracks_seen and tl.seen is None:
                    tl.track_seen()
                if stream.weighs and tl.weights is None:
                    # only the per-stream layout lacks weights, and it was written before
                    # top_share existed (another catalog): count each entry once
                    tl.weights = [1] * len(tl.values)
                if stream.tallies and tl.tally is None:
                    tl.track_tally()
                if stream.ranks and tl.ranked is None:
                    tl.track_ranked()

    def _from_streams(self, timelines: list[dict[str, Any]]) -> list[dict[str, Record]]:
        """Regroup a per-stream snapshot (the layout before per-entity records)."""
        if len(timelines) != len(self.streams):
            raise ValueError("snapshot was taken with a different feature catalog")
        entities: list[dict[str, Record]] = [{} for _ in self.kinds]
        for stream, by_key in zip(self.streams, timelines, strict=True):
            records = entities[stream.kind]
            n_slots = self._slots(stream.kind)
            for key, old in by_key.items():
                tl = Timeline(old.ts, old.values, old.totals, old.running, old.first_ts)
                records.setdefault(key, [None] * n_slots)[stream.slot] = tl
        return entities


def _event_hour(event: Event, offset: int) -> int:
    """The local hour of an event, the value `hour_share` streams keep."""
    return local_hour(event.ts, offset)


ENTITY_LAYOUT = "entities/msgpack/1"
"""Names the layout `export` writes, so `restore` can tell it from earlier ones."""

_encode_entities = msgspec.msgpack.Encoder().encode
_decode_entities = msgspec.msgpack.Decoder(list[dict[str, list[Timeline | None]]]).decode
