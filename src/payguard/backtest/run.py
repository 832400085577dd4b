"""Replay labelled events through a fresh engine, point in time, as production saw them.

The engine is the real one (`Engine.process`: decode, features, rules, policy, record,
update) on an in-memory recorder, so the backtest measures exactly what `payguard replay`
would decide. Labels are read and checked before the first event is decided, so a bad
labels file fails in a second rather than after the replay.
"""

import gc
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, NamedTuple

import msgspec

from payguard.backtest.score import POLICY_PREFIX, DecidedEvent, Label, RuleInfo, Summary, score
from payguard.config import Settings
from payguard.decision import Decision
from payguard.engine import DuplicateEventError, Engine, batch_gc
from payguard.events import Event, EventError
from payguard.features import FeatureState
from payguard.ruleset import Ruleset
from payguard.types import ChallengeMethod

Progress = Callable[[int, int], None]
"""Called now and then with (bytes read, events decided)."""

_Text = Annotated[str, msgspec.Meta(min_length=1)]


class BacktestInputError(ValueError):
    """Bad events or labels; the message is one line naming the file, line and field."""


class Decided(NamedTuple):
    number: int
    size: int
    event: Event
    decision: Decision
    repeat: bool


class Rejected(NamedTuple):
    number: int
    size: int
    error: EventError | DuplicateEventError


class _LabelLine(msgspec.Struct):
    event_id: _Text
    campaign: _Text
    scenario: _Text
    attack: bool = True
    victim_reads_otp: bool = False
    can_pass: frozenset[ChallengeMethod] | None = None
    """What this event's attacker passes when it differs from the scenario default."""


class _IdOnly(msgspec.Struct):
    event_id: str


class Labels(NamedTuple):
    path: Path
    by_event: dict[str, Label]
    line_of: dict[str, int]


def decide_lines(engine: Engine, path: Path) -> Iterator[Decided | Rejected]:
    """Decide every non-blank line of a JSON Lines file in order, flushing the recorder
    every `flush_every` events with the cyclic GC held off (see `batch_gc`)."""
    flush_every = engine.settings.flush_every
    process, decode = engine.process, engine.decoder.decode
    done = 0
    with path.open("rb") as fh, batch_gc():
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                event = decode(line)
                decision, repeat = process(event)
            except (EventError, DuplicateEventError) as exc:
                yield Rejected(number, len(line), exc)
                continue
            yield Decided(number, len(line), event, decision, repeat)
            done += 1
            if done % flush_every == 0:
                engine.flush()
                gc.collect(1)  # young generations only: see batch_gc


def load_labels(path: Path) -> Labels:
    """Read a labels file: one `{"event_id","campaign","scenario","attack"}` per line, plus
    optional `variant` (ignored here), `can_pass` (the methods this event's attacker passes)
    and the older `victim_reads_otp`."""
    decode = msgspec.json.Decoder(_LabelLine).decode
    labels = Labels(path, {}, {})
    scenario_of: dict[str, str] = {}
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = decode(line)
            except msgspec.DecodeError as exc:
                raise BacktestInputError(f"{path} line {number}: {exc}") from None
            if not raw.attack:
                continue
            can = None if raw.can_pass is None else frozenset[str](raw.can_pass)
            label = Label(raw.campaign, raw.scenario, raw.victim_reads_otp, can)
            _check_label(path, number, raw.event_id, label, labels, scenario_of)
            labels.by_event[raw.event_id] = label
            labels.line_of.setdefault(raw.event_id, number)
    return labels


def _check_label(
    path: Path,
    number: int,
    event_id: str,
    label: Label,
    labels: Labels,
    scenario_of: dict[str, str],
) -> None:
    earlier = labels.by_event.get(event_id)
    if earlier is not None and earlier != label:
        first = labels.line_of[event_id]
        raise BacktestInputError(
            f"{path} line {number}: event {event_id!r} is labelled differently on line {first}"
        )
    scenario = scenario_of.setdefault(label.campaign, label.scenario)
    if scenario != label.scenario:
        raise BacktestInputError(
            f"{path} line {number}: campaign {label.campaign!r} is in scenario {scenario!r} "
            f"on an earlier line, {label.scenario!r} here"
        )


def check_labels_known(labels: Labels, events: Path) -> None:
    """Every labelled event_id must occur in the events file (read once, ids only)."""
    decode = msgspec.json.Decoder(_IdOnly).decode
    seen: set[str] = set()
    with events.open("rb") as fh:
        for line in fh:
            try:
                seen.add(decode(line).event_id)
            except msgspec.DecodeError:
                continue  # the replay reports the line with its field and reason
    missing = [eid for eid in labels.by_event if eid not in seen]
    if missing:
        first = min(missing, key=labels.line_of.__getitem__)
        more = f" ({len(missing) - 1} more unknown)" if len(missing) > 1 else ""
        raise BacktestInputError(
            f"{labels.path} line {labels.line_of[first]}: event {first!r} is not in {events}{more}"
        )


