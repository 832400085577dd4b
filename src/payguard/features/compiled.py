"""The generated Python behind feature snapshots and updates, as source text.

Both run for every event, so `FeatureState` compiles them to straight-line Python: the
update per event type (`filer_source`), the snapshot per query plan (`reading_source`),
with slots, windows and stream shapes as constants. Written as loops over tuples that
describe the streams they cost about twice as much. What the generated code does once per
event rather than once per stream or feature:

- every event value it needs (`user_id`, the card token, the source network, …) is read
  into a local `v_<name>` at the top (`VALUE_CODE`), and a pair key such as `user+device`
  is one f-string of those locals: it used to be two lambdas and a closure per kind, built
  again by each watch check;
- the watched-history rules (features.watch) run inline from locals: the watch start is
  read once, an entity's first-watched time at most once per kind, and `is_new` asks only
  when it would otherwise read true;
- `quantile`, `hour_share` and `top_share` over a whole timeline (the longest window asked
  at or after the newest entry: the usual case) read `ranked` / `tally` directly, without a
  call; `distinct` over a tallied stream counts the tally's keys.

Each feature and stream gets a comment naming it, so `payguard explain-plan` prints code a
person can follow; the sources are registered under a unique filename per plan
(`payguard.generated`), so a traceback shows the line. The property test in
tests/features/test_point_in_time.py holds the generated code to the brute-force twin.
"""

from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from functools import partial
from sys import intern
from typing import Any

from payguard.features.layout import Feature, StateLayout, Stream
from payguard.features.spec import HOUR, VALUE_CODE, WATCH_ALL, EventFilter, source_network
from payguard.features.timeline import (
    FIRST,
    HOURS,
    LAST,
    PAST,
    RANKED,
    TALLY,
    TOTALS,
    VALUE_BITS,
    VALUES_ANY,
    VALUES_HOUR,
    VALUES_INT,
    WEIGHTS,
    Past,
    Tally,
    Timeline,
)
from payguard.features.watch import ACCOUNT, CONTEXT_TYPES
from payguard.generated import comment
from payguard.types import HOUR_MS, MINUTE_MS


def value_lines(names: Iterable[str], var: str) -> list[str]:
    """Read each named event value of `var` once into the local `v_<name>`."""
    return [f"v_{name} = {VALUE_CODE[name].format(e=var)}" for name in names]


def key_expr(by: str) -> str:
    """The entity key of kind `by` from the value locals: one value, or the parts joined
    by `|` (None when any part is absent), as `state._key_of` builds it."""
    parts = by.split("+")
    if len(parts) == 1:
        return f"v_{parts[0]}"
    absent = " or ".join(f"v_{part} is None" for part in parts)
    joined = "|".join(f"{{v_{part}}}" for part in parts)
    return f'None if {absent} else f"{joined}"'


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


NOT_INTERNED = frozenset({"amount"})
"""Event values the update code does not intern (not strings)."""


def interning_lines(names: Iterable[str]) -> list[str]:
    """Intern each named token local that the update may store (as an entity key, an
    entry's value or a folded value): one string per token however many timelines and
    entries hold it, instead of a copy per event decoded (features.timeline)."""
    return [
        f"if v_{name} is not None: v_{name} = intern(v_{name})"
        for name in names
        if name not in NOT_INTERNED
    ]


# -- updates -----------------------------------------------------------------------------


