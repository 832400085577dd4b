"""Backtest a draft ruleset on the last N days of recorded events before publishing it.

The recorded events of the window (labels included) are replayed, in log order, through a
fresh in-memory engine with the draft (`Engine.in_memory`, as `payguard backtest` does),
so nothing touches the live engine. Feature state starts empty at the window's start:
windowed features of the window's first day read less history than live ones did, which
the page says.

The figures are about the rules the draft **changes** (new, or any field different from
the live rule with the same id):
- hits: decisions that name a changed rule;
- money stopped: money leaving the customer (`LEAVING_TYPES`, CNY fen) on hit decisions
  that block, review or hold, and that a label marks as fraud;
- legitimate friction: hit decisions with friction (challenge, hold, review, block) on
  events no label marks as fraud;
- overlap with live rules: of the hits, how many a rule the draft leaves unchanged also
  named — a changed rule whose hits are all overlap stops nothing new;
- decisions changed: events whose draft action differs from the action recorded live.
"""

from collections.abc import Iterator
from typing import Final

import msgspec

from payguard.engine import Engine
from payguard.events import Event
from payguard.features import FeatureState, load_catalog
from payguard.ruleset import Ruleset
from payguard.store import LogFilter, Recorder
from payguard.types import LEAVING_TYPES

DAY_MS: Final = 86_400_000
MAX_DAYS: Final = 90
_STOPPING: Final = frozenset({"block", "review", "hold"})
_FRICTION: Final = frozenset({"challenge", "hold", "review", "block"})


class DraftFigures(msgspec.Struct, frozen=True):
    days: int
    events: int
    changed_rules: list[str]
    hits: int
    money_stopped_fen: int
    legit_friction: int
    overlap: int
    decisions_changed: int
    per_rule: dict[str, int]

    @property
    def overlap_share(self) -> float | None:
        return self.overlap / self.hits if self.hits else None


def changed_rules(draft: Ruleset, live: Ruleset) -> list[str]:
    """Ids of the draft's rules that are new or differ from the live rule of that id."""
    live_rules = {c.rule.id: c.rule for c in live.rules}
    return [c.rule.id for c in draft.rules if live_rules.get(c.rule.id) != c.rule]


def window_events(recorder: Recorder, days: int) -> list[tuple[Event, str]]:
    """The last `days` days of recorded events (by event time, up to the newest), oldest
    first, each with the action recorded live."""
    newest = next(recorder.newest(None, LogFilter()), None)
    if newest is None:
        return []
    since = newest[1].ts - days * DAY_MS
    found: list[tuple[Event, str]] = [
        (e, d.action) for _, e, d in recorder.newest(None, LogFilter(since_ms=since))
    ]
    found.reverse()
    return found


def backtest_draft(live_engine: Engine, draft: Ruleset, days: int) -> DraftFigures:
    """Replay the window through `draft` on a fresh engine and count (module docstring)."""
    settings = live_engine.settings
    changed = changed_rules(draft, live_engine.ruleset)
    events = window_events(live_engine.recorder, days)
    features = FeatureState(load_catalog(settings.features), settings.utc_offset)
    engine = Engine.in_memory(settings, features, draft)
    try:
        decided = list(_replay(engine, events))
        verdicts = engine.outcomes.book.verdicts()
    finally:
        engine.close()
    return _count(decided, verdicts, set(changed), days, len(events), changed)


def _replay(
    engine: Engine, events: list[tuple[Event, str]]
) -> Iterator[tuple[Event, str, str, set[str]]]:
    for event, live_action in events:
        decision, repeat = engine.process(event)
        if not repeat:
            named = {r.rule for r in decision.reasons}
            yield event, live_action, decision.action, named


def _count(
    decided: list[tuple[Event, str, str, set[str]]],
    verdicts: dict[str, str],
    changed: set[str],
    days: int,
    total: int,
    changed_order: list[str],
) -> DraftFigures:
    hits = money = friction = overlap = differs = 0
    per_rule = dict.fromkeys(changed_order, 0)
    for event, live_action, action, named in decided:
        differs += action != live_action
        hit = named & changed
        if not hit:
            continue
        hits += 1
        for rule in hit:
            per_rule[rule] += 1
        overlap += bool(named - changed - {"policy"})
        fraud = verdicts.get(event.event_id) == "fraud"
        if fraud and action in _STOPPING and event.type in LEAVING_TYPES:
            money += event.amount or 0 if event.currency == "CNY" else 0
        if not fraud and action in _FRICTION:
            friction += 1
    return DraftFigures(
        days=days,
        events=total,
        changed_rules=changed_order,
        hits=hits,
        money_stopped_fen=money,
        legit_friction=friction,
        overlap=overlap,
        decisions_changed=differs,
        per_rule=per_rule,
    )
