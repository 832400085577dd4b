"""CEL conditions, checked and compiled the same way wherever they are written.

A condition is a CEL boolean over flat variables (`amount`, `count_card_bind_by_user_1h`).
Rules, signals and attack-chain steps are all conditions, so they share one set of checks:
the syntax tree is parsed (`cel.syntax`), signals are inlined by tree, macros, unknown
functions and over-budget conditions are refused (`cel.sandbox`), every identifier must be
known, and what runs is that tree printed back, so no comment or string can hide anything
from the checks. Errors are `RuleError`s naming the rule, signal or chain they come from.
"""

import difflib
from typing import Any, NamedTuple

from payguard.cel import lists, sandbox, syntax
from payguard.cel.extension import cel

MAX_EXPRESSION_CHARS = 2_000
MAX_EXPANDED_CHARS = 8_000
"""A condition as written is at most MAX_EXPRESSION_CHARS; with its signals inlined, at most
this (a signal reused by many rules must not multiply a rule's cost without bound)."""


class RuleError(ValueError):
    """A ruleset failed validation: `rule` names the rule, signal, chain or section (`-`
    for the whole document), `message` says what and where."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"rule {rule}: {message}")
        self.rule = rule
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": "invalid_ruleset", "rule": self.rule, "reason": self.message}


class CheckedCondition(NamedTuple):
    """A condition that passed every check, as a tree and as the text that runs."""

    tree: syntax.Node
    text: str
    variables: frozenset[str]
    cost: int


class CompiledCondition(NamedTuple):
    program: Any
    variables: frozenset[str]
    text: str
    """The canonical text CEL compiled (and `cel.translate` may translate)."""
    cost: int


def check_condition(
    owner: str,
    text: str,
    known: set[str],
    max_chars: int = MAX_EXPRESSION_CHARS,
    signals: dict[str, syntax.Node] | None = None,
    *,
    list_reads: bool = False,
) -> CheckedCondition:
    """Parse one CEL condition, inline `signals` (by tree, not by text) and check it:
    no macros or unknown functions, every identifier known, cost within the budget.
    With `list_reads` (rules and signals, not chain steps), `x in deny_list('name')` is
    rewritten to its membership variable (`cel.lists`), which counts as known.
    Errors are RuleErrors naming `owner`."""
    if len(text) > max_chars:
        raise RuleError(owner, f"condition is longer than {max_chars} characters")
    try:
        tree = syntax.parse(text)
    except syntax.CelSyntaxError as exc:
        raise RuleError(owner, f"CEL syntax error: {exc}") from None
    if lists.uses_lists(tree):
        if not list_reads:
            raise RuleError(owner, "lists (`deny_list`, `allow_list`) are read by rules only")
        try:
            tree = lists.rewrite(tree)
        except lists.ListUseError as exc:
            raise RuleError(owner, str(exc)) from None
    if signals:
        tree = syntax.substitute(tree, signals)
        if syntax.depth(tree) > syntax.MAX_DEPTH:
            raise RuleError(
                owner, f"nested more than {syntax.MAX_DEPTH} levels deep with its signals inlined"
            )
    try:
        cost = sandbox.check(tree)
    except sandbox.SandboxError as exc:
        raise RuleError(owner, str(exc)) from None
    if cost > sandbox.MAX_RULE_COST:
        raise RuleError(
            owner, f"estimated cost {cost} exceeds the budget of {sandbox.MAX_RULE_COST} per rule"
        )
    rendered = syntax.render(tree)
    if len(rendered) > 2 * MAX_EXPANDED_CHARS:
        raise RuleError(owner, "condition with its signals inlined is too long")
    names = {node.name for node in syntax.walk(tree) if isinstance(node, syntax.Ident)}
    for name in sorted(n for n in names - known if lists.membership(n) is None):
        hint = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
        suggestion = f"; did you mean `{hint[0]}`?" if hint else ""
        raise RuleError(owner, f"unknown identifier `{name}`{suggestion}")
    return CheckedCondition(tree, rendered, frozenset(names), cost)


def compile_condition(
    owner: str,
    text: str,
    known: set[str],
    max_chars: int = MAX_EXPRESSION_CHARS,
    signals: dict[str, syntax.Node] | None = None,
    *,
    list_reads: bool = False,
) -> CompiledCondition:
    """Check one CEL boolean (`check_condition`) and compile its canonical text. Shared
    with chain patterns, so a condition means the same thing wherever it is written."""
    checked = check_condition(owner, text, known, max_chars, signals, list_reads=list_reads)
    try:
        cel.compile(text)  # CEL's own parser must accept the text as written, too
        program = cel.compile(checked.text)
    except ValueError as exc:
        raise RuleError(owner, f"CEL syntax error: {exc}") from None
    return CompiledCondition(program, checked.variables, checked.text, checked.cost)