def filer_source(
    state: StateLayout,
    streams: Iterable[Stream],
    namespace: dict[str, Any],
    observed_type: str | None = None,
) -> str:
    """The update code filing `source` into `streams`, each entity looked up once; with
    `observed_type`, also the watched-history bookkeeping of an event of that type
    (`WatchedHistory.observe`, inline: it ran for every event)."""
    by_kind: dict[int, list[Stream]] = {}
    for stream in streams:
        by_kind.setdefault(stream.kind, []).append(stream)
    namespace.update(
        HOUR_COUNTERS=bytes(8 * HOURS),
        Past=Past,
        Tally=Tally,
        array=array,
        bisect_left=bisect_left,
        insort=insort,
        intern=intern,
        source_network=source_network,
        utc_offset=state.utc_offset_hours,
    )
    guarded = {k: _all_conditional(m) for k, m in by_kind.items()}
    needed = {k: _filing_values(state.kinds[k].by, m) for k, m in by_kind.items()}
    watch = state.watch
    top = _unique(
        [n for k, names in needed.items() if not guarded[k] for n in names]
        + (list(watch.kinds) if observed_type is not None else [])
        + (["user"] if observed_type == "register" else [])  # dates the account
    )
    lines = ["def file(entities, link, source, t, base, declined):"]
    lines += ["    " + line for line in value_lines(top, "source") + interning_lines(top)]
    lines += ["    " + line for line in base_less_lines(by_kind.values())]
    for kind, members in by_kind.items():
        block = [
            comment(f"entities by {state.kinds[kind].by}"),
            f"records = entities[{kind}]",
            f"key = {key_expr(state.kinds[kind].by)}",
            "record = records.get(key) if key is not None else None",
        ]
        keyed = [
            line
            for stream in members
            for line in _filing_lines(stream, state.slots(kind), namespace)
        ]
        linked = [
            line
            for stream in members
            for line in _filing_lines(stream, state.slots(kind), namespace, linked=True)
        ]
        block[-1:] = ["if key is not None:", "    record = records.get(key)"]
        block += ["    " + line for line in keyed]
        if linked:  # a carrier signal: no account, the accounts seen with its phone
            block += ["elif source.phone is not None:", "    record = None"]
            block += ["    " + line for line in linked]
        if guarded[kind]:
            either = " or ".join(_unique(f"({match_expr(s.filter)})" for s in members))
            own = [n for n in needed[kind] if n not in top]
            inner = value_lines(own, "source") + interning_lines(own)
            block = [f"if {either}:", *("    " + line for line in inner + block)]
        lines += ["    " + line for line in block]
    if observed_type is not None:
        namespace["watch"] = watch
        lines += ["    " + line for line in _observe_lines(state, observed_type)]
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines) + "\n"


def _base_less(ms: int) -> str:
    """`base - ms` as the update code reads it: the local `base_less_<ms>` that
    `base_less_lines` sets once per event (`base` itself for 0)."""
    return f"base_less_{ms}" if ms else "base"


def base_less_lines(by_kind: Iterable[list[Stream]]) -> list[str]:
    """The bounds every filing compares with, `base - ms` for each stream's retention, raw
    head and (with no raw aggregate) fold slack, computed once per event: about three a
    stream (some seventy a payment) each made a new two-digit int."""
    spans: set[int] = set()
    for members in by_kind:
        for stream in members:
            spans.add(stream.raw_ms)
            if not stream.age_only:
                spans.add(stream.retention_ms)
                spans.add(stream.raw_ms or FOLD_SLACK_MS)
    return [f"{_base_less(ms)} = base - {ms}" for ms in sorted(spans) if ms]


def match_expr(flt: EventFilter, var: str = "source") -> str:
    """`EventFilter.matches` of `var` as an expression (its constants inline): asked
    about four times an event, the call cost about three times the tests."""
    tests = []
    if flt.success is not None:
        tests.append(f"{var}.success is {flt.success!r}")
    if flt.categories is not None:
        tests.append(
            f"{var}.merchant is not None and {var}.merchant.category in {tuple(flt.categories)!r}"
        )
    if flt.outcomes is not None:
        tests.append(f"{var}.outcome in {tuple(flt.outcomes)!r}")
    if flt.methods is not None:
        tests.append(f"{var}.method in {tuple(flt.methods)!r}")
    if flt.channels is not None:
        tests.append(f"{var}.channel in {tuple(flt.channels)!r}")
    return " and ".join(tests) or "True"


def _all_conditional(members: list[Stream]) -> bool:
    """A kind's filing code goes behind its filters when every stream of it has a
    condition: `merchant_api by merchant+net` then parses no address for a payment that is
    no API debit (the filter is asked again inside, only for the events that pass)."""
    return all(s.conditional and not (s.filter.settled or s.filter.stopped) for s in members)


def _filing_values(by: str, members: list[Stream]) -> list[str]:
    """The event values a kind's filing reads: its key's parts and its streams' values."""
    values = [s.of for s in members if s.of is not None and s.of != HOUR]
    return _unique([*by.split("+"), *values])


def stopped_within(record: list[Timeline | None] | None, slot: int, t: int, within: int) -> bool:
    """Whether the entity's `stopped` timeline (`record[slot]`) holds a stop in
    (t - within, t]: then a `before_stop` stream does not take its event. The latest
    entry at or before t is the raw one, else the folded past's (features.timeline)."""
    tl = None if record is None else record[slot]
    if tl is None:
        return False
    times = tl.ts  # None once every raw entry was folded (features.timeline)
    hi = 0 if not times else len(times) if t >= times[-1] else bisect_right(times, t)
    last = times[hi - 1] if times and hi else tl.folded_last
    return last is not None and t - within < last <= t


