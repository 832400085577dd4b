"""Step-up choice: which verification methods a challenge may offer, given what is known
about the customer's phone and device when the event is decided.

A method is only worth asking for if the attacker cannot pass it. An SMS code (or a call
to the number) proves possession of the line, which is exactly what a SIM swap, a loss
report, forwarding or a number change puts in doubt; an in-app confirmation proves
possession of the device asking, which proves something only when the account has used
that device for a long time and nobody reported it lost or linked it to fraud. Face (with
liveness) and a hardware token are not weakened by any of these signals.

The rules say which methods they would accept; this module removes the untrustworthy
ones and orders the rest by preference. Each removal becomes a reason, so an analyst (and
a customer asking "why not SMS?") sees why; when nothing trustworthy is left the policy
sends the event to review.
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

from payguard.features import NEVER
from payguard.policy.config import StepUpConfig
from payguard.types import ChallengeMethod

PHONE_SIGNALS: tuple[tuple[str, str], ...] = (
    ("minutes_since_sim_swap_by_user_72h", "the SIM was swapped"),
    ("minutes_since_line_suspend_by_user_72h", "the phone was reported lost"),
    ("minutes_since_line_resume_by_user_72h", "a loss report on the line was undone"),
    ("minutes_since_forwarding_by_user_72h", "call or SMS forwarding was set on the line"),
    ("minutes_since_phone_change_by_user_72h", "the account's phone number was changed"),
)
"""Catalog features saying the phone line may be in other hands, with what each means."""
DEVICE_AGE = "age_any_by_user_device"
DEVICE_REPORTS = "count_fraud_label_by_device_90d"
LOSS_REPORT = "minutes_since_line_suspend_by_user_72h"
FEATURES: frozenset[str] = frozenset(
    {name for name, _ in PHONE_SIGNALS} | {DEVICE_AGE, DEVICE_REPORTS}
)
"""Every feature the step-up choice reads (snapshotted only when the policy challenges)."""

LINE_METHODS: frozenset[ChallengeMethod] = frozenset({"sms_otp", "callback"})
"""Methods that reach whoever holds the phone line."""


class Exclusion(NamedTuple):
    method: ChallengeMethod
    why: str


class StepUp(NamedTuple):
    methods: list[ChallengeMethod]
    """Trustworthy methods among those the rules accept, most preferred first."""
    excluded: list[Exclusion]
    """Accepted methods left out, each with the reason."""


def choose(
    accepted: set[ChallengeMethod], signals: Mapping[str, Any], config: StepUpConfig
) -> StepUp:
    """The methods to offer among `accepted`, given the step-up features as of the event.
    A missing feature (a catalog without it) counts against the method it vouches for."""
    methods: list[ChallengeMethod] = []
    excluded: list[Exclusion] = []
    for method in config.prefer:
        if method not in accepted:
            continue
        why = distrust(method, signals, config)
        if why is None:
            methods.append(method)
        else:
            excluded.append(Exclusion(method, why))
    for method in sorted(accepted - set(config.prefer)):
        excluded.append(Exclusion(method, "not in the policy's step_up.prefer list"))
    return StepUp(methods, excluded)


def distrust(
    method: ChallengeMethod, signals: Mapping[str, Any], config: StepUpConfig
) -> str | None:
    """Why `method` cannot be trusted now, or None if it can."""
    if method in LINE_METHODS:
        return _line_at_risk(signals, config.phone_risk_minutes)
    if method == "in_app_confirm":
        return _device_untrusted(signals, config)
    return None


def _line_at_risk(signals: Mapping[str, Any], window_minutes: int) -> str | None:
    for name, meaning in PHONE_SIGNALS:
        minutes = signals.get(name)
        if minutes is None:
            return "the phone line's recent history is unknown"
        if minutes < NEVER and minutes < window_minutes:
            return f"{meaning} {_ago(minutes)}, so the line may be in other hands"
    return None


def _device_untrusted(signals: Mapping[str, Any], config: StepUpConfig) -> str | None:
    age, reports, lost = (
        signals.get(DEVICE_AGE),
        signals.get(DEVICE_REPORTS),
        signals.get(LOSS_REPORT),
    )
    if age is None or reports is None or lost is None:
        return "this device's history with the account is unknown"
    if reports > 0:
        return "this device is linked to a fraud report"
    if lost < NEVER and lost < config.phone_risk_minutes:
        return f"the phone was reported lost {_ago(lost)}: the device may be in other hands"
    if age < config.known_device_days * 1440:
        return (
            f"the account has used this device for {_duration(age)}, "
            f"under {config.known_device_days} days"
        )
    return None


def _ago(minutes: int) -> str:
    return f"{_duration(minutes)} ago"


def _duration(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 2880:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"
