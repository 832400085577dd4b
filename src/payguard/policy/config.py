"""The policy's configuration: the `policy:` section of a ruleset (thresholds, holds,
step-up choice, what a challenge's result clears)."""

from typing import Annotated, Literal, get_args

import msgspec

from payguard.events.contract import EventType, LabelSource
from payguard.types import LEAVING_TYPES, ChallengeMethod


class StepUpConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the policy chooses verification methods (docs/verification.md)."""

    phone_risk_minutes: Annotated[int, msgspec.Meta(ge=0, le=4320)] = 4320
    """After a SIM swap, a loss report or its undoing, forwarding or a number change, no
    SMS code and no call to the number for this long (at most 72 h: the signals' window)."""
    known_device_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 30
    """`in_app_confirm` only on a device the account has used for at least this long."""
    prefer: list[ChallengeMethod] = msgspec.field(
        default_factory=lambda: ["in_app_confirm", "face", "hardware_token", "sms_otp", "callback"]
    )
    """The order methods are offered in (first = preferred); a method left out of this
    list is never offered."""


class OutcomesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a challenge's result does to later decisions (docs/decisions.md, "Lifecycle")."""

    clear_hours: Annotated[int, msgspec.Meta(ge=0, le=720)] = 72
    """A strong step-up passed clears the rules that asked for it, for that account and
    device, this long (0: never): they do not challenge the customer again meanwhile."""
    strong: list[ChallengeMethod] = msgspec.field(
        default_factory=lambda: ["face", "hardware_token", "in_app_confirm"]
    )
    """Methods whose pass proves the customer, not just whoever holds the line: an SMS
    code or a call to the number (`sms_otp`, `callback`) clears only `line_cleared`."""
    line_cleared: list[str] = msgspec.field(default_factory=list)
    """Rules whose cause is the amount, not who holds the account (the cumulative limits):
    a passed SMS code or callback clears them as a strong step-up does, for that account
    and device, for `clear_hours`. The step-up choice offers a line method only while the
    line is trusted, and what such a rule asks (does the owner mean to go over the limit?)
    the owner's line answers; an attacker who passed it passes it again, so asking again
    stops no one and asks the honest customer on every payment until the window rolls
    off. Every other rule a line method passed stays. Each must be a rule of the ruleset."""
    released_by_label: list[str] = msgspec.field(default_factory=list)
    """Rules a `not_fraud` label on a stopped decision (review or block) releases: from
    the label on, for `clear_hours`, they do not challenge that account again on any
    device (the follow-on after a stop, lifted once someone says the stop was wrong).
    Each must be a rule of the ruleset."""
    release_sources: list[LabelSource] = msgspec.field(default_factory=lambda: ["analyst", "bank"])
    """Label sources whose `not_fraud` releases: a person who looked, not the account's
    own "that was me", which whoever holds the account can send."""


_WEEK_MINUTES = 10080
"""The longest follow-on horizon: the `stopped` features look back 7 days."""
FollowOnMinutes = Annotated[int, msgspec.Meta(ge=0, le=_WEEK_MINUTES)]


class FollowOnConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long the engine remembers what it stopped, per kind of entity that was stopped
    (docs/decisions.md, "Follow-on after a stop"), in minutes (0: not at all).

    Rules read them as `follow_on_<kind>_minutes` (`params()`), against the
    `minutes_since_stopped_by_<kind>_7d` features. The person at a stopped account or
    device moves on or gets a person to look within a day, so those are short (each
    minute of them asks the honest customer whose payment was wrongly stopped again). The
    merchant of a cash-out and the payee of a scam are the fraud itself and stay in
    business: they are remembered for the week, where an honest shop or payee rarely
    meets a stop at all. A stolen card or identity taken to other accounts likewise."""

    user: FollowOnMinutes = 1440
    device: FollowOnMinutes = 1440
    merchant: FollowOnMinutes = _WEEK_MINUTES
    payee: FollowOnMinutes = _WEEK_MINUTES
    card: FollowOnMinutes = _WEEK_MINUTES
    identity: FollowOnMinutes = _WEEK_MINUTES

    def params(self) -> dict[str, int]:
        """The horizons as the rule variables `follow_on_<kind>_minutes`."""
        return {
            f"follow_on_{kind}_minutes": minutes
            for kind, minutes in msgspec.structs.asdict(self).items()
        }


class DegradedConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a worker answers when the shared state store cannot be reached (a Redis
    node failing over, a network partition), per event type (docs/scale.md, "Degraded
    mode"): without the state no feature can be read, so no rule can be trusted.

    Event types in `closed` fail closed: answered `closed_action` (a person reviews it;
    the money does not leave). Every other type fails open: allowed. Either way the
    decision says why (reason `degraded_state_unavailable`) and is recorded, so the
    event is in the log that rebuilds the state afterwards. The default closes every
    event that takes money from the customer (`types.LEAVING_TYPES`) and opens logins,
    bindings and profile changes, which a later money event is checked against."""

    closed: list[EventType] = msgspec.field(default_factory=lambda: sorted(LEAVING_TYPES))  # type: ignore[arg-type]
    closed_action: Literal["review", "block"] = "review"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.closed) - set(get_args(EventType)))
        if unknown:
            raise ValueError(f"policy.degraded.closed: unknown event types {unknown}")


class PolicyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Score thresholds that escalate the action regardless of which rules hit, how long
    a hold lasts, and how verification methods are chosen."""

    challenge_at: int | None = None
    review_at: int | None = None
    block_at: int | None = None
    hold_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 24
    """How long a held transfer waits for its owner to revoke it before it is released."""
    step_up: StepUpConfig = StepUpConfig()
    outcomes: OutcomesConfig = OutcomesConfig()
    follow_on: FollowOnConfig = FollowOnConfig()
    """Follow-on horizons after a stop, per entity kind (rule variables)."""
    degraded: DegradedConfig = DegradedConfig()
    """Fail-open or fail-closed per event type while the state store is unreachable."""