def _filing_lines(
    stream: Stream, n_slots: int, namespace: dict[str, Any], linked: bool = False
) -> list[str]:
    """The code filing `source` into one stream: skip it if the filter rejects it, if it
    is older than the stream's horizon (unless only its first-seen time is kept) or if it
    lacks the value; otherwise append (`Timeline.add` when out of order) and fold what
    fell out of the raw head (features.timeline). Run where the entity's key is known
    (`filer_source` tests it once per kind, not once per stream); with `linked`, the code
    for a carrier signal without an account instead, which files under the accounts
    linked to its phone (empty for a stream not by `user`).

    The entry's value and the raw head's start are read from the per-event locals
    (`v_<of>`, `base_less_<ms>`) where they are used, not copied into a local per stream:
    about four of the dozen steps a stream cost before its append."""
    i, slot = stream.index, stream.slot
    if linked and stream.by != "user":
        return []
    namespace[f"new_{i}"] = partial(Timeline, stream.shape)
    checks = [f"({match_expr(stream.filter)})"] if stream.conditional else []
    if stream.filter.settled:
        checks.insert(0, "not declined")
    if stream.filter.stopped:
        checks.insert(0, "declined")
    if stream.before_stop is not None:
        namespace["stopped_within"] = stopped_within
        stop_slot, within = stream.before_stop
        checks.append(f"not stopped_within(record, {stop_slot}, t, {within})")
    if not stream.age_only:
        checks.append(f"t > {_base_less(stream.retention_ms)}")
    types = ", ".join(stream.filter.types)
    value = _value_name(stream)
    code = [
        comment(f"stream {i}: [{types}] by {stream.by}, of {stream.of}"),
        f"if {' and '.join(checks) or 'True'}:",
    ]
    if stream.of == HOUR:
        code.append(_value_line(stream))
    code.append(f"    if {value} is not None:" if stream.of is not None else "    if True:")
    if stream.weighs:
        code.append("        weight = 1 if source.amount is None else source.amount")
    weight = ", weight" if stream.weighs else ""
    horizon = _base_less(stream.raw_ms)
    if linked:
        body = [
            f"            link({stream.kind}, {slot}, {n_slots}, source.phone, t, {value},"
            f" {horizon}, new_{i}, {stream.age_only}{weight})",
        ]
    else:
        body = [
            "            if record is None:",
            f"                record = records[key] = [None] * {n_slots}",
            f"            tl = record[{slot}]",
            "            if tl is None:",
            f"                tl = record[{slot}] = new_{i}()",
        ]
        if stream.age_only:  # `age` reads only the first-seen time: keep no entries
            body += [
                "            first = tl.first_ts",
                "            if first is None or t < first:",
                "                tl.first_ts = t",
                "            last = tl.folded_last  # last seen: forgotten `memory` later (sweep)",
                "            if last is None or t > last:",
                "                tl.folded_last = t",
            ]
        else:
            body += _append_lines(stream, weight, value, horizon)
    code += [line[4:] for line in body]  # inside the `if` of the value test
    return code


def _value_name(stream: Stream) -> str:
    """What the filing code reads as the entry's value: the event value's local, `None`
    for a stream of no value, `value` for `hour_share` (`_value_line` computes it)."""
    if stream.of == HOUR:
        return "value"
    return f"v_{stream.of}" if stream.of is not None else "None"


def _append_lines(stream: Stream, weight: str, value: str, horizon: str) -> list[str]:
    """Append in time order to a raw head that has entries (tested first: the usual
    case); open an empty one inline; `Timeline.add` when the event is out of order or
    older than the raw head's start. `value` and `horizon` are the expressions of the
    entry's value and the raw head's start (`_value_name`, `_base_less`)."""
    code = [
        "            times = tl.ts",
        "            if times is not None and t >= times[-1]:  # in time order: append",
        "                times.append(t)",
    ]
    if stream.of is not None:
        code.append(f"                tl.values.append({value})")
    if stream.of == "amount":
        code += [
            "                totals = tl.totals",
            f"                totals.append((totals[-1] if totals else tl.running) + {value})",
        ]
    pad = " " * 16
    if stream.weighs:
        code.append(pad + "tl.weights.append(weight)")
    if stream.tallies and stream.of == HOUR:  # 24 counters
        code.append(pad + f"tl.tally[{value}] += {'weight' if stream.weighs else '1'}")
    elif stream.tallies:
        added = "weight" if stream.weighs else "1"
        code += [
            pad + "tally = tl.tally",
            pad + f"held = tally[{value}] = tally.get({value}, 0) + {added}",
            pad + "if type(tally) is Tally:  # keeps its total and top (features.timeline)",
            pad + f"    tally.total += {added}",
            pad + "    if held > tally.top >= 0:",
            pad + "        tally.top = held",
            pad + f"        tally.top_value = {value}",
        ]
    if stream.ranks:
        code.append(pad + f"insort(tl.ranked, {value})")
    if stream.raw_ms:
        code += [f"                if times[0] <= {horizon}:", *_fold_lines(stream, horizon)]
    else:  # no raw aggregate (novelty, distinct, time since): folds in batches
        code += [
            f"                if len(times) > {FOLD_BATCH}"
            f" and times[0] <= {_base_less(FOLD_SLACK_MS)}:",
            f"                    tl.fold_through({horizon})",
        ]
    code += [
        f"            elif times is None and t > {horizon}:  # an empty head: open it here",
        *("                " + line for line in _open_lines(stream, value)),
        "            else:",
        f"                tl.add(t, {value}, {horizon}{weight})  # late, or out of order",
    ]
    return code


