"""Outcomes: what comes back after a decision (challenge results, labels, hold
resolutions) and what it changes (lifecycle state, cleared causes; docs/decisions.md,
"Lifecycle")."""

from payguard.outcomes.book import OutcomeBook
from payguard.outcomes.listing import DecisionPage, DecisionSearch, DecisionView, search, view
from payguard.outcomes.service import FILED_TYPES, Outcomes
from payguard.outcomes.types import (
    LIFECYCLE_STATES,
    Clearance,
    LifecycleState,
    OutcomeError,
    OutcomeListener,
    OutcomeRecord,
)

__all__ = [
    "FILED_TYPES",
    "LIFECYCLE_STATES",
    "Clearance",
    "DecisionPage",
    "DecisionSearch",
    "DecisionView",
    "LifecycleState",
    "OutcomeBook",
    "OutcomeError",
    "OutcomeListener",
    "OutcomeRecord",
    "Outcomes",
    "search",
    "view",
]
