"""What a webhook says: one JSON object per delivery (docs/webhooks.md, "Payload").

    {"id": "whd_…", "type": "decision.review", "created": 1767225600000, "data": {…}}

`id` is the delivery's id (a receiver dedupes on it: delivery is at least once), `type`
says what `data` is, `created` is when payguard queued it (epoch ms). Payloads carry ids
and tokens only, never a card, ID or phone number: `data` is built from the tokenized
`Event`, from the `Decision` (whose reasons are rule texts, not event values) and from the
`Hold`, field by field, and free-text notes are left out because nobody can promise what a
person typed into one.
"""

from collections.abc import Mapping
from typing import Literal

import msgspec

from payguard.decision import Decision
from payguard.events import Event
from payguard.holds import Hold
from payguard.types import EpochMs, Fen

WebhookType = Literal["decision.review", "decision.hold", "outcome.changed"]
WEBHOOK_TYPES: tuple[WebhookType, ...] = ("decision.review", "decision.hold", "outcome.changed")
DetailValue = str | int | bool | None


class ReasonSummary(msgspec.Struct, frozen=True):
    code: str
    rule: str
    text: str


class HoldSummary(msgspec.Struct, frozen=True):
    hold_id: str
    release_ts: EpochMs


class DecisionData(msgspec.Struct, frozen=True, omit_defaults=True):
    """`decision.review` / `decision.hold`: a decision a person should look at (an
    analyst for a review; the owner or staff, who may revoke it, for a hold)."""

    event_id: str
    event_type: str
    ts: EpochMs
    action: str
    score: int
    reasons: list[ReasonSummary]
    ruleset: str
    user_id: str | None = None
    device_id: str | None = None
    amount: Fen | None = None
    currency: str | None = None
    counterparty: str | None = None
    """The payee or merchant id the money goes to."""
    hold: HoldSummary | None = None


class OutcomeData(msgspec.Struct, frozen=True, omit_defaults=True):
    """`outcome.changed`: a decision's lifecycle moved (`decided` → `hold:revoked`, …)."""

    event_id: str
    old_state: str
    new_state: str
    detail: dict[str, DetailValue] = msgspec.field(default_factory=dict)


class WebhookBody(msgspec.Struct, frozen=True):
    id: str
    type: WebhookType
    created: EpochMs
    data: DecisionData | OutcomeData


def decision_data(event: Event, decision: Decision) -> DecisionData:
    """The `data` of a decision webhook, from the tokenized event and its decision."""
    counterparty = event.payee.id if event.payee else event.merchant.id if event.merchant else None
    terms = decision.hold
    hold = (
        None
        if isinstance(terms, msgspec.UnsetType)
        else HoldSummary(terms.hold_id, terms.release_ts)
    )
    return DecisionData(
        event_id=decision.event_id,
        event_type=event.type,
        ts=event.ts,
        action=decision.action,
        score=decision.score,
        reasons=[ReasonSummary(r.code, r.rule, r.text) for r in decision.reasons],
        ruleset=decision.ruleset,
        user_id=event.user_id,
        device_id=event.device_id,
        amount=event.amount,
        currency=event.currency if event.amount is not None else None,
        counterparty=counterparty,
        hold=hold,
    )


def outcome_data(
    event_id: str, old_state: str, new_state: str, detail: Mapping[str, DetailValue]
) -> OutcomeData:
    return OutcomeData(event_id, old_state, new_state, dict(detail))


def hold_detail(hold: Hold) -> dict[str, DetailValue]:
    """What an `outcome.changed` for a hold says about it (its note is left out)."""
    return {
        "hold_id": hold.hold_id,
        "resolved_by": hold.resolved_by,
        "resolved_ts": hold.resolved_ts,
        "user_id": hold.user_id,
        "amount": hold.amount,
        "currency": hold.currency,
    }
