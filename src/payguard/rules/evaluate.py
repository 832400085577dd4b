"""Evaluate compiled rules against one event's variables; never let one rule sink a decision.

A rule that raises (a null compared with a number, a missing `attrs` key) or returns a
non-boolean cannot be evaluated: it is recorded with status `error` and does not hit when
it fails open (`on_error: fail_open`, the default), or recorded as a hit, so its action
applies, when it fails closed. Either way the record carries the error's class only
(`TypeError`), never its message, which may quote an input value; the decision goes on
(Marble's behaviour). The CEL context is built once per event from only the variables the
applicable rules reference; a caller deciding many events with the same variable names
passes one `cel.Context` to reuse, because refreshing a context is about twice as cheap as
building a new one. The engine's hot path goes further: `rule_runner` runs the rules as
Python where the translation is exact (`rules.native`) and falls back to CEL.

Run-time budget: the time an event spends in the CEL binding is summed, and once it
reaches `budget_us` every rule still to run through CEL fails with `BudgetExceeded` (by
its `on_error`). A CEL call cannot be interrupted, so the budget bounds the rules after
the one that overran, and the compile-time cost cap (`cel.sandbox`) bounds each one.
Translated rules are loop-free Python within the same cost cap, so they are not timed:
the clock is read only around CEL calls, and an event whose rules all translate pays
nothing for the budget.
"""

import time
from collections.abc import Callable, Mapping
from typing import Any

from payguard.cel.extension import cel
from payguard.events import Event
from payguard.rules.native import Fallback, RuleRunner, compile_rules
from payguard.rules.types import CompiledRule, RuleHit

DEFAULT_BUDGET_US = 50_000
"""Time an event's rules may spend in CEL before the rest fail by their `on_error`."""
BUDGET_EXCEEDED = "BudgetExceeded"


def evaluate(
    rules: tuple[CompiledRule, ...],
    variables: dict[str, Any],
    context: Any = None,
    budget_us: int = DEFAULT_BUDGET_US,
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
    budget_ns, spent = budget_us * 1_000, 0
    for compiled in rules:
        if spent >= budget_ns:
            records.append(failed(compiled, BUDGET_EXCEEDED))
            continue
        start = time.perf_counter_ns()
        record = _run(compiled, context)
        spent += time.perf_counter_ns() - start
        if record is not None:
            records.append(record)
    return records


def _run(compiled: CompiledRule, context: Any) -> RuleHit | None:
    """One rule through CEL: its hit or error record, or None when it does not hit."""
    try:
        result = compiled.program.execute(context)
    except Exception as exc:  # CEL raises several types; each one is a rule error
        return failed(compiled, type(exc).__name__)
    if result is True:
        return _record(compiled, "hit", None)
    if result is not False:
        return failed(compiled, f"returned_{type(result).__name__}")
    return None


def rule_runner(
    rules: tuple[CompiledRule, ...],
    types: Mapping[str, str],
    features: frozenset[str],
    event_vars: Mapping[str, Callable[[Event], Any]],
    params: Mapping[str, Any],
    budget_us: int = DEFAULT_BUDGET_US,
    label: str = "",
) -> tuple[RuleRunner, int]:
    """`evaluate` for one event type as a Python function of (features, event): rules
    translated to Python where that is exact (`rules.native`), CEL for the others and
    for any translated rule that raises. Returns it and how many rules were translated."""
    budget_ns = budget_us * 1_000

    def in_cel(
        i: int, values: dict[str, Any], event: Event, hits: list[RuleHit], spent: int
    ) -> int:
        compiled = rules[i]
        if spent >= budget_ns:
            hits.append(failed(compiled, BUDGET_EXCEEDED))
            return spent
        start = time.perf_counter_ns()
        names = compiled.variables
        variables = {n: read(event) for n, read in event_vars.items() if n in names}
        variables.update({n: values[n] for n in names if n in values})
        variables.update({n: params[n] for n in names if n in params})
        record = _run(compiled, cel.Context(variables))
        if record is not None:
            hits.append(record)
        return spent + time.perf_counter_ns() - start

    fallback: Fallback = in_cel
    hits = tuple(_record(compiled, "hit", None) for compiled in rules)
    return compile_rules(rules, hits, types, features, event_vars, params, fallback, label)


def failed(compiled: CompiledRule, error: str) -> RuleHit:
    """The record of a rule that could not be evaluated: an error that does not hit
    (fail_open) or a hit carrying the error (fail_closed)."""
    closed = compiled.rule.on_error == "fail_closed"
    return _record(compiled, "hit" if closed else "error", error)


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
