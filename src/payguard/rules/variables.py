"""The event fields rules can read, as flat CEL variables.

Absent optional fields are `null`, so `channel == 'app'` is simply false when no channel
was sent; `amount` is 0 when absent. `hour` and `weekday` are in the bank's local time
(default UTC+8), because "a loan applied for at 4 a.m." means 4 a.m. where the customer is.
`tier` is the customer tier the client sends as `attrs.tier` (e.g. `premium`), so limits
can differ per tier; null when absent or not a string. `phone_plan_valid` says whether the
event's phone is valid in its country's numbering plan (null without a phone): the edge
accepts any structurally possible number, so rules decide what an unknown range is worth;
compare it (`phone_plan_valid == false`) rather than negate it, as `!` on null is a CEL error
and a nullable operand of `!`/`&&` keeps the rule out of the native translation.
`amount_round_unit` is the largest of 10000, 1000 and 100 yuan the amount is within 2 % of a
positive multiple of (0 for none); see `round_unit`.
"""

from collections.abc import Callable
from typing import Any

from payguard.events import Event
from payguard.types import HOUR_MS, Fen

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
    "phone_plan_valid": "bool?",
    "amount_round_unit": "int",
}
"""The CEL type of each event variable (`?`: may be null), for translating rules to Python
(`rules.native`). `attrs` is a map, which rules reading it leave to CEL."""


def _tier(event: Event) -> str | None:
    tier = event.attrs.get("tier")
    return tier if isinstance(tier, str) else None


ROUND_UNITS_YUAN: tuple[int, ...] = (10_000, 1_000, 100)
"""The units `amount_round_unit` tries, largest first."""


def round_unit(amount: Fen) -> int:
    """The largest unit U in `ROUND_UNITS_YUAN` (yuan) such that `amount` (fen) is within
    2 % of a positive multiple m·U of it, else 0.

    Cash-out and collusion amounts are round numbers give or take small change (9,800,
    19,999 and 4,999.50 yuan are as telling as 10,000), so an exact `amount % 1000000 == 0`
    misses them. m is the nearest multiple (a tie rounds up, the only choice that can
    match), and the test is exact integer arithmetic: `50 * |a - m*unit| <= m*unit`.
    The tolerance grows with m, so every amount of at least 50 U (5,000 yuan for U = 100)
    matches some unit: read it together with `amount`. 100 minor units count as one major
    unit whatever the currency.

    >>> [round_unit(y * 100) for y in (9_800, 19_999, 12_000, 98, 37)]
    [10000, 10000, 1000, 100, 0]
    """
    for unit_yuan in ROUND_UNITS_YUAN:
        unit = unit_yuan * 100
        multiple = (2 * amount + unit) // (2 * unit)
        if multiple >= 1 and 50 * abs(amount - multiple * unit) <= multiple * unit:
            return unit_yuan
    return 0


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
        "phone_plan_valid": lambda e: e.phone_valid,
        "amount_round_unit": lambda e: round_unit(e.amount or 0),
        "attrs": lambda e: e.attrs,
    }