def _open_lines(stream: Stream, value: str) -> list[str]:
    """`Timeline.add` on an empty raw head with an entry newer than the horizon (nothing
    folds), inline: the head's containers made holding the one entry. Most adds are
    these (a novelty stream's head empties between an entity's sessions: 163k of the
    seed-5 world's 163k calls of `add`), and the call, `open` and the generic tests cost
    about three times the work. Each container as `Timeline.open` makes it."""
    shape, code = stream.shape, []
    weight = "weight" if stream.weighs else "1"
    if shape & FIRST:
        code += ["first = tl.first_ts", "if first is None or t < first:", "    tl.first_ts = t"]
    code.append("tl.ts = [t]")
    values = shape & VALUE_BITS
    if values == VALUES_INT:
        code.append(f"tl.values = array('q', ({value},))")
    elif values == VALUES_HOUR:
        code.append(f"tl.values = array('b', ({value},))")
    elif values == VALUES_ANY:
        code.append(f"tl.values = [{value}]")
    if shape & TOTALS:
        code.append(f"tl.totals = array('q', (tl.running + {value},))")
    if shape & WEIGHTS:
        code.append(f"tl.weights = array('q', ({weight},))")
    if shape & TALLY and values == VALUES_HOUR:
        code += ["tally = tl.tally = array('q', HOUR_COUNTERS)", f"tally[{value}] += {weight}"]
    elif shape & TALLY:  # a `Tally` as `Tally.add` leaves it after one entry
        code += [
            "tally = tl.tally = Tally()",
            f"tally[{value}] = tally.total = {weight}",
            f"tally.top = {weight} if {weight} > 0 else 0",
            f"tally.top_value = {value} if {weight} > 0 else None",
        ]
    if shape & RANKED:
        code.append(f"tl.ranked = array('q', ({value},))")
    return code


FOLD_SLACK_MS = 10 * MINUTE_MS
"""How long past its horizon the oldest raw entry of a stream without raw aggregates
(`Stream.raw_ms` 0: only `is_new`, `distinct` and time-since read it) may stay before the
update folds. Its reads are exact with any raw entries older than the horizon (they bisect
the window and ask `past` for the rest), so folding there waits until a batch is due: a
busy entity's head (a merchant's, an address's) folded one entry per event, the update's
costliest line. Raw aggregates (`raw_ms` > 0) fold at once: their shortcuts read the whole
head as the window. The raw head stays within the lateness plus this, or `FOLD_BATCH`
entries."""

FOLD_BATCH = 8
"""Entries the raw head of a stream without raw aggregates keeps, however old, before the
update folds it (`FOLD_SLACK_MS`). A sparse entity (an account active every hour or
so, the bench stream's usual user) found its previous entry past the slack on each
event, so the batch was one entry: of the 635k folds per 100k bench events, 500k were
these, one `past` update and two list deletions per append. Now one `fold_through` per
`FOLD_BATCH` appends folds them together; an idle head is folded by the sweep."""


def _fold_lines(stream: Stream, horizon: str) -> list[str]:
    """Fold what fell out of the raw head after an append (`Timeline.fold_through`).
    Usually that is the one oldest entry (the head had entries, so it holds two or more
    now): inline for the streams without tally, ranks or weights, where a call cost
    about three times the work (it ran about four times an event). Streams with a tally,
    ranks or weights too (`Timeline._forget` inline): a busy merchant's month-long heads
    fold one entry on each of its payments."""
    pad = " " * 20
    code = [
        f"if times[1] <= {horizon}:  # more than one entry folds",
        f"    tl.fold_through({horizon})",
    ]
    code.append("else:")
    body = []
    if stream.shape & PAST:
        body += [
            "first, folded = tl.values[0], times[0]",
            "past = tl.past",
            "if past is None:",
            "    past = tl.past = {}",
            "if type(past) is Past:  # keeps its times sorted for `distinct` (features.timeline)",
            "    past.fold(first, folded)",
            "elif past.get(first, folded) <= folded:",
            "    past[first] = folded",
        ]
    if stream.shape & LAST:
        body += [
            "last = tl.folded_last",
            "if last is None or times[0] > last:",
            "    tl.folded_last = times[0]",
        ]
    if stream.shape & TOTALS:
        body += ["totals = tl.totals", "tl.running = totals[0]", "del totals[0]"]
    body += _forget_lines(stream)
    body.append("del times[0]")
    if stream.of is not None:
        body.append("del tl.values[0]")
    code += ["    " + line for line in body]
    return [pad + line for line in code]


