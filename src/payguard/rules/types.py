"""What the rules stage produces: one execution record per rule evaluated."""

from typing import Any, Literal

import msgspec

from payguard.types import Action, ChallengeMethod

Mode = Literal["live", "shadow"]
Status = Literal["hit", "no_hit", "error"]
OnError = Literal["fail_open", "fail_closed"]


class RuleHit(msgspec.Struct, frozen=True, omit_defaults=True):
    """A rule that matched (or failed to evaluate) for one event (Marble's RuleExecution)."""

    rule: str
    status: Status
    mode: Mode
    action: Action
    score: int
    code: str
    reason: str
    challenge: tuple[ChallengeMethod, ...] = ()
    error: str | None = None


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One rule as written in the ruleset file (see rules/default.yaml)."""

    id: str
    when: str
    action: Action
    reason: str
    events: list[str] | None = None
    """Event types the rule applies to; None means every type. Rules that do not apply to
    an event are not evaluated at all, and their variables are not built."""
    description: str = ""
    score: int = 0
    code: str | None = None
    challenge: list[ChallengeMethod] = msgspec.field(default_factory=list)
    mode: Mode = "live"
    enabled: bool = True
    on_error: OnError = "fail_open"
    """What a rule that cannot be evaluated (it raises, or the event's rule budget ran
    out before it) does: `fail_open` treats it as not hit, `fail_closed` as hit, so its
    action applies. Either way the decision records it in `rule_errors`."""


class CompiledRule(msgspec.Struct, frozen=True):
    """A rule that passed validation, with its condition compiled (`rules.compile`)."""

    rule: Rule
    program: Any
    variables: frozenset[str]
    code: str
    condition: str
    """`rule.when` with the ruleset's signals inlined, printed from its syntax tree: what
    actually runs (no comments, fully parenthesised)."""
    cost: int = 0
    """Estimated evaluation cost in steps (`cel.sandbox.cost`)."""
