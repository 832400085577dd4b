"""Versioned rulesets: CEL rules loaded from YAML, validated before they can run.

A rule is `when` (a CEL boolean over flat variables: event fields, features and ruleset
parameters) plus what to do when it holds. Validation happens at load and at upload, so a
bad rule never reaches the decision path: syntax errors carry the position, unknown
identifiers name the nearest known variable, comprehension macros, unknown functions and
over-budget conditions are refused (`rules.sandbox`). The checks run on the syntax tree
(`rules.syntax`), and what runs is that tree printed back, so no comment or string can
hide anything from them. YAML is read by a loader that refuses aliases expanding the
document beyond `MAX_YAML_NODES` nodes (`rules.yamlload`).

Variables are flat (`amount`, `count_card_bind_by_user_1h`), not nested maps: the CEL
binding converts nested maps entry by entry (~1 µs each) but flat variables at ~0.2 µs,
and only the variables a rule references are ever built.

A ruleset may also hold attack-chain patterns (`chains:`, docs/chains.md). They are
validated first, against the names their conditions may read, and the features they
provide (`chain_<name>_matched`, …) then become names the rules may read. They live in the
same file so that one version string (a hash of the whole text) names both.
"""

import difflib
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import cel
import msgspec

from payguard.events.contract import MONEY_OUT_TYPES, LabelSource
from payguard.rules import sandbox, syntax
from payguard.rules.types import Action, ChallengeMethod, Mode, OnError
from payguard.rules.yamlload import YamlError, load_yaml

if TYPE_CHECKING:
    from payguard.chains import ChainPattern

MAX_RULES = 2_000
"""Rules (and, separately, signals) a ruleset may hold; the default has 73."""
MAX_EXPRESSION_CHARS = 2_000
MAX_EXPANDED_CHARS = 8_000
"""A `when` as written is at most MAX_EXPRESSION_CHARS; with its signals inlined, at most
this (a signal reused by many rules must not multiply a rule's cost without bound)."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ACTION_RANK: dict[str, int] = {"allow": 0, "challenge": 1, "hold": 2, "review": 3, "block": 4}
"""Severity: the most severe action of the rules that hit wins. A hold accepts the money
but delays it (revocable), so it outranks a challenge and yields to a person's review."""


class RuleError(ValueError):
    """A ruleset failed validation: `rule` names it, `message` says what and where."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"rule {rule}: {message}")
        self.rule = rule
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": "invalid_ruleset", "rule": self.rule, "reason": self.message}


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


class StepUpConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the policy chooses verification methods (docs/verification.md)."""

    phone_risk_minutes: Annotated[int, msgspec.Meta(ge=0, le=4320)] = 4320
    """After a SIM swap, a loss report or its undoing, forwarding or a number change, no
    SMS code and no call to the number for this long (at most 72 h: the signals' window)."""
    known_device_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 30
    """`in_app_confirm` only on a device the account has used for at least this long."""
    prefer: list[ChallengeMethod] = msgspec.field(
        default_factory=lambda: ["in_app_confirm", "face", "hardware_token", "sms_otp", "callback"]
    )
    """The order methods are offered in (first = preferred); a method left out of this
    list is never offered."""


class OutcomesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a challenge's result does to later decisions (docs/decisions.md, "Lifecycle")."""

    clear_hours: Annotated[int, msgspec.Meta(ge=0, le=720)] = 72
    """A strong step-up passed clears the rules that asked for it, for that account and
    device, this long (0: never): they do not challenge the customer again meanwhile."""
    strong: list[ChallengeMethod] = msgspec.field(
        default_factory=lambda: ["face", "hardware_token", "in_app_confirm"]
    )
    """Methods whose pass proves the customer, not just whoever holds the line: an SMS
    code or a call to the number (`sms_otp`, `callback`) clears nothing by default."""
    released_by_label: list[str] = msgspec.field(default_factory=list)
    """Rules a `not_fraud` label on a stopped decision (review or block) releases: from
    the label on, for `clear_hours`, they do not challenge that account again on any
    device (the follow-on after a stop, lifted once someone says the stop was wrong).
    Each must be a rule of the ruleset."""
    release_sources: list[LabelSource] = msgspec.field(default_factory=lambda: ["analyst", "bank"])
    """Label sources whose `not_fraud` releases: a person who looked, not the account's
    own "that was me", which whoever holds the account can send."""


class PolicyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Score thresholds that escalate the action regardless of which rules hit, how long
    a hold lasts, and how verification methods are chosen."""

    challenge_at: int | None = None
    review_at: int | None = None
    block_at: int | None = None
    hold_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] = 24
    """How long a held transfer waits for its owner to revoke it before it is released."""
    step_up: StepUpConfig = StepUpConfig()
    outcomes: OutcomesConfig = OutcomesConfig()


class RulesetFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: str
    rules: list[Rule]
    params: dict[str, int | str | bool] = msgspec.field(default_factory=dict)
    signals: dict[str, str] = msgspec.field(default_factory=dict)
    """Named CEL expressions (`unusual_amount: amount > 2 * p90_…`) that rules read by
    name; each is inlined, parenthesised, where a rule names it. A signal may read features,
    params and the signals written before it."""
    policy: PolicyConfig = PolicyConfig()
    chains: list[Any] | None = None
    """Attack-chain patterns, as `payguard.chains.load_chains` reads them."""


class CompiledRule(msgspec.Struct, frozen=True):
    rule: Rule
    program: Any
    variables: frozenset[str]
    code: str
    condition: str
    """`rule.when` with the ruleset's signals inlined, printed from its syntax tree: what
    actually runs (no comments, fully parenthesised)."""
    cost: int = 0
    """Estimated evaluation cost in steps (`rules.sandbox.cost`)."""


class Ruleset(msgspec.Struct, frozen=True):
    """A validated, compiled ruleset; immutable, so hot reload is a reference swap."""

    version: str
    source: str
    rules: tuple[CompiledRule, ...]
    params: dict[str, int | str | bool]
    policy: PolicyConfig
    chains: "tuple[ChainPattern, ...]" = ()
    """The compiled `chains:` section, in file order."""

    def for_event_type(self, event_type: str) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if r.rule.events is None or event_type in r.rule.events)


def parse_ruleset(
    text: str,
    known: Iterable[str],
    event_types: Iterable[str],
    chain_known: Iterable[str] | None = None,
) -> Ruleset:
    """Parse YAML text and validate every rule against the known variable names.

    `chain_known` are the names a chain condition may read; None means the caller runs
    no chain matcher, so a `chains:` section is refused rather than silently ignored."""
    try:
        spec = msgspec.convert(load_yaml(text), RulesetFile)
    except YamlError as exc:
        raise RuleError("-", str(exc)) from None
    except msgspec.ValidationError as exc:
        raise RuleError("-", f"bad ruleset structure: {exc}") from None
    if len(spec.rules) > MAX_RULES or len(spec.signals) > MAX_RULES:
        raise RuleError("-", f"a ruleset holds at most {MAX_RULES} rules and {MAX_RULES} signals")
    types = set(event_types)
    _check_step_up(spec.policy.step_up)
    chains = _compile_chains(spec.chains, chain_known, types)
    provided = {name for pattern in chains for name in pattern.feature_names()}
    known_names = set(known) | set(spec.params) | provided
    signals = _expand_signals(spec.signals, known_names)
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for rule in spec.rules:
        if rule.id in seen:
            raise RuleError(rule.id, "duplicate rule id")
        seen.add(rule.id)
        if not rule.enabled:
            continue
        compiled.append(_compile(rule, known_names, types, signals))
    _check_total_cost(compiled)
    _check_released(spec.policy.outcomes, seen)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return Ruleset(
        version=f"{spec.version}+{digest}",
        source=text,
        rules=tuple(compiled),
        params=dict(spec.params),
        policy=spec.policy,
        chains=chains,
    )


def _check_total_cost(rules: list[CompiledRule]) -> None:
    total = sum(rule.cost for rule in rules)
    if total > sandbox.MAX_RULESET_COST:
        costliest = max(rules, key=lambda rule: rule.cost)
        raise RuleError(
            "-",
            f"ruleset cost {total} exceeds the budget of {sandbox.MAX_RULESET_COST} "
            f"(costliest rule: {costliest.rule.id}, {costliest.cost})",
        )


def _check_step_up(config: StepUpConfig) -> None:
    prefer = config.prefer
    if len(set(prefer)) != len(prefer):
        raise RuleError("policy", "step_up.prefer lists a method twice")


def _check_released(config: OutcomesConfig, rule_ids: set[str]) -> None:
    unknown = [r for r in config.released_by_label if r not in rule_ids]
    if unknown:
        raise RuleError("policy", f"outcomes.released_by_label names no rule: {', '.join(unknown)}")


def load_ruleset(
    path: Path,
    known: Iterable[str],
    event_types: Iterable[str],
    chain_known: Iterable[str] | None = None,
) -> Ruleset:
    return parse_ruleset(path.read_text(encoding="utf-8"), known, event_types, chain_known)


def _compile_chains(
    raw: list[Any] | None, known: Iterable[str] | None, event_types: set[str]
) -> "tuple[ChainPattern, ...]":
    """The `chains:` section compiled (empty when absent)."""
    if not raw:
        return ()
    if known is None:
        raise RuleError("-", "this engine runs without chain patterns (graph_chains = false)")
    # Imported here: payguard.chains compiles its conditions with this module's
    # compile_condition, so a module-level import would be circular.
    from payguard.chains import load_chains

    return load_chains(raw, known, event_types)


HOLDABLE_TYPES: frozenset[str] = MONEY_OUT_TYPES
"""Money leaving the customer: the only events a hold (accept now, pay out later) fits."""


def _expand_signals(raw: dict[str, str], known: set[str]) -> dict[str, syntax.Node]:
    """Each signal validated and fully expanded (earlier signals inlined), in file order,
    as a syntax tree."""
    expanded: dict[str, syntax.Node] = {}
    for name, text in raw.items():
        owner = f"signals.{name}"
        if not _IDENTIFIER.fullmatch(name):
            raise RuleError(owner, "a signal name is a CEL identifier (letters, digits, _)")
        if name in known:
            raise RuleError(owner, "a signal may not shadow a feature, field or param")
        checked = check_condition(owner, text, known, MAX_EXPANDED_CHARS, expanded)
        expanded[name] = checked.tree
    return expanded


def _compile(
    rule: Rule, known: set[str], event_types: set[str], signals: dict[str, syntax.Node]
) -> CompiledRule:
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
    checked = compile_condition(rule.id, rule.when, known, MAX_EXPANDED_CHARS, signals)
    return CompiledRule(
        rule=rule,
        program=checked.program,
        variables=checked.variables,
        code=rule.code or rule.id,
        condition=checked.text,
        cost=checked.cost,
    )


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
    """The canonical text CEL compiled (and `rules.native` may translate)."""
    cost: int


def check_condition(
    owner: str,
    text: str,
    known: set[str],
    max_chars: int = MAX_EXPRESSION_CHARS,
    signals: dict[str, syntax.Node] | None = None,
) -> CheckedCondition:
    """Parse one CEL condition, inline `signals` (by tree, not by text) and check it:
    no macros or unknown functions, every identifier known, cost within the budget.
    Errors are RuleErrors naming `owner`."""
    if len(text) > max_chars:
        raise RuleError(owner, f"condition is longer than {max_chars} characters")
    try:
        tree = syntax.parse(text)
    except syntax.CelSyntaxError as exc:
        raise RuleError(owner, f"CEL syntax error: {exc}") from None
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
    for name in sorted(names - known):
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
) -> CompiledCondition:
    """Check one CEL boolean (`check_condition`) and compile its canonical text. Shared
    with chain patterns, so a condition means the same thing wherever it is written."""
    checked = check_condition(owner, text, known, max_chars, signals)
    try:
        cel.compile(text)  # CEL's own parser must accept the text as written, too
        program = cel.compile(checked.text)
    except ValueError as exc:
        raise RuleError(owner, f"CEL syntax error: {exc}") from None
    return CompiledCondition(program, checked.variables, checked.text, checked.cost)
