"""The expiry sweep in slices: a bounded amount of work per event, never a whole pass.

Why: the feature state's whole sweep (`FeatureState.sweep`) visits every entity of every
kind, then the watched history and the phone links, in one call. On a 20,000-customer ×
90-day state that is 1.3 s of CPU (7 s of wall time under load, issue 16), and the engine
ran it on the event loop every `SWEEP_EVERY` events. A `SweepRound` does the same work in
slices: `begin` fixes what a whole sweep at that moment would use (the fold base, the
forget horizon, the watch start) and a budget per slice; each `step` then spends about
that much work, resuming where the previous step stopped.

Work, not entries (issue 16): a busy merchant's record (eight streams of 15-17k raw
entries and 11-12k folded values) took 5-30 ms of CPU in one slice when a slice counted
entities. A step counts 1 per key and per timeline plus the entries it folds and the
folded values it scans, and pauses inside an entity: before a timeline, or after a part
(`FOLD_PART` or more entries or values) of a long fold or of a large folded past
(`state._fold_part`, `_forget_part`), resuming there (`slot`, `offset`, in the snapshot).
Exact: folding a prefix then the rest is folding the whole, and a part of the forgetting
deletes only what the timeline's whole `forget_past`, which still runs last, deletes. The
budget is the previous round's work over the round's events (`FeatureState.sweep_work`),
the entries alone for the first round after a start.

What each entry goes through is the whole sweep's own code (`sweep_record`,
`WatchedHistory`'s and the phone links' tests), in the whole sweep's order: entity kinds,
then the watched history of each tracked kind, then account registrations (whose test
reads the accounts still tracked), then phone links. So a round that runs with no event
in between leaves exactly the state a whole sweep at `begin` leaves (property test in
tests/features/test_sweep_slices.py). With events in between, an entity filed again
before its slice is judged on its newer entries, as a whole sweep run a little later
would judge it.

Determinism: the work is keyed to the event sequence (`begin` and `step` are called at
fixed sequence numbers by the engine), each pass visits its dictionary's keys in
insertion order as they were when the pass started, and the round in flight, with the
keys it has still to visit, is part of the snapshot (`export`/`restore`). A restart from a
snapshot taken mid-round therefore sweeps exactly what the uninterrupted process sweeps.

Feature values do not depend on when a slice reaches an entity (the reads compare times:
folding moves entries into the folded past without changing any answer, and dropping
what is older than every window removes nothing a window reaches); the one exception is
the catalog's `memory` (365 days by default), after which an idle entity is forgotten and
is new again if it returns: forgotten by the slice that reaches it, at most one round
(`SWEEP_EVERY` events) later than a whole sweep at the round's start would have.
"""

from collections.abc import Callable
from itertools import islice
from typing import Any, Protocol

from payguard.features.watch import WatchedHistory
from payguard.types import EpochMs


class FeatureState(Protocol):
    """What a sweep round reads of `features.state.FeatureState` (named here, not
    imported: the state module builds its rounds from this one, and the two would
    otherwise be an import loop)."""

    entities: list[dict[str, Any]]
    watch: WatchedHistory
    watermark: EpochMs
    lateness_ms: int
    memory_ms: int
    sweep_orders: dict[tuple[int, int], list[Any]]
    sweep_work: int
    _sweep: "SweepRound | None"

    def phone_links(self) -> tuple[dict[str, list[str]], dict[str, EpochMs]]: ...

    def sweep_entity_of(
        self, kind: int, base: EpochMs, forget_before: EpochMs, watch_start: EpochMs
    ) -> Callable[..., tuple[bool, int, int, int]]: ...


MIN_SLICE = 16
"""Entries a slice visits at least (a tiny state then finishes its round in a few events)."""

ENTITIES, WATCH, REGISTERED, PHONES = 0, 1, 2, 3
"""What a pass visits: one entity kind's records, one tracked kind's watch times, the
account registrations, the phone links."""


