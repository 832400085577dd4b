"""Policy: rule hits and score in, one ordered action with verification and reasons out."""

from payguard.policy.decide import Outcome, decide
from payguard.policy.types import Decision, Reason, ShadowHit

__all__ = ["Decision", "Outcome", "Reason", "ShadowHit", "decide"]
