"""Combine rule hits and score into one action, the verification to ask for, and reasons.

Outcomes are ordered allow < challenge < hold < review < block, so combining is taking the
max. A challenge offers only methods that every challenging rule accepts: a rule that says
"not SMS — the phone may be in the attacker's hands" must not be overruled by another rule
that would have settled for SMS. Of those, the step-up choice (`policy.stepup`) keeps the
ones the phone's and device's recent history still make trustworthy, in order of
preference. When no method is left, the event goes to review instead, and the reasons say
why each method was left out.
"""

from collections.abc import Callable, Mapping
from typing import Any

from payguard.decision import Reason, ShadowHit
from payguard.policy import stepup
from payguard.policy.config import PolicyConfig
from payguard.rules import RuleHit
from payguard.types import ACTION_RANK, ACTIONS, Action, ChallengeMethod

Signals = Callable[[], Mapping[str, Any]]
"""The step-up features as of the event (`stepup.FEATURES`), read only for a challenge."""

DEFAULT_CHALLENGE: tuple[ChallengeMethod, ...] = ("face", "in_app_confirm", "hardware_token")
"""Offered when only the score threshold (no rule) asks for a challenge."""


class PolicyResult:
    """The policy's result before it is stamped with ids, versions and latency."""

    __slots__ = ("action", "challenge", "hold_hours", "reasons", "score", "shadow")

    def __init__(
        self,
        action: Action,
        score: int,
        reasons: list[Reason],
        challenge: list[ChallengeMethod] | None,
        shadow: list[ShadowHit],
        hold_hours: int | None = None,
    ) -> None:
        self.action = action
        self.score = score
        self.reasons = reasons
        self.challenge = challenge
        self.shadow = shadow
        self.hold_hours = hold_hours
        """How long a held event waits for revocation (only when action is hold)."""


def decide(hits: list[RuleHit], policy: PolicyConfig, signals: Signals) -> PolicyResult:
    if not hits and _threshold_rank(0, policy) == 0:
        return PolicyResult("allow", 0, [], None, [])  # the common case, without the bookkeeping
    live = [h for h in hits if h.status == "hit" and h.mode == "live"]
    shadow = [
        ShadowHit(rule=h.rule, action=h.action, score=h.score)
        for h in hits
        if h.status == "hit" and h.mode == "shadow"
    ]
    score = min(100, sum(h.score for h in live))
    live.sort(key=lambda h: (-ACTION_RANK[h.action], -h.score, h.rule))
    reasons = [Reason(code=h.code, rule=h.rule, text=h.reason) for h in live]
    rank = max((ACTION_RANK[h.action] for h in live), default=0)
    threshold_rank = _threshold_rank(score, policy)
    if threshold_rank > rank:
        rank = threshold_rank
        reasons.append(
            Reason(
                code="SCORE_THRESHOLD",
                rule="policy",
                text=f"risk score {score} reaches the {ACTIONS[rank]} threshold",
            )
        )
    challenge: list[ChallengeMethod] | None = None
    if rank == ACTION_RANK["challenge"]:
        accepted = _common_methods(live)
        chosen = stepup.choose(accepted, signals(), policy.step_up) if accepted else None
        if chosen is not None:
            reasons.extend(
                Reason(
                    code="STEP_UP_EXCLUDED", rule="policy", text=f"{e.method} not offered: {e.why}"
                )
                for e in chosen.excluded
            )
        if chosen is None or not chosen.methods:
            rank = ACTION_RANK["review"]
            reasons.append(_no_trusted_challenge(accepted))
        else:
            challenge = chosen.methods
    hold_hours = policy.hold_hours if rank == ACTION_RANK["hold"] else None
    return PolicyResult(ACTIONS[rank], score, reasons, challenge, shadow, hold_hours)


def _no_trusted_challenge(accepted: set[ChallengeMethod]) -> Reason:
    why = (
        "none of the verification methods the rules accept can be trusted now"
        if accepted
        else "no verification method is acceptable to every rule that asked for one"
    )
    return Reason(
        code="NO_TRUSTED_CHALLENGE", rule="policy", text=f"{why}, so a person reviews instead"
    )


def _threshold_rank(score: int, policy: PolicyConfig) -> int:
    thresholds: tuple[tuple[Action, int | None], ...] = (
        ("block", policy.block_at),
        ("review", policy.review_at),
        ("challenge", policy.challenge_at),
    )
    for action, at in thresholds:
        if at is not None and score >= at:
            return ACTION_RANK[action]
    return 0


def _common_methods(live: list[RuleHit]) -> set[ChallengeMethod]:
    asking = [set(h.challenge) for h in live if h.action == "challenge"]
    return set.intersection(*asking) if asking else set(DEFAULT_CHALLENGE)
