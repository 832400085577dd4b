"""The event fields rules can read, as flat CEL variables.

Absent optional fields are `null`, so `channel == 'app'` is simply false when no channel
was sent; `amount` is 0 when absent. `hour` and `weekday` are in the bank's local time
(default UTC+8), because "a loan applied for at 4 a.m." means 4 a.m. where the customer is.
`tier` is the customer tier the client sends as `attrs.tier` (e.g. `premium`), so limits
can differ per tier; null when absent or not a string.
"""

from collections.abc import Callable
from typing import Any

from payguard.events import Event
from payguard.types import HOUR_MS

EventVariable = Callable[[Event], Any]

EVENT_VARIABLE_TYPES: dict[str, str] = {
    "type": "string",
    "amount": "int",
    "currency": "string",
    "channel": "string?",
    "success": "bool?",
    "method": "string?",
    "city": "string?",
    "user_id": "string?",
    "device_id": "string?",
    "ip": "string?",
    "merchant_id": "string?",
    "merchant_category": "string?",
    "has_card": "bool",
    "card_kind": "string?",
    "card_bin": "string?",
    "card_bank": "string?",
    "has_payee": "bool",
    "payee_id": "string?",
    "has_ref": "bool",
    "hour": "int",
    "weekday": "int",
    "tier": "string?",
}
"""The CEL type of each event variable (`?`: may be null), for translating rules to Python
(`rules.native`). `attrs` is a map, which rules reading it leave to CEL."""


def _tier(event: Event) -> str | None:
    tier = event.attrs.get("tier")
    return tier if isinstance(tier, str) else None


def event_variables(utc_offset_hours: int = 8) -> dict[str, EventVariable]:
    offset_ms = utc_offset_hours * HOUR_MS

    def local_hour(e: Event) -> int:
        return ((e.ts + offset_ms) // HOUR_MS) % 24

    def local_weekday(e: Event) -> int:
        """0 = Monday … 6 = Sunday (1970-01-01 was a Thursday)."""
        return ((e.ts + offset_ms) // (24 * HOUR_MS) + 3) % 7

    return {
        "type": lambda e: e.type,
        "amount": lambda e: e.amount or 0,
        "currency": lambda e: e.currency,
        "channel": lambda e: e.channel,
        "success": lambda e: e.success,
        "method": lambda e: e.method,
        "city": lambda e: e.city,
        "user_id": lambda e: e.user_id,
        "device_id": lambda e: e.device_id,
        "ip": lambda e: e.ip,
        "merchant_id": lambda e: e.merchant.id if e.merchant else None,
        "merchant_category": lambda e: e.merchant.category if e.merchant else None,
        "has_card": lambda e: e.card is not None,
        "card_kind": lambda e: e.card.kind if e.card else None,
        "card_bin": lambda e: e.card.bin if e.card else None,
        "card_bank": lambda e: e.card.bank if e.card else None,
        "has_payee": lambda e: e.payee is not None,
        "payee_id": lambda e: e.payee.id if e.payee else None,
        "has_ref": lambda e: e.ref_event_id is not None,
        "hour": local_hour,
        "weekday": local_weekday,
        "tier": _tier,
        "attrs": lambda e: e.attrs,
    }
