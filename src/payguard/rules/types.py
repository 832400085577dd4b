"""What the rules stage produces: one execution record per rule evaluated."""

from typing import Literal

import msgspec

Action = Literal["allow", "challenge", "hold", "review", "block"]
ChallengeMethod = Literal["face", "in_app_confirm", "callback", "hardware_token", "sms_otp"]
Mode = Literal["live", "shadow"]
Status = Literal["hit", "no_hit", "error"]
OnError = Literal["fail_open", "fail_closed"]

CHALLENGE_METHODS: tuple[ChallengeMethod, ...] = (
    "face",
    "in_app_confirm",
    "callback",
    "hardware_token",
    "sms_otp",
)


class RuleHit(msgspec.Struct, frozen=True, omit_defaults=True):
    """A rule that matched (or failed to evaluate) for one event (Marble's RuleExecution)."""

    rule: str
    status: Status
    mode: Mode
    action: Action
    score: int
    code: str
    reason: str
    challenge: tuple[ChallengeMethod, ...] = ()
    error: str | None = None