def _forget_lines(stream: Stream) -> list[str]:
    """Take the oldest entry out of the tally and the ranks, and drop its weight, as
    `Timeline._forget` and `fold_through` do (a `Tally` as `Tally.take` does)."""
    shape = stream.shape
    code: list[str] = []
    if not shape & (TALLY | RANKED | WEIGHTS):
        return code
    code.append("gone = tl.values[0]")
    if shape & WEIGHTS:
        code += ["weights = tl.weights", "less = weights[0]", "del weights[0]"]
    else:
        code.append("less = 1")
    if shape & TALLY and shape & VALUE_BITS == VALUES_HOUR:  # 24 counters
        code.append("tl.tally[gone] -= less")
    elif shape & TALLY:
        code += [
            "tally = tl.tally",
            "held = tally.get(gone, 0)",
            "if held - less:",
            "    tally[gone] = held - less",
            "else:",
            "    tally.pop(gone, None)",
            "if type(tally) is Tally:",
            "    tally.total -= less",
            "    if held == tally.top:",
            "        tally.top = -1",
        ]
    if shape & RANKED:
        code += ["ranked = tl.ranked", "del ranked[bisect_left(ranked, gone)]"]
    return code


def _value_line(stream: Stream) -> str:
    """The entry's value: its field's local, or for `hour_share` the local hour it is
    filed at (the feedback's own time for a `referenced` stream, like every entry's time)."""
    if stream.of == HOUR:
        return f"    value = (t // {HOUR_MS} + utc_offset) % 24"
    return f"    value = v_{stream.of}" if stream.of is not None else "    value = None"


def _observe_lines(state: StateLayout, event_type: str) -> list[str]:
    """`WatchedHistory.observe` for an event of `event_type`, from the value locals: the
    watch starts with the first activity event; a `register` dates its account; from the
    watch start on, each tracked entity keeps its earliest time."""
    watch = state.watch
    code = [comment("watched history (features.watch)"), "ws = watch.start"]
    if event_type not in CONTEXT_TYPES:
        code += ["if ws is None:", "    ws = watch.start = t"]
    if event_type == "register":
        code += [
            "if v_user is not None:",
            "    registered = watch.registered",
            "    born = registered.get(v_user)",
            "    if born is None or t > born:",
            "        registered[v_user] = t",
        ]
    if not watch.kinds:
        return code
    code += [
        "if ws is not None and t >= ws:",
        "    since = watch.since",
        "    lasts = watch.last",
    ]
    for index, kind in enumerate(watch.kinds):
        code += [
            f"    if v_{kind} is not None:",
            f"        seen = since[{index}]",
            f"        first = seen.get(v_{kind})",
            "        if first is None or t < first:",
            f"            seen[v_{kind}] = t",
            f"        last = lasts[{index}]",
            f"        if last.get(v_{kind}, t) <= t:",
            f"            last[v_{kind}] = t",
        ]
    return code


# -- snapshots ---------------------------------------------------------------------------


def reading_source(
    state: StateLayout,
    by_kind: dict[int, dict[int, list[Feature]]],
    watched: list[Feature],
    namespace: dict[str, Any],
) -> str:
    """The snapshot code of one plan: each wanted entity looked up once, then each wanted
    stream's features with their windows baked in; then the watched-history checks."""
    namespace.update(
        Tally=Tally,
        bisect_right=bisect_right,
        source_network=source_network,
        watch=state.watch,
    )
    features = [f for streams in by_kind.values() for fs in streams.values() for f in fs]
    values: list[str] = []
    for kind, streams in by_kind.items():
        values += state.kinds[kind].by.split("+")
        for idx, fs in streams.items():
            of = state.streams[idx].of
            if of is not None and any(f.how == "is_new" for f in fs):
                values.append(of)
    values += [_watched_by(f) for f in watched if _watched_by(f) != WATCH_ALL]
    lines = ["def read(entities, event, out):", "    t = event.ts"]
    lines += ["    " + line for line in value_lines(_unique(values), "event")]
    lines += ["    " + line for line in window_start_lines(features)]
    if any(f.how == "hour_share" for f in features):  # this event's local hour, once
        lines += [
            f"    hour = (t // {HOUR_MS} + {state.utc_offset_hours}) % 24",
            "    hour_up, hour_down = (hour + 1) % 24, (hour - 1) % 24",
        ]
    if watched or any(f.how in ("is_new", "age") for f in features):
        lines += ["    ws = watch.start", "    since = watch.since"]
        lines.append("    registered = watch.registered")
    for kind, streams in by_kind.items():
        lines += ["    " + line for line in _kind_lines(state, kind, streams)]
        lines += ["    " + line for line in _watch_lines(state, kind, streams)]
    lines += ["    " + line for line in _watched_lines(state, watched)]
    if len(lines) == 2:
        lines.append("    pass")
    return "\n".join(lines) + "\n"


