"""Versioned rulesets: the document that holds rules, attack chains, policy and params.

A ruleset is one YAML file: CEL rules (`rules/`), attack-chain patterns (`chains/`,
docs/chains.md), the policy's configuration (`policy/`) and the parameters rules read. It
lives above all three because it holds all three; one version string (a hash of the whole
text) names them together. Validation happens at load and at upload, so a bad rule never
reaches the decision path: syntax errors carry the position, unknown identifiers name the
nearest known variable, comprehension macros, unknown functions and over-budget conditions
are refused (`payguard.cel`). YAML is read by a loader that refuses aliases expanding the
document beyond `MAX_YAML_NODES` nodes (`ruleset.yamlload`).

Variables are flat (`amount`, `count_card_bind_by_user_1h`), not nested maps: the CEL
binding converts nested maps entry by entry (~1 µs each) but flat variables at ~0.2 µs,
and only the variables a rule references are ever built.

The chains are validated first, against the names their conditions may read, and the
features they provide (`chain_<name>_matched`, …) then become names the rules may read.
"""

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from payguard.cel import RuleError, sandbox
from payguard.chains import ChainPattern, load_chains
from payguard.policy.config import OutcomesConfig, PolicyConfig, StepUpConfig
from payguard.rules.compile import compile_rule, expand_signals
from payguard.rules.types import CompiledRule, Rule
from payguard.ruleset.yamlload import YamlError, load_yaml

MAX_RULES = 2_000
"""Rules (and, separately, signals) a ruleset may hold; the default has 73."""


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


class Ruleset(msgspec.Struct, frozen=True):
    """A validated, compiled ruleset; immutable, so hot reload is a reference swap."""

    version: str
    source: str
    rules: tuple[CompiledRule, ...]
    params: dict[str, int | str | bool]
    policy: PolicyConfig
    chains: tuple[ChainPattern, ...] = ()
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
    params = _params(spec)
    known_names = set(known) | set(params) | provided
    signals = expand_signals(spec.signals, known_names)
    compiled: list[CompiledRule] = []
    seen: set[str] = set()
    for rule in spec.rules:
        if rule.id in seen:
            raise RuleError(rule.id, "duplicate rule id")
        seen.add(rule.id)
        if not rule.enabled:
            continue
        compiled.append(compile_rule(rule, known_names, types, signals))
    _check_total_cost(compiled)
    _check_released(spec.policy.outcomes, seen)
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return Ruleset(
        version=f"{spec.version}+{digest}",
        source=text,
        rules=tuple(compiled),
        params=params,
        policy=spec.policy,
        chains=chains,
    )


def _params(spec: RulesetFile) -> dict[str, int | str | bool]:
    """The variables rules read besides features: `params` and the policy's follow-on
    horizons (`follow_on_<kind>_minutes`), which a param may not redefine."""
    horizons = spec.policy.follow_on.params()
    clash = sorted(horizons.keys() & spec.params.keys())
    if clash:
        raise RuleError("params", f"{clash[0]} is set in policy.follow_on, not in params")
    return {**spec.params, **horizons}


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
    for name, listed in (
        ("released_by_label", config.released_by_label),
        ("line_cleared", config.line_cleared),
    ):
        unknown = [r for r in listed if r not in rule_ids]
        if unknown:
            raise RuleError("policy", f"outcomes.{name} names no rule: {', '.join(unknown)}")


def load_ruleset(
    path: Path,
    known: Iterable[str],
    event_types: Iterable[str],
    chain_known: Iterable[str] | None = None,
) -> Ruleset:
    return parse_ruleset(path.read_text(encoding="utf-8"), known, event_types, chain_known)


def _compile_chains(
    raw: list[Any] | None, known: Iterable[str] | None, event_types: set[str]
) -> tuple[ChainPattern, ...]:
    """The `chains:` section compiled (empty when absent)."""
    if not raw:
        return ()
    if known is None:
        raise RuleError("-", "this engine runs without chain patterns (graph_chains = false)")
    return load_chains(raw, known, event_types)
