"""Evaluate compiled rules against one event's variables; never let one rule sink a decision.

A rule that raises (a null compared with a number, a missing `attrs` key) or returns a
non-boolean is recorded with status `error` and does not hit; the decision goes on
(Marble's behaviour). The CEL context is built once per event from only the variables the
applicable rules reference; a caller deciding many events with the same variable names
passes one `cel.Context` to reuse, because refreshing a context is about twice as cheap as
building a new one. The engine's hot path goes further: `rule_runner` runs the rules as
Python where the translation is exact (`rules.native`) and falls back to `evaluate`.
"""

from collections.abc import Callable, Mapping
from typing import Any

import cel

from payguard.events import Event
from payguard.rules.native import Fallback, RuleRunner, compile_rules
from payguard.rules.ruleset import CompiledRule
from payguard.rules.types import RuleHit


def evaluate(
    rules: tuple[CompiledRule, ...], variables: dict[str, Any], context: Any = None
) -> list[RuleHit]:
    """Run every rule; return records for hits and errors (misses leave no record).

    `context`, if given, is a `cel.Context` that is updated with `variables` instead of
    building a new one; it must have been used only with these same variable names, so
    no value of an earlier event can linger in it."""
    if context is None:
        context = cel.Context(variables)
    else:
        context.update(variables)
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


def rule_runner(
    rules: tuple[CompiledRule, ...],
    types: Mapping[str, str],
    features: frozenset[str],
    event_vars: Mapping[str, Callable[[Event], Any]],
    params: Mapping[str, Any],
) -> tuple[RuleRunner, int]:
    """`evaluate` for one event type as a Python function of (features, event): rules
    translated to Python where that is exact (`rules.native`), CEL for the others and
    for any translated rule that raises. Returns it and how many rules were translated."""

    def in_cel(i: int, values: dict[str, Any], event: Event, hits: list[RuleHit]) -> None:
        compiled = rules[i]
        names = compiled.variables
        variables = {n: read(event) for n, read in event_vars.items() if n in names}
        variables.update({n: values[n] for n in names if n in values})
        variables.update({n: params[n] for n in names if n in params})
        hits.extend(evaluate((compiled,), variables))

    fallback: Fallback = in_cel
    hits = tuple(_record(compiled, "hit", None) for compiled in rules)
    return compile_rules(rules, hits, types, features, event_vars, params, fallback)


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
