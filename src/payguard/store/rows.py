"""A decision as the recorders store it: msgpack of its fields in order, with the feature
values as a list whose names are kept once per distinct set (SQLite and Postgres alike:
a decision's JSON with its feature names was five times the event, and writing it was
most of the cost of recording)."""

from typing import Any, TypeVar

import msgspec

from payguard.decision import Decision, HoldTerms, Reason, ShadowHit
from payguard.types import Action, ChallengeMethod

T = TypeVar("T")


class Row(msgspec.Struct, array_like=True):
    """A decision as stored: its fields in order, `features` as values of a feature set.
    None stands for a field the decision leaves unset."""

    event_id: str
    action: Action
    score: int
    reasons: list[Reason]
    ruleset: str
    model: str | None
    latency_us: int
    challenge: list[ChallengeMethod] | None
    shadow: list[ShadowHit] | None
    rule_errors: list[dict[str, str]] | None
    values: list[Any] | None
    model_score: float | None = None
    """Last, with defaults: rows written before these fields existed still decode."""
    hold: HoldTerms | None = None


def stored_row(d: Decision) -> tuple[Any, ...]:
    """The row of a decision as the tuple of `Row`'s fields in order, which msgpack
    encodes exactly as the array-like `Row` itself (tests/store/test_rows.py): building
    the struct only to encode it cost as much as the encoding (issue 11). Its feature
    names are the caller's to keep (a set id). An unset field is `UNSET` itself
    (msgspec's singleton), so it is compared by identity here, inline: this runs for
    every recorded event."""
    features = d.features
    unset = msgspec.UNSET
    challenge, shadow, errors = d.challenge, d.shadow, d.rule_errors
    model_score, hold = d.model_score, d.hold
    return (
        d.event_id,
        d.action,
        d.score,
        d.reasons,
        d.ruleset,
        d.model,
        d.latency_us,
        None if challenge is unset else challenge,
        None if shadow is unset else shadow,
        None if errors is unset else errors,
        None if features is unset else list(features.values()),
        None if model_score is unset else model_score,
        None if hold is unset else hold,
    )


def decision_of(row: Row, names: tuple[str, ...] | None) -> Decision:
    """The decision a row holds, its features named by `names` (its feature set)."""
    features: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    if names is not None and row.values is not None:
        features = dict(zip(names, row.values, strict=True))
    return Decision(
        event_id=row.event_id,
        action=row.action,
        score=row.score,
        reasons=row.reasons,
        ruleset=row.ruleset,
        model=row.model,
        latency_us=row.latency_us,
        challenge=_or_unset(row.challenge),
        model_score=_or_unset(row.model_score),
        hold=_or_unset(row.hold),
        features=features,
        shadow=_or_unset(row.shadow),
        rule_errors=_or_unset(row.rule_errors),
    )


def _or_unset(value: T | None) -> T | msgspec.UnsetType:
    return msgspec.UNSET if value is None else value
