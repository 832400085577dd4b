"""Incremental matching of attack-chain patterns, point in time.

State per (pattern, partition key): for each step k, the open partial matches that have
reached step k, as (start time, last step's time, matched event ids). A new event extends
every partial it can (step k-1 → k) and may start a new one (step 1). Of two partials at
the same step, one that started no earlier and whose last step is no earlier is at least
as good in every future (it stays inside the time bound longer and meets every gap the
other meets), so only the non-dominated ones are kept: in time order that is one per step,
and never more than `max_partials` (the earliest-started are dropped first).

`read` (and `snapshot`, its features alone) reads the state as of an event without
changing it (the event itself is not yet in it), plus `completes`: whether this event
would take a match to the emitting step, and returns the matches it found.
`update` then files the event. A `not_followed_by` event kills every match in its
partition (all of them started before it) and never takes part in a step itself.

Conditions run as Python where the translation from CEL is exact for the variable types
the caller declares (`cel.predicate`), and through CEL otherwise; a Python
condition that raises is re-run through CEL, so the result is always CEL's.
"""

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import msgspec

from payguard.cel import Predicate, predicate
from payguard.cel.extension import cel
from payguard.chains.pattern import ChainPattern, StepCondition
from payguard.events import Event
from payguard.features import NEVER
from payguard.features.spec import ENTITY_EXTRACTORS
from payguard.features.state import link_phone
from payguard.types import MINUTE_MS, EpochMs

FORMAT = 1

Partial = tuple[EpochMs, EpochMs, tuple[str, ...]]
"""(start, last, event ids) of one open (or complete) match."""
Fronts = list[list[Partial]]
"""Per step (index k-1), the non-dominated partial matches that reached step k."""
StepHits = tuple[tuple[int, ...], bool]
"""For one pattern and one event: the steps it satisfies (1-based), and whether it is a
`not_followed_by` event."""
Variables = Mapping[str, Any] | Callable[[], Mapping[str, Any]]
"""The values the conditions read, or a function that builds them: it is called at most
once per event, and only when some condition has to be evaluated."""
Checks = tuple[tuple[Predicate | None, ...], Predicate | None]
_Reading = tuple[int, tuple[str, ...], dict[str, Any]]
"""A pattern's conditions as Python (per step, and the negation); None: CEL only."""


class ChainMatch(msgspec.Struct, frozen=True):
    """One chain as a `read` saw it, for the decision's reasons."""

    chain: str
    step: int
    started_ts: EpochMs
    event_ids: tuple[str, ...]
    completes: bool
    """True when the current event is the last id: it would take the match to the
    emitting step (`chain_<name>_completes`)."""


