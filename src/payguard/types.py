"""The vocabulary every stage shares: aliases, the ordered action, event-type families.

Money is integer minor units (fen) everywhere inside payguard; time is integer epoch
milliseconds. Neither is ever a float. Each set below is written once, here; a stage that
needs a narrower or wider set derives it from these by name, so two sets can never
disagree by accident.
"""

from collections.abc import Mapping
from typing import Literal, TypeAlias, get_args

EpochMs: TypeAlias = int
"""Event time in milliseconds since the Unix epoch (UTC)."""

Fen: TypeAlias = int
"""Money in minor units (1 CNY = 100 fen)."""

EntityKey: TypeAlias = str
"""The key of one entity instance: a user id, a device id, a token, or a pair joined by '|'."""

MINUTE_MS: int = 60_000
HOUR_MS: int = 60 * MINUTE_MS
DAY_MS: int = 24 * HOUR_MS

Action = Literal["allow", "challenge", "hold", "review", "block"]
"""What payguard answers, in order of severity: combining actions is taking the max."""

ACTIONS: tuple[Action, ...] = get_args(Action)
"""Every action, least severe first (the order `Action` is written in)."""

ACTION_RANK: Mapping[Action, int] = {action: rank for rank, action in enumerate(ACTIONS)}
"""Severity: the most severe action of the rules that hit wins. A hold accepts the money
but delays it (revocable), so it outranks a challenge and yields to a person's review."""

DECLINED: frozenset[Action] = frozenset({"review", "block"})
"""Actions after which the money did not leave (a person reviews it, or it is refused):
`settled` feature filters skip such an event."""

ChallengeMethod = Literal["face", "in_app_confirm", "callback", "hardware_token", "sms_otp"]
"""A step-up a challenge may offer (any one suffices; docs/verification.md)."""

CHALLENGE_METHODS: tuple[ChallengeMethod, ...] = get_args(ChallengeMethod)
"""Every challenge method, in the order reports list them."""

MONEY_OUT_TYPES: frozenset[str] = frozenset({"payment", "transfer", "withdrawal", "investment_buy"})
"""Money paid out of the customer's own funds to someone else: the only events a `hold`
(accept now, pay out later) fits and the events the learned model scores. A
`loan_disburse` is not one: the bank pays the loan *in*, so there is nothing of the
customer's to hold back; the debt it creates is what `LEAVING_TYPES` adds."""

LEAVING_TYPES: frozenset[str] = MONEY_OUT_TYPES | {"loan_disburse"}
"""Money an attack takes from the customer: everything in `MONEY_OUT_TYPES` plus a
`loan_disburse`, a loan landing as the victim's debt that the attacker then moves out.
The backtest and the simulator count attack money and friction on these. Not money here:
`loan_apply` (a request), `investment_redeem` (the bought position coming back),
`refund` (money returning)."""
