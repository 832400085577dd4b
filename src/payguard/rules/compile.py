"""One rule as written, validated and compiled: its action, events, score and condition.

The condition is a CEL boolean checked and compiled by `payguard.cel`, as a chain step's
is; signals (named conditions of the ruleset) are validated and inlined here by tree.
"""

import re

from payguard.cel import (
    MAX_EXPANDED_CHARS,
    MAX_EXPRESSION_CHARS,
    RuleError,
    check_condition,
    compile_condition,
    syntax,
)
from payguard.rules.types import CompiledRule, Rule
from payguard.types import MONEY_OUT_TYPES

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

HOLDABLE_TYPES: frozenset[str] = MONEY_OUT_TYPES
"""Money leaving the customer: the only events a hold (accept now, pay out later) fits."""


def expand_signals(raw: dict[str, str], known: set[str]) -> dict[str, syntax.Node]:
    """Each signal validated and fully expanded (earlier signals inlined), in file order,
    as a syntax tree."""
    expanded: dict[str, syntax.Node] = {}
    for name, text in raw.items():
        owner = f"signals.{name}"
        if not _IDENTIFIER.fullmatch(name):
            raise RuleError(owner, "a signal name is a CEL identifier (letters, digits, _)")
        if name in known:
            raise RuleError(owner, "a signal may not shadow a feature, field or param")
        checked = check_condition(owner, text, known, MAX_EXPANDED_CHARS, expanded, list_reads=True)
        expanded[name] = checked.tree
    return expanded


def compile_rule(
    rule: Rule, known: set[str], event_types: set[str], signals: dict[str, syntax.Node]
) -> CompiledRule:
    """Validate one rule as written against the names it may read and compile its
    condition with the ruleset's `signals` inlined; errors are RuleErrors naming it."""
    if rule.action == "hold" and (
        rule.events is None or not HOLDABLE_TYPES.issuperset(rule.events)
    ):
        raise RuleError(
            rule.id,
            "action hold applies only to money leaving the customer: list `events` from "
            + ", ".join(sorted(HOLDABLE_TYPES)),
        )
    if len(rule.when) > MAX_EXPRESSION_CHARS:
        raise RuleError(rule.id, f"`when` is longer than {MAX_EXPRESSION_CHARS} characters")
    for event_type in rule.events or ():
        if event_type not in event_types:
            raise RuleError(rule.id, f"unknown event type {event_type!r} in `events`")
    if rule.action == "challenge" and not rule.challenge:
        raise RuleError(rule.id, "a challenge rule must list at least one `challenge` method")
    if not 0 <= rule.score <= 100:
        raise RuleError(rule.id, "`score` must be between 0 and 100")
    checked = compile_condition(
        rule.id, rule.when, known, MAX_EXPANDED_CHARS, signals, list_reads=True
    )
    return CompiledRule(
        rule=rule,
        program=checked.program,
        variables=checked.variables,
        code=rule.code or rule.id,
        condition=checked.text,
        cost=checked.cost,
    )