def window_start_lines(features: Iterable[Feature]) -> list[str]:
    """Each window's start `t_<W> = t - W`, once per snapshot: the features read it
    (about a hundred times a payment) as a local instead of subtracting again, and an
    epoch in milliseconds is a two-digit int, so each subtraction made a new object."""
    windows = sorted({f.window_ms for f in features if f.how != "age"})
    return [f"t_{w} = t - {w}" for w in windows]


def _kind_lines(state: StateLayout, kind: int, streams: dict[int, list[Feature]]) -> list[str]:
    """Look the event's entity of one kind up, then read each wanted stream's slot.
    Without a record (or a timeline) only `is_new` differs from the template; `age` is
    read with the watched-history checks (`_watch_lines`)."""
    new_ones = [(idx, f) for idx, fs in streams.items() for f in fs if f.how == "is_new"]
    by = state.kinds[kind].by
    code = [
        comment(f"entity by {by}"),
        f"key = {key_expr(by)}",
        f"record = entities[{kind}].get(key) if key is not None else None",
        "if record is None:",
        *(
            f"    out[{f.name!r}] = key is not None and v_{state.streams[idx].of} is not None"
            for idx, f in new_ones
        ),
        "    pass",
        "else:",
    ]
    for idx, features in streams.items():
        timed = [f for f in features if f.how != "age"]
        if not timed:
            continue
        stream = state.streams[idx]
        code += [
            f"    tl = record[{stream.slot}]  "
            + comment(f"stream {idx}: [{', '.join(stream.filter.types)}] of {stream.of}"),
            "    if tl is None:",
            *(
                f"        out[{f.name!r}] = v_{stream.of} is not None"
                for f in timed
                if f.how == "is_new"
            ),
            "        pass",
            "    else:",
            *("        " + line for line in _reading_lines(stream, timed)),
        ]
    code.append("    pass")
    return code


def _reading_lines(stream: Stream, timed: list[Feature]) -> list[str]:
    """The code reading one stream's features (no `age`) from its timeline `tl` as of t.

    Each aggregate is a couple of bisects over the sorted raw times. Events mostly arrive
    in time order, so the upper bound is usually the whole raw head and its bisect is
    skipped (`t >= ts[-1]`); and a window reaching back to the raw head's start usually
    starts before its first entry (`ts[0]`), so its lower bisect is skipped too. Each
    bisect step reads an int object elsewhere in memory, and those cache misses are most
    of a read's cost. Features over the folded past too (`Feature.folded`) are read even
    when the raw head is empty. With nothing filed the template's values stand, except
    is_new. `n` (the raw entries) is kept only for the aggregates that compare a window
    with it."""
    raw = [f for f in timed if not f.folded]
    folded = [f for f in timed if f.folded]
    head = [
        "ts = tl.ts",
        "n = 0 if ts is None else len(ts)",
        "hi = n if not n or t >= ts[-1] else bisect_right(ts, t)",
    ]
    if len(timed) == 1 and folded and folded[0].how == "is_new":
        # alone, `is_new` finds the raw head only when the folded past does not answer
        f = folded[0]
        return [
            comment(f"feature {f.name} (raw head and folded past)"),
            *_folded_lines(f, stream, head),
        ]
    if folded:
        code = list(head)
        for f in folded:
            code.append(comment(f"feature {f.name} (raw head and folded past)"))
            code += _folded_lines(f, stream)
        if raw:
            code.append("if hi:")
            for f in raw:
                code.append("    " + comment(f"feature {f.name}"))
                code += ["    " + line for line in _aggregate_lines(f, stream)]
        return code
    counted = any(f.how not in ("count", "sum", "minutes_since", "seconds_since") for f in raw)
    code = [
        "ts = tl.ts",
        "if ts:",
        *(
            ["    n = len(ts)", "    hi = n if t >= ts[-1] else bisect_right(ts, t)"]
            if counted
            else ["    hi = len(ts) if t >= ts[-1] else bisect_right(ts, t)"]
        ),
    ]
    for f in raw:
        code.append("    " + comment(f"feature {f.name}"))
        code += ["    " + line for line in _aggregate_lines(f, stream)]
    new_ones = [f for f in raw if f.how == "is_new"]
    if new_ones:
        code.append("else:")
        code += [f"    out[{f.name!r}] = v_{stream.of} is not None" for f in new_ones]
    return code


