"""Figures the rules list and the dashboard show, counted from the recorded decisions of
the last N days (event time, up to the newest record; at most `MAX_RECORDS` records, the
newest, so a page costs a bounded scan however long the log is).

Per rule: hits, hit rate (hits per decision of an event type the rule applies to),
precision (of hits with a label, the share labelled fraud) and money stopped (money
leaving on a hit decision that blocked, reviewed or held, labelled fraud). Per day:
decisions per action, friction rate, money stopped, rule errors.
"""

import time
from collections import Counter, defaultdict
from typing import Final

import msgspec

from payguard.console.web import ConsoleServices
from payguard.engine import Engine
from payguard.store import LogFilter
from payguard.types import ACTIONS, LEAVING_TYPES

DAY_MS: Final = 86_400_000
MAX_RECORDS: Final = 200_000
_STOPPING: Final = frozenset({"block", "review", "hold"})
_FRICTION: Final = frozenset({"challenge", "hold", "review", "block"})


class RuleFigures(msgspec.Struct):
    rule: str
    mode: str
    action: str
    hits: int = 0
    applicable: int = 0
    labelled: int = 0
    fraud: int = 0
    money_stopped_fen: int = 0

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.applicable if self.applicable else None

    @property
    def precision(self) -> float | None:
        return self.fraud / self.labelled if self.labelled else None


class DayFigures(msgspec.Struct):
    day: str
    per_action: dict[str, int]
    decisions: int = 0
    friction: int = 0
    money_stopped_fen: int = 0
    rule_errors: int = 0

    @property
    def friction_rate(self) -> float:
        return self.friction / self.decisions if self.decisions else 0.0


class Figures(msgspec.Struct):
    rules: list[RuleFigures]
    days: list[DayFigures]
    records: int
    counted_ms: int = 0
    """Wall-clock time they were counted (pages keep them a minute: `figures_of`)."""


def figures_of(services: ConsoleServices, days: int) -> Figures:
    """`recent_figures`, counted at most once a minute per number of days."""

    def count() -> Figures:
        figures = recent_figures(services.engine, days)
        figures.counted_ms = services.clock()
        return figures

    found: Figures = services.figures.get(days, count)
    return found


def _day(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ms / 1000))


def recent_figures(engine: Engine, days: int) -> Figures:
    """Per-rule and per-day figures over the last `days` days of the log."""
    recorder, verdicts = engine.recorder, engine.outcomes.book.verdicts()
    newest = next(recorder.newest(None, LogFilter()), None)
    rules = {
        c.rule.id: RuleFigures(c.rule.id, c.rule.mode, c.rule.action) for c in engine.ruleset.rules
    }
    applies = {c.rule.id: c.rule.events for c in engine.ruleset.rules}
    per_day: dict[str, DayFigures] = {}
    counts: Counter[str] = Counter()
    if newest is None:
        return Figures(list(rules.values()), [], 0)
    since = newest[1].ts - days * DAY_MS
    records = 0
    for _, event, decision in recorder.newest(None, LogFilter(since_ms=since)):
        records += 1
        day = per_day.get(_day(event.ts))
        if day is None:
            day = per_day[_day(event.ts)] = DayFigures(_day(event.ts), dict.fromkeys(ACTIONS, 0))
        verdict = verdicts.get(event.event_id)
        stopped = 0
        if verdict == "fraud" and decision.action in _STOPPING and event.type in LEAVING_TYPES:
            stopped = event.amount or 0 if event.currency == "CNY" else 0
        day.decisions += 1
        day.per_action[decision.action] = day.per_action.get(decision.action, 0) + 1
        day.friction += decision.action in _FRICTION and verdict != "fraud"
        day.money_stopped_fen += stopped
        day.rule_errors += len(decision.rule_errors or ())
        counts[event.type] += 1
        named = {r.rule for r in decision.reasons} | {s.rule for s in decision.shadow or ()}
        for rule_id in named & rules.keys():
            figures = rules[rule_id]
            figures.hits += 1
            figures.labelled += verdict is not None
            figures.fraud += verdict == "fraud"
            figures.money_stopped_fen += stopped
        if records == MAX_RECORDS:
            break
    for rule_id, figures in rules.items():
        types = applies[rule_id]
        figures.applicable = (
            sum(counts.values()) if types is None else sum(counts[t] for t in types)
        )
    return Figures(list(rules.values()), sorted(per_day.values(), key=lambda d: d.day), records)


def action_series(days: list[DayFigures]) -> dict[str, list[int]]:
    """Per action, its count on each day (the dashboard's stacked chart)."""
    series: dict[str, list[int]] = defaultdict(list)
    for day in days:
        for action in ACTIONS:
            series[action].append(day.per_action.get(action, 0))
    return dict(series)