class ChainMatcher:
    """Every configured pattern over every partition; names, snapshot, update, export."""

    def __init__(
        self,
        patterns: tuple[ChainPattern, ...],
        lateness_ms: int = 10 * MINUTE_MS,
        max_partials: int = 4,
        sweep_every: int = 50_000,
        types: Mapping[str, str] | None = None,
        accounts_of: Callable[[Event], Sequence[str]] | None = None,
    ) -> None:
        """`types` maps variable names to CEL types (`int`, `string?`, … as in
        `cel.translate`); conditions over typed variables then run as Python.

        `accounts_of` gives the accounts a carrier signal (a phone, no account) concerns:
        the engine passes `FeatureState.accounts_of`, so the phone → account links have one
        owner, filed, snapshotted and restored with the feature state. Without it (a
        matcher on its own: tests, benchmarks) the matcher keeps the links itself."""
        self.patterns = patterns
        self.lateness_ms = lateness_ms
        self.max_partials = max_partials
        self.sweep_every = sweep_every
        self.parts: list[dict[str, Fronts]] = [{} for _ in patterns]
        self.watermark: EpochMs = 0
        self.errors = 0
        """Condition evaluations that raised (counted as not satisfied)."""
        self._phone_users: dict[str, list[str]] = {}
        """The links kept here only when no `accounts_of` is given (empty otherwise)."""
        self._owns_links = accounts_of is None
        self._accounts_of: Callable[[Event], Sequence[str]] = accounts_of or self._own_accounts
        self._by_type: dict[str, _TypeInfo] = {}
        self._cached: tuple[Event, list[StepHits]] | None = None
        self._event_keys: tuple[Event, list[list[str]]] | None = None
        self._checks = [_checks(p, types) for p in patterns]
        self._reads: dict[frozenset[str] | None, tuple[_Reading, ...]] = {}
        self._nothing: list[StepHits] = [_NOTHING] * len(patterns)
        self._extract = [(ENTITY_EXTRACTORS[p.key], p.key == "user") for p in patterns]
        self._names = [p.feature_names() for p in patterns]
        self._defaults = [dict(zip(n, (False, 0, NEVER, False), strict=True)) for n in self._names]

    # -- what it provides and needs ---------------------------------------------------------

    def names(self) -> list[str]:
        return [name for p in self.patterns for name in p.feature_names()]

    def variables_for(self, event_type: str) -> frozenset[str]:
        """The variables the conditions that apply to this event type read: the caller
        must put them in the dict it passes (they are evaluated on every such event)."""
        return self._type_info(event_type).names

    def applies_to(self, event_type: str) -> bool:
        """Whether some step or negation applies to this type: only then can an event of
        it change a match, and only then does `update` need its variables."""
        return self._type_info(event_type).applies

    def _type_info(self, event_type: str) -> "_TypeInfo":
        info = self._by_type.get(event_type)
        if info is None:
            info = self._by_type[event_type] = _TypeInfo(self.patterns, event_type)
        return info

    # -- reading ----------------------------------------------------------------------------

    def snapshot(
        self,
        event: Event,
        variables: Variables,
        needed: AbstractSet[str] | None = None,
    ) -> dict[str, Any]:
        """Chain features as of this event (see `read`), without the matches."""
        return self.read(event, variables, needed)[0]

    def read(
        self,
        event: Event,
        variables: Variables,
        needed: AbstractSet[str] | None = None,
    ) -> tuple[dict[str, Any], list[ChainMatch]]:
        """Chain features as of this event (from earlier events), plus `completes` for this
        one, and the chains found matched or completing with their events (a decision's
        reasons name them). `variables` are the flat values the rules see (or a function
        building them); `needed` limits the work and the names returned (None: every
        name). The matches are returned, not kept: nothing here outlives the call."""
        out: dict[str, Any] = {}
        matches: list[ChainMatch] = []
        if needed is not None and not needed:
            return out, matches
        reading = self._reading(needed)
        all_keys = self._all_keys(event)
        if self._quiet(event, all_keys):
            self._cached = (event, self._nothing)
            for _, _, defaults in reading:
                out.update(defaults)
            return out, matches
        outcomes = self._outcomes(event, variables)
        parts = self.parts
        for index, names, defaults in reading:
            steps = outcomes[index][0]
            keys = all_keys[index]
            if not steps and parts[index].keys().isdisjoint(keys):
                out.update(defaults)  # no state, nothing to start: the common case
                continue
            values = self._read(index, event, outcomes[index], keys, matches)
            for name in names:
                out[name] = values[name]
        return out, matches

    def _reading(self, needed: AbstractSet[str] | None) -> tuple[_Reading, ...]:
        """Per pattern that provides some of the needed names: its index, those names and
        their values when it has no match (cached per frozenset)."""
        key = needed if needed is None or isinstance(needed, frozenset) else frozenset(needed)
        found = self._reads.get(key)
        if found is None:
            found = tuple(
                (index, wanted, {n: self._defaults[index][n] for n in wanted})
                for index, names in enumerate(self._names)
                if (wanted := tuple(n for n in names if key is None or n in key))
            )
            self._reads[key] = found
        return found

    def _read(
        self,
        index: int,
        event: Event,
        outcome: StepHits,
        keys: list[str],
        matches: list[ChainMatch],
    ) -> dict[str, Any]:
        """One pattern's features for the event; its match, if any, appended to `matches`."""
        pattern = self.patterns[index]
        names = self._names[index]
        t = event.ts
        best: tuple[int, Partial] | None = None
        done: tuple[int, Partial] | None = None
        for key in keys:
            fronts = self.parts[index].get(key)
            best = _better(best, _best(fronts, t, pattern.within_ms) if fronts else None)
            if not outcome[1]:
                done = _better(done, _completion(pattern, fronts, outcome[0], event))
        matched = best is not None and best[0] >= pattern.emit_from
        if done is not None:
            matches.append(_match(pattern, done, True))
        elif best is not None and matched:
            matches.append(_match(pattern, best, False))
        return {
            names[0]: matched,
            names[1]: best[0] if best else 0,
            names[2]: max(0, t - best[1][0]) // MINUTE_MS if best else NEVER,
            names[3]: done is not None,
        }

    def _all_keys(self, event: Event) -> list[list[str]]:
        """Each pattern's partitions for the event, computed once per event (snapshot,
        conditions and update all need them): its key, or for a `user` chain and an event
        without an account, the accounts last seen with its phone."""
        cached = self._event_keys
        if cached is not None and cached[0] is event:
            return cached[1]
        keys: list[list[str]] = []
        for extract, by_phone in self._extract:
            key = extract(event)
            if key is not None:
                keys.append([key])
            elif by_phone and event.phone is not None:
                keys.append(list(self._accounts_of(event)))
            else:
                keys.append([])
        self._event_keys = (event, keys)
        return keys

    def _outcomes(self, event: Event, variables: Variables) -> list[StepHits]:
        """Evaluate each pattern's conditions on the event once (snapshot and update of the
        same event share the result). Only conditions whose result can matter are run: step
        1, steps that have a partial match at the step before, and the negation when there
        is state or a step to take; the rest cannot change any feature or any state."""
        cached = self._cached
        if cached is not None and cached[0] is event:
            return cached[1]
        info = self._type_info(event.type)
        all_keys = self._all_keys(event)
        if not info.applies or self._quiet(event, all_keys):
            self._cached = (event, self._nothing)
            return self._nothing
        results = []
        inputs: _Inputs | None = None
        for index, (applicable, negation) in enumerate(info.per_pattern):
            keys = all_keys[index]
            if not keys or not (applicable or negation):
                results.append(_NOTHING)  # no partition, or nothing of this pattern applies
                continue
            parts = self.parts[index]
            has_state = not parts.keys().isdisjoint(keys)
            if has_state:
                live = self._live(index, keys)
                relevant = [j for j in applicable if j == 1 or j in live]
            else:  # the common case: only a step 1 can matter
                relevant = [1] if 1 in applicable else []
            if not relevant and not (negation and has_state):
                results.append(_NOTHING)
                continue
            if inputs is None:
                inputs = _Inputs(variables, info.names)
            results.append(self._outcome(index, relevant, negation, inputs))
        self._cached = (event, results)
        return results

    def _quiet(self, event: Event, all_keys: list[list[str]]) -> bool:
        """No step 1 applies to the event's type and none of its partitions holds a
        partial match: then no condition can matter and every feature is its default.
        The common case, checked before any per-pattern work."""
        if self._type_info(event.type).starts:
            return False
        for parts, keys in zip(self.parts, all_keys, strict=True):
            if keys and not parts.keys().isdisjoint(keys):
                return False
        return True

    def _live(self, index: int, keys: list[str]) -> set[int]:
        """Steps that could extend a partial match in these partitions."""
        live: set[int] = set()
        parts = self.parts[index]
        for key in keys:
            fronts = parts.get(key)
            if fronts is not None:
                live.update(k + 2 for k, front in enumerate(fronts) if front)
        return live

    def _outcome(self, index: int, steps: list[int], negation: bool, inputs: "_Inputs") -> StepHits:
        pattern = self.patterns[index]
        step_checks, negation_check = self._checks[index]
        neg = pattern.negation
        if negation and neg is not None and self._holds(neg, negation_check, inputs):
            return (), True
        held = [j for j in steps if self._holds(pattern.steps[j - 1], step_checks[j - 1], inputs)]
        return tuple(held), False

    def _holds(self, condition: StepCondition, check: Predicate | None, inputs: "_Inputs") -> bool:
        if condition.program is None:
            return True
        if check is not None:
            try:
                return check(inputs.values()) is True
            except Exception:  # an error or a missing variable: CEL answers, as CEL would
                pass
        try:
            return condition.program.execute(inputs.context()) is True
        except Exception:  # CEL raises several types; a failing condition is not met
            self.errors += 1
            return False

    # -- updating ---------------------------------------------------------------------------

    def evaluate(self, event: Event, variables: Variables) -> None:
        """Settle now which steps the event takes, before anything else files it: a caller
        that passes a function building the variables from the other states (recovery,
        warm-up) must let it read them as of before the event. `update` of the same event
        reuses the result, and most events run no condition, so build nothing."""
        if self._type_info(event.type).applies:
            self._outcomes(event, variables)

    def update(self, event: Event, variables: Variables, seq: int) -> None:
        """File the event (after it was decided) with the same variables it was decided
        with; `seq` times the sweep of expired matches."""
        if self._type_info(event.type).applies:
            self._file(event, self._outcomes(event, variables))
        if self._owns_links and event.user_id is not None and event.phone is not None:
            self._link_phone(event.phone, event.user_id)
        if event.ts > self.watermark:
            self.watermark = event.ts
        self._cached = self._event_keys = None
        if seq % self.sweep_every == 0:
            self.sweep()

    def _file(self, event: Event, outcomes: list[StepHits]) -> None:
        """Kill the matches a negation ends; extend and start the others."""
        for index, (steps, negated) in enumerate(outcomes):
            if negated:
                for key in self._all_keys(event)[index]:
                    self.parts[index].pop(key, None)
            elif steps:
                for key in self._all_keys(event)[index]:
                    self._advance(index, key, steps, event)

    def _advance(self, index: int, key: str, steps: tuple[int, ...], event: Event) -> None:
        pattern = self.patterns[index]
        fronts = self.parts[index].get(key)
        if fronts is None:
            fronts = [[] for _ in pattern.steps]
        ts, eid = event.ts, event.event_id
        grown: list[tuple[int, Partial]] = []
        for step in steps:
            if step == 1:
                grown.append((1, (ts, ts, (eid,))))
                continue
            for p in fronts[step - 2]:
                if _extends(pattern, p, ts, step):
                    grown.append((step, (p[0], ts, (*p[2], eid))))
        for step, partial in grown:
            _insert(fronts[step - 1], partial, self.max_partials)
        self._evict(index, key, fronts)

    def _evict(self, index: int, key: str, fronts: Fronts) -> None:
        """Drop matches no event within the lateness can still see; forget empty keys."""
        horizon = self.watermark - self.lateness_ms - self.patterns[index].within_ms
        for front in fronts:
            if any(p[0] < horizon for p in front):
                front[:] = [p for p in front if p[0] >= horizon]
        if any(fronts):
            self.parts[index][key] = fronts
        else:
            self.parts[index].pop(key, None)

    def _own_accounts(self, event: Event) -> Sequence[str]:
        """The accounts last seen with a carrier signal's phone, from the links kept here."""
        return self._phone_users.get(event.phone, ()) if event.phone is not None else ()

    def _link_phone(self, phone: str, user: str) -> None:
        """A carrier signal carries no account: a `user` chain files it under the accounts
        last seen with its phone, kept exactly as the feature state keeps them."""
        link_phone(self._phone_users, phone, user)

    def sweep(self) -> int:
        """Evict expired matches in every partition; returns the partitions left."""
        for index, parts in enumerate(self.parts):
            for key in list(parts):
                self._evict(index, key, parts[key])
        return sum(len(parts) for parts in self.parts)

    # -- persistence ------------------------------------------------------------------------

    def export(self) -> bytes:
        """The whole state as MessagePack, tagged with the patterns it was built for."""
        return msgspec.msgpack.encode(
            {
                "format": FORMAT,
                "patterns": self._digest(),
                "parts": self.parts,
                "phone_users": self._phone_users,
                "watermark": self.watermark,
                "errors": self.errors,
            }
        )

    def restore(self, data: bytes) -> None:
        """Adopt an export taken with the same patterns."""
        body = msgspec.msgpack.decode(data)
        if body.get("format") != FORMAT or body["patterns"] != self._digest():
            raise ValueError("chain snapshot was taken with other patterns or format")
        self.parts = [
            {
                key: [[(s, e, tuple(ids)) for s, e, ids in f] for f in fronts]
                for key, fronts in p.items()
            }
            for p in body["parts"]
        ]
        if self._owns_links:
            self._phone_users = body["phone_users"]
        self.watermark = body["watermark"]
        self.errors = body["errors"]
        self._cached = self._event_keys = None

    def _digest(self) -> list[Any]:
        return [msgspec.to_builtins(p.spec) for p in self.patterns]

    def adopt(self, previous: "ChainMatcher") -> list[str]:
        """Take over a matcher's state when the patterns change (a ruleset hot reload):
        partial matches of every pattern whose spec is unchanged, the phone → account
        links and the watermark. New or changed patterns start with no partial matches;
        returns their names."""
        kept = {p.name: i for i, p in enumerate(previous.patterns)}
        fresh: list[str] = []
        for index, pattern in enumerate(self.patterns):
            old = kept.get(pattern.name)
            if old is not None and previous.patterns[old].spec == pattern.spec:
                self.parts[index] = previous.parts[old]
            else:
                fresh.append(pattern.name)
        self._phone_users = previous._phone_users
        self.watermark = previous.watermark
        self.errors = previous.errors
        self._cached = self._event_keys = None
        return fresh


