"""Evaluate compiled rules against one event's variables; never let one rule sink a decision.

A rule that raises (a null compared with a number, a missing `attrs` key) or returns a
non-boolean is recorded with status `error` and does not hit; the decision goes on
(Marble's behaviour). The CEL context is built once per event from only the variables the
applicable rules reference.
"""

from typing import Any

import cel

from payguard.rules.ruleset import CompiledRule
from payguard.rules.types import RuleHit


def evaluate(rules: tuple[CompiledRule, ...], variables: dict[str, Any]) -> list[RuleHit]:
    """Run every rule; return records for hits and errors (misses leave no record)."""
    context = cel.Context(variables)
    records: list[RuleHit] = []
    for compiled in rules:
        try:
            result = compiled.program.execute(context)
        except Exception as exc:  # CEL raises several types; each one is a rule error
            records.append(_record(compiled, "error", f"{type(exc).__name__}: {exc}"))
            continue
        if result is True:
            records.append(_record(compiled, "hit", None))
        elif result is not False:
            records.append(_record(compiled, "error", f"returned {type(result).__name__}"))
    return records


def _record(compiled: CompiledRule, status: str, error: str | None) -> RuleHit:
    rule = compiled.rule
    return RuleHit(
        rule=rule.id,
        status="hit" if status == "hit" else "error",
        mode=rule.mode,
        action=rule.action,
        score=rule.score,
        code=compiled.code,
        reason=rule.reason,
        challenge=tuple(rule.challenge),
        error=error,
    )
