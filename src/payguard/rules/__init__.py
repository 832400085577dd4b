"""CEL rules: load and validate versioned rulesets, evaluate them into RuleHit records."""

from payguard.rules.evaluate import evaluate
from payguard.rules.ruleset import (
    ACTION_RANK,
    CompiledRule,
    PolicyConfig,
    Rule,
    RuleError,
    Ruleset,
    load_ruleset,
    parse_ruleset,
)
from payguard.rules.types import CHALLENGE_METHODS, Action, ChallengeMethod, RuleHit
from payguard.rules.variables import event_variables

__all__ = [
    "ACTION_RANK",
    "CHALLENGE_METHODS",
    "Action",
    "ChallengeMethod",
    "CompiledRule",
    "PolicyConfig",
    "Rule",
    "RuleError",
    "RuleHit",
    "Ruleset",
    "evaluate",
    "event_variables",
    "load_ruleset",
    "parse_ruleset",
]