_NOTHING: StepHits = ((), False)


class _Inputs:
    """One event's variables, built on first use, and the CEL context over the names its
    conditions read, built only if a condition has to run through CEL."""

    __slots__ = ("_context", "_names", "_source", "_values")

    def __init__(self, source: Variables, names: frozenset[str]) -> None:
        self._source = source
        self._names = names
        self._values: Mapping[str, Any] | None = None
        self._context: Any = None

    def values(self) -> Mapping[str, Any]:
        if self._values is None:
            source = self._source
            self._values = source() if callable(source) else source
        return self._values

    def context(self) -> Any:
        if self._context is None:
            values = self.values()
            self._context = cel.Context({n: values[n] for n in self._names if n in values})
        return self._context


def _checks(pattern: ChainPattern, types: Mapping[str, str] | None) -> Checks:
    """The pattern's conditions as Python where that is exact for `types`."""

    def compile_one(condition: StepCondition | None) -> Predicate | None:
        if types is None or condition is None or condition.text is None:
            return None
        return predicate(condition.text, types)

    return tuple(compile_one(c) for c in pattern.steps), compile_one(pattern.negation)


class _TypeInfo:
    """Per event type: the variables its conditions read, and per pattern the steps that
    apply to it and whether its negation does."""

    def __init__(self, patterns: tuple[ChainPattern, ...], event_type: str) -> None:
        self.per_pattern: list[tuple[tuple[int, ...], bool]] = []
        names: set[str] = set()
        for p in patterns:
            steps = tuple(j for j, c in enumerate(p.steps, 1) if c.applies(event_type))
            neg = p.negation is not None and p.negation.applies(event_type)
            self.per_pattern.append((steps, neg))
            names.update(*(p.steps[j - 1].variables for j in steps))
            if neg and p.negation is not None:
                names.update(p.negation.variables)
        self.names = frozenset(names)
        self.applies = any(steps or neg for steps, neg in self.per_pattern)
        self.starts = any(steps and steps[0] == 1 for steps, _ in self.per_pattern)