EXPLANATORY_CODES: frozenset[str] = frozenset({"STEP_UP_EXCLUDED", "MODEL_FACTOR"})
"""Reasons that explain a decision without deciding it (why a method was not offered, what
raised the model's score): not rules, so not in the rules table or a campaign's stop."""


def outcome_of(event: Event, decision: Decision) -> DecidedEvent:
    """The few fields the arithmetic needs; amounts only in CNY (fen)."""
    cny = event.amount is not None and event.currency == "CNY"
    return DecidedEvent(
        event_id=event.event_id,
        ts_ms=event.ts,
        type=event.type,
        action=decision.action,
        score=decision.score,
        amount_fen=event.amount if cny and event.amount is not None else 0,
        user_id=event.user_id,
        challenge=tuple(decision.challenge or ()),
        rules=tuple(
            POLICY_PREFIX + r.code if r.rule == "policy" else r.rule
            for r in decision.reasons
            if r.code not in EXPLANATORY_CODES
        ),
        shadow=tuple(s.rule for s in decision.shadow or ()),
        errors=tuple(e["rule"] for e in decision.rule_errors or ()),
    )


def rule_infos(ruleset: Ruleset) -> list[RuleInfo]:
    """Live rules first, then shadow rules, each in ruleset order."""
    rules = [c.rule for c in ruleset.rules]
    ordered = [r for r in rules if r.mode == "live"] + [r for r in rules if r.mode != "live"]
    return [RuleInfo(r.id, r.mode, r.action, tuple(r.challenge)) for r in ordered]


def run_backtest(
    events: Path,
    labels_path: Path,
    *,
    ruleset: Ruleset,
    features: FeatureState,
    settings: Settings,
    progress: Progress | None = None,
) -> Summary:
    """Check labels, replay every event on a fresh engine, score the decisions.

    The configured model (`PAYGUARD_MODEL`) is loaded as `Engine.open` loads it: rules
    reading `model.score` would otherwise see 0.0 and the backtest would not measure what
    production decides."""
    labels = load_labels(labels_path)
    check_labels_known(labels, events)
    engine = Engine.in_memory(settings, features, ruleset)
    started = time.perf_counter()
    try:
        outcomes, repeats = _replay(engine, events, progress)
        outcomes = _mark_revoked(outcomes, engine)
        outcomes = _mark_verdicts(outcomes, engine)
    finally:
        engine.close()
    elapsed = round(time.perf_counter() - started, 3)
    summary = score(outcomes, labels.by_event, rule_infos(ruleset), ruleset.version)
    return msgspec.structs.replace(summary, repeats=repeats, elapsed_s=elapsed)


def _mark_revoked(outcomes: list[DecidedEvent], engine: Engine) -> list[DecidedEvent]:
    """Held events whose hold was revoked before its release (by an owner's loss or fraud
    report later in the file): their money never left, so they count as stopped."""
    revoked = {
        h.event_id for h in engine.holds.find(state="revoked", now_ms=_END_OF_TIME, limit=_ALL)
    }
    if not revoked:
        return outcomes
    return [
        msgspec.structs.replace(o, revoked=True) if o.event_id in revoked else o for o in outcomes
    ]


def _mark_verdicts(outcomes: list[DecidedEvent], engine: Engine) -> list[DecidedEvent]:
    """Each decided event with the latest verdict a label (or a fraud report or
    chargeback) in the stream gave it, as the engine's outcome book filed them."""
    verdicts = engine.outcomes.book.verdicts()
    if not verdicts:
        return outcomes
    return [
        msgspec.structs.replace(o, verdict=verdicts[o.event_id]) if o.event_id in verdicts else o
        for o in outcomes
    ]


_END_OF_TIME = 2**62
_ALL = 2**62


def _replay(
    engine: Engine, events: Path, progress: Progress | None
) -> tuple[list[DecidedEvent], int]:
    """Outcomes in decision order and the number of idempotent repeats skipped."""
    outcomes: list[DecidedEvent] = []
    repeats = read = 0
    for item in decide_lines(engine, events):
        read += item.size
        if isinstance(item, Rejected):
            raise BacktestInputError(f"{events} line {item.number}: {_describe(item.error)}")
        if item.repeat:
            repeats += 1
            continue
        outcomes.append(outcome_of(item.event, item.decision))
        if progress is not None and len(outcomes) % 1000 == 0:
            progress(read, len(outcomes))
    return outcomes, repeats


def _describe(exc: EventError | DuplicateEventError) -> str:
    if isinstance(exc, EventError):
        return f"event {exc.event_id or '?'}: {exc.field}: {exc.reason}"
    return str(exc)
