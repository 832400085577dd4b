"""Combine rule hits and score into one action, the verification to ask for, and reasons.

Outcomes are ordered allow < challenge < review < block, so combining is taking the max.
A challenge offers only methods that every challenging rule accepts: a rule that says
"not SMS — the phone may be in the attacker's hands" must not be overruled by another rule
that would have settled for SMS. When no method is acceptable to all of them, the event
goes to review instead, and the reasons say so.
"""

from payguard.policy.types import Reason, ShadowHit
from payguard.rules import ACTION_RANK, CHALLENGE_METHODS, Action, ChallengeMethod, RuleHit
from payguard.rules.ruleset import PolicyConfig

DEFAULT_CHALLENGE: tuple[ChallengeMethod, ...] = ("face", "in_app_confirm", "hardware_token")
"""Offered when only the score threshold (no rule) asks for a challenge."""

_RANKED: list[Action] = ["allow", "challenge", "review", "block"]


class Outcome:
    """The policy's result before it is stamped with ids, versions and latency."""

    __slots__ = ("action", "challenge", "reasons", "score", "shadow")

    def __init__(
        self,
        action: Action,
        score: int,
        reasons: list[Reason],
        challenge: list[ChallengeMethod] | None,
        shadow: list[ShadowHit],
    ) -> None:
        self.action = action
        self.score = score
        self.reasons = reasons
        self.challenge = challenge
        self.shadow = shadow


def decide(hits: list[RuleHit], policy: PolicyConfig) -> Outcome:
    if not hits and _threshold_rank(0, policy) == 0:
        return Outcome("allow", 0, [], None, [])  # the common case, without the bookkeeping
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
                text=f"risk score {score} reaches the {_RANKED[rank]} threshold",
            )
        )
    challenge: list[ChallengeMethod] | None = None
    if rank == ACTION_RANK["challenge"]:
        challenge = _common_methods(live)
        if not challenge:
            rank = ACTION_RANK["review"]
            reasons.append(
                Reason(
                    code="NO_TRUSTED_CHALLENGE",
                    rule="policy",
                    text="no verification method is acceptable to every rule that asked for "
                    "one, so a person reviews instead",
                )
            )
            challenge = None
    return Outcome(_RANKED[rank], score, reasons, challenge, shadow)


def _threshold_rank(score: int, policy: PolicyConfig) -> int:
    for action, at in (
        ("block", policy.block_at),
        ("review", policy.review_at),
        ("challenge", policy.challenge_at),
    ):
        if at is not None and score >= at:
            return ACTION_RANK[action]
    return 0


def _common_methods(live: list[RuleHit]) -> list[ChallengeMethod]:
    asking = [set(h.challenge) for h in live if h.action == "challenge"]
    allowed = set.intersection(*asking) if asking else set(DEFAULT_CHALLENGE)
    return [m for m in CHALLENGE_METHODS if m in allowed]