def _folded_lines(f: Feature, stream: Stream, head: list[str] | None = None) -> list[str]:
    """One feature over the raw head and the folded past (`n`, `hi` set, `hi` may be 0;
    for `is_new`, `head` sets them where it needs them): exact, because every entry later
    than t is still raw (features.timeline)."""
    w, name = f.window_ms, repr(f.name)
    lo = f"lo = 0 if not hi or ts[0] > t_{w} else bisect_right(ts, t_{w}, 0, hi)"
    window = "(tl.values if lo == 0 and hi == n else tl.values[lo:hi])"
    if f.how == "is_new":
        return [
            f"current = v_{stream.of}",
            "if current is None:",
            f"    out[{name}] = False",
            f"elif (past := tl.past) is not None and past.get(current, t_{w}) > t_{w}:",
            f"    out[{name}] = False",
            "else:",
            *("    " + line for line in head or ()),
            f"    {lo}",
            f"    out[{name}] = not hi or current not in {window}",
        ]
    if f.how == "distinct":  # no folded past (the usual small window): no call
        return [
            lo,
            "if tl.past:",
            f"    out[{name}] = tl.distinct_since(lo, hi, t_{w})",
            "elif hi - lo < 2:",
            f"    out[{name}] = 1 if hi > lo else 0",
            "else:",
            f"    out[{name}] = len(set(tl.values[lo:hi]))",
        ]
    unit = MINUTE_MS if f.how == "minutes_since" else 1_000
    return [
        "last = ts[hi - 1] if hi else tl.folded_last",
        f"if last is not None and t_{w} < last <= t:",
        f"    out[{name}] = (t - last) // {unit}",
    ]


def _aggregate_lines(f: Feature, stream: Stream) -> list[str]:
    """One raw feature of a non-empty raw head; `n`, `hi` (entries at or before t) are set."""
    w, name = f.window_ms, repr(f.name)
    lo = f"bisect_right(ts, t_{w}, 0, hi)"
    lo = f"0 if ts[0] > t_{w} else {lo}" if f.longest else lo
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
    if f.how == "distinct" and stream.tallies and stream.of != HOUR:
        return [  # the head's tally holds each of its values once (weights are > 0)
            f"lo = {lo}",
            "tally = tl.tally",
            f"out[{name}] = len(tally) if lo == 0 and hi == n and tally is not None"
            " else tl.distinct_tallied(lo, hi)",
        ]
    if f.how == "distinct":
        return [f"lo = {lo}", f"out[{name}] = len(set{window})"]
    if f.how == "is_new":
        return [
            f"current = v_{stream.of}",
            "if current is None:",
            f"    out[{name}] = False",
            "else:",
            f"    lo = {lo}",
            f"    out[{name}] = current not in {window}",
        ]
    if f.how in ("quantile", "hour_share", "top_share"):
        return _behaviour_lines(f, lo, stream)
    unit = MINUTE_MS if f.how == "minutes_since" else 1_000
    return [f"if hi and ts[hi - 1] > t_{w}:", f"    out[{name}] = (t - ts[hi - 1]) // {unit}"]


def _behaviour_lines(f: Feature, lo: str, stream: Stream) -> list[str]:
    """A quantile, hour share or top share of a non-empty window (0 if it is empty), read
    from `ranked` / `tally` inline when the window is every entry (a top share from the
    `Tally`'s kept total and heaviest weight, features.timeline)."""
    name = repr(f.name)
    code = [f"lo = {lo}", "if hi > lo:"]
    if f.how == "quantile":
        num, den = f.rank
        return [
            *code,
            "    ranked = tl.ranked",
            "    if ranked is not None and lo == 0 and hi == n:",
            f"        out[{name}] = ranked[-(-{num} * n // {den}) - 1]",
            "    else:",
            f"        out[{name}] = tl.quantile(lo, hi, {num}, {den})",
        ]
    if f.how == "hour_share":
        return [
            *code,
            "    tally = tl.tally  # 24 counters (features.timeline)",
            "    if tally is not None and lo == 0 and hi == n:",
            "        near = tally[hour] + tally[hour_up] + tally[hour_down]",
            f"        out[{name}] = near * 1000 // n",
            "    else:",
            f"        out[{name}] = tl.hour_share(lo, hi, hour)",
        ]
    if stream.of == HOUR:  # its tally is 24 counters
        return [*code, f"    out[{name}] = tl.top_share(lo, hi)"]
    return [
        *code,
        "    tally = tl.tally",
        "    if tally is not None and lo == 0 and hi == n:  # the head's tally: no copy",
        "        if type(tally) is not Tally:  # decoded from a snapshot: keep it from now",
        "            tally = tl.tally = Tally.of(tally)",
        "        top = tally.top",
        "        if top < 0:  # the heaviest value lost weight since",
        "            top = tally.find_top()",
        "        total = tally.total",
        f"        out[{name}] = top * 1000 // total if total > 0 else 0",
        "    else:",
        f"        out[{name}] = tl.top_share(lo, hi)",
    ]


