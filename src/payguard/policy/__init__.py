"""Policy: rule hits and score in, one ordered action with verification and reasons out."""

from payguard.decision import ChainEvidence, Decision, HoldTerms, Reason, ShadowHit
from payguard.policy.config import FollowOnConfig, OutcomesConfig, PolicyConfig, StepUpConfig
from payguard.policy.decide import PolicyResult, decide

__all__ = [
    "ChainEvidence",
    "Decision",
    "FollowOnConfig",
    "HoldTerms",
    "OutcomesConfig",
    "PolicyConfig",
    "PolicyResult",
    "Reason",
    "ShadowHit",
    "StepUpConfig",
    "decide",
]
