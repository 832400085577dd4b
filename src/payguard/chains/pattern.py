"""Attack-chain patterns: declarative, validated like rules, compiled once.

A pattern is an ordered list of steps, each a CEL condition on one event (with the same
flat variables rules see), matched within one partition (all events of one account, phone,
identity, device, card or IP), within a total time bound and optional per-step gaps, and
killed by an optional `not_followed_by` condition. See docs/chains.md.

    chains:
      - name: otp_fail_new_card
        key: user
        within: 2h
        steps:
          - {events: [otp_verify], when: "success == false"}
          - {events: [card_bind]}
          - {events: [otp_verify], when: "success == true", max_gap: 30m}
"""

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import yaml

from payguard.cel import RuleError, compile_condition
from payguard.features import parse_duration

PARTITION_KEYS: tuple[str, ...] = ("user", "phone", "identity", "device", "card", "ip")
FEATURE_TYPES: tuple[str, str, str, str] = ("bool", "int", "int", "bool")
"""CEL types of (matched, step, started_minutes_ago, completes), for rules as Python."""
MAX_STEPS = 8
NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
"""Chain names become parts of CEL identifiers (`chain_<name>_matched`)."""


class Condition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which events satisfy a step (or kill a match): event types, and a CEL boolean."""

    events: list[str] | None = None
    """Event types it applies to; None means every type. Others are never evaluated."""
    when: str | None = None
    """CEL over the flat variables; None means any event of those types."""


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    events: list[str] | None = None
    when: str | None = None
    max_gap: str | None = None
    """Longest time from the previous step's event to this one's (not for step 1)."""
    label: str = ""


class ChainSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One pattern as written in the YAML `chains:` section."""

    name: str
    key: str
    within: str
    steps: list[Step]
    not_followed_by: Condition | None = None
    emit_from_step: int | None = None
    """`matched` holds once a match reaches this step (default: the last step)."""
    description: str = ""


class StepCondition(msgspec.Struct, frozen=True):
    events: frozenset[str] | None
    program: Any
    """A compiled CEL program, or None when any event of the types satisfies it."""
    variables: frozenset[str]
    text: str | None = None
    """The CEL that runs (the condition as printed from its checked syntax tree), for
    running it as Python where the translation is exact."""

    def applies(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events


class ChainPattern(msgspec.Struct, frozen=True):
    """A validated, compiled pattern and the names of the features it provides."""

    spec: ChainSpec
    steps: tuple[StepCondition, ...]
    gaps: tuple[int | None, ...]
    """Max gap before each step, in ms (index 0, step 1, is always None)."""
    negation: StepCondition | None
    within_ms: int
    emit_from: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def key(self) -> str:
        return self.spec.key

    def feature_names(self) -> tuple[str, str, str, str]:
        """(matched, step, started_minutes_ago, completes) as flat CEL identifiers."""
        base = f"chain_{self.spec.name}_"
        return (
            base + "matched",
            base + "step",
            base + "started_minutes_ago",
            base + "completes",
        )

    def feature_types(self) -> dict[str, str]:
        """Each feature name's CEL type (none is ever null)."""
        return dict(zip(self.feature_names(), FEATURE_TYPES, strict=True))


def load_chains(
    raw: Any, known: Iterable[str], event_types: Iterable[str]
) -> tuple[ChainPattern, ...]:
    """Validate and compile the parsed YAML `chains:` list (None: no chains). `known` are
    the variable names a condition may use (event fields, features, graph features);
    raises RuleError naming the chain, as a bad rule does."""
    if raw is None:
        return ()
    try:
        specs = msgspec.convert(raw, list[ChainSpec])
    except msgspec.ValidationError as exc:
        raise RuleError("-", f"bad chains structure: {exc}") from None
    names = set(known)
    types = set(event_types)
    patterns: list[ChainPattern] = []
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise RuleError(spec.name, "duplicate chain name")
        seen.add(spec.name)
        patterns.append(_compile(spec, names, types))
    return tuple(patterns)


def load_chains_file(
    path: Path, known: Iterable[str], event_types: Iterable[str]
) -> tuple[ChainPattern, ...]:
    """Read the `chains:` section of a YAML file (a ruleset or a chains-only file)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise RuleError("-", f"not valid YAML: {exc}") from None
    return load_chains(raw.get("chains"), known, event_types)


def _compile(spec: ChainSpec, known: set[str], types: set[str]) -> ChainPattern:
    _check_shape(spec)
    try:
        within = parse_duration(spec.within)
        gaps = tuple(parse_duration(s.max_gap) if s.max_gap else None for s in spec.steps)
    except ValueError as exc:
        raise RuleError(spec.name, str(exc)) from None
    if gaps[0] is not None:
        raise RuleError(spec.name, "step 1 cannot have a max_gap (nothing comes before it)")
    steps = tuple(
        _condition(spec.name, f"step {i}", s.events, s.when, known, types)
        for i, s in enumerate(spec.steps, start=1)
    )
    negation = None
    if spec.not_followed_by is not None:
        neg = spec.not_followed_by
        negation = _condition(spec.name, "not_followed_by", neg.events, neg.when, known, types)
    return ChainPattern(
        spec=spec,
        steps=steps,
        gaps=gaps,
        negation=negation,
        within_ms=within,
        emit_from=spec.emit_from_step or len(spec.steps),
    )


def _check_shape(spec: ChainSpec) -> None:
    if not NAME.match(spec.name):
        raise RuleError(spec.name, "a chain name is lower-case letters, digits and _")
    if spec.key not in PARTITION_KEYS:
        raise RuleError(spec.name, f"key must be one of {', '.join(PARTITION_KEYS)}")
    if not 1 <= len(spec.steps) <= MAX_STEPS:
        raise RuleError(spec.name, f"a chain has 1 to {MAX_STEPS} steps")
    emit = spec.emit_from_step
    if emit is not None and not 1 <= emit <= len(spec.steps):
        raise RuleError(spec.name, "emit_from_step must name one of the chain's steps")


def _condition(
    chain: str,
    where: str,
    events: list[str] | None,
    when: str | None,
    known: set[str],
    types: set[str],
) -> StepCondition:
    for event_type in events or ():
        if event_type not in types:
            raise RuleError(chain, f"{where}: unknown event type {event_type!r}")
    program, variables, text = None, frozenset[str](), None
    if when is not None:
        try:
            program, variables, text, _ = compile_condition(chain, when, known)
        except RuleError as exc:
            raise RuleError(chain, f"{where}: {exc.message}") from None
    return StepCondition(
        events=frozenset(events) if events is not None else None,
        program=program,
        variables=variables,
        text=text,
    )
