"""Event contract v1: decode, validate and tokenize at the edge (imports nothing internal)."""

from payguard.events.contract import (
    CARRIER_TYPES,
    FEEDBACK_TYPES,
    LABEL_TYPES,
    MONEY_TYPES,
    OUTCOME_TYPES,
    STEP_UP_METHODS,
    Card,
    Event,
    EventIn,
    Merchant,
    Payee,
    is_fraud_verdict,
)
from payguard.events.decode import (
    NESTED_TOO_DEEPLY,
    EventDecoder,
    msgspec_field_and_reason,
    not_utf8,
    parse_ts,
    to_major_units,
    to_minor_units,
)
from payguard.events.errors import EventError
from payguard.events.tokenize import Tokenizer
from payguard.types import MONEY_OUT_TYPES

__all__ = [
    "CARRIER_TYPES",
    "FEEDBACK_TYPES",
    "LABEL_TYPES",
    "MONEY_OUT_TYPES",
    "MONEY_TYPES",
    "NESTED_TOO_DEEPLY",
    "OUTCOME_TYPES",
    "STEP_UP_METHODS",
    "Card",
    "Event",
    "EventDecoder",
    "EventError",
    "EventIn",
    "Merchant",
    "Payee",
    "Tokenizer",
    "is_fraud_verdict",
    "msgspec_field_and_reason",
    "not_utf8",
    "parse_ts",
    "to_major_units",
    "to_minor_units",
]
