"""Brute-force twin of `ChainMatcher`: keeps the whole log and, for every event, enumerates
every assignment of earlier events to steps.

A sequence of events e1 < e2 < … < ek (arrival order, all in one partition) is a match
reaching step k when each ej satisfies step j and is not a `not_followed_by` event, each
ej (j ≥ 2) is within the total bound of e1 and within step j's max gap of e(j-1), and no
`not_followed_by` event of the partition arrived after e1. At time t it is alive when
t − ts(e1) ≤ within. Conditions are compiled here straight from the pattern text.
"""

from collections.abc import Iterator
from typing import Any

import cel

from payguard.chains import ChainSpec
from payguard.events import Event
from payguard.features import NEVER, parse_duration

MINUTE = 60_000
Entry = tuple[Event, tuple[int, ...], bool]
"""(event, steps it satisfies, is a `not_followed_by` event) for one pattern."""


class Sequence:
    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    @property
    def start(self) -> int:
        return self.entries[0][0].ts

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e[0].event_id for e in self.entries)


class ChainReference:
    def __init__(self, specs: list[ChainSpec]) -> None:
        self.specs = specs
        self.logs: list[list[tuple[Entry, list[str]]]] = [[] for _ in specs]
        self.phone_users: dict[str, list[str]] = {}

    def keys(self, spec: ChainSpec, e: Event) -> list[str]:
        value = {"user": e.user_id, "device": e.device_id, "phone": e.phone}[spec.key]
        if value is not None:
            return [value]
        if spec.key == "user" and e.phone is not None:
            return list(self.phone_users.get(e.phone, []))
        return []

    def outcome(self, spec: ChainSpec, e: Event, variables: dict[str, Any]) -> Entry:
        def holds(events: list[str] | None, when: str | None) -> bool:
            if events is not None and e.type not in events:
                return False
            return when is None or cel.compile(when).execute(cel.Context(variables)) is True

        neg = spec.not_followed_by
        if neg is not None and holds(neg.events, neg.when):
            return e, (), True
        steps = tuple(i for i, s in enumerate(spec.steps, 1) if holds(s.events, s.when))
        return e, steps, False

    def sequences(self, index: int, key: str) -> Iterator[Sequence]:
        """Every valid sequence (of any length ≥ 1) in the partition so far."""
        spec = self.specs[index]
        log = [entry for entry, keys in self.logs[index] if key in keys]
        last_kill = max((i for i, (_, _, neg) in enumerate(log) if neg), default=-1)
        within = parse_duration(spec.within)
        gaps = [parse_duration(s.max_gap) if s.max_gap else None for s in spec.steps]

        def grow(chosen: list[Entry], after: int) -> Iterator[Sequence]:
            yield Sequence(list(chosen))
            step = len(chosen) + 1
            if step > len(spec.steps):
                return
            for i in range(after + 1, len(log)):
                entry = log[i]
                if entry[2] or step not in entry[1]:
                    continue
                ts = entry[0].ts
                gap = gaps[step - 1]
                if ts - chosen[0][0].ts > within:
                    continue
                if gap is not None and ts - chosen[-1][0].ts > gap:
                    continue
                yield from grow([*chosen, entry], i)

        for i, entry in enumerate(log):
            if i > last_kill and not entry[2] and 1 in entry[1]:
                yield from grow([entry], i)

    def snapshot(
        self, e: Event, variables: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, set[tuple[str, ...]]]]:
        """Features, and per chain the id tuples a reason may name (alive best-step matches
        or the completing ones)."""
        out: dict[str, Any] = {}
        allowed: dict[str, set[tuple[str, ...]]] = {}
        for index, spec in enumerate(self.specs):
            within = parse_duration(spec.within)
            emit = spec.emit_from_step or len(spec.steps)
            _, steps, negated = self.outcome(spec, e, variables)
            alive: list[Sequence] = []
            completing: list[tuple[int, Sequence]] = []
            keys = self.keys(spec, e)
            for key in keys:
                for seq in self.sequences(index, key):
                    if e.ts - seq.start <= within:
                        alive.append(seq)
                    if not negated:
                        completing += self._completions(spec, seq, e, steps, emit)
            if keys and not negated and 1 in steps and emit == 1:
                completing.append((1, Sequence([(e, steps, False)])))
            best_k = max((len(s.entries) for s in alive), default=0)
            top = [s for s in alive if len(s.entries) == best_k]
            start = max((s.start for s in top), default=None)
            base = f"chain_{spec.name}_"
            out[base + "matched"] = best_k >= emit
            out[base + "step"] = best_k
            out[base + "started_minutes_ago"] = (
                NEVER if start is None else max(0, e.ts - start) // MINUTE
            )
            out[base + "completes"] = bool(completing)
            if completing:
                j = max(k for k, _ in completing)
                latest = max(s.start for k, s in completing if k == j)
                allowed[spec.name] = {s.ids for k, s in completing if k == j and s.start == latest}
            elif best_k >= emit:
                allowed[spec.name] = {s.ids for s in top if s.start == start}
        return out, allowed

    def _completions(
        self, spec: ChainSpec, seq: Sequence, e: Event, steps: tuple[int, ...], emit: int
    ) -> list[tuple[int, Sequence]]:
        j = len(seq.entries) + 1
        if j not in steps or j < emit:
            return []
        gap = spec.steps[j - 1].max_gap
        if e.ts - seq.start > parse_duration(spec.within):
            return []
        if gap is not None and e.ts - seq.entries[-1][0].ts > parse_duration(gap):
            return []
        return [(j, Sequence([*seq.entries, (e, steps, False)]))]

    def update(self, e: Event, variables: dict[str, Any]) -> None:
        for index, spec in enumerate(self.specs):
            self.logs[index].append((self.outcome(spec, e, variables), self.keys(spec, e)))
        if e.user_id is not None and e.phone is not None:
            users = self.phone_users.setdefault(e.phone, [])
            if e.user_id in users:
                users.remove(e.user_id)
            users.append(e.user_id)
            del users[:-8]