def _watch_lines(state: StateLayout, kind: int, streams: dict[int, list[Feature]]) -> list[str]:
    """After a kind's features are read: `is_new` that payguard has not watched the
    entity long enough to know reads false, and `age` is exact when known, else at least
    the learning period (features.watch, whose `knows_new` and `age` this inlines).
    `record` is the entity's record or None; `c` the key's first component."""
    watched = [(idx, f) for idx, fs in streams.items() for f in fs if f.how in ("is_new", "age")]
    if not watched:
        return []
    watch = state.watch
    by = state.kinds[kind].by
    component = by.split("+")[0]
    ci, pair = watch.index(component), "+" in by
    account = component == ACCOUNT
    learning = watch.learning_ms
    code = [comment(f"watched history of {component} (features.watch)"), f"c = v_{component}"]
    for idx, f in watched:
        if f.how == "age":
            code += _age_lines(f, state.streams[idx].slot, ci, pair, account, learning)
    new_ones = [f for _, f in watched if f.how == "is_new"]
    if not new_ones:
        return code
    code += [
        f"if {' or '.join(f'out[{f.name!r}]' for f in new_ones)}:",
        "    if ws is None:",
        *(f"        out[{f.name!r}] = False" for f in new_ones),
        "    else:",
        "        span = t - ws",
        "        born = c is not None and registered.get(c, -1) >= ws"
        if account
        else "        born = False",
        f"        first = since[{ci}].get(c) if c is not None else None",
        "        watched = -1 if first is None else t - first",
    ]
    for f in new_ones:
        window, least = f.window_ms, min(f.window_ms, learning)
        code += [
            f"        if out[{f.name!r}] and not"
            f" (span >= {window} or born or (first is not None and watched >= {least})):",
            f"            out[{f.name!r}] = False",
        ]
    return code


def _age_lines(
    f: Feature, slot: int, ci: int, pair: bool, account: bool, learning: int
) -> list[str]:
    """`WatchedHistory.age`: minutes since the entity first appeared (0 if not yet),
    exact when known, else at least the learning period."""
    if account and not pair:
        known = "c in registered"
    elif account:
        known = (
            f"(registered.get(c, -1) >= ws or ((s := since[{ci}].get(c)) is not None"
            f" and appeared - s >= {learning}))"
        )
    elif pair:
        known = f"(s := since[{ci}].get(c)) is not None and appeared - s >= {learning}"
    else:
        known = f"appeared - ws >= {learning}"
    name = repr(f.name)
    return [
        comment(f"feature {f.name}"),
        f"tl = record[{slot}] if record is not None else None",
        "first = None if tl is None else tl.first_ts",
        "if first is None or first > t:",
        "    observed, appeared = 0, t",
        "else:",
        f"    observed, appeared = (t - first) // {MINUTE_MS}, first",
        f"if ws is not None and c is not None and {known}:",
        f"    out[{name}] = observed",
        "else:",
        f"    out[{name}] = max(observed, {learning // MINUTE_MS})",
    ]


def _watched_by(f: Feature) -> str:
    return f.name.removeprefix("watched_minutes_by_")


def _watched_lines(state: StateLayout, watched: list[Feature]) -> list[str]:
    """`watched_minutes_by_<kind>`: minutes since payguard first saw the entity (since
    the watch start for `by: all`), 0 when it has not."""
    code = []
    for f in watched:
        kind = _watched_by(f)
        name = repr(f.name)
        code.append(comment(f"feature {f.name}"))
        if kind == WATCH_ALL:
            code.append(f"out[{name}] = 0 if ws is None or ws > t else (t - ws) // {MINUTE_MS}")
            continue
        ci = state.watch.index(kind)
        code += [
            f"first = since[{ci}].get(v_{kind}) if v_{kind} is not None else None",
            f"out[{name}] = 0 if first is None or first > t else (t - first) // {MINUTE_MS}",
        ]
    return code
