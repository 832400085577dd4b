"""Rules as Python: one function per event type running its rules in order.

Each rule's condition is translated by `cel.translate` where the translation is exact;
the others call back into CEL (`Fallback`) every time, and so does a translated rule that
raises, so an error (and its message) is CEL's own.

Generated code contains only names of known variables (as string subscripts), integer
and string literals written with `repr`, and a fixed set of operators, so a ruleset's
text can never inject code.
"""

from collections.abc import Callable, Mapping
from typing import Any

from payguard.cel.translate import RUNTIME, Untranslatable, translate
from payguard.events import Event
from payguard.generated import comment, compile_function
from payguard.rules.types import CompiledRule, RuleHit

RuleRunner = Callable[[dict[str, Any], Event], list[RuleHit]]
"""Evaluates one event type's rules from its features and the event, in rule order."""

Fallback = Callable[[int, dict[str, Any], Event, list[RuleHit], int], int]
"""Runs rule i through CEL and appends its hit or error record, if any; takes and
returns the nanoseconds this event has spent in CEL (its run-time budget)."""


def compile_rules(
    rules: tuple[CompiledRule, ...],
    hits: tuple[RuleHit, ...],
    types: Mapping[str, str],
    features: frozenset[str],
    event_vars: Mapping[str, Callable[[Event], Any]],
    params: Mapping[str, Any],
    fallback: Fallback,
    label: str = "",
) -> tuple[RuleRunner, int]:
    """One Python function evaluating `rules` in order; returns it and how many rules
    were translated (the rest call `fallback`, i.e. CEL, every time).

    `hits[i]` is the record appended when rule i holds. Features are read from the
    snapshot dict, event variables through their functions (once each), params inlined.
    Each rule is preceded by a comment with its id and CEL text; `label` names the code
    (`<payguard rules LABEL #N>` in tracebacks, `payguard.generated`)."""
    used: set[str] = set()

    def code_of(name: str) -> str:  # the precedence of `variables_for`: params, features, event
        if name in params:
            return repr(params[name])
        if name in features:
            return f"f[{name!r}]"
        used.add(name)
        return f"v_{name}"

    body: list[str] = []
    translated = 0
    for i, compiled in enumerate(rules):
        call = f"spent = fallback({i}, f, e, hits, spent)"
        body.append("    " + comment(f"rule {compiled.rule.id}: {compiled.condition}"))
        try:
            condition = translate(compiled.condition, types, code_of)
        except (Untranslatable, RecursionError):  # too deep for Python: CEL runs it
            body += ["    # (runs in CEL: no exact Python translation)", f"    {call}"]
            continue
        translated += 1
        body += [
            "    try:",
            f"        if {condition}:",
            f"            hits.append(hit_{i})",
            "    except Exception:",
            f"        {call}",
        ]
    head = [f"    v_{name} = event_vars[{name!r}](e)" for name in sorted(used)]
    start = ["def run(f, e):", *head, "    hits = []", "    spent = 0"]
    source = "\n".join([*start, *body, "    return hits"])
    namespace: dict[str, Any] = {
        **RUNTIME,
        "event_vars": dict(event_vars),
        "fallback": fallback,
        **{f"hit_{i}": hit for i, hit in enumerate(hits)},
    }
    runner: RuleRunner = compile_function(
        source + "\n", f"rules {label}".rstrip(), "run", namespace
    )
    return runner, translated
