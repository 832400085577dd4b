"""Policy: rule hits and score in, one ordered action with verification and reasons out."""

from payguard.policy.decide import Outcome, decide
from payguard.policy.types import ChainEvidence, Decision, HoldTerms, Reason, ShadowHit

__all__ = ["ChainEvidence", "Decision", "HoldTerms", "Outcome", "Reason", "ShadowHit", "decide"]
