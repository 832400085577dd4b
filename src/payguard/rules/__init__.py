"""CEL rules: validate and compile rules as written, evaluate them into RuleHit records.

The ruleset document that holds them (with chains, policy and params) is
`payguard.ruleset`; the CEL machinery they share with chains is `payguard.cel`.
"""

from payguard.rules.compile import compile_rule, expand_signals
from payguard.rules.evaluate import evaluate
from payguard.rules.external import EntityControls, ListReader, list_reads, list_values
from payguard.rules.types import CompiledRule, Rule, RuleHit
from payguard.rules.variables import event_variables

__all__ = [
    "CompiledRule",
    "EntityControls",
    "ListReader",
    "Rule",
    "RuleHit",
    "compile_rule",
    "evaluate",
    "event_variables",
    "expand_signals",
    "list_reads",
    "list_values",
]