class SweepRound:
    """One sweep round in flight: its fixed horizons, its budget per step, the passes
    still to run and the keys the current pass has still to visit."""

    def __init__(
        self,
        base: EpochMs,
        forget_before: EpochMs,
        watch_start: EpochMs,
        budget: int,
        passes: list[tuple[int, int]],
        keys: list[Any] | None = None,
        slot: int = 0,
        work: int = 0,
        offset: int = 0,
    ) -> None:
        self.base = base
        """The watermark minus the lateness at `begin`: raw heads fold up to it."""
        self.forget_before = forget_before
        """Entities last seen at or before it leave memory (-1: nothing watched that long)."""
        self.watch_start = watch_start
        self.budget = budget
        """Units of work per `step` (`step`)."""
        self.passes = passes
        """(what, index) of the passes still to run, the current one first."""
        self.keys = keys
        """The current pass's keys (None: not started yet); `pos` of them visited."""
        self.pos = 0
        self.slot = slot
        """The slot of `keys[pos]` to resume at (0 also when the entity is not begun)."""
        self.work = work
        self.offset = offset
        """Where that slot's folded past is to be scanned on from (`sweep_entity_of`)."""
        """Units of work spent so far (`step`): the next round's estimate of the whole."""
        self.visit: Callable[..., tuple[bool, int, int, int]] | None = None
        """The current entity pass's `sweep_entity_of` (not in the snapshot)."""
        self.visiting: dict[Any, Any] | None = None
        """The table `visit` was made for."""
        self.kept: list[Any] | None = None
        """The keys this pass visited and kept, in order: the next pass's list
        (`_keys`); None in a pass resumed from a snapshot (the next one then copies its
        table's keys)."""

    @classmethod
    def begin(cls, state: "FeatureState", events: int) -> "SweepRound":
        """A round of `state` that visits every entry within about `events` steps."""
        base = state.watermark - state.lateness_ms
        start = state.watch.start
        forget_before = base - state.memory_ms
        if start is None or forget_before < start:
            forget_before = -1  # nothing watched that long yet; back-filled history stays
        total = sum(len(entities) for entities in state.entities)
        total += sum(len(last) for last in state.watch.last)
        total += len(state.watch.registered) + len(state.phone_links()[1])
        total = max(total, state.sweep_work)  # what the last round spent: folded values too
        budget = max(MIN_SLICE, -(-total // max(1, events)))
        passes = _passes(state)
        return cls(base, forget_before, start if start is not None else 0, budget, passes)

    def step(self, state: "FeatureState", budget: int | None = None) -> bool:
        """Spend at most about `budget` (default: the round's) units of work: an entry
        of the watch and phone passes is one, an entity what `sweep_entity_of` counts
        (a huge one is swept in parts, a timeline at a time); whether the round has
        more to do."""
        left = self.budget if budget is None else budget
        while self.passes and left > 0:
            what, index = self.passes[0]
            if self.keys is None:
                self.keys, self.pos = self._keys(state, what, index), 0
                self.slot = self.offset = 0
                self.kept = []
            if what == ENTITIES:
                left = self._entities(state, index, left)
            else:
                left = self._entries(state, what, index, left)
            if self.pos == len(self.keys):
                if self.kept is not None:
                    state.sweep_orders[(what, index)] = self.kept
                self.passes.pop(0)
                self.keys = self.kept = self.visit = None
        if not self.passes:
            state.sweep_work = self.work
        return bool(self.passes)

    def _entries(self, state: "FeatureState", what: int, index: int, left: int) -> int:
        """Visit up to `left` keys of a watch or phone pass (one unit each); what is left."""
        keys, pos, kept = self.keys or [], self.pos, self.kept
        end = min(pos + left, len(keys))
        visit = self._visitor(state, what, index)
        if kept is None:
            for key in keys[pos:end]:
                visit(key)
        else:
            kept.extend([key for key in keys[pos:end] if visit(key)])
        self.pos = end
        self.work += end - pos
        return left - (end - pos)

    def _entities(self, state: "FeatureState", index: int, left: int) -> int:
        """Sweep entities of kind `index` until `left` units are spent, pausing inside an
        entity if need be (`slot`); what is left."""
        keys, pos, kept = self.keys or [], self.pos, self.kept
        sweep = self.visit
        if sweep is None or self.visiting is not state.entities[index]:
            # made once a pass (not per slice: a round has ~25,000), again if the table
            # was replaced (`adopt`)
            sweep = self.visit = state.sweep_entity_of(
                index, self.base, self.forget_before, self.watch_start
            )
            self.visiting = state.entities[index]
        while pos < len(keys) and left > 0:
            key = keys[pos]
            there, slot, used, self.offset = sweep(key, self.slot, left, self.offset)
            left -= used
            self.work += used
            if slot >= 0:
                self.slot = slot
                break
            self.slot = 0
            if there and kept is not None:
                kept.append(key)
            pos += 1
        self.pos = pos
        return left

    @classmethod
    def _keys(cls, state: "FeatureState", what: int, index: int) -> list[Any]:
        """The keys a pass visits: its dictionary's, in insertion order. Copying 671,000
        keys at once took 11-14 ms (20k × 90 days, the largest entity kind), so they are
        the survivors of the previous pass over it, in the order visited, followed by
        the keys added since, which insertion order puts last: the same list, built from
        the few new keys only. Valid because only the sweep deletes from these tables
        (the whole sweep, a restore and `adopt` drop the kept orders)."""
        table = cls._table(state, what, index)
        known = state.sweep_orders.pop((what, index), None)
        if known is None or len(known) > len(table):
            return list(table)
        added = len(table) - len(known)
        if added:
            known.extend(reversed(list(islice(reversed(table), added))))
        return known

    @classmethod
    def orders(cls, state: "FeatureState") -> dict[tuple[int, int], list[Any]]:
        """Every pass's keys as they stand, for `FeatureState.sweep_orders` after a restore
        (off the request path): without them the first round after a restart copies
        each table in one slice (up to 30 ms of CPU at 20k × 90 days)."""
        orders = {p: list(cls._table(state, *p)) for p in _passes(state)}
        sweep = state._sweep
        if sweep is not None and sweep.keys is not None:  # a pass resumed: it deletes
            orders.pop(sweep.passes[0], None)
        return orders

    @staticmethod
    def _table(state: "FeatureState", what: int, index: int) -> dict[Any, Any]:
        """The dictionary a pass visits."""
        if what == ENTITIES:
            return state.entities[index]
        if what == WATCH:
            return state.watch.last[index]
        if what == REGISTERED:
            return state.watch.registered
        return state.phone_links()[1]

    def _visitor(self, state: "FeatureState", what: int, index: int) -> Callable[[Any], bool]:
        """What a watch or phone pass does with one key; whether the key is still there
        afterwards (a key no longer present is passed over). Entities: `_entities`."""
        before = self.forget_before
        watch = state.watch
        if what == WATCH:
            last, since = watch.last[index], watch.since[index]

            def forget_watched(key: Any) -> bool:
                ts = last.get(key)
                if ts is None:
                    return False
                if ts <= before:
                    del last[key]
                    since.pop(key, None)
                    return False
                return True

            return forget_watched
        if what == REGISTERED:
            registered = watch.registered
            active = watch.last[watch.account] if watch.account >= 0 else None

            def forget_registered(user: Any) -> bool:
                ts = registered.get(user)
                if ts is None:
                    return False
                if active is not None and ts <= before and user not in active:
                    del registered[user]
                    return False
                return True

            return forget_registered
        phone_users, linked = state.phone_links()
        start = self.watch_start

        def forget_phone(phone: Any) -> bool:
            ts = linked.get(phone)
            if ts is None:
                return False
            if start <= ts <= before:
                del linked[phone]
                phone_users.pop(phone, None)
                return False
            return True

        return forget_phone

    def export(self) -> dict[str, Any]:
        """The round as plain values, for the snapshot."""
        return {
            "base": self.base,
            "forget_before": self.forget_before,
            "watch_start": self.watch_start,
            "budget": self.budget,
            "passes": [list(p) for p in self.passes],
            "keys": None if self.keys is None else self.keys[self.pos :],
            "slot": self.slot,
            "work": self.work,
            "offset": self.offset,
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> "SweepRound":
        """The round `export` wrote."""
        return cls(
            data["base"],
            data["forget_before"],
            data["watch_start"],
            data["budget"],
            [(int(what), int(index)) for what, index in data["passes"]],
            None if data["keys"] is None else list(data["keys"]),
            int(data.get("slot", 0)),
            int(data.get("work", 0)),
            int(data.get("offset", 0)),
        )


def _passes(state: "FeatureState") -> list[tuple[int, int]]:
    """A round's passes, in the whole sweep's order."""
    passes = [(ENTITIES, k) for k in range(len(state.entities))]
    passes += [(WATCH, k) for k in range(len(state.watch.last))]
    return [*passes, (REGISTERED, 0), (PHONES, 0)]
