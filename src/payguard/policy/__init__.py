"""Policy: rule hits and score in, one ordered action with verification and reasons out."""

from payguard.policy.decide import Outcome, decide
from payguard.policy.types import ChainEvidence, Decision, Reason, ShadowHit

__all__ = ["ChainEvidence", "Decision", "Outcome", "Reason", "ShadowHit", "decide"]
