"""Event contract v1: the wire shape a client sends and the validated shape payguard uses.

`EventIn` is what arrives (loose: times as strings or integers, money as decimal major
units, PII in clear). `Event` is what every later stage sees: times in epoch ms, money in
fen, and card, ID and phone numbers replaced by keyed-hash tokens. Only `events.decode`
turns one into the other, so nothing past the edge ever holds PII in clear.

Evolution follows msgspec's rules: new fields get defaults, existing fields keep their
types, unknown fields are rejected (clients depend on this contract exactly).
"""

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from payguard.types import CHALLENGE_METHODS, EpochMs, Fen

EventType = Literal[
    # account
    "register",
    "login",
    "logout",
    "password_reset",
    "phone_change",
    "profile_change",
    "kyc_verify",
    # carrier signals (shaped like the CAMARA SIM Swap and Call Forwarding Signal APIs)
    "sim_swap",
    "line_suspend",
    "line_resume",
    "call_forward_set",
    "sms_forward_set",
    # instruments
    "card_bind",
    "card_unbind",
    # verification
    "otp_send",
    "otp_verify",
    # money
    "payment",
    "transfer",
    "withdrawal",
    "loan_apply",
    "loan_disburse",
    "investment_buy",
    "investment_redeem",
    "refund",
    # feedback: labels arriving later, referencing an earlier event
    "fraud_report",
    "chargeback",
    "label",
    # outcomes: what came of a decision (a challenge's result)
    "challenge_result",
]

CARRIER_TYPES: frozenset[str] = frozenset(
    {"sim_swap", "line_suspend", "line_resume", "call_forward_set", "sms_forward_set"}
)
MONEY_TYPES: frozenset[str] = frozenset(
    {
        "payment",
        "transfer",
        "withdrawal",
        "loan_apply",
        "loan_disburse",
        "investment_buy",
        "investment_redeem",
        "refund",
    }
)
FEEDBACK_TYPES: frozenset[str] = frozenset({"fraud_report", "chargeback"})
"""Fraud reports by type: each says the event it references was fraud."""
LABEL_TYPES: frozenset[str] = FEEDBACK_TYPES | {"label"}
"""Every verdict on an earlier event: the fraud reports, and a `label`, which says `fraud`
or `not_fraud` in its `label` field (see `is_fraud_verdict`)."""
OUTCOME_TYPES: frozenset[str] = frozenset({"challenge_result", "label"})
"""Events that change an earlier decision's lifecycle (docs/decisions.md, "Lifecycle")."""
REF_REQUIRED_TYPES: frozenset[str] = frozenset({"otp_verify", "challenge_result"} | LABEL_TYPES)

MerchantCategory = Literal[
    "ecommerce",
    "virtual_goods",
    "gift_card",
    "mobile_topup",
    "game",
    "precious_metal",
    "loan",
    "transfer_service",
    "utilities",
    "food",
    "travel",
    "other",
]
Channel = Literal["app", "web", "wap", "api", "counter", "atm", "phone"]
Method = Literal[
    "sms",
    "email",
    "face",
    "password",
    "id_card",
    "security_question",
    "ukey",
    # the step-up methods a challenge offers (a `challenge_result` names one of these)
    "in_app_confirm",
    "callback",
    "hardware_token",
    "sms_otp",
]
STEP_UP_METHODS: frozenset[str] = frozenset(CHALLENGE_METHODS)
"""The methods a decision's `challenge` list may offer (`types.ChallengeMethod`)."""
ChallengeOutcome = Literal["passed", "failed", "abandoned"]
LabelValue = Literal["fraud", "not_fraud"]
LabelSource = Literal["customer", "analyst", "chargeback", "bank"]
CardKind = Literal["debit", "credit"]

ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class CardIn(msgspec.Struct, forbid_unknown_fields=True):
    """A card as sent: a clear PAN (tokenized at the edge) or a client-side token."""

    number: str | None = None
    token: ShortText | None = None
    bank: ShortText | None = None
    kind: CardKind | None = None


class MerchantIn(msgspec.Struct, forbid_unknown_fields=True):
    id: ShortText
    category: MerchantCategory = "other"


class PayeeIn(msgspec.Struct, forbid_unknown_fields=True):
    id: ShortText
    card: CardIn | None = None
    name: ShortText | None = None


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """One event exactly as a client sends it (contract v1, docs/events.md)."""

    event_id: EventId
    type: EventType
    ts: str | int
    user_id: ShortText | None = None
    device_id: ShortText | None = None
    ip: ShortText | None = None
    user_agent: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    city: ShortText | None = None
    phone: str | None = None
    id_number: str | None = None
    card: CardIn | None = None
    amount: Decimal | None = None
    currency: Currency = "CNY"
    merchant: MerchantIn | None = None
    payee: PayeeIn | None = None
    channel: Channel | None = None
    success: bool | None = None
    method: Method | None = None
    ref_event_id: EventId | None = None
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)
    outcome: ChallengeOutcome | None = None
    """`challenge_result` only: what the customer did with the offered method."""
    label: LabelValue | None = None
    """`label` only: the verdict on the referenced event."""
    source: LabelSource | None = None
    """`label` only: who gives the verdict."""
    scenario: ShortText | None = None
    """`label` only, optional: the fraud pattern, in the teller's words or a scenario id."""
    note: Note | None = None
    """`label` only, optional: free text for analysts (refused if it holds a clear PAN or
    ID number, like `attrs`)."""


class Card(msgspec.Struct, frozen=True, omit_defaults=True):
    """A tokenized card: the token identifies it; BIN and last 4 are kept for analysts."""

    token: str
    bin: str | None = None
    last4: str | None = None
    bank: str | None = None
    kind: CardKind | None = None


class Merchant(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    category: str = "other"


class Payee(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    card: Card | None = None
    name: str | None = None


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """A validated event: epoch-ms time, fen amounts, PII tokenized. Safe to store and log."""

    event_id: str
    type: str
    ts: EpochMs
    user_id: str | None = None
    device_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    city: str | None = None
    phone: str | None = None
    id_number: str | None = None
    card: Card | None = None
    amount: Fen | None = None
    currency: str = "CNY"
    merchant: Merchant | None = None
    payee: Payee | None = None
    channel: str | None = None
    success: bool | None = None
    method: str | None = None
    ref_event_id: str | None = None
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)
    outcome: str | None = None
    label: str | None = None
    source: str | None = None
    scenario: str | None = None
    note: str | None = None
    phone_valid: bool | None = None
    """Whether `phone` is valid in its country's numbering plan (`phonenumbers`); False for
    a structurally possible number the metadata does not know (a new range, an IoT or
    virtual operator, stale metadata), None when the event has no phone."""


def is_fraud_verdict(event: Event) -> bool:
    """Whether the event labels the event it references as fraud: every `fraud_report`
    and `chargeback`, and a `label` saying `fraud` (a `not_fraud` label clears instead)."""
    return event.label == "fraud" if event.type == "label" else event.type in FEEDBACK_TYPES
