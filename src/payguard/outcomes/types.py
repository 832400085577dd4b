"""What the outcomes room produces: a decision's lifecycle state and the outcomes that
moved it, and the error an outcome that fits no decision raises."""

from collections.abc import Callable
from typing import Literal, TypeAlias, get_args

import msgspec

from payguard.events import EventError

LifecycleState = Literal[
    "decided",
    "challenge:passed",
    "challenge:failed",
    "challenge:abandoned",
    "hold:revoked",
    "hold:released",
    "review:open",
    "review:resolved:fraud",
    "review:resolved:not_fraud",
]
LIFECYCLE_STATES: tuple[LifecycleState, ...] = get_args(LifecycleState)

OutcomeListener: TypeAlias = Callable[[str, str, str], None]
"""`on_outcome(decision_event_id, old_state, new_state)`: called once per lifecycle change
(a challenge result, a label, a hold revoked or released through the API or by an owner's
report, or by expiry once the server notices it: `Engine.expire_holds`), after the change
is durable, never while recovery re-files old outcomes."""


class OutcomeRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """One outcome filed against a decision: a challenge result or a label (fraud reports
    and chargebacks are labels `fraud` from `customer` and `chargeback`). `state` is the
    decision's lifecycle state right after it. Times in epoch ms."""

    event_id: str
    type: str
    ts: int
    state: LifecycleState
    method: str | None = None
    outcome: str | None = None
    device_id: str | None = None
    label: str | None = None
    source: str | None = None
    scenario: str | None = None


class Clearance(msgspec.Struct, frozen=True):
    """A rule that does not challenge this account on this device until `until_ts`
    (epoch ms, exclusive), because `by_event_id` passed a step-up it asked for or, on
    every device (`lifecycle.ANY_DEVICE`), released a stop as `not_fraud`.

    A release is scoped to what was reviewed: it lifts the follow-on of stops up to
    `since_ts` (the label's time; a stop after it sets the follow-on off again) for
    amounts up to `max_fen` (the reviewed operation's; None: any amount)."""

    user_id: str
    device_id: str
    rule: str
    until_ts: int
    by_event_id: str
    since_ts: int = 0
    max_fen: int | None = None

    def covers(self, at_ms: int, amount: int | None, last_stop_ms: int | None) -> bool:
        """Whether it clears an event at `at_ms` of `amount` (None: no amount), the
        account's latest stop being at `last_stop_ms` (None: none, or not known)."""
        if at_ms >= self.until_ts:
            return False
        if self.max_fen is not None and amount is not None and amount > self.max_fen:
            return False
        return last_stop_ms is None or last_stop_ms <= self.since_ts


class OutcomeError(EventError):
    """An outcome that fits no decision (unknown, not a challenge, method not offered):
    a contract error naming the field (HTTP 422, CLI exit 2), recorded nowhere."""
