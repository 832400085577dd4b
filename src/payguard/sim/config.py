"""Simulator configuration: the tactics of each campaign (tuning and held-out) and the
parameters of one run. The campaigns and what each attacker can pass are
`payguard.scenarios`, which the backtest reads without importing the simulator."""

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from payguard.scenarios import SCENARIOS

VariantSet = Literal["all", "tuning", "heldout"]

SPLIT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # Tuning sends the forwarding signal with an app, or goes silent on the web, in one day;
    # held-out spreads the drain over days, with the signal on the web or silent in an app.
    "sms_forwarding": (
        ("signal_app_one_day", "silent_web_one_day"),
        ("signal_web_spread", "silent_app_spread"),
    ),
    # Tuning: rotating hosting IPs in a burst before gold churn, or one address slowly before
    # a transfer. Held-out: one address in a burst before a transfer, or rotating
    # residential proxies over days before gold churn.
    "credential_stuffing": (
        ("rotating_burst_gold", "one_ip_slow_transfer"),
        ("one_ip_burst_transfer", "rotating_slow_gold"),
    ),
    # Carrier signals are always there (prompt sim_swap, or suspend/resume cycling) in the
    # first two tuning tactics; the third is an unlocked handset drained in one night before
    # the owner notices (no signal). Held-out has signals late or not at all, and spreads
    # over two to three days.
    "phone_theft_takeover": (
        (
            "swap_new_device_one_night",
            "owner_handset_suspend_cycles",
            "owner_handset_unnoticed_night",
        ),
        ("late_signal_spread", "owner_handset_silent"),
    ),
    # Tuning: a biller with API history in a burst, a merchant without one in a small drip.
    # Held-out swaps them: the biller drips small amounts, the API-less merchant bursts.
    "merchant_credential_leak": (
        ("api_biller_burst", "no_api_drip_small"),
        ("api_biller_drip_small", "no_api_burst"),
    ),
    # Tuning: a brand-new merchant over days, an established one with refunds over weeks, or
    # a shop with a few weeks of its own small sales whose cardholders rotate credit cards.
    # Held-out: a young merchant with a short real history, or an established one taking
    # several credit cards per cardholder.
    "cash_out_collusion": (
        (
            "new_merchant_days",
            "established_refunds_weeks",
            "seasoned_shop_rotating_cards",
            "shop_ring_split_tickets",
        ),
        ("young_merchant_weeks", "established_several_cards"),
    ),
    # Tuning: codes read aloud to the attacker's device (with or without three wrong codes
    # first), or a coached victim who borrows and transfers on their own phone. Held-out:
    # the victim pays on their own device, or split payments under limits.
    "fake_customer_service": (
        (
            "codes_read_aloud",
            "wrong_codes_then_card",
            "coached_loan_then_transfer",
            "drip_under_code_threshold",
            "coached_vouchers_own_phone",
            "screen_share_safe_account",
            "remote_app_compensation_orders",
        ),
        ("victim_own_device", "split_under_limits"),
    ),
}
"""Scenario -> (tuning tactics, held-out tactics); a variant is named `scenario/tactic`.

Rules, thresholds and models are tuned on `variants="tuning"` only and judged on
`variants="heldout"`; the two sides use genuinely different tactics, not reseeded copies."""

VARIANTS: dict[str, tuple[str, ...]] = {s: tune + held for s, (tune, held) in SPLIT.items()}
"""Scenario -> every tactic of its family (tuning first, then held-out)."""


def variant_names(which: VariantSet = "all") -> tuple[str, ...]:
    """Full variant names (`scenario/tactic`) of one side of the split, in scenario order.

    >>> variant_names("heldout")[0]
    'sms_forwarding/signal_web_spread'
    """
    out: list[str] = []
    for scenario in SCENARIOS:
        tune, held = SPLIT[scenario]
        side = tune + held if which == "all" else tune if which == "tuning" else held
        out.extend(f"{scenario}/{tactic}" for tactic in side)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Parameters of one simulation; the same config always yields the same bytes.

    users: legitimate customers in the population (victims are drawn from them).
    days: length of the simulated window, starting at `start` 00:00 +08:00.
    seed: seed of the single `random.Random` stream that drives everything.
    attack_rate: share of users attacked over the window (split across `scenarios`); each
        enabled scenario gets at least one campaign when > 0.
    start: first day of the window (local time, +08:00).
    scenarios: which attack campaigns to mix in (subset of `SCENARIOS`).
    new_user_share: share of users who register during the window (the rest are older
        accounts whose set-up events are emitted at their real, earlier dates).
    history: emit the set-up events (register, kyc_verify, card_bind) of older accounts before
        the window so that account age is observable; False starts straight with activity.
    activity: multiplier on legitimate session rates (1.0 is about 1.1 events per user-day).
    lookalike_rate: multiplier on the rates of legitimate behaviour that resembles attacks.
    report_rate: share of attacked victims who later file a `fraud_report`.
    chargeback_rate: share of attacked victims whose issuer raises a `chargeback`.
    false_report_rate: share of legitimate card payments later reported as fraud anyway.
    daily_limit_fen: the per-user daily payment limit attackers try to stay just under.
    variants: which side of the generalisation split (`SPLIT`) campaigns draw their tactic
        from; legitimate traffic, look-alikes included, is the same for every value.
    """

    users: int = 5000
    days: int = 30
    seed: int = 7
    attack_rate: float = 0.01
    start: date = date(2026, 10, 1)
    scenarios: tuple[str, ...] = SCENARIOS
    new_user_share: float = 0.06
    history: bool = True
    activity: float = 1.0
    lookalike_rate: float = 1.0
    report_rate: float = 0.6
    chargeback_rate: float = 0.25
    false_report_rate: float = 0.0005
    daily_limit_fen: int = 1_000_000
    variants: VariantSet = "all"

    def __post_init__(self) -> None:
        if self.users < 10:
            raise ValueError("users must be at least 10")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0.0 <= self.attack_rate <= 0.5:
            raise ValueError("attack_rate must be within 0..0.5")
        unknown = sorted(set(self.scenarios) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenarios: {', '.join(unknown)}")
        if self.variants not in ("all", "tuning", "heldout"):
            raise ValueError("variants must be one of all, tuning, heldout")
        if self.lookalike_rate < 0:
            raise ValueError("lookalike_rate must not be negative")


@dataclass(slots=True)
class SimSummary:
    """What `simulate` wrote: counts per event type and per scenario, and how fast."""

    events: int = 0
    labels: int = 0
    users: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_scenario: dict[str, int] = field(default_factory=dict)
    campaigns: dict[str, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    """Campaigns per variant (`scenario/tactic`)."""
    lookalikes: dict[str, int] = field(default_factory=dict)
    """Customers per legitimate look-alike behaviour."""
    elapsed_s: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0


def parse_seeds(text: str) -> list[int]:
    """`1,2,3` or `1-6` or a mix (`1-4,9`) as a list of distinct seeds, in order."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else range(int(low), int(low) + 1)
        except ValueError:
            raise ValueError(f"{text!r} is not a list of seeds like 1,2,3 or 1-6") from None
        seeds += [s for s in span if s not in seeds]
    if not seeds:
        raise ValueError(f"{text!r} names no seed")
    return seeds