def _extends(pattern: ChainPattern, p: Partial, ts: EpochMs, step: int) -> bool:
    """Can an event at `ts` satisfying `step` extend partial `p` (at step - 1)?"""
    gap = pattern.gaps[step - 1]
    return ts - p[0] <= pattern.within_ms and (gap is None or ts - p[1] <= gap)


def _insert(front: list[Partial], new: Partial, cap: int) -> None:
    """Add a partial unless one as good is there; drop those it is better than."""
    start, last = new[0], new[1]
    for p in front:
        if p[0] >= start and p[1] >= last:
            return
    front[:] = [p for p in front if not (start >= p[0] and last >= p[1])]
    front.append(new)
    if len(front) > cap:
        front.remove(min(front, key=lambda p: p[0]))


def _best(fronts: Fronts, t: EpochMs, within: int) -> tuple[int, Partial] | None:
    """The furthest step an alive match reached (alive: started within the bound of t),
    and of those the latest-started."""
    for k in range(len(fronts), 0, -1):
        alive = [p for p in fronts[k - 1] if t - p[0] <= within]
        if alive:
            return k, max(alive, key=lambda p: p[0])
    return None


def _completion(
    pattern: ChainPattern, fronts: Fronts | None, steps: tuple[int, ...], event: Event
) -> tuple[int, Partial] | None:
    """The furthest emitting step this event would take a match to, if any."""
    ts, eid = event.ts, event.event_id
    for step in sorted(steps, reverse=True):
        if step < pattern.emit_from:
            break
        if step == 1:
            return 1, (ts, ts, (eid,))
        candidates = [
            p for p in (fronts[step - 2] if fronts else ()) if _extends(pattern, p, ts, step)
        ]
        if candidates:
            p = max(candidates, key=lambda p: p[0])
            return step, (p[0], ts, (*p[2], eid))
    return None


def _better(
    a: tuple[int, Partial] | None, b: tuple[int, Partial] | None
) -> tuple[int, Partial] | None:
    """The further step, then the later start (the same order `_best` uses)."""
    if a is None:
        return b
    if b is None:
        return a
    return b if (b[0], b[1][0]) > (a[0], a[1][0]) else a


def _match(pattern: ChainPattern, found: tuple[int, Partial], completes: bool) -> ChainMatch:
    step, (start, _, ids) = found
    return ChainMatch(pattern.name, step, start, ids, completes)
